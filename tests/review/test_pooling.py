"""Which rows enter a pooled class: two arms of one study are one cohort, regimen strata pool,
patient-characteristic strata do not, sensitivity variants by selection, confidence and source
type, and best response vs response at a fixed day. Records are small dicts built here."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import analysis, arm, outcome, reasons, record

from metaanalysis.engine.glmm import rma_glmm
from metaanalysis.evidence.studies import outcome_table, study_table
from metaanalysis.review.analyses import AnalysisDeclarationError, load_plan
from metaanalysis.review.pooling import (
    COMBINED,
    DERIVED,
    STRATUM,
    STRATUM_IN_POOLED_ARM,
    pool_analysis,
    select_rows,
)


def _class(result, cls):
    """(the class's study rows, its GLMM result) in a pooled analysis."""
    rows = result.included[result.included["regimen_class"] == cls]
    return rows, result.fits[cls]["GLMM"]


TWO_ARMS = [
    record("two", arm("a", "bispecific_antibody", outcome(6, 12)), arm("b", "bispecific_antibody", outcome(3, 10))),
    record("other", arm("x", "bispecific_antibody", outcome(5, 20))),
]


def test_two_arms_of_one_study_in_one_class_are_one_cohort():
    frame = outcome_table(TWO_ARMS)
    pa = pool_analysis(frame, analysis())
    rows, fit = _class(pa, "bispecific_antibody")
    assert len(rows) == 2 and fit.pooled and fit.k == 2  # k = 2 studies, not 3 arms
    two = rows[rows["study"] == "two"].iloc[0]
    assert (int(two["events"]), int(two["n"])) == (9, 22)  # 6 + 3, 12 + 10
    assert two["derived"] and two["combined"] and two["derived_from"] == "sum"
    assert "a 6/12 + b 3/10" in two["note"] and two["label"] == "two (a+b)"
    # the arms are listed, each naming the other, so every candidate row is accounted for
    why = reasons(pa.excluded)
    assert why["two:a"] == COMBINED.format(others="b") and why["two:b"] == COMBINED.format(others="a")
    # every candidate row is pooled as itself or listed (the summed row is new, not a candidate)
    assert (~pa.included["combined"]).sum() + len(pa.excluded) == len(frame[frame["outcome"] == "ORR"])
    # the model sees the summed cohort
    ref = rma_glmm(np.array([9, 5]), np.array([22, 20]), nAGQ=7)
    assert fit.fit.estimate == pytest.approx(ref.estimate, rel=1e-12)
    level = pa.included
    assert level.loc[level["study"] == "two", ["combined", "derived"]].all(axis=None)


def test_the_combined_count_is_dropped_with_the_derived_counts():
    pa = pool_analysis(outcome_table(TWO_ARMS), analysis(exclude_derived=True))
    assert list(pa.included["study"]) == ["other"]
    assert set(reasons(pa.excluded).values()) == {DERIVED}


def test_arms_of_one_study_in_different_classes_stay_apart():
    recs = [record("two", arm("a", "bispecific_antibody", outcome(6, 12)), arm("b", "chemotherapy", outcome(3, 10)))]
    included, excluded = select_rows(outcome_table(recs), analysis())
    assert len(included) == 2 and not included["combined"].any() and excluded.empty


# -- strata ---------------------------------------------------------------------------
def stratum(sub_id, by, orr, cls=None):
    sub = {"id": sub_id, "label": sub_id, "stratified_by": by, "binary": {"ORR": orr}}
    if cls:
        sub.update(regimen=sub_id, regimen_class=cls)
    return sub


STRATA = [
    record(
        "mixed",
        arm(
            "other",
            "non_cart_salvage_mixed",
            outcome(10, 30),
            subgroups=[
                stratum("pola", "regimen", outcome(4, 8), "polatuzumab_based"),
                stratum("early", "patient_characteristic", outcome(2, 5)),
            ],
        ),
    ),
    record("pola2", arm("pola", "polatuzumab_based", outcome(7, 13))),
]


def test_a_regimen_stratum_is_a_cohort_of_its_class_a_patient_stratum_is_not():
    frame = outcome_table(STRATA)
    pa = pool_analysis(frame, analysis())
    rows, pola = _class(pa, "polatuzumab_based")
    assert pola.pooled and sorted(rows["study"]) == ["mixed", "pola2"]
    row = rows[rows["study"] == "mixed"].iloc[0]
    assert (int(row["events"]), int(row["n"]), row["label"]) == (4, 8, "mixed (pola)")
    assert reasons(pa.excluded) == {"mixed:early": STRATUM}
    assert set(pa.included["regimen_class"]) == {"polatuzumab_based", "non_cart_salvage_mixed"}


def test_a_regimen_stratum_of_an_arm_in_the_same_class_is_not_counted_twice():
    recs = [
        record(
            "s",
            arm(
                "pola",
                "polatuzumab_based",
                outcome(10, 30),
                subgroups=[stratum("pola_br", "regimen", outcome(4, 8), "polatuzumab_based")],
            ),
        )
    ]
    included, excluded = select_rows(outcome_table(recs), analysis())
    assert list(included["arm"]) == ["pola"] and not included["combined"].any()
    assert reasons(excluded) == {"s:pola_br": STRATUM_IN_POOLED_ARM}


def test_without_stratified_by_a_stratum_is_a_patient_characteristic():
    sub = {"id": "late", "label": "late", "binary": {"ORR": outcome(2, 5)}}
    recs = [record("s", arm("a", "bispecific_antibody", outcome(6, 12), subgroups=[sub]))]
    _, excluded = select_rows(outcome_table(recs), analysis())
    assert reasons(excluded) == {"s:late": STRATUM}


# -- sensitivity variants -------------------------------------------------------------
VARIANT_RECORDS = [
    record("failed", arm("a", "bispecific_antibody", outcome(6, 12))),
    record("exposed", arm("a", "bispecific_antibody", outcome(7, 12)), selection="prior_exposure"),
    record("shaky", arm("a", "bispecific_antibody", outcome(8, 12)), confidence="low"),
    record("congress", arm("a", "bispecific_antibody", outcome(9, 12)), source_type="congress_abstract"),
]


@pytest.mark.parametrize(
    "variant, dropped, phrase",
    [
        ("without_prior_exposure", "exposed", "prior-exposure cohort"),
        ("without_low_confidence", "shaky", "low-confidence record"),
        ("without_congress_abstracts", "congress", "congress abstract"),
    ],
)
def test_sensitivity_variants_drop_exactly_their_rows(variant, dropped, phrase):
    frame = outcome_table(VARIANT_RECORDS)
    primary, _ = select_rows(frame, analysis())
    assert len(primary) == 4
    sensitivity = {s.id: s for s in load_plan().sensitivity}[variant]
    included, excluded = select_rows(frame, sensitivity.apply(analysis()))
    assert set(included["study"]) == {"failed", "exposed", "shaky", "congress"} - {dropped}
    assert list(excluded["study"]) == [dropped] and phrase in excluded["reason"].iloc[0]
    assert pool_analysis(frame, sensitivity.apply(analysis())).analysis.variant == variant


def test_unknown_exclusion_is_a_declaration_error(tmp_path):
    path = tmp_path / "analyses.yaml"
    path.write_text("sensitivity:\n  - {id: s, exclude: [abstracts]}\n")
    with pytest.raises(AnalysisDeclarationError, match=r"sensitivity\[0\]\.exclude: unknown \['abstracts'\]"):
        load_plan(path)


# -- best response vs a fixed day ---------------------------------------------------------
TIMING = [
    record("best", arm("a", "bispecific_antibody", outcome(6, 12, assessment="best"))),
    record("unsaid", arm("a", "bispecific_antibody", outcome(5, 12))),
    record(
        "day30",
        arm(
            "a",
            "bispecific_antibody",
            outcome(4, 12, assessment="fixed_timepoint", timepoint_days=30),
            ORR_day30=outcome(4, 12, assessment="fixed_timepoint", timepoint_days=30),
        ),
    ),
]


def test_best_response_enters_orr_a_fixed_day_response_does_not():
    frame = outcome_table(TIMING)
    included, excluded = select_rows(frame, analysis())
    assert set(included["study"]) == {"best", "unsaid"}
    why = reasons(excluded)["day30:a"]
    assert "day 30" in why and "ORR_day30" in why and "best response" in why
    day30, _ = select_rows(frame, analysis("ORR_day30"))
    assert list(day30["study"]) == ["day30"]


def test_the_evidence_tables_show_how_response_was_read():
    frame = outcome_table(TIMING)
    orr = frame[frame["outcome"] == "ORR"].set_index("study")
    assert orr.loc["best", "assessment"] == "best" and orr.loc["unsaid", "assessment"] == "not_stated"
    assert orr.loc["day30", "assessment"] == "fixed_timepoint" and orr.loc["day30", "timepoint_days"] == 30
    studies = study_table(TIMING).set_index("study")
    assert studies.loc["day30", "response_assessment"] == "fixed_timepoint (day 30)"
    assert studies.loc["unsaid", "response_assessment"] == "not_stated"
    assert studies.loc["best", "selection"] == "after_failure"
