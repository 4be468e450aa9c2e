#!/usr/bin/env python3
"""An independent re-implementation of Distillery's run-level comparisons
(Sources/Results/Statistics), for the tests: textbook expected mean squares of the
balanced random two- and three-way crossed models, Satterthwaite's degrees of
freedom, scipy.stats for t, noncentral t and their quantiles, and statsmodels'
MixedLM (REML) for the variance of the mean where every component is positive.

Reads a JSON list of problems on stdin, writes a JSON list of answers.
"""
import json
import sys

import numpy as np
from scipy import stats


def anova(y):
    """Mean squares, their df and the ANOVA component estimates (as coefficient
    dictionaries over the mean squares) of a 1-, 2- or 3-way balanced array with
    one observation per cell, factors named by their axis letters."""
    names = "abc"[: y.ndim]
    n = dict(zip(names, y.shape))
    g = y.mean()
    ms, df = {}, {}
    if y.ndim == 1:
        ms["a"], df["a"] = y.var(ddof=1), n["a"] - 1
        comps = {"a": {"a": 1.0}}
        return ms, df, comps, n
    if y.ndim == 2:
        A, C = n["a"], n["b"]
        ra, rb = y.mean(axis=1), y.mean(axis=0)
        ms["a"], df["a"] = C * ((ra - g) ** 2).sum() / (A - 1), A - 1
        ms["b"], df["b"] = A * ((rb - g) ** 2).sum() / (C - 1), C - 1
        res = y - ra[:, None] - rb[None, :] + g
        ms["ab"], df["ab"] = (res ** 2).sum() / ((A - 1) * (C - 1)), (A - 1) * (C - 1)
        comps = {
            "ab": {"ab": 1.0},
            "a": {"a": 1.0 / C, "ab": -1.0 / C},
            "b": {"b": 1.0 / A, "ab": -1.0 / A},
        }
        return ms, df, comps, n
    T, S, C = y.shape
    mt, ms_, mc = y.mean(axis=(1, 2)), y.mean(axis=(0, 2)), y.mean(axis=(0, 1))
    mts, mtc, msc = y.mean(axis=2), y.mean(axis=1), y.mean(axis=0)
    ms["a"], df["a"] = S * C * ((mt - g) ** 2).sum() / (T - 1), T - 1
    ms["b"], df["b"] = T * C * ((ms_ - g) ** 2).sum() / (S - 1), S - 1
    ms["c"], df["c"] = T * S * ((mc - g) ** 2).sum() / (C - 1), C - 1
    e_ab = mts - mt[:, None] - ms_[None, :] + g
    e_ac = mtc - mt[:, None] - mc[None, :] + g
    e_bc = msc - ms_[:, None] - mc[None, :] + g
    ms["ab"], df["ab"] = C * (e_ab ** 2).sum() / ((T - 1) * (S - 1)), (T - 1) * (S - 1)
    ms["ac"], df["ac"] = S * (e_ac ** 2).sum() / ((T - 1) * (C - 1)), (T - 1) * (C - 1)
    ms["bc"], df["bc"] = T * (e_bc ** 2).sum() / ((S - 1) * (C - 1)), (S - 1) * (C - 1)
    e = (y - mts[:, :, None] - mtc[:, None, :] - msc[None, :, :]
         + mt[:, None, None] + ms_[None, :, None] + mc[None, None, :] - g)
    ms["abc"], df["abc"] = (e ** 2).sum() / ((T - 1) * (S - 1) * (C - 1)), (T - 1) * (S - 1) * (C - 1)
    comps = {
        "abc": {"abc": 1.0},
        "ab": {"ab": 1 / C, "abc": -1 / C},
        "ac": {"ac": 1 / S, "abc": -1 / S},
        "bc": {"bc": 1 / T, "abc": -1 / T},
        "a": {"a": 1 / (S * C), "ab": -1 / (S * C), "ac": -1 / (S * C), "abc": 1 / (S * C)},
        "b": {"b": 1 / (T * C), "ab": -1 / (T * C), "bc": -1 / (T * C), "abc": 1 / (T * C)},
        "c": {"c": 1 / (T * S), "ac": -1 / (T * S), "bc": -1 / (T * S), "abc": 1 / (T * S)},
    }
    return ms, df, comps, n


def value(coef, ms):
    return sum(v * ms[k] for k, v in coef.items())


def mean_variance(ms, df, comps, n):
    """Var of the grand mean from the positive components, and Satterthwaite's df."""
    c = {}
    for g, coef in comps.items():
        if value(coef, ms) > 0:
            size = np.prod([n[f] for f in g])
            for k, v in coef.items():
                c[k] = c.get(k, 0.0) + v / size
    var = max(0.0, sum(v * ms[k] for k, v in c.items()))
    den = sum((v * ms[k]) ** 2 / df[k] for k, v in c.items() if df[k] > 0)
    return var, (var * var / den if den > 0 else float("inf"))


def expected_ms(sigma, n):
    """E[MS_F] = sum over G containing F of (product of levels outside G) sigma_G."""
    out = {}
    for f in sigma:
        out[f] = sum(np.prod([n[x] for x in n if x not in gname]) * s
                     for gname, s in sigma.items() if set(f) <= set(gname))
    return out


def effect(est, var, df, level=0.95):
    se = np.sqrt(var)
    if se == 0:
        return {"estimate": est, "se": 0.0, "df": df, "lower": est, "upper": est, "p": 1.0 if est == 0 else 0.0}
    q = stats.t.ppf(1 - (1 - level) / 2, df)
    return {"estimate": est, "se": se, "df": df, "lower": est - q * se, "upper": est + q * se,
            "p": float(2 * stats.t.sf(abs(est / se), df))}


