"""Benchmark: tau^2 estimation here vs pymare and statsmodels, side by side, in one run.

    .venv/bin/python benchmarks/bench_tau2.py [--datasets 300] [--k 20] [--seed 1]

Prints, for DerSimonian-Laird, REML and Paule-Mandel, the wall time per fit of
each library on the same simulated datasets and the largest relative
difference from our tau^2. Speed is reported here, never asserted in tests.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from pymare.estimators import DerSimonianLaird, VarianceBasedLikelihoodEstimator
from statsmodels.stats.meta_analysis import combine_effects

from metaanalysis.engine.estimators import Control, estimate_tau2
from metaanalysis.engine.glmm import rma_glmm

EXACT = Control(threshold=1e-12, tol=1e-12)


def simulate(rng: np.random.Generator, datasets: int, k: int) -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    for _ in range(datasets):
        vi = rng.uniform(0.02, 0.5, k)
        yi = rng.normal(0.3, np.sqrt(vi + rng.uniform(0.0, 0.3)))
        out.append((yi, vi))
    return out


def timed(fn, data) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    values = np.array([fn(y, v) for y, v in data])
    return (time.perf_counter() - start) / len(data), values


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", type=int, default=300)
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    data = simulate(np.random.default_rng(args.seed), args.datasets, args.k)
    X = np.ones((args.k, 1))

    contenders = {
        "DL": {
            "metaanalysis": lambda y, v: estimate_tau2("DL", y, v).tau2,
            "pymare 0.0.13": lambda y, v: float(np.ravel(DerSimonianLaird(
                weight_scheme="individual", rho=None, small_sample_correction="wald").fit(y=y, v=v, X=X).params_["tau2"])[0]),
            "statsmodels": lambda y, v: max(0.0, combine_effects(y, v, method_re="chi2", use_t=False, alpha=0.05).tau2),
        },
        "REML": {
            "metaanalysis": lambda y, v: estimate_tau2("REML", y, v, control=EXACT).tau2,
            "pymare 0.0.13": lambda y, v: float(np.ravel(VarianceBasedLikelihoodEstimator(
                method="REML", weight_scheme="individual", rho=None, small_sample_correction="wald",
                xtol=1e-6, ftol=1e-12, maxiter=50).fit(y=y, v=v, X=X).params_["tau2"])[0]),
        },
        "PM": {
            "metaanalysis": lambda y, v: estimate_tau2("PM", y, v, control=EXACT).tau2,
            "statsmodels": lambda y, v: combine_effects(y, v, method_re="iterated", use_t=False, alpha=0.05).tau2,
        },
    }
    print(f"{args.datasets} simulated datasets, k = {args.k} (seed {args.seed})\n")
    print(f"{'estimator':<10}{'library':<16}{'ms per fit':>12}{'max rel. diff vs ours':>24}")
    for method, libs in contenders.items():
        ours = None
        for name, fn in libs.items():
            sec, values = timed(fn, data)
            if ours is None:
                ours, diff = values, "(reference)"
            else:
                scale = np.maximum(np.abs(ours), 1e-8)
                diff = f"{np.max(np.abs(values - ours) / scale):.2e}"
            print(f"{method:<10}{name:<16}{sec * 1e3:>12.3f}{diff:>24}")

    rng = np.random.default_rng(args.seed)
    n = rng.integers(10, 100, 10)
    events = rng.binomial(n, 0.4)
    start = time.perf_counter()
    rma_glmm(events, n, nAGQ=7)
    print(f"\nGLMM (binomial-normal, nAGQ = 7), k = 10: {(time.perf_counter() - start) * 1e3:.0f} ms per fit "
          "(no Python library fits this model to compare with; R's rma.glmm via lme4 is the reference)")


if __name__ == "__main__":
    main()
