import Foundation

/// The distributions a report's tests and power estimates need: Student's t (real
/// degrees of freedom, as Satterthwaite's approximation gives them), its noncentral
/// form, and the standard normal. Tested against scipy.stats (t, nct, norm).
public enum Distributions {
    /// The standard normal CDF.
    public static func normalCDF(_ z: Double) -> Double { 0.5 * erfc(-z / 2.0.squareRoot()) }

    /// The regularized incomplete beta function I_x(a, b), by its continued fraction
    /// (modified Lentz), on the side of x where the fraction converges fast.
    public static func incompleteBeta(_ x: Double, _ a: Double, _ b: Double) -> Double {
        guard x > 0 else { return 0 }
        guard x < 1 else { return 1 }
        let logFront = lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log1p(-x)
        if x < (a + 1) / (a + b + 2) {
            return exp(logFront) * betaFraction(x, a, b) / a
        }
        return 1 - exp(logFront) * betaFraction(1 - x, b, a) / b
    }

    /// The continued fraction of I_x(a, b): 1/(1+ d1/(1+ d2/(1+ ...))) with
    /// d(2m+1) = -(a+m)(a+b+m)x / ((a+2m)(a+2m+1)) and d(2m) = m(b-m)x / ((a+2m-1)(a+2m)).
    static func betaFraction(_ x: Double, _ a: Double, _ b: Double) -> Double {
        let tiny = 1e-300, epsilon = 1e-15
        func guarded(_ v: Double) -> Double { abs(v) < tiny ? tiny : v }
        var c = 1.0
        var d = 1 / guarded(1 - (a + b) * x / (a + 1))
        var h = d
        for m in 1...10_000 {
            let m = Double(m)
            let even = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
            d = 1 / guarded(1 + even * d)
            c = guarded(1 + even / c)
            h *= d * c
            let odd = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
            d = 1 / guarded(1 + odd * d)
            c = guarded(1 + odd / c)
            let step = d * c
            h *= step
            if abs(step - 1) < epsilon { break }
        }
        return h
    }

    /// P(T > |t|) for Student's t with `df` degrees of freedom (any real df > 0; the
    /// normal tail when df is infinite).
    public static func studentTail(_ t: Double, df: Double) -> Double {
        guard t.isFinite else { return t.isNaN ? .nan : 0 }
        if df.isInfinite { return normalCDF(-abs(t)) }
        return 0.5 * incompleteBeta(df / (df + t * t), df / 2, 0.5)
    }

    /// Student's t CDF.
    public static func studentCDF(_ t: Double, df: Double) -> Double {
        if t == .infinity { return 1 }
        if t == -.infinity { return 0 }
        let tail = studentTail(t, df: df)
        return t >= 0 ? 1 - tail : tail
    }

    /// The two-sided p-value of a t statistic.
    public static func twoSidedP(_ t: Double, df: Double) -> Double { min(1, 2 * studentTail(t, df: df)) }

    /// The q-quantile of Student's t (0 < q < 1), by bisection on the CDF.
    public static func studentQuantile(_ q: Double, df: Double) -> Double {
        precondition(q > 0 && q < 1, "a quantile lies strictly between 0 and 1")
        if q == 0.5 { return 0 }
        var lo = -1.0, hi = 1.0
        while studentCDF(lo, df: df) > q { lo *= 2 }
        while studentCDF(hi, df: df) < q { hi *= 2 }
        for _ in 0..<200 {
            let mid = (lo + hi) / 2
            if studentCDF(mid, df: df) < q { lo = mid } else { hi = mid }
            if hi - lo <= 1e-13 * max(1, abs(mid)) { break }
        }
        return (lo + hi) / 2
    }

    /// The CDF of the noncentral t with `df` degrees of freedom and noncentrality `delta`,
    /// for t >= 0 as the Poisson-weighted series of incomplete beta functions:
    ///
    ///     F(t) = Phi(-delta) + 1/2 sum_j [ p_j I_x(j + 1/2, df/2) + q_j I_x(j + 1, df/2) ],  x = t^2 / (t^2 + df),
    ///     p_j = e^(-delta^2/2) (delta^2/2)^j / j!,   q_j = delta e^(-delta^2/2) (delta^2/2)^j / (sqrt 2 Gamma(j + 3/2));
    ///
    /// and F(t; df, delta) = 1 - F(-t; df, -delta) below zero.
    public static func noncentralTCDF(_ t: Double, df: Double, delta: Double) -> Double {
        if t < 0 { return 1 - noncentralTCDF(-t, df: df, delta: -delta) }
        if delta == 0 { return studentCDF(t, df: df) }
        if df.isInfinite { return normalCDF(t - delta) }
        let x = t * t / (t * t + df)
        let lambda = delta * delta / 2
        var sum = 0.0
        // Terms are weighted by a Poisson(lambda) distribution: sum well past its mode.
        let last = Int(lambda + 12 * lambda.squareRoot() + 60)
        for j in 0...last {
            let jd = Double(j)
            let logWeight = -lambda + (lambda > 0 ? jd * log(lambda) : (j == 0 ? 0 : -.infinity))
            let p = exp(logWeight - lgamma(jd + 1))
            let q = (delta < 0 ? -1.0 : 1.0) * exp(log(abs(delta)) + logWeight - 0.5 * log(2.0) - lgamma(jd + 1.5))
            if p == 0, q == 0, jd > lambda { break }
            sum += p * incompleteBeta(x, jd + 0.5, df / 2) + q * incompleteBeta(x, jd + 1, df / 2)
        }
        return min(1, max(0, normalCDF(-delta) + 0.5 * sum))
    }

    /// The power of a two-sided t test at level `alpha` with `df` degrees of freedom when
    /// the true effect is `delta` standard errors.
    public static func power(delta: Double, df: Double, alpha: Double) -> Double {
        let critical = studentQuantile(1 - alpha / 2, df: df)
        return 1 - noncentralTCDF(critical, df: df, delta: delta) + noncentralTCDF(-critical, df: df, delta: delta)
    }
}
