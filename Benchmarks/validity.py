#!/usr/bin/env python3
"""The paired comparison's type-I error and interval coverage over Distillery's designs.

An independent numpy re-implementation of two tests of the mean of a balanced
teacher run x seed x case array with crossed random effects:

- satterthwaite: the test Distillery used before (components estimated below zero
  dropped, Satterthwaite's degrees of freedom, which jump when a component with two
  or three levels is dropped);
- calibrated: the mean over the unbiased standard error, referred to its null
  distribution simulated over the fiducial distribution of the expected mean
  squares (Sources/Results/Statistics/FiducialCalibration.swift);
- distillery: what the report uses (PairedRunComparison.effect): calibrated when
  teacher runs and seeds are both replicated, Satterthwaite's with one teacher run.

Data are simulated with no true effect, with variance components estimated from the
committed phantom study (docs/results/phantom-study*/report.json, printed first), and
variants: a large teacher variance, main effects at zero, 5% of runs collapsing.
Each design's rejection rate at alpha 0.05 is printed; the interval's coverage is
one minus it (both come from the same null and do not depend on the true effect).

    /usr/bin/python3 Benchmarks/validity.py [simulations per design, default 2000]

Needs numpy and scipy (Debian's python3-numpy, python3-scipy: make test-deps).
"""
import json
import os
import sys

import numpy as np
from scipy import stats
from scipy.special import ndtr

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FACTORS = "TSC"


def mean_squares(y):
    """Mean squares and degrees of freedom of every factor set (bit masks over the
    array's axes after the first, which indexes simulations)."""
    n, levels = y.shape[0], y.shape[1:]
    k = len(levels)
    axes = list(range(1, k + 1))
    marginal = {}
    for mask in range(1 << k):
        drop = tuple(a for i, a in enumerate(axes) if not mask & (1 << i))
        marginal[mask] = y.mean(axis=drop, keepdims=True) if drop else y
    out = {}
    for mask in range(1, 1 << k):
        effect, sub = 0, mask
        while True:
            sign = 1 if (bin(mask).count("1") - bin(sub).count("1")) % 2 == 0 else -1
            effect = effect + sign * marginal[sub]
            if sub == 0:
                break
            sub = (sub - 1) & mask
        squares = (np.broadcast_to(effect, y.shape) ** 2).reshape(n, -1).sum(1)
        df = float(np.prod([levels[i] - 1 for i in range(k) if mask & (1 << i)]))
        out[mask] = (squares / df, df)
    return out


def size(levels, mask, inside):
    return float(np.prod([levels[i] for i in range(len(levels)) if bool(mask & (1 << i)) == inside]))


def component_coefficients(levels):
    """Each component as a combination of mean squares (expected mean squares inverted)."""
    k = len(levels)
    masks = sorted(range(1, 1 << k), key=lambda m: -bin(m).count("1"))
    out = {}
    for g in masks:
        c = {g: 1.0}
        for h in masks:
            if h != g and h & g == g:
                for f, v in out[h].items():
                    c[f] = c.get(f, 0.0) - size(levels, h, False) * v
        out[g] = {f: v / size(levels, g, False) for f, v in c.items()}
    return out


def components(ms, levels):
    return {g: sum(v * ms[f] for f, v in c.items()) for g, c in component_coefficients(levels).items()}


def satterthwaite(y, ms, levels, alpha):
    """Components below zero dropped; Satterthwaite's df over the kept components' mean squares."""
    n = y.shape[0]
    raw = components({f: m for f, (m, _) in ms.items()}, levels)
    coefficients = component_coefficients(levels)
    weight = {f: np.zeros(n) for f in ms}
    for g, c in coefficients.items():
        kept = (raw[g] > 0).astype(float)
        for f, v in c.items():
            weight[f] = weight[f] + kept * v / size(levels, g, True)
    variance = np.maximum(sum(weight[f] * ms[f][0] for f in ms), 0)
    denominator = sum((weight[f] * ms[f][0]) ** 2 / ms[f][1] for f in ms)
    with np.errstate(divide="ignore", invalid="ignore"):
        df = np.where(denominator > 0, variance ** 2 / denominator, np.inf)
    mean = y.reshape(n, -1).mean(1)
    q = stats.t.ppf(1 - alpha / 2, np.maximum(df, 1e-9))
    return np.abs(mean) > q * np.sqrt(variance)


def unbiased(ms, levels):
    """sum_F (-1)^(|F|+1) MS_F / N, never below the residual's share MS_all / N."""
    n = float(np.prod(levels))
    value = sum((1 if bin(f).count("1") % 2 else -1) * m for f, m in ms.items()) / n
    return np.maximum(value, ms[(1 << len(levels)) - 1] / n)


