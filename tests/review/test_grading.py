"""Gathering the GRADE inputs: the primary median of a group (decided once) and indirectness."""

from __future__ import annotations

import math

from metaanalysis.review.grading import indirect_reasons
from metaanalysis.review.survival import _mark_primary


def _rows(*methods_estimates, single=None):
    rows = [dict(kind="pooled", method=m, estimate=e) for m, e in methods_estimates]
    if single is not None:
        rows.append(dict(kind="single study", method="not pooled (k = 1)", estimate=single))
    rows.append(dict(kind="study", method="MM;WM", estimate=None))
    return rows


def _chosen(rows):
    marked = _mark_primary(rows)
    assert sum(r["primary"] for r in marked) <= 1
    return next((r["method"] for r in marked if r["primary"]), None)


def test_weighted_before_unweighted_before_inverse_variance():
    assert _chosen(_rows(("MM", 5.0), ("WM", 5.5), ("IV (REML)", 6.0))) == "WM"
    assert _chosen(_rows(("IV (REML)", 6.0), ("MM", 5.0))) == "MM"
    assert _chosen(_rows(("IV (REML)", 6.0))) == "IV (REML)"


def test_a_pool_without_an_estimate_is_passed_over_and_one_cohort_stands_alone():
    assert _chosen(_rows(("WM", math.nan), ("MM", 5.0))) == "MM"
    assert _chosen(_rows(single=4.0)) == "not pooled (k = 1)"
    assert _chosen(_rows()) is None


def test_indirect_reasons_name_each_kind_of_indirectness():
    assert indirect_reasons({"selection": "after_failure", "disease": "LBCL"}) == ()
    reasons = indirect_reasons(
        {"selection": "prior_exposure", "disease": "B-NHL", "unit_of_analysis": "treatment_courses"}
    )
    assert len(reasons) == 3 and "prior exposure" in reasons[0] and "mixed" in reasons[1]
