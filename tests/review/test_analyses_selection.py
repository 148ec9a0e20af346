"""Population selection in the declared analyses: `selection: [after_failure]` pools failure
cohorts only and lists prior-exposure cohorts with the reason; without it both enter; a wrong value
is a declaration error. And the real plan: after bispecific failure is failure-only, the exposure
analysis stands beside it, and no landmark row rests on a superseded report."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from helpers import analysis, arm, outcome, reasons, record

from metaanalysis.evidence.studies import load_studies, outcome_table
from metaanalysis.review.analyses import AnalysisDeclarationError, load_plan
from metaanalysis.review.pooling import select_rows

REPO = Path(__file__).resolve().parents[2]

MIXED = [
    record("failed", arm("a", "bispecific_antibody", outcome(6, 12))),
    record("exposed", arm("a", "bispecific_antibody", outcome(7, 12)), selection="prior_exposure"),
]


def test_without_selection_both_enter():
    included, _ = select_rows(outcome_table(MIXED), analysis())
    assert set(included["study"]) == {"failed", "exposed"}


def test_failure_only_lists_the_exposure_cohort_with_its_reason():
    included, excluded = select_rows(outcome_table(MIXED), replace(analysis(), selections=("after_failure",)))
    assert list(included["study"]) == ["failed"]
    why = reasons(excluded)["exposed:a"]
    assert "prior_exposure" in why and "after_failure cohorts only" in why


def test_an_unvalidated_record_without_selection_is_not_assumed_a_failure_cohort():
    rows = [record("unsaid", arm("a", "bispecific_antibody", outcome(6, 12)), selection=None)]
    frame = outcome_table(rows)
    assert frame["selection"].isna().all()
    included, excluded = select_rows(frame, replace(analysis(), selections=("after_failure",)))
    assert included.empty and len(excluded) == 1


def test_selection_is_declared_per_analysis(tmp_path):
    path = tmp_path / "plan.yaml"
    path.write_text(
        "analyses:\n"
        "  - {id: a, population: after_bispecific, outcome: ORR, selection: [after_failure]}\n"
        "  - {id: b, population: after_bispecific, outcome: ORR}\n",
        encoding="utf-8",
    )
    a, b = load_plan(path).analyses
    assert a.selections == ("after_failure",) and b.selections is None
    path.write_text("analyses:\n  - {id: a, population: after_car_t, outcome: ORR, selection: [failed]}\n")
    with pytest.raises(AnalysisDeclarationError, match=r"analyses\[0\]\.selection: unknown \['failed'\]"):
        load_plan(path)


def test_the_real_plan_after_bispecific_failure_is_failure_only():
    plan = {a.id: a for a in load_plan().analyses}
    frame = load_studies(REPO / "extracted_studies")
    failed, excluded = select_rows(frame, plan["orr_after_bispecific"])
    exposed, _ = select_rows(frame, plan["orr_after_bispecific_exposure"])
    assert set(failed["selection"]) == {"after_failure"}
    assert "crochet_cart_after_bsab" in set(exposed["study"]) - set(failed["study"])
    assert excluded.loc[excluded["study"] == "crochet_cart_after_bsab", "reason"].str.contains("prior_exposure").all()
    # no landmark after bispecific failure is declared: the only 6-month rates were a superseded report's
    assert not [lm for lm in load_plan().landmarks if lm.population == "after_bispecific"]