def calibrated(y, ms, levels, alpha, rng, draws=1000):
    n = y.shape[0]
    observed = {f: m for f, (m, _) in ms.items()}
    df = {f: d for f, (_, d) in ms.items()}
    t = np.abs(y.reshape(n, -1).mean(1)) / np.sqrt(unbiased(observed, levels))
    fiducial = {f: observed[f][:, None] * df[f] / rng.chisquare(df[f], (n, draws)) for f in observed}
    comp = {g: np.maximum(0, v) for g, v in components(fiducial, levels).items()}
    variance = sum(comp[g] / size(levels, g, True) for g in comp)
    expected = {f: sum(size(levels, g, False) * v for g, v in comp.items() if g & f == f) for f in observed}
    drawn = {f: expected[f] * rng.chisquare(df[f], (n, draws)) / df[f] for f in observed}
    ratio = np.sqrt(unbiased(drawn, levels) / np.maximum(variance, 1e-300))
    p = (2 * ndtr(-t[:, None] * ratio)).mean(1)
    return p <= alpha


def study_components():
    """Variance components of the committed phantom study's eight comparisons (their mean)."""
    found = {}
    for name in ("phantom-study", "phantom-study-replication"):
        path = os.path.join(ROOT, "docs", "results", name, "report.json")
        rows = json.load(open(path))
        runs = {}
        for r in rows:
            if r["kind"] not in ("train", "distill"):
                continue
            v = dict(kv.split("=") for kv in r["variant"].split(","))
            runs.setdefault(r["stage"], {})[(int(v["teacher_seed"]), int(v["seed"]))] = (
                {c["case"]: c["dice"] for c in r["metrics"]["cases"]}, r["baseline"])
        for stage, rs in runs.items():
            first, baseline = next(iter(rs.values()))
            if baseline is None:
                continue
            base = {k[1]: v[0] for k, v in runs[baseline].items()}
            ts, ss, cs = sorted({k[0] for k in rs}), sorted({k[1] for k in rs}), sorted(first)
            d = np.array([[[rs[(t, s)][0][c] - base[s][c] for c in cs] for s in ss] for t in ts])
            comp = components({f: m for f, (m, _) in mean_squares(d[None]).items()}, d.shape)
            for g, v in comp.items():
                found.setdefault(g, []).append(float(v[0]))
    names = {1: "T", 2: "S", 4: "C", 3: "TS", 5: "TC", 6: "SC", 7: "TSC"}
    return {names[g]: float(np.sqrt(max(0.0, np.mean(v)))) for g, v in found.items()}


def simulate(rng, n, teachers, seeds, cases, sd, collapse):
    """No true effect. With one teacher run the comparison is conditional on it: its
    effects are fixed, its seed interaction joins the seeds."""
    sd = dict(sd)
    if teachers == 1:
        sd["S"] = float(np.hypot(sd["S"], sd["TS"]))
        for name in ("T", "TS", "TC"):
            sd[name] = 0.0
    y = np.zeros((n, teachers, seeds, cases))
    for name, s in sd.items():
        shape = [n] + [(teachers, seeds, cases)[i] if f in name else 1 for i, f in enumerate(FACTORS)]
        y = y + s * rng.standard_normal(shape)
    if collapse:
        distilled = rng.random((n, teachers, seeds, 1)) < collapse
        baseline = rng.random((n, 1, seeds, 1)) < collapse
        y = y - distilled * 0.2 * (1 + 0.5 * rng.standard_normal(y.shape))
        y = y + baseline * 0.2 * (1 + 0.5 * rng.standard_normal((n, 1, seeds, cases)))
    return y


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    rng = np.random.default_rng(2026)
    sd = study_components()
    print("components of the committed phantom study (sd):", ", ".join(f"{k} {v:.4f}" for k, v in sorted(sd.items())))
    scenarios = [("study", sd, 0.0), ("large teacher", dict(sd, T=0.035), 0.0),
                 ("main effects zero", dict(sd, T=0.0, S=0.0, C=0.0), 0.0), ("5% collapsed", sd, 0.05)]
    print(f"\nrejection rate at alpha 0.05, {count} simulations per design (coverage = 1 - rate)\n")
    print("| scenario | teacher runs | seeds | cases | satterthwaite | calibrated | distillery |")
    print("|---|---|---|---|---|---|---|")
    totals = {"satterthwaite": [], "calibrated": [], "distillery": []}
    for name, components_sd, collapse in scenarios:
        for teachers in (1, 3, 5):
            for seeds in (3, 5):
                for cases in (12, 40):
                    y = simulate(rng, count, teachers, seeds, cases, components_sd, collapse)
                    levels = [l for l in y.shape[1:] if l > 1]
                    y = y.reshape((count,) + tuple(levels))
                    ms = mean_squares(y)
                    a = satterthwaite(y, ms, levels, 0.05).mean()
                    b = calibrated(y, ms, levels, 0.05, rng).mean()
                    chosen = b if len(levels) == 3 else a
                    totals["satterthwaite"].append(a)
                    totals["calibrated"].append(b)
                    totals["distillery"].append(chosen)
                    print(f"| {name} | {teachers} | {seeds} | {cases} | {a:.3f} | {b:.3f} | {chosen:.3f} |", flush=True)
    for method, rates in totals.items():
        rates = np.array(rates)
        print(f"\n{method}: mean {rates.mean():.4f}, range {rates.min():.3f}-{rates.max():.3f}, "
              f"{(rates > 0.07).sum()} of {len(rates)} designs above 0.07, {(rates < 0.03).sum()} below 0.03")


if __name__ == "__main__":
    main()
