import COpenBLAS

/// Row-major matrix products: `C = alpha * op(A) * op(B) + beta * C`.
///
/// M, N, K as in BLAS: op(A) is M x K, op(B) is K x N, C is M x N.
public enum GEMM {
    /// The fast path: OpenBLAS sgemm.
    /// Leading dimensions default to the packed ones; pass them to address
    /// column blocks of wider matrices (a band of output pixels).
    public static func multiply(_ a: UnsafePointer<Float>, transposeA: Bool, _ b: UnsafePointer<Float>, transposeB: Bool,
                                _ c: UnsafeMutablePointer<Float>, m: Int, n: Int, k: Int, alpha: Float = 1, beta: Float = 0,
                                lda: Int? = nil, ldb: Int? = nil, ldc: Int? = nil) {
        guard m > 0, n > 0 else { return }
        Machine.prepare()
        sgemm(a, transposeA: transposeA, b, transposeB: transposeB, c, m: m, n: n, k: k, alpha: alpha, beta: beta, lda: lda, ldb: ldb, ldc: ldc)
    }

    /// sgemm on whichever kernels OpenBLAS runs now (`multiply` first makes them the CPU's best).
    static func sgemm(_ a: UnsafePointer<Float>, transposeA: Bool, _ b: UnsafePointer<Float>, transposeB: Bool,
                      _ c: UnsafeMutablePointer<Float>, m: Int, n: Int, k: Int, alpha: Float = 1, beta: Float = 0,
                      lda: Int? = nil, ldb: Int? = nil, ldc: Int? = nil) {
        let ldC = ldc ?? n
        if k == 0 {
            for i in 0..<m { for j in 0..<n { c[i * ldC + j] = beta == 0 ? 0 : beta * c[i * ldC + j] } }
            return
        }
        cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda ?? (transposeA ? m : k)), b, Int32(ldb ?? (transposeB ? k : n)),
                    beta, c, Int32(ldC))
    }

    /// The algorithmic reference: three loops, accumulated in Double.
    public static func multiplyNaive(_ a: UnsafePointer<Float>, transposeA: Bool, _ b: UnsafePointer<Float>, transposeB: Bool,
                                     _ c: UnsafeMutablePointer<Float>, m: Int, n: Int, k: Int, alpha: Float = 1, beta: Float = 0) {
        for i in 0..<m {
            for j in 0..<n {
                var s = 0.0
                for p in 0..<k {
                    let av = transposeA ? a[p * m + i] : a[i * k + p]
                    let bv = transposeB ? b[j * k + p] : b[p * n + j]
                    s += Double(av) * Double(bv)
                }
                c[i * n + j] = alpha * Float(s) + (beta == 0 ? 0 : beta * c[i * n + j])
            }
        }
    }
}
