"""benchmarks/sim_coverage.py on Dask: the same files for 1 and 2 workers, run on a local Dask
cluster by default, and coverage counts that an independent computation reproduces.

The independent part draws the replicates again from the seeding the script documents
(SeedSequence(20261121, spawn_key=(n_min, n_max, k, 1000 p, 1000 tau, r))) and fits them one by
one with the library (escalc + rma_effects for PLO-HKSJ, rma_glmm for the GLMM), without any of
the script's vectorised code."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy import special

from metaanalysis.engine.effects import escalc
from metaanalysis.engine.glmm import rma_glmm
from metaanalysis.engine.rma import rma_effects

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "sim_coverage.py"
REPLICATES = 20
pytestmark = pytest.mark.xdist_group("sim")  # one worker builds the two runs (the module's fixture)


def _run(out: Path, workers: int) -> str:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--replicates", str(REPLICATES), "--workers", str(workers)]
        + ["--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("sim")
    return {w: (base / f"w{w}", _run(base / f"w{w}", w)) for w in (1, 2)}


def test_one_and_two_workers_write_identical_files(runs):
    (d1, _), (d2, _) = runs[1], runs[2]
    names = sorted(p.name for p in d1.iterdir())
    assert names == ["small_k_coverage.csv", "small_k_coverage.md"]
    assert names == sorted(p.name for p in d2.iterdir())
    for name in names:
        assert (d1 / name).read_bytes() == (d2 / name).read_bytes(), name


@pytest.mark.parametrize("workers", [1, 2])
def test_runs_on_a_local_dask_cluster_by_default(runs, workers):
    _, log = runs[workers]
    assert f"Dask LocalCluster: {workers} worker processes x 1 thread" in log
    # every task reports the Dask worker that ran it: addresses of the cluster's workers
    used = re.search(r"tasks per worker: (.*)", log).group(1)
    addresses = re.findall(r"(tcp://127\.0\.0\.1:\d+): (\d+)", used)
    assert 1 <= len(addresses) <= workers
    assert sum(int(n) for _, n in addresses) == 9  # 9 quick cells, one block each


def _rows(path: Path) -> dict:
    with open(path, newline="", encoding="utf-8") as f:
        return {(r["design"], r["k"], r["p"], r["tau"], r["method"]): r for r in csv.DictReader(f)}


def _replicate(n_range, k, p, tau, r):
    lo, hi = n_range
    seq = np.random.SeedSequence(20261121, spawn_key=(lo, hi, k, round(1000 * p), round(1000 * tau), r))
    rng = np.random.default_rng(seq)
    n = rng.integers(lo, hi + 1, size=k)
    x = rng.binomial(n, special.expit(special.logit(p) + tau * rng.standard_normal(k)))
    return x.tolist(), n.tolist()


QUICK = [("A", (10, 100), k, p, t) for k in (2, 3) for p in (0.3, 0.9) for t in (0.0, 1.0)] + [
    ("B", (5, 30), 2, 0.95, 0.5)
]


@pytest.mark.parametrize("design,n_range,k,p,tau", QUICK)
def test_plo_hksj_coverage_recomputed_one_fit_at_a_time(runs, design, n_range, k, p, tau):
    row = _rows(runs[1][0] / "small_k_coverage.csv")[(design, str(k), f"{p:g}", f"{tau:g}", "PLO-HKSJ")]
    covered = errors = extreme = extreme_covered = 0
    widths = []
    for r in range(REPLICATES):
        x, n = _replicate(n_range, k, p, tau, r)
        has_extreme = any(xi in (0, ni) for xi, ni in zip(x, n, strict=True)) and 0 < sum(x) < sum(n)
        extreme += has_extreme
        try:
            fit = rma_effects(escalc("PLO", events=x, n=n, add=0.5, to="only0"), method="REML", test="knha")
        except (ValueError, RuntimeError):
            errors += 1
            widths.append(np.inf)
            continue
        hit = fit.bt_ci_lb <= p <= fit.bt_ci_ub
        covered += hit
        extreme_covered += hit and has_extreme
        widths.append(fit.bt_ci_ub - fit.bt_ci_lb)
    assert int(row["replicates"]) == REPLICATES
    assert (int(row["covered"]), int(row["errors"])) == (covered, errors)
    assert float(row["coverage"]) == pytest.approx(100 * covered / REPLICATES, abs=0.005)
    assert float(row["median_width"]) == pytest.approx(100 * np.median(widths), abs=6e-4)
    assert (int(row["extreme_replicates"]), int(row["extreme_covered"])) == (extreme, extreme_covered)


def test_glmm_coverage_recomputed_one_fit_at_a_time(runs):
    row = _rows(runs[2][0] / "small_k_coverage.csv")[("A", "3", "0.9", "1", "GLMM")]
    covered = errors = 0
    for r in range(REPLICATES):
        x, n = _replicate((10, 100), 3, 0.9, 1.0, r)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fit = rma_glmm(x, n)
        except (ValueError, RuntimeError):
            errors += 1
            continue
        covered += fit.bt_ci_lb <= 0.9 <= fit.bt_ci_ub
    assert (int(row["covered"]), int(row["errors"])) == (covered, errors)
