"""Speed and agreement beside the peers: every case of issue 11's table, in one command.

    .venv/bin/python benchmarks/compare.py [--repeats 5] [--no-r] [--skip-run] [--quick] [--only TEXT ...]

For each case this library, PyMARE and statsmodels run in this process and R metafor in one
persistent `Rscript benchmarks/metafor_cases.R` process (skipped, with a note, when Rscript
or metafor is missing). Repeats are interleaved (ours, R, PyMARE, statsmodels, then again),
each tool's time is the median of its repeats, and the numbers each tool produced are
printed beside the times, so agreement is visible with speed. `metaanalysis run` is timed
as a subprocess, with and without notebooks. Every option of a peer is passed explicitly
(their defaults have changed between releases). Speed is never asserted in the tests.

The REML cases at k >= 1,000 time `rma(..., study_rows=False)`: the fit, its Q-profile CI, Q test
and prediction interval, without the per-study rows of the result, as PyMARE returns none; the
line after k = 100,000 times the default `rma()` with its 100,000 rows. `--only` keeps the cases
whose label contains one of the given texts (e.g. `--only "k = 100,000" "GLMM, k = 14"`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pymare import Dataset  # noqa: E402
from pymare.estimators import DerSimonianLaird, VarianceBasedLikelihoodEstimator  # noqa: E402
from statsmodels.stats.meta_analysis import combine_effects  # noqa: E402

from metaanalysis import gosh, leave1out, permutest, rma, rma_glmm  # noqa: E402

PYMARE, STATSMODELS, OURS, METAFOR = "PyMARE 0.0.13", "statsmodels 0.15", "metaanalysis", "R metafor"
TOOLS = (OURS, METAFOR, PYMARE, STATSMODELS)


def datasets(seed: int = 2026) -> dict:
    rng = np.random.default_rng(seed)
    iv = {}
    for k in (14, 16, 200, 1000, 10_000, 100_000):
        vi = rng.uniform(0.02, 0.5, k)
        iv[k] = dict(yi=rng.normal(0.3, np.sqrt(vi + 0.3)), vi=vi)  # true tau^2 = 0.3
    pritz = dict(
        events=[16, 10, 4, 43, 10, 25, 13, 12, 22, 4, 5, 18, 58, 6],
        n=[17, 12, 8, 58, 10, 42, 14, 12, 41, 5, 6, 23, 68, 10],
    )  # Pritz (1997), metafor's dat.pritz1997
    n50 = rng.integers(10, 120, 50)
    glmm = {
        2: dict(events=[8, 2], n=[27, 34]),
        14: pritz,
        50: dict(events=rng.binomial(n50, 1 / (1 + np.exp(-rng.normal(-0.5, 0.8, 50)))).tolist(), n=n50.tolist()),
    }
    return dict(iv=iv, glmm=glmm)


def _pymare_reml(y, v, correction):
    est = VarianceBasedLikelihoodEstimator(
        method="REML",
        weight_scheme="individual",
        rho=None,
        small_sample_correction=correction,
        xtol=1e-6,
        ftol=1e-12,
        maxiter=50,
    )
    return est.fit_dataset(Dataset(y=y, v=v, add_intercept=True))


def cases(d: dict) -> list[dict]:
    iv, gl = d["iv"], d["glmm"]

    def ours_reml(k, test="z", rows=True):
        def f():
            r = rma(iv[k]["yi"], iv[k]["vi"], method="REML", test=test, study_rows=rows)
            return dict(b=r.b, se=r.se, tau2=r.tau2, tau2_ci_lb=r.tau2_ci_lb, pi_lb=r.pi_lb)

        return f

    def pymare_reml(k, correction="wald"):
        def f():
            s = _pymare_reml(iv[k]["yi"], iv[k]["vi"], correction).summary()
            fe = s.get_fe_stats()
            return dict(
                b=float(np.ravel(fe["est"])[0]), se=float(np.ravel(fe["se"])[0]), tau2=float(np.ravel(s.tau2)[0])
            )

        return f

    def ours_glmm(k):
        return lambda: (lambda r: dict(b=r.b, se=r.se, tau2=r.tau2))(rma_glmm(gl[k]["events"], gl[k]["n"]))

    def pymare_loo():
        y, v = iv[200]["yi"], iv[200]["vi"]
        fits = [_pymare_reml(np.delete(y, i), np.delete(v, i), "wald") for i in range(len(y))]
        return dict(
            first_estimate=float(np.ravel(fits[0].params_["fe_params"])[0]),
            max_tau2=max(float(np.ravel(f.params_["tau2"])[0]) for f in fits),
        )

    def ours_simple(method):
        return lambda: (lambda r: dict(b=r.b, se=r.se, tau2=r.tau2))(
            rma(iv[14]["yi"], iv[14]["vi"], method=method, test="z")
        )

    def sm(method_re):
        def f():
            r = combine_effects(iv[14]["yi"], iv[14]["vi"], method_re=method_re, use_t=False, alpha=0.05)
            return dict(b=float(r.mean_effect_re), se=float(r.sd_eff_w_re), tau2=max(0.0, float(r.tau2)))

        return f

    def pymare_dl():
        est = DerSimonianLaird(weight_scheme="individual", rho=None, small_sample_correction="wald")
        s = est.fit_dataset(Dataset(y=iv[14]["yi"], v=iv[14]["vi"], add_intercept=True)).summary()
        fe = s.get_fe_stats()
        return dict(b=float(np.ravel(fe["est"])[0]), se=float(np.ravel(fe["se"])[0]), tau2=float(np.ravel(s.tau2)[0]))

    def pymare_perm():
        res = _pymare_reml(iv[14]["yi"], iv[14]["vi"], "wald").summary()
        np.random.seed(1)  # noqa: NPY002 - PyMARE draws from numpy's global generator
        p = res.permutation_test(n_perm=1000)
        return dict(pval=float(np.ravel(p.perm_p["fe_p"])[0]))

    def ours_gosh():
        g = gosh(iv[16]["yi"], iv[16]["vi"], method="REML")
        return dict(subsets=len(g.res), mean_estimate=float(g.res["estimate"].mean()))

    return [
        dict(
            label="REML + Knapp-Hartung fit (with Q-profile CI and PI), k = 14",
            r="reml_knha_14",
            tools={OURS: ours_reml(14, "knha"), PYMARE: pymare_reml(14, "knapp-hartung")},
        ),
        dict(
            label="DerSimonian-Laird, k = 14",
            r="dl_14",
            tools={OURS: ours_simple("DL"), PYMARE: pymare_dl, STATSMODELS: sm("chi2")},
        ),
        dict(label="Paule-Mandel, k = 14", r="pm_14", tools={OURS: ours_simple("PM"), STATSMODELS: sm("iterated")}),
        *[dict(label=f"binomial-normal GLMM, k = {k}", r=f"glmm_{k}", tools={OURS: ours_glmm(k)}) for k in (2, 14, 50)],
        dict(
            label="REML (with Q-profile CI), k = 1,000",
            r="reml_1000",
            tools={OURS: ours_reml(1000, rows=False), PYMARE: pymare_reml(1000)},
        ),
        dict(
            label="REML (with Q-profile CI), k = 10,000",
            r=None,
            slow=True,
            r_note="metafor builds k x k matrices (killed after 60 s in issue 11)",
            tools={OURS: ours_reml(10_000, rows=False), PYMARE: pymare_reml(10_000)},
        ),
        dict(
            label="REML (with Q-profile CI), k = 100,000",
            r=None,
            slow=True,
            r_note="metafor asks for a 74.5 GiB k x k matrix",
            tools={OURS: ours_reml(100_000, rows=False), PYMARE: pymare_reml(100_000)},
        ),
        dict(
            label="the same with the result's 100,000 study rows (`rma()` default)",
            r=None,
            slow=True,
            tools={OURS: ours_reml(100_000)},
        ),
        dict(
            label="leave-one-out (REML), k = 200",
            r="leave1out_200",
            slow=True,
            tools={
                OURS: lambda: (lambda f: dict(first_estimate=float(f["estimate"][0]), max_tau2=float(f["tau2"].max())))(
                    leave1out(iv[200]["yi"], iv[200]["vi"], method="REML", test="z")
                ),
                PYMARE: pymare_loo,
            },
        ),
        dict(
            label="permutation test, 1,000 random sign flips (REML), k = 14",
            r="permutest_14",
            slow=True,
            tools={
                OURS: lambda: dict(
                    pval=permutest(iv[14]["yi"], iv[14]["vi"], method="REML", test="z", iter=1000, seed=1).pval[0]
                ),
                PYMARE: pymare_perm,
            },
        ),
        dict(
            label="GOSH (REML), k = 16: all 65,535 subsets here, 2,000 random ones in R",
            r="gosh_16",
            slow=True,
            tools={OURS: ours_gosh},
        ),
    ]


class RSession:
    """One `Rscript metafor_cases.R` process answering one case per line."""

    def __init__(self, data_path: Path):
        self.proc = subprocess.Popen(
            ["Rscript", str(ROOT / "benchmarks" / "metafor_cases.R"), str(data_path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError("Rscript with metafor did not start")

    def run(self, case: str) -> tuple[float, dict]:
        self.proc.stdin.write(case + "\n")
        self.proc.stdin.flush()
        out = json.loads(self.proc.stdout.readline())
        if "error" in out:
            raise RuntimeError(out["error"])
        return float(out["seconds"]), out["numbers"]

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def start_r(d: dict, tmp: Path) -> tuple[RSession | None, str]:
    if shutil.which("Rscript") is None:
        return None, "R metafor skipped: Rscript not found (apt-get install r-cran-metafor r-cran-jsonlite)"
    path = tmp / "data.json"
    plain = dict(
        iv={str(k): {f: np.asarray(v).tolist() for f, v in x.items()} for k, x in d["iv"].items() if k <= 1000},
        glmm={str(k): v for k, v in d["glmm"].items()},
    )
    path.write_text(json.dumps(plain))
    try:
        session = RSession(path)
    except (RuntimeError, OSError) as exc:
        return None, f"R metafor skipped: {exc}"
    version = subprocess.run(
        ["Rscript", "-e", "cat(as.character(packageVersion('metafor')))"], capture_output=True, text=True
    ).stdout.strip()
    return session, f"R metafor {version} (Rscript, one persistent process)"


def peak_memory_note(iv: dict) -> str:
    """Peak memory one REML fit with its Q-profile CI allocates (tracemalloc, which numpy reports
    to), at k = 10,000 and 100,000, without and with the study rows: linear in k if the ratio is 10."""
    peaks = {}
    for k in (10_000, 100_000):
        for rows in (False, True):
            tracemalloc.start()
            rma(iv[k]["yi"], iv[k]["vi"], method="REML", test="z", study_rows=rows)
            peaks[(k, rows)] = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
    return (
        f"peak memory of one REML fit with Q-profile CI at k = 100,000: {peaks[(100_000, False)]:.1f} MiB "
        f"({peaks[(100_000, False)] / peaks[(10_000, False)]:.1f}x that at k = 10,000; input 1.5 MiB), "
        f"{peaks[(100_000, True)]:.1f} MiB with the study rows "
        f"({peaks[(100_000, True)] / peaks[(10_000, True)]:.1f}x); "
        "tracemalloc"
    )


def fmt_time(s: float | None) -> str:
    if s is None:
        return "-"
    return f"{s * 1e3:.1f} ms" if s < 1 else f"{s:.2f} s"


def fmt_numbers(nums: dict) -> str:
    return ", ".join(f"{k} {v:.6g}" if isinstance(v, float) else f"{k} {v}" for k, v in nums.items())


def time_run(repeats: int) -> list[tuple[str, float | None, str]]:
    exe = ROOT / ".venv" / "bin" / "metaanalysis"
    rows = []
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONHASHSEED="0")
    for label, extra in (
        ("`metaanalysis run` without notebooks", ["--skip-notebooks"]),
        ("`metaanalysis run` with notebooks", []),
    ):
        times = []
        with tempfile.TemporaryDirectory() as out:
            for _ in range(repeats):
                t = time.perf_counter()
                done = subprocess.run(
                    [str(exe), "run", "--out", out, *extra], cwd=ROOT, env=env, capture_output=True, text=True
                )
                times.append(time.perf_counter() - t)
                if done.returncode != 0:
                    rows.append((label, None, "failed: " + done.stderr.strip().splitlines()[-1]))
                    break
            else:
                rows.append((label, statistics.median(times), f"median of {repeats}"))
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5, help="repeats of fast cases (slow ones: 3)")
    ap.add_argument("--quick", action="store_true", help="one repeat of everything")
    ap.add_argument("--no-r", action="store_true", help="do not start R")
    ap.add_argument("--skip-run", action="store_true", help="do not time `metaanalysis run`")
    ap.add_argument("--run-repeats", type=int, default=3)
    ap.add_argument("--only", nargs="+", metavar="TEXT", help="only the cases whose label contains a TEXT")
    args = ap.parse_args()
    d = datasets()
    notes = [
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"numpy {np.__version__}; load average at start {os.getloadavg()[0]:.1f}"
    ]
    with tempfile.TemporaryDirectory() as tmp:
        session, note = (None, "R metafor skipped (--no-r)") if args.no_r else start_r(d, Path(tmp))
        notes.append(note)
        results = []
        for case in cases(d):
            if args.only and not any(t in case["label"] for t in args.only):
                continue
            reps = 1 if args.quick else (3 if case.get("slow") else args.repeats)
            times = {t: [] for t in TOOLS}
            numbers = {}
            for _ in range(reps):  # interleaved: each repeat runs every tool once
                for tool in TOOLS:
                    if tool == METAFOR:
                        if session is None or case["r"] is None:
                            continue
                        sec, nums = session.run(case["r"])
                    elif tool in case["tools"]:
                        start = time.perf_counter()
                        nums = case["tools"][tool]()
                        sec = time.perf_counter() - start
                    else:
                        continue
                    times[tool].append(sec)
                    numbers[tool] = nums
            med = {t: statistics.median(v) if v else None for t, v in times.items()}
            results.append((case, med, numbers))
            print(
                f"... {case['label']}: " + ", ".join(f"{t} {fmt_time(s)}" for t, s in med.items() if s), file=sys.stderr
            )
        if session is not None:
            session.close()
    notes.append(peak_memory_note(d["iv"]))

    print("\n| work | " + " | ".join(TOOLS) + " |")
    print("| --- " * (len(TOOLS) + 1) + "|")
    for case, med, _ in results:
        ours = med[OURS]
        cells = []
        for t in TOOLS:
            if med[t] is None:
                cells.append("-" if not (t == METAFOR and case.get("r_note")) else "skipped")
            elif t == OURS:
                cells.append(fmt_time(med[t]))
            else:
                cells.append(f"{fmt_time(med[t])} ({med[t] / ours:.1f}x)")
        print(f"| {case['label']} | " + " | ".join(cells) + " |")
    if not args.skip_run:
        for label, sec, how in time_run(args.run_repeats):
            print(f"| {label} ({how}) | {fmt_time(sec)} | - | - | - |")
    print("\n(x): time relative to metaanalysis; medians of interleaved repeats.\n")
    print("| work | tool | numbers |\n| --- | --- | --- |")
    for case, _, numbers in results:
        for tool in TOOLS:
            if tool in numbers:
                print(f"| {case['label']} | {tool} | {fmt_numbers(numbers[tool])} |")
        if case.get("r_note"):
            print(f"| {case['label']} | {METAFOR} | skipped: {case['r_note']} |")
    print()
    for n in notes:
        print(f"- {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
