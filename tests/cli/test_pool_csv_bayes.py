"""`metaanalysis pool-csv --method BAYES` as a new user would run it: a two-study table.

The numbers are checked against the library call they must equal (itself tested against
Röver 2020 and a dense-grid route in test_bayes.py / test_bayes_binomial.py); here the subject
is the command: options, field names, errors.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from metaanalysis.engine.bayes import rma_bayes
from metaanalysis.engine.effects import escalc

CONSOLE = [sys.executable, "-m", "metaanalysis.cli", "pool-csv"]


def _run(tmp_path, text, *args):
    path = tmp_path / "t.csv"
    path.write_text(text)
    return subprocess.run(CONSOLE + [str(path), *args], capture_output=True, text=True, timeout=600)


def test_two_log_hazard_ratios(tmp_path):
    out = _run(
        tmp_path,
        "study,yi,vi\nA,-0.35,0.04\nB,-0.10,0.09\n",
        "--measure",
        "GEN",
        "--method",
        "BAYES",
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
        "tau_prior",
    ):
        assert (
            got[key] == pytest.approx(getattr(ref, key))
            if not isinstance(got[key], str)
            else got[key] == getattr(ref, key)
        )
    assert got["method"] == "BAYES" and got["tau_prior"] == "half-normal(0.5)"
    assert "zval" not in got and "I2" not in got
    assert any("--ci ignored" in n for n in got["notes"])


def test_two_proportions_default_prior_binomial_normal(tmp_path):
    out = _run(tmp_path, "study,events,n\nA,12,12\nB,7,20\n", "--measure", "PLO", "--method", "BAYES", "--json")
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["model"] == "binomial-normal" and got["tau_prior"] == "half-normal(1)"
    assert 0 < got["bt_ci_lb"] < got["bt_pred"] < got["bt_ci_ub"] < 1


def test_freeman_tukey_uses_normal_normal_with_its_scale(tmp_path):
    out = _run(tmp_path, "study,events,n\nA,3,15\nB,9,30\n", "--measure", "PFT", "--method", "BAYES", "--json")
    got = json.loads(out.stdout)
    assert got["model"] == "normal-normal" and got["tau_prior"] == "half-normal(0.25)"
    es = escalc("PFT", events=[3, 9], n=[15, 30])
    ref = rma_bayes(es.yi, es.vi, measure="PFT", n=[15, 30])
    assert got["bt_pred"] == pytest.approx(ref.bt_pred)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--measure", "GEN", "--method", "BAYES"], "needs --tau-prior"),
        (["--measure", "GEN", "--method", "BAYES", "--tau-prior", "halfcauchy:1"], "FAMILY:SCALE"),
        (["--measure", "GEN", "--method", "BAYES", "--tau-prior", "halfnormal:0"], "positive"),
        (["--measure", "GEN", "--method", "REML", "--tau-prior", "halfnormal:0.5"], "is for --method BAYES"),
    ],
)
def test_bad_prior_options_are_one_clear_line(tmp_path, args, message):
    out = _run(tmp_path, "study,yi,vi\nA,-0.35,0.04\nB,-0.10,0.09\n", *args)
    assert out.returncode == 2
    assert message in out.stderr and out.stderr.count("\n") == 1


def test_all_events_flat_prior_is_refused(tmp_path):
    out = _run(tmp_path, "study,events,n\nA,12,12\nB,8,8\n", "--measure", "PLO", "--method", "BAYES")
    assert out.returncode == 2 and "improper" in out.stderr
