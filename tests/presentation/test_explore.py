"""The explore notebook's views: the stored analysis when nothing is changed, and otherwise a fit
of the run's own study rows under the chosen settings.

Expected numbers: the DerSimonian-Laird estimate is computed here by hand from the counts (logit,
1/2 added only to a 0 %/100 % arm, as metafor's escalc); the Bayesian fits come from the engine
called directly with the chosen prior."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pytest
from helpers import arm, outcome, record

from metaanalysis.engine.methods import IVSettings, fit_proportion
from metaanalysis.presentation.explore import Choice, explore, explored, options
from metaanalysis.review.analyses import load_plan
from metaanalysis.review.compute import compute_review

COUNTS = {  # study -> (class, events, n)
    "s1": ("bispecific_antibody", 33, 61),
    "s2": ("bispecific_antibody", 40, 92),
    "s3": ("bispecific_antibody", 29, 60),
    "s4": ("lenalidomide_based", 7, 52),
    "p1": ("checkpoint_inhibitor", 3, 10),
    "p2": ("checkpoint_inhibitor", 4, 12),
    "p3": ("checkpoint_inhibitor", 6, 20),
    "p4": ("checkpoint_inhibitor", 2, 9),
    "p5": ("checkpoint_inhibitor", 8, 25),
    "p6": ("checkpoint_inhibitor", 0, 11),
}


@pytest.fixture(scope="module")
def review():
    records = [record(s, arm("x", cls, orr=outcome(e, n))) for s, (cls, e, n) in COUNTS.items()]
    plan = load_plan()
    plan = replace(
        plan,
        analyses=tuple(a for a in plan.analyses if a.id == "orr_after_cart"),
        landmarks=(),
        comparisons=(),
        medians=(),
        hazard_ratios=(),
    )
    return compute_review(records, plan)


def _counts(cls):
    rows = [(e, n) for c, e, n in COUNTS.values() if c == cls]
    return np.array([r[0] for r in rows], float), np.array([r[1] for r in rows], float)


def test_nothing_changed_is_the_stored_analysis_itself(review):
    result, refitted = explored(review, Choice("orr_after_cart"))
    assert result is review.analysis("orr_after_cart")
    assert refitted == ()
    view = explore(review, Choice("orr_after_cart"))
    assert view.notes == ()
    assert view.figure is not None


def test_the_stored_tau2_estimator_is_not_a_change(review):
    stored = review.plan.analyses[0].inverse_variance.method
    result, refitted = explored(review, Choice("orr_after_cart", method="PLO", tau2=stored))
    assert refitted == ()  # PLO was fitted by the run with this estimator
    for cls in result.classes:
        if result.primary[cls] == "PLO":
            assert result.primary_result(cls) is review.analysis("orr_after_cart").fits[cls]["PLO"]


def test_dersimonian_laird_on_the_logit_matches_a_hand_computation(review):
    view = explore(review, Choice("orr_after_cart", method="PLO", tau2="DL"))
    assert view.refitted  # every pooled class was fitted here
    assert any("exploration" in n for n in view.notes)
    assert view.result.subgroup_test is None
    for cls in ("checkpoint_inhibitor", "bispecific_antibody"):
        e, n = _counts(cls)
        zero = (e == 0) | (e == n)
        e, n = e + 0.5 * zero, n + 1.0 * zero  # metafor's to="only0": 1/2 to the cells of such a study only
        yi = np.log(e / (n - e))
        vi = 1 / e + 1 / (n - e)
        w = 1 / vi
        q = np.sum(w * (yi - np.sum(w * yi) / w.sum()) ** 2)
        tau2 = max(0.0, (q - (len(yi) - 1)) / (w.sum() - np.sum(w**2) / w.sum()))
        ws = 1 / (vi + tau2)
        mu = np.sum(ws * yi) / ws.sum()
        fit = view.result.primary_result(cls).fit
        assert view.result.primary[cls] == "PLO"
        assert fit.tau2 == pytest.approx(tau2, rel=1e-9, abs=1e-12)
        assert fit.estimate == pytest.approx(1 / (1 + np.exp(-mu)), rel=1e-9)
    single = view.result.primary["lenalidomide_based"]
    assert single == review.analysis("orr_after_cart").primary["lenalidomide_based"]  # one study stays one study


def test_another_prior_scale_refits_the_bayesian_classes_only(review):
    stored = review.analysis("orr_after_cart")
    bayes = [c for c in stored.classes if stored.primary[c].startswith("BAYES")]
    assert bayes  # the 3-study class is Bayesian by the plan's small-k rule
    result, refitted = explored(review, Choice("orr_after_cart", prior_scale=0.25))
    assert set(refitted) == set(bayes)
    for cls in bayes:
        e, n = _counts(cls)
        expected = fit_proportion(
            stored.primary[cls],
            e.astype(int),
            n.astype(int),
            studies=stored.fits[cls][stored.primary[cls]].studies,
            level=0.95,
            iv=IVSettings(),
            tau_prior="halfnormal:0.25",
        )
        got = result.primary_result(cls).fit
        assert got.estimate == pytest.approx(expected.estimate, rel=1e-9)
        assert got.interval() == pytest.approx(expected.interval(), rel=1e-9)
        assert got.estimate != pytest.approx(stored.primary_result(cls).fit.estimate, rel=1e-6)


def test_a_sensitivity_variant_is_shown_as_the_run_stored_it(review):
    variant = options(review)["variant"][1]
    result, refitted = explored(review, Choice("orr_after_cart", variant=variant))
    assert result is review.analysis("orr_after_cart", variant)
    assert refitted == ()


@pytest.mark.parametrize(
    "choice, words",
    [
        (Choice("orr_after_cart", tau2="XX"), "unknown tau^2 estimator"),
        (Choice("orr_after_cart", method="MAGIC"), "unknown method"),
        (Choice("nothing_like_this"), "no analysis"),
    ],
)
def test_an_unknown_choice_is_a_clear_error(review, choice, words):
    with pytest.raises((ValueError, KeyError), match=re.escape(words)):
        explore(review, choice)
