"""The report's summary of findings: each class's primary row as the review decided it, labels,
GRADE certainty with its footnotes, the methods paragraph from the method registry, and the last search date as cut-off.

The review is computed from small records built here; expected numbers come from the engine
called directly on the same counts (never from the page)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from helpers import arm, outcome, record

from metaanalysis.engine.glmm import rma_glmm
from metaanalysis.engine.methods import IVSettings, fit_proportion
from metaanalysis.engine.single_study import single_proportion
from metaanalysis.presentation.findings import findings_tables
from metaanalysis.presentation.labels import fmt_percent_ci
from metaanalysis.presentation.summary import index_page, summary_of_findings
from metaanalysis.review.analyses import load_plan
from metaanalysis.review.compute import compute_review

COUNTS = {  # study -> (class, events, n)
    "thieblemont": ("bispecific_antibody", 33, 61),
    "shumilov": ("bispecific_antibody", 40, 92),
    "topp": ("bispecific_antibody", 29, 60),
    "descart": ("lenalidomide_based", 7, 52),
    "gouni": ("polatuzumab_based", 25, 57),
    "kim": ("polatuzumab_based", 3, 13),
    "a1": ("checkpoint_inhibitor", 3, 10),
    "a2": ("checkpoint_inhibitor", 4, 12),
    "a3": ("checkpoint_inhibitor", 6, 20),
    "a4": ("checkpoint_inhibitor", 2, 9),
    "a5": ("checkpoint_inhibitor", 8, 25),
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
        sensitivity=(),
        medians=(),
        hazard_ratios=(),
    )
    return compute_review(records, plan)


def _counts(cls):
    rows = [(s, e, n) for s, (c, e, n) in COUNTS.items() if c == cls]
    return [r[1] for r in rows], [r[2] for r in rows], [r[0] for r in rows]


def test_each_class_shows_its_primary_estimate_with_method_and_intervals(review):
    ((population, table),) = summary_of_findings(review).items()
    assert population.startswith("After CAR-T failure")
    assert list(table.columns) == [
        "Outcome",
        "Regimen class",
        "Method",
        "Estimate (95 % interval)",
        "95 % prediction interval",
        "k",
        "N",
        "Studies",
        "Certainty (GRADE)",
        "Footnotes",
    ]
    by_class = dict(zip(table["Regimen class"], table["Estimate (95 % interval)"], strict=True))
    by_method = dict(zip(table["Regimen class"], table["Method"], strict=True))
    iv = IVSettings()
    # 2 to 4 studies, none at 0 % or 100 %: the Bayesian binomial-normal model (the plan's rule)
    e, n, s = _counts("bispecific_antibody")
    assert all(0 < x < m for x, m in zip(e, n, strict=True))
    bayes = fit_proportion("BAYES-BN", e, n, studies=s, level=0.95, iv=iv, tau_prior="halfnormal:1.0")
    assert by_class["Bispecific antibody"] == fmt_percent_ci(bayes.estimate, *bayes.interval())
    assert by_method["Bispecific antibody"] == "Bayesian, binomial-normal"
    # 5 studies: the GLMM
    e, n, s = _counts("checkpoint_inhibitor")
    glmm = rma_glmm(e, n, studies=s, nAGQ=7)
    assert by_class["Checkpoint inhibitor"] == fmt_percent_ci(glmm.estimate, *glmm.interval())
    assert by_method["Checkpoint inhibitor"] == "GLMM"
    # one study: its own proportion with the exact interval
    one = single_proportion(7, 52, study="descart")
    assert by_class["Lenalidomide-based"] == fmt_percent_ci(one.estimate, *one.interval())
    assert list(table["Outcome"]) == ["Overall response (CR + PR)"] + [""] * (len(table) - 1)
    assert "NaN" not in table.to_string() and "<NA>" not in table.to_string()


def test_certainty_follows_the_rule_with_footnotes_naming_each_reason(review):
    """Worked by hand from docs/grade.md for the one lenalidomide study (7 of 52): start High (an
    absolute estimate from a cohort); no risk-of-bias assessment in the record, so more than half of
    the patients are not at low risk: down 1; one study: inconsistency not assessable; a full-text
    cohort after failure, nothing indirect; CI 5.6-25.8 % is narrower than 30 points but 52 < 100
    patients: imprecision down 1. High - 2 = Low."""
    (table,) = findings_tables(review)
    row = table.table.set_index("Regimen class").loc["Lenalidomide-based"]
    assert row["Certainty (GRADE)"] == "⊕⊕◯◯ Low"
    notes = [table.footnotes[ord(m) - ord("a")] for m in row["Footnotes"].split(", ")]
    assert any(n.startswith("Risk of bias, rated down 1") for n in notes), notes
    assert any(n.startswith("Imprecision, rated down 1: fewer than 100 patients (52)") for n in notes), notes
    assert any(n.startswith("Inconsistency not assessable") for n in notes), notes
    assert not any(n.startswith(("Indirectness, rated", "Inconsistency, rated")) for n in notes), notes
    # the same reason is the same letter in every row, and every letter is explained once
    marks = {m for cell in table.table["Footnotes"] for m in cell.split(", ")}
    assert len(marks) == len(table.footnotes) == len(set(table.footnotes))


def test_index_page_states_run_date_cutoff_version_and_methods(review):
    page = index_page(review, [("02_response.html", "Response by regimen class")])
    for text in (
        "Summary of findings",
        "Run date",
        "Data cut-off (last search of the literature)",
        "Toolkit version",
        "binomial-normal random-intercept GLMM",  # the registry's description of each method shown
        "Bayesian binomial-normal random-effects model (exact binomial likelihood",
        "half-normal(1) prior on τ",
        # the rule, in words
        "Bayesian, normal-normal for 2 to 4 studies, with a 0 % or 100 % arm; "
        "Bayesian, binomial-normal for 2 to 4 studies; GLMM for every other class",
        "href='02_response.html'",
        "Certainty (GRADE): ⊕⊕⊕⊕ High, ⊕⊕⊕◯ Moderate, ⊕⊕◯◯ Low, ⊕◯◯◯ Very low",
        "<ol class='footnotes' type='a'><li>Risk of bias, rated down",
    ):
        assert text in page, text
    assert "NaN" not in page and "&lt;NA&gt;" not in page and "BAYES: BAYES" not in page
