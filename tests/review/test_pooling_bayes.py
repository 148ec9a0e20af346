"""Method BAYES in the declared analyses: every pooled class with k < 5 gets a Bayesian row."""

from __future__ import annotations

import pandas as pd
import pytest

from metaanalysis.review.analyses import AnalysisDeclarationError, load_plan
from metaanalysis.review.pooling import pool, pooled_rows


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
                )
            )
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def analysis():
    plan = load_plan()
    a = next(a for a in plan.analyses if a.id == "orr_after_cart")
    assert "BAYES" in a.methods and a.bayes.max_k == 4 and a.bayes.tau_prior == "halfnormal:1.0"
    assert a.bayes.primary and a.bayes.model == "normal-normal"
    return a


def test_bayes_rows_beside_every_small_pooled_class(analysis):
    frame = _frame({"two": [(12, 12), (7, 20)], "five": [(3, 10), (4, 12), (6, 20), (2, 9), (8, 25)], "one": [(5, 10)]})
    primary = pooled_rows(pool(frame, analysis, analysis.primary_method))
    bayes = pooled_rows(pool(frame, analysis, "BAYES"))
    small = {r["regimen_class"] for r in primary if r["k"] in range(2, 5)}
    assert small == {"two"}
    assert {r["regimen_class"] for r in bayes} == small  # not for k = 5, not for a single study
    row = bayes[0]
    assert row["method"] == "BAYES" and 0 < row["ci_lb"] < row["estimate"] < row["ci_ub"] < 1
    assert row["pi_lb"] <= row["ci_lb"] and row["Qbetween"] is None


def test_bayes_settings_are_checked(tmp_path):
    path = tmp_path / "a.yaml"
    path.write_text("defaults:\n  bayes: {tau_prior: 'halfnormal:0.5', maxk: 3}\nanalyses: []\n")
    with pytest.raises(AnalysisDeclarationError, match="defaults.bayes"):
        load_plan(path)


def test_primary_flag_follows_the_small_k_rule(analysis):
    from dataclasses import replace

    from metaanalysis.review.analyses import BayesSettings

    frame = _frame({"two": [(12, 12), (7, 20)], "five": [(3, 10), (4, 12), (6, 20), (2, 9), (8, 25)]})
    small_k = replace(analysis, bayes=BayesSettings(tau_prior="halfnormal:1.0", max_k=4, primary=True))
    rows = [r for m in small_k.methods for r in pooled_rows(pool(frame, small_k, m))]
    primary = {(r["regimen_class"], r["method"]) for r in rows if r["primary"]}
    assert primary == {("two", "BAYES"), ("five", small_k.primary_method)}
    assert small_k.primary_for(2) == "BAYES" and small_k.primary_for(5) == small_k.primary_method
    off = replace(analysis, bayes=BayesSettings(primary=False))
    assert off.primary_for(2) == off.primary_method


def test_normal_normal_variant_pools_the_logits(analysis):
    from dataclasses import replace

    from metaanalysis.engine.bayes import rma_bayes
    from metaanalysis.engine.effects import escalc
    from metaanalysis.review.analyses import BayesSettings

    frame = _frame({"two": [(12, 12), (7, 20)]})
    nn = replace(analysis, bayes=BayesSettings(tau_prior="halfnormal:1.0", model="normal-normal"))
    row = pooled_rows(pool(frame, nn, "BAYES"))[0]
    es = escalc("PLO", events=[12, 7], n=[12, 20], add=None, to="only0")
    ref = rma_bayes(es.yi, es.vi, measure="PLO", tau_prior="halfnormal:1.0")
    assert row["estimate"] == pytest.approx(ref.bt_pred) and row["ci_ub"] == pytest.approx(ref.bt_ci_ub)
