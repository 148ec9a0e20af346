"""The Bayesian methods in the declared analyses: every pooled class with k <= 4 gets a Bayesian
row, and the plan's rule makes it primary there; the primary method is decided once per class."""

from __future__ import annotations

import pandas as pd
import pytest

from metaanalysis.review.analyses import AnalysisDeclarationError, BayesSettings, PrimaryRule, load_plan
from metaanalysis.review.pooling import pool_analysis


def _frame(counts):
    rows = []
    for cls, pairs in counts.items():
        for i, (x, n) in enumerate(pairs):
            rows.append(
                dict(
                    study=f"{cls}{i}",
                    arm="a",
                    population="after_car_t",
                    outcome="ORR",
                    regimen_class=cls,
                    events=x,
                    n=n,
                    derived=False,
                    role="treatment",
                    subgroup=None,
                    poolable=True,
                    not_poolable_reason=None,
                    unit_of_analysis="patients",
                    disease="LBCL",
                    overlaps=None,
                    year=2020 + i,
                    percent=None,
                    stratified_by=None,
                    assessment=None,
                    timepoint_days=None,
                    selection="after_failure",
                    derived_from=None,
                )
            )
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def analysis():
    plan = load_plan()
    a = next(a for a in plan.analyses if a.id == "orr_after_cart")
    assert {"BAYES-NN", "BAYES-BN"} <= set(a.methods) and a.bayes.max_k == 4 and a.bayes.tau_prior == "halfnormal:1.0"
    assert a.primary[0] == PrimaryRule("BAYES-NN", max_k=4, extreme_arm=True)
    assert a.primary[1] == PrimaryRule("BAYES-BN", max_k=4) and a.primary[-1] == PrimaryRule("GLMM")
    return a


def test_bayes_rows_beside_every_small_pooled_class(analysis):
    frame = _frame({"two": [(12, 12), (7, 20)], "five": [(3, 10), (4, 12), (6, 20), (2, 9), (8, 25)], "one": [(5, 10)]})
    rows = pool_analysis(frame, analysis).rows()
    bayes = [r for r in rows if r["method"] == "BAYES-NN"]
    assert {r["regimen_class"] for r in bayes} == {"two"}  # not for k = 5, not for a single study
    row = bayes[0]
    assert 0 < row["ci_lb"] < row["estimate"] < row["ci_ub"] < 1
    assert row["pi_lb"] <= row["ci_lb"] and row["tau"] > 0 and row["tau_ci_lb"] < row["tau"] < row["tau_ci_ub"]


def test_bayes_settings_are_checked(tmp_path):
    path = tmp_path / "a.yaml"
    path.write_text("defaults:\n  bayes: {tau_prior: 'halfnormal:0.5', maxk: 3}\nanalyses: []\n")
    with pytest.raises(AnalysisDeclarationError, match="defaults.bayes"):
        load_plan(path)


def test_primary_flag_follows_the_small_k_rule(analysis):
    from dataclasses import replace

    frame = _frame({"two": [(12, 12), (7, 20)], "five": [(3, 10), (4, 12), (6, 20), (2, 9), (8, 25)], "one": [(5, 9)]})
    result = pool_analysis(frame, analysis)
    primary = {(r["regimen_class"], r["method"]) for r in result.rows() if r["primary"]}
    assert primary == {("two", "BAYES-NN"), ("five", "GLMM"), ("one", "not pooled (k = 1)")}
    assert result.primary == {"two": "BAYES-NN", "five": "GLMM", "one": "not pooled (k = 1)"}
    # one primary row per class, and it is the fit the forest plot draws first
    assert sum(r["primary"] for r in result.rows() if r["regimen_class"] == "two") == 1
    assert result.primary_groups().groups["two"] is result.fits["two"]["BAYES-NN"].fit
    # a rule for classes with a 0 % or 100 % arm is read from the plan ("two" has 12/12)
    extreme = replace(
        analysis,
        methods=(*analysis.methods, "BAYES-BN"),
        primary=(PrimaryRule("BAYES-BN", max_k=4, extreme_arm=True), *analysis.primary),
    )
    assert pool_analysis(frame, extreme).primary["two"] == "BAYES-BN"
    off = replace(analysis, primary=(PrimaryRule("GLMM"),))
    assert pool_analysis(frame, off).primary["two"] == "GLMM"


def test_normal_normal_variant_pools_the_logits(analysis):
    from dataclasses import replace

    from metaanalysis.engine.bayes import rma_bayes
    from metaanalysis.engine.effects import escalc

    frame = _frame({"two": [(12, 12), (7, 20)]})
    nn = replace(analysis, bayes=BayesSettings(tau_prior="halfnormal:1.0"))
    row = next(r for r in pool_analysis(frame, nn).rows() if r["method"] == "BAYES-NN")
    es = escalc("PLO", events=[12, 7], n=[12, 20], add=None, to="only0")
    ref = rma_bayes(es.yi, es.vi, measure="PLO", tau_prior="halfnormal:1.0")
    assert row["estimate"] == pytest.approx(ref.bt_pred) and row["ci_ub"] == pytest.approx(ref.bt_ci_ub)
