"""`metaanalysis pool-csv --method BAYES-NN | BAYES-BN` as a new user would run it, and pool-csv
against the method registry (`engine/methods.py`) that the review pools with.

The numbers are checked against the library calls they must equal (themselves tested against
Röver 2020 and a dense-grid route in test_bayes.py / test_bayes_binomial.py, and against metafor in
test_pool_csv.py); here the subject is the command: the names, options, field names, errors, and
that a table pooled on the command line gives the review's numbers to 1e-12.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from metaanalysis import cli
from metaanalysis.engine import estimators, methods
from metaanalysis.engine.bayes import rma_bayes
from metaanalysis.engine.effects import escalc
from metaanalysis.engine.methods import BAYES_BN, BAYES_NN, GLMM, IVSettings, fit_proportion

CONSOLE = [sys.executable, "-m", "metaanalysis.cli", "pool-csv"]
# A small salvage cohort table: one arm at 0 % and one at 100 %, so that the continuity
# correction of the logit (0.5 added to those arms only) is exercised.
EVENTS, N = [0, 7, 12, 5, 9], [11, 20, 12, 17, 31]
STUDIES = ["A", "B", "C", "D", "E"]
TABLE = "study,events,n\n" + "".join(f"{s},{e},{n}\n" for s, e, n in zip(STUDIES, EVENTS, N, strict=True))


def _run(tmp_path, text, *args):
    path = tmp_path / "t.csv"
    path.write_text(text)
    return subprocess.run(CONSOLE + [str(path), *args], capture_output=True, text=True, timeout=600)


def _in_process(capsys, tmp_path, text, *args) -> dict:
    path = tmp_path / "t.csv"
    path.write_text(text)
    assert cli.main(["pool-csv", str(path), *args]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_two_log_hazard_ratios(tmp_path):
    out = _run(
        tmp_path,
        "study,yi,vi\nA,-0.35,0.04\nB,-0.10,0.09\n",
        "--measure",
        "GEN",
        "--method",
        BAYES_NN,
        "--tau-prior",
        "halfnormal:0.5",
        "--transform",
        "exp",
        "--json",
    )
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    ref = rma_bayes([-0.35, -0.10], [0.04, 0.09], measure="GEN", tau_prior="halfnormal:0.5", transform="exp")
    for key in (
        "k",
        "b",
        "se",
        "ci_lb",
        "ci_ub",
        "pi_lb",
        "pi_ub",
        "tau2",
        "bt_pred",
        "bt_ci_lb",
        "bt_ci_ub",
        "tau",
        "ci_shortest_lb",
    ):
        assert got[key] == pytest.approx(getattr(ref, key), rel=1e-12), key
    assert got["method"] == "BAYES-NN" and got["model"] == "normal-normal" and got["tau_prior"] == "half-normal(0.5)"
    assert "zval" not in got and "I2" not in got
    assert any("--ci ignored" in n for n in got["notes"])


def test_two_proportions_default_prior_binomial_normal(tmp_path):
    out = _run(tmp_path, "study,events,n\nA,12,12\nB,7,20\n", "--measure", "PLO", "--method", BAYES_BN, "--json")
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["method"] == "BAYES-BN" and got["model"] == "binomial-normal" and got["tau_prior"] == "half-normal(1)"
    assert 0 < got["bt_ci_lb"] < got["bt_pred"] < got["bt_ci_ub"] < 1


def test_freeman_tukey_uses_normal_normal_with_its_scale(tmp_path):
    out = _run(tmp_path, "study,events,n\nA,3,15\nB,9,30\n", "--measure", "PFT", "--method", BAYES_NN, "--json")
    got = json.loads(out.stdout)
    assert got["model"] == "normal-normal" and got["tau_prior"] == "half-normal(0.25)"
    es = escalc("PFT", events=[3, 9], n=[15, 30])
    ref = rma_bayes(es.yi, es.vi, measure="PFT", n=[15, 30])
    assert got["bt_pred"] == pytest.approx(ref.bt_pred, rel=1e-12)


# -- the review's numbers, on the command line ------------------------------------------------------
def _fields(fit) -> dict:
    lb, ub = fit.interval()
    pi_lb, pi_ub = fit.prediction()
    return {"estimate": fit.estimate, "ci_lb": lb, "ci_ub": ub, "pi_lb": pi_lb, "pi_ub": pi_ub}


def _as_printed(got: dict) -> dict:
    return {
        "estimate": got["bt_pred"],
        "ci_lb": got["bt_ci_lb"],
        "ci_ub": got["bt_ci_ub"],
        "pi_lb": got["bt_pi_lb"],
        "pi_ub": got["bt_pi_ub"],
    }


@pytest.mark.parametrize(
    "registry_name, argv",
    [
        (BAYES_NN, ["--measure", "PLO", "--method", BAYES_NN, "--tau-prior", "halfnormal:1.0"]),
        (GLMM, ["--measure", "PLO", "--method", GLMM]),
        ("PLO", ["--measure", "PLO", "--method", "REML", "--ci", "knha"]),
        ("PFT", ["--measure", "PFT", "--method", "REML", "--ci", "knha"]),
    ],
)
def test_pool_csv_reproduces_the_registry_fit(capsys, tmp_path, registry_name, argv):
    ref = fit_proportion(
        registry_name,
        EVENTS,
        N,
        studies=STUDIES,
        level=0.95,
        iv=IVSettings(method="REML", test="knha"),
        tau_prior="halfnormal:1.0",
    )
    got = _in_process(capsys, tmp_path, TABLE, *argv)
    expected = _fields(ref)
    assert all(v is not None for v in expected.values()), expected
    for key, value in _as_printed(got).items():
        assert value == pytest.approx(expected[key], rel=1e-12, abs=1e-15), key


def test_bayes_nn_on_proportions_is_the_logit_with_half_added_to_empty_and_full_arms_only(capsys, tmp_path):
    got = _in_process(capsys, tmp_path, TABLE, "--measure", "PLO", "--method", BAYES_NN)
    # escalc by hand: log((x + c) / (n - x + c)), c = 0.5 only where x = 0 or x = n
    yi, vi = [], []
    for x, n in zip(EVENTS, N, strict=True):
        c = 0.5 if x in (0, n) else 0.0
        yi.append(math.log((x + c) / (n - x + c)))
        vi.append(1 / (x + c) + 1 / (n - x + c))
    ref = rma_bayes(yi, vi, measure="PLO", tau_prior="halfnormal:1.0")
    assert got["b"] == pytest.approx(ref.b, rel=1e-12) and got["ci_ub"] == pytest.approx(ref.ci_ub, rel=1e-12)


# -- the names --------------------------------------------------------------------------------------
def test_the_methods_accepted_are_the_registries():
    from metaanalysis.cli.pool_csv import method_names

    models = {name for name, m in methods.METHODS.items() if m.measure is None and name != methods.SINGLE}
    assert set(method_names()) == set(estimators.ESTIMATORS) | models
    assert {BAYES_NN, BAYES_BN, GLMM, methods.MH} <= set(method_names()) and "BAYES" not in method_names()


def test_help_lists_the_registry_names(capsys):
    with pytest.raises(SystemExit):
        cli.main(["pool-csv", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    from metaanalysis.cli.pool_csv import method_names

    assert ", ".join(method_names()) in text


def test_bare_bayes_names_both_models(tmp_path):
    out = _run(tmp_path, TABLE, "--measure", "PLO", "--method", "BAYES")
    assert out.returncode == 2 and out.stdout == "" and out.stderr.count("\n") == 1
    assert "BAYES-NN" in out.stderr and "BAYES-BN" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--measure", "GEN", "--method", BAYES_NN], "needs --tau-prior"),
        (["--measure", "GEN", "--method", BAYES_NN, "--tau-prior", "halfcauchy:1"], "FAMILY:SCALE"),
        (["--measure", "GEN", "--method", BAYES_NN, "--tau-prior", "halfnormal:0"], "positive"),
        (["--measure", "GEN", "--method", BAYES_NN, "--tau-prior", "halfnormal:1e200"], "between 1e-10 and 1e+10"),
        (["--measure", "GEN", "--method", "REML", "--tau-prior", "halfnormal:0.5"], "is for --method BAYES-NN"),
        (["--measure", "GEN", "--method", BAYES_BN], "--measure PLO"),
        (["--measure", "PFT", "--method", BAYES_BN], "--measure PLO"),
    ],
)
def test_bad_prior_options_are_one_clear_line(tmp_path, args, message):
    out = _run(tmp_path, "study,yi,vi\nA,-0.35,0.04\nB,-0.10,0.09\n", *args)
    assert out.returncode == 2
    assert message in out.stderr and out.stderr.count("\n") == 1


def test_all_events_flat_prior_is_refused(tmp_path):
    out = _run(tmp_path, "study,events,n\nA,12,12\nB,8,8\n", "--measure", "PLO", "--method", BAYES_BN)
    assert out.returncode == 2 and "improper" in out.stderr


def test_binomial_normal_beyond_its_size_is_refused_not_killed(capsys, tmp_path):
    from metaanalysis.cli.pool_csv import MAX_BN_STUDIES

    rows = "".join(f"s{i},{i % 7},{10 + i % 5}\n" for i in range(MAX_BN_STUDIES + 1))
    path = tmp_path / "t.csv"
    path.write_text("study,events,n\n" + rows)
    assert cli.main(["pool-csv", str(path), "--measure", "PLO", "--method", BAYES_BN]) == 2
    err = capsys.readouterr().err
    assert f"up to {MAX_BN_STUDIES} studies" in err and BAYES_NN in err and err.count("\n") == 1