def power(delta, df, alpha):
    tc = stats.t.ppf(1 - alpha / 2, df)
    return 1 - stats.nct.cdf(tc, df, delta) + stats.nct.cdf(-tc, df, delta)


def paired(problem):
    d = np.array(problem["d"], dtype=float)
    keep = [i for i, s in enumerate(d.shape) if s > 1]
    y = d.reshape([d.shape[i] for i in keep])
    if y.ndim == 0:
        return {"effect": effect(float(y), 0.0, float("inf"))}
    ms, df, comps, n = anova(y)
    var, dof = mean_variance(ms, df, comps, n)
    answer = {"effect": effect(float(y.mean()), var, dof), "ms": ms,
              "components": {k: max(0.0, value(c, ms)) for k, c in comps.items()},
              # Every component kept, negative or not: sum_F (-1)^(|F|+1) MS_F / N, at least the
              # residual's share (the mean square of every factor together) / N.
              "unbiased_variance": max(float(sum((1 if len(k) % 2 else -1) * m for k, m in ms.items()) / y.size),
                                       float(ms[max(ms, key=len)] / y.size))}
    if 1 in keep and "target" in problem:
        seed = "abc"[keep.index(1)]
        sigma = {k: max(0.0, value(c, ms)) for k, c in comps.items()}
        positive = {k: v for k, v in sigma.items() if v > 0}
        needed = None
        for runs in range(2, problem["most"] + 1):
            levels = dict(n)
            levels[seed] = runs
            ems = expected_ms(positive, levels)
            full = {k: ems.get(k, 0.0) for k in comps}
            dfs = {k: np.prod([levels[f] - 1 for f in k]) for k in comps}
            v, dd = mean_variance(full, dfs, anova_coefficients(levels, comps), levels)
            if v == 0 or power(abs(problem["target"]) / np.sqrt(v), dd, problem["alpha"]) >= problem["power"]:
                needed = runs
                break
        answer["runs_needed"] = needed
    if "mixedlm" in problem and y.ndim in (2, 3):
        answer["mixedlm_variance"] = mixedlm_variance(y)
    return answer


def anova_coefficients(levels, comps):
    """The same component formulas at other levels (they depend on the levels)."""
    fake = np.zeros([levels[f] for f in sorted(levels)])
    return anova(fake)[2]


def mixedlm_variance(y):
    """Var of the intercept of y ~ 1 with crossed random effects of every factor and
    every interaction short of the residual (REML)."""
    import itertools
    import pandas as pd
    import statsmodels.api as sm
    index = np.indices(y.shape)
    names = "abc"[: y.ndim]
    frame = pd.DataFrame({"y": y.ravel(), "g": 1, **{f: index[i].ravel() for i, f in enumerate(names)}})
    vc = {}
    for size in range(1, y.ndim):
        for combo in itertools.combinations(range(y.ndim), size):
            key = "".join(names[i] for i in combo)
            if size > 1:
                frame[key] = np.ravel_multi_index([index[i].ravel() for i in combo], [y.shape[i] for i in combo])
            vc[key] = "0 + C(%s)" % key
    model = sm.MixedLM.from_formula("y ~ 1", groups="g", re_formula="0", data=frame, vc_formula=vc)
    fit = model.fit(reml=True, method=["lbfgs"])
    return float(fit.cov_params().iloc[0, 0])


def unpaired(problem):
    a, b = np.array(problem["a"], dtype=float), np.array(problem["b"], dtype=float)
    C = a.shape[1]
    delta = a.mean(axis=0) - b.mean(axis=0)
    est = float(delta.mean())
    terms = []
    if C > 1:
        terms.append((1 / C, delta.var(ddof=1), C - 1))
    for arm in (a, b):
        R = arm.shape[0]
        if R < 2:
            continue
        rm = arm.mean(axis=1)
        ms_run = C * ((rm - arm.mean()) ** 2).sum() / (R - 1)
        if C > 1:
            res = arm - rm[:, None] - arm.mean(axis=0)[None, :] + arm.mean()
            ms_res = (res ** 2).sum() / ((R - 1) * (C - 1))
        else:
            ms_res = 0.0
        if ms_run <= ms_res:
            continue
        terms.append((1 / (C * R), ms_run, R - 1))
        if C > 1:
            terms.append((-1 / (C * R), ms_res, (R - 1) * (C - 1)))
    var = max(0.0, sum(c * m for c, m, _ in terms))
    den = sum((c * m) ** 2 / d for c, m, d in terms)
    return {"effect": effect(est, var, var * var / den if den > 0 else float("inf"))}


def distribution(problem):
    t, df, delta, alpha = problem["t"], problem["df"], problem["delta"], problem["alpha"]
    return {"t_cdf": float(stats.t.cdf(t, df)), "t_quantile": float(stats.t.ppf(problem["q"], df)),
            "nct_cdf": float(stats.nct.cdf(t, df, delta)), "power": float(power(delta, df, alpha)),
            "beta": float(stats.beta.cdf(problem["x"], problem["a"], problem["b"]))}


def main():
    out = []
    for problem in json.load(sys.stdin):
        kind = problem["kind"]
        out.append({"paired": paired, "unpaired": unpaired, "distribution": distribution}[kind](problem))
    json.dump(out, sys.stdout, default=lambda o: float(o) if isinstance(o, np.floating) else int(o))


if __name__ == "__main__":
    main()
