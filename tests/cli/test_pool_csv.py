"""`metaanalysis pool-csv` on CSVs written from the reference cases, compared with metafor 3.8-1
(/work/shared/reference/metafor_reference.json: `fits`, `glmm`, `mh`, `subgroups`).

The console command itself runs in a subprocess for one fit of every kind and for every kind
of bad input; the whole `fits` grid goes through the same entry point, `metaanalysis.cli.main`,
in-process (a subprocess per fit would take minutes).
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys

import pytest
from reference import reference_dir  # noqa: E402  (tests/reference.py: shared/ beside the clone)

from metaanalysis import cli

REFERENCE = reference_dir() / "metafor_reference.json"
CASES = {c["name"]: c for c in json.loads(REFERENCE.read_text())}
REL_TOL = 1e-6
GLMM_REL_TOL = 1e-4  # lme4's Nelder-Mead stops at a tolerance (see test_glmm.py)
ABS_TOL = 1e-9  # for reference values that are exactly 0
CONSOLE = [sys.executable, "-m", "metaanalysis.cli"]
LAYOUT = {
    "prop": ["study", "events", "n"],
    "2x2": ["study", "ai", "n1i", "ci", "n2i"],
    "generic": ["study", "yi", "vi"],
}
# pool-csv has no --transform option, so GEN log hazard ratios are not exponentiated.
GEN_UNCHECKED = {"bt_pred", "bt_ci_lb", "bt_ci_ub", "bt_pi_lb", "bt_pi_ub"}


def _transform_args(name: str, measure: str) -> list[str]:
    """metafor_reference.R back-transforms a generic case with exp when the case says log_scale."""
    return ["--transform", "exp"] if measure == "GEN" and _case_is_log_scale(name) else []


def _case_is_log_scale(name: str) -> bool:
    cases = json.loads((reference_dir() / "cases.json").read_text())
    return any(c["name"] == name and c.get("log_scale") for c in cases)


def _unchecked(name: str, measure: str) -> set:
    return GEN_UNCHECKED if measure == "GEN" and not _case_is_log_scale(name) else set()


FIT_GRID = [(name, key) for name, c in CASES.items() for key, fit in c["fits"].items() if "error" not in fit]


@pytest.fixture(scope="module")
def csv_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("reference_csv")
    for name, c in CASES.items():
        cols = LAYOUT[c["kind"]] + (["group"] if "group" in c["data"] else [])
        with (d / f"{name}.csv").open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(cols)
            for i in range(len(c["data"]["study"])):
                w.writerow([c["data"][col][i] for col in cols])
    return d


def _in_process(capsys, argv) -> dict:
    assert cli.main(["pool-csv", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _console(argv) -> subprocess.CompletedProcess:
    return subprocess.run(CONSOLE + ["pool-csv", *argv], capture_output=True, text=True, timeout=120)


def _compare(got: dict, expected: dict, rel: float, skip=()) -> None:
    for field, value in expected.items():
        if field in skip or field in ("settings",):
            continue
        if value is None:
            assert got[field] is None, field
        else:
            assert got[field] == pytest.approx(value, rel=rel, abs=ABS_TOL), field


@pytest.mark.parametrize("name,key", FIT_GRID)
def test_every_reference_fit(capsys, csv_dir, name, key):
    measure, method, test = key.split("|")
    got = _in_process(
        capsys,
        [
            str(csv_dir / f"{name}.csv"),
            "--measure",
            measure,
            "--method",
            method,
            "--ci",
            test,
            *_transform_args(name, measure),
        ],
    )
    _compare(got, CASES[name]["fits"][key], REL_TOL, skip=_unchecked(name, measure))


def test_fit_grid_covers_every_reference_fit():
    all_fits = {(n, k) for n, c in CASES.items() for k in c["fits"]}
    errors = {(n, k) for n, c in CASES.items() for k, f in c["fits"].items() if "error" in f}
    assert all_fits - errors == set(FIT_GRID)
    assert len(FIT_GRID) > 150


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if "glmm" in c])
def test_console_glmm(csv_dir, name):
    proc = _console([str(csv_dir / f"{name}.csv"), "--measure", "PLO", "--method", "GLMM", "--json"])
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    ref = dict(CASES[name]["glmm"])
    ref["QE"] = ref.pop("QE_Wld")  # pool-csv reports the Wald test as QE, the LRT as QE_LRT
    _compare(got, ref, GLMM_REL_TOL)


@pytest.mark.parametrize("measure", ["OR", "RR"])
def test_console_mantel_haenszel(csv_dir, measure):
    proc = _console([str(csv_dir / "bcg.csv"), "--measure", measure, "--method", "MH", "--ci", "z", "--json"])
    assert proc.returncode == 0, proc.stderr
    _compare(json.loads(proc.stdout), CASES["bcg"]["mh"][measure], REL_TOL)


@pytest.mark.parametrize(
    "name,key",
    [
        ("pritz1997", "PFT|REML|knha"),
        ("bcg", "RD|DL|z"),
        ("riley2003_OS_logHR", "GEN|PM|knha"),
        ("two_studies", "PLO|SJ|z"),
    ],
)
def test_console_rma(csv_dir, name, key):
    measure, method, test = key.split("|")
    proc = _console(
        [
            str(csv_dir / f"{name}.csv"),
            "--measure",
            measure,
            "--method",
            method,
            "--ci",
            test,
            *_transform_args(name, measure),
            "--json",
        ]
    )
    assert proc.returncode == 0, proc.stderr
    _compare(json.loads(proc.stdout), CASES[name]["fits"][key], REL_TOL, skip=_unchecked(name, measure))


def test_transform_is_refused_for_measures_with_their_own(csv_dir):
    proc = _console([str(csv_dir / "pritz1997.csv"), "--measure", "PLO", "--transform", "exp", "--json"])
    assert proc.returncode == 2 and "--transform is for --measure GEN" in proc.stderr


def test_console_subgroups(csv_dir):
    name = "kearon1998_sensitivity_by_patients"
    proc = _console(
        [
            str(csv_dir / f"{name}.csv"),
            "--measure",
            "PLO",
            "--method",
            "REML",
            "--ci",
            "z",
            "--group",
            "group",
            "--json",
        ]
    )
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    ref = CASES[name]["subgroups"]
    assert list(got["subgroups"]) == list(ref["by_group"])
    for group, expected in ref["by_group"].items():
        _compare(got["subgroups"][group], expected, REL_TOL)
    assert got["Qbetween"] == pytest.approx(ref["Qbetween_separate_tau2"], rel=REL_TOL)
    assert got["Qbetween_p"] == pytest.approx(ref["Qbetween_p"], rel=REL_TOL)
    assert got["QM_common_tau2"] == pytest.approx(ref["QM_common_tau2"], rel=REL_TOL)
    assert got["QMp_common_tau2"] == pytest.approx(ref["QMp_common_tau2"], rel=REL_TOL)
    _compare(got, CASES[name]["fits"]["PLO|REML|z"], REL_TOL)  # the overall fit


def test_subgroups_with_glmm_in_process(capsys, csv_dir):
    got = _in_process(
        capsys,
        [
            str(csv_dir / "kearon1998_sensitivity_by_patients.csv"),
            "--measure",
            "PLO",
            "--method",
            "GLMM",
            "--group",
            "group",
        ],
    )
    assert set(got["subgroups"]) == {"symptomatic", "asymptomatic"}
    s, a = got["subgroups"]["symptomatic"], got["subgroups"]["asymptomatic"]
    assert got["Qbetween"] == pytest.approx((s["b"] - a["b"]) ** 2 / (s["se"] ** 2 + a["se"] ** 2), rel=1e-12)
    assert got["Qbetween_df"] == 1


BAD_INPUTS = [
    ("empty.csv", "", "PLO", r"empty file"),
    ("missing.csv", "study,events\nA,3\n", "PLO", r"line 1 \(header\): missing column 'n'"),
    (
        "over.csv",
        "study,events,n\nA,3,10\nB,12,10\n",
        "PLO",
        r"line 3 \(data row 2\), column 'events': 12 exceeds n = 10",
    ),
    (
        "text.csv",
        "study,yi,vi\nA,0.1,0.01\nB,abc,0.02\n",
        "GEN",
        r"line 3 \(data row 2\), column 'yi': 'abc' is not a number",
    ),
    (
        "blank.csv",
        "study,ai,n1i,ci,n2i\nA,1,10,2,10\n\nB,1,10,,10\n",
        "OR",
        r"line 4 \(data row 2\), column 'ci': empty",
    ),
    ("header_only.csv", "study,events,n\n", "PLO", r"no data rows"),
    ("vi.csv", "study,yi,vi\nA,0.1,0.01\nB,0.2,-0.02\n", "GEN", r"line 3 \(data row 2\), column 'vi'"),
    ("fraction.csv", "study,events,n\nA,2.5,10\n", "PR", r"line 2 \(data row 1\), column 'events'"),
]


@pytest.mark.parametrize("fname,content,measure,pattern", BAD_INPUTS)
def test_bad_input_one_line_exit_2(tmp_path, fname, content, measure, pattern):
    path = tmp_path / fname
    path.write_text(content)
    proc = _console([str(path), "--measure", measure, "--method", "REML", "--json"])
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert re.search(pattern, lines[0]), lines[0]


def test_method_measure_mismatch_is_exit_2(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("study,events,n\nA,3,10\nB,4,12\n")
    proc = _console([str(path), "--measure", "PFT", "--method", "GLMM"])
    assert proc.returncode == 2 and "PLO" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_model_that_cannot_be_fitted_is_exit_1(tmp_path):
    # 0/5 and 5/5: the GLMM likelihood has no finite maximum (tau^2 grows without bound)
    path = tmp_path / "sep.csv"
    path.write_text("study,events,n\nA,0,5\nB,5,5\n")
    proc = _console([str(path), "--measure", "PLO", "--method", "GLMM", "--ci", "z"])
    assert proc.returncode == 1 and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_glmm_group_with_one_study_is_kept_and_noted(capsys, tmp_path):
    path = tmp_path / "g.csv"
    path.write_text("study,events,n,arm\nA,3,10,x\nB,5,12,x\nC,4,9,y\n")
    got = _in_process(capsys, [str(path), "--measure", "PLO", "--method", "GLMM", "--group", "arm"])
    assert got["subgroups"]["y"]["k"] == 1 and got["Qbetween_df"] == 1
    assert any("one study" in n and "y" in n for n in got["subgroup_notes"])
