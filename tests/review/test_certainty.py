"""GRADE certainty (metaanalysis/review/certainty.py): every rule pinned on constructed evidence,
each threshold from both sides. Expected levels, shares and numbers in reasons are worked out by
hand in the comments, never read back from the code."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from metaanalysis.review.certainty import (
    DOMAINS,
    Certainty,
    PooledEvidence,
    StudyEvidence,
    certainty,
    rate,
)


def study(
    name: str = "s",
    n: int | None = 100,
    rob: str | None = "low",
    indirect: tuple[str, ...] = (),
    derived: bool = False,
    abstract: bool = False,
    low_confidence: bool = False,
) -> StudyEvidence:
    return StudyEvidence(name, n, rob, indirect, derived, abstract, low_confidence)


# 12 direct studies of 100 patients at low risk of bias: nothing to rate down
CLEAN_STUDIES = tuple(study(f"s{i}") for i in range(12))
CLEAN = PooledEvidence(
    kind="proportion",
    estimate=0.50,
    ci_lb=0.45,
    ci_ub=0.55,  # 10 points wide
    pi_lb=0.40,
    pi_ub=0.60,  # 20 points wide
    I2=20.0,
    k=12,
    n_total=1200,
    studies=CLEAN_STUDIES,
    egger_p=0.50,
)
CLEAN_MEDIAN = replace(CLEAN, kind="median", estimate=6.0, ci_lb=5.0, ci_ub=7.0, pi_lb=4.0, pi_ub=7.5)
CLEAN_HR = replace(CLEAN, kind="hazard_ratio", estimate=0.6, ci_lb=0.5, ci_ub=0.7, pi_lb=None, pi_ub=None)


def pooled(studies: tuple[StudyEvidence, ...] | None = None, base: PooledEvidence = CLEAN, **changes) -> PooledEvidence:
    if studies is not None:
        changes.setdefault("k", len(studies))
        changes.setdefault("n_total", sum(s.n or 0 for s in studies))
        changes["studies"] = studies
    return replace(base, **changes)


def steps(c: Certainty, domain: str) -> int:
    assert domain in DOMAINS
    found = [d for d in c.downgrades if d.domain == domain]
    assert len(found) <= 1, "one Downgrade per domain"
    return found[0].steps if found else 0


def reason(c: Certainty, domain: str) -> str:
    (d,) = [d for d in c.downgrades if d.domain == domain]
    return d.reason


def many(*groups: tuple[int, str | None]) -> tuple[StudyEvidence, ...]:
    """Studies from (n, risk of bias) pairs, padded to 12 so that publication bias stays quiet."""
    found = tuple(study(f"g{i}", n, rob) for i, (n, rob) in enumerate(groups))
    return found + tuple(study(f"pad{i}", 0) for i in range(12 - len(found)))


# -- start and the level's word and symbols --------------------------------------------------
def test_a_clean_large_consistent_proportion_stays_high():
    c = rate(CLEAN)
    assert (c.level, c.word, c.symbols) == (4, "High", "⊕⊕⊕⊕")
    assert c.downgrades == () and c.notes == ()


def test_a_clean_median_stays_high():
    assert rate(CLEAN_MEDIAN).level == 4 and rate(CLEAN_MEDIAN).downgrades == ()


@pytest.mark.parametrize(
    "level, word, symbols",
    [(4, "High", "⊕⊕⊕⊕"), (3, "Moderate", "⊕⊕⊕◯"), (2, "Low", "⊕⊕◯◯"), (1, "Very low", "⊕◯◯◯")],
)
def test_each_level_has_its_word_and_symbols(level, word, symbols):
    c = certainty(level)
    assert (c.word, c.symbols) == (word, symbols)


def test_words_and_symbols_follow_the_steps_of_rate():
    # 0, 1, 2 and 3 steps from High: publication bias 1, imprecision 1 or 2 (CI widths 0.40, 0.60)
    egger = replace(CLEAN, egger_p=0.01)
    cases = [CLEAN, egger, replace(egger, ci_lb=0.30, ci_ub=0.70), replace(egger, ci_lb=0.20, ci_ub=0.80)]
    assert [(c.level, c.word, c.symbols) for c in map(rate, cases)] == [
        (4, "High", "⊕⊕⊕⊕"),
        (3, "Moderate", "⊕⊕⊕◯"),
        (2, "Low", "⊕⊕◯◯"),
        (1, "Very low", "⊕◯◯◯"),
    ]


def test_a_level_outside_one_to_four_is_refused():
    with pytest.raises(ValueError):
        certainty(0)


def test_a_hazard_ratio_starts_low_and_says_why():
    c = rate(CLEAN_HR)
    assert (c.level, c.word) == (2, "Low") and c.downgrades == ()
    assert any("non-randomised" in n and "Low" in n for n in c.notes)


def test_floor_at_very_low_with_many_downgrades():
    # risk of bias 2 + inconsistency 2 + indirectness 1 + imprecision 2 + publication bias 1 = 8 steps
    studies = tuple(study(f"h{i}", 100, "high", ("mixed B-cell lymphoma population",)) for i in range(12))
    ev = pooled(studies, ci_lb=0.2, ci_ub=0.8, pi_lb=0.1, pi_ub=0.9, I2=90.0, egger_p=0.01)
    c = rate(ev)
    assert [steps(c, d) for d in DOMAINS] == [2, 2, 1, 2, 1]
    assert (c.level, c.word, c.symbols) == (1, "Very low", "⊕◯◯◯")


# -- risk of bias -----------------------------------------------------------------------------
def test_share_high_exactly_a_half_is_not_two_steps():
    # high 50, some concerns 1, low 49: share_high 50/100 = 0.50, share_not_low 51/100 = 0.51
    c = rate(pooled(many((50, "high"), (1, "some concerns"), (49, "low"))))
    assert steps(c, "risk of bias") == 1


def test_share_high_above_a_half_is_two_steps_and_the_reason_has_the_numbers():
    # high 51 of 100 patients
    c = rate(pooled(many((51, "high"), (49, "low"))))
    assert steps(c, "risk of bias") == 2
    assert "51 %" in reason(c, "risk of bias") and "51 of 100" in reason(c, "risk of bias")


def test_share_high_with_the_example_numbers():
    # 310 of 500 patients = 62 %
    c = rate(pooled(many((310, "high"), (190, "low"))))
    assert "62 % of patients (310 of 500)" in reason(c, "risk of bias")


def test_share_not_low_exactly_a_half_is_not_rated_down():
    c = rate(pooled(many((50, "some concerns"), (50, "low"))))
    assert steps(c, "risk of bias") == 0


def test_not_assessed_counts_as_not_low():
    # not assessed 51 + low 49: share_not_low 0.51, share_high 0
    c = rate(pooled(many((51, None), (49, "low"))))
    assert steps(c, "risk of bias") == 1
    assert "51 of 100" in reason(c, "risk of bias")


def test_a_study_without_n_carries_no_weight_and_is_noted():
    # high with n None, low 60, high 40: share_high 40/100 = 0.4; any weight for the first would change that
    studies = (study("a", None, "high"), study("b", 60, "low"), study("c", 40, "high"))
    c = rate(pooled(studies, n_total=100))
    assert steps(c, "risk of bias") == 0
    assert "1 of 3 studies give no number of patients and count 0 in the shares of patients" in c.notes


def test_when_no_study_gives_n_each_study_counts_once():
    # 2 of 3 studies high = 0.667 > 0.5 (printed to one decimal, as it is not a whole percent)
    studies = (study("a", None, "high"), study("b", None, "high"), study("c", None, "low"))
    c = rate(pooled(studies, n_total=None))
    assert steps(c, "risk of bias") == 2
    assert "66.7 % of studies (2 of 3)" in reason(c, "risk of bias")
    assert any("weigh every study once" in n for n in c.notes)


def test_an_unknown_risk_of_bias_word_is_refused():
    with pytest.raises(ValueError, match="risk of bias"):
        rate(pooled((study("a", 100, "moderate"),)))


def test_an_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="kind"):
        rate(replace(CLEAN, kind="odds_ratio"))


# -- inconsistency ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "I2, pi, expected",
    [
        (50.0, (0.20, 0.51), 1),  # width 0.31
        (50.0, (0.20, 0.50), 0),  # width exactly 0.30: not wider
        (49.9, (0.10, 0.90), 0),  # wide, but I2 below 50
        (75.0, (0.25, 0.76), 2),  # width 0.51
        (75.0, (0.25, 0.75), 1),  # width exactly 0.50: not wider
        (74.9, (0.10, 0.90), 1),  # I2 below 75: at most 1
    ],
)
def test_inconsistency_of_a_proportion(I2, pi, expected):
    c = rate(replace(CLEAN, I2=I2, pi_lb=pi[0], pi_ub=pi[1]))
    assert steps(c, "inconsistency") == expected


def test_inconsistency_reason_has_i2_and_the_width():
    # PI 20 % to 51 %: 31 points
    c = rate(replace(CLEAN, I2=60.0, pi_lb=0.20, pi_ub=0.51))
    text = reason(c, "inconsistency")
    assert "I2 = 60 %" in text and "31 percentage points" in text and "prediction interval" in text


def test_without_a_prediction_interval_the_confidence_interval_is_used():
    # CI 20 % to 55 %: 35 points
    c = rate(replace(CLEAN, I2=60.0, pi_lb=None, pi_ub=None, ci_lb=0.20, ci_ub=0.55))
    assert steps(c, "inconsistency") == 1
    assert "confidence interval" in reason(c, "inconsistency") and "35 percentage points" in reason(c, "inconsistency")


def test_a_single_study_is_not_assessable_for_inconsistency():
    one = (study("only", 300),)
    c = rate(pooled(one, I2=90.0, pi_lb=0.0, pi_ub=1.0))
    assert steps(c, "inconsistency") == 0
    assert "inconsistency not assessable with a single study" in c.notes


@pytest.mark.parametrize(
    "I2, pi, expected",
    [
        (60.0, (4.0, 8.2), 1),  # ratio 2.05
        (60.0, (4.0, 7.9), 0),  # ratio 1.975
        (60.0, (4.0, 8.0), 0),  # ratio exactly 2
        (None, (4.0, 8.2), 1),  # no I2: the ratio alone
        (40.0, (2.0, 12.0), 0),  # ratio 6, but I2 below 50
        (95.0, (1.0, 20.0), 1),  # never 2 for a median
    ],
)
def test_inconsistency_of_a_median(I2, pi, expected):
    c = rate(replace(CLEAN_MEDIAN, I2=I2, pi_lb=pi[0], pi_ub=pi[1]))
    assert steps(c, "inconsistency") == expected


@pytest.mark.parametrize("I2, expected", [(49.0, 0), (50.0, 1), (74.9, 1), (75.0, 2)])
def test_inconsistency_of_a_hazard_ratio(I2, expected):
    assert steps(rate(replace(CLEAN_HR, I2=I2)), "inconsistency") == expected


def test_a_hazard_ratio_without_i2_is_not_assessable():
    c = rate(replace(CLEAN_HR, I2=None))
    assert steps(c, "inconsistency") == 0 and any("inconsistency not assessable" in n for n in c.notes)


# -- indirectness -----------------------------------------------------------------------------
SUBGROUP = "trial subgroup with any prior CAR-T exposure"
MIXED = "mixed B-cell lymphoma population"


def test_a_quarter_of_patients_from_indirect_studies_is_one_step_naming_the_reasons():
    # 10 + 15 indirect of 100 = 25 %
    studies = (study("a", 10, indirect=(SUBGROUP,)), study("b", 15, indirect=(SUBGROUP, MIXED)), study("c", 75))
    c = rate(pooled(studies))
    assert steps(c, "indirectness") == 1
    text = reason(c, "indirectness")
    assert "25 % of patients (25 of 100)" in text
    assert text.count(SUBGROUP) == 1 and MIXED in text


def test_under_a_quarter_is_not_rated_down_but_noted():
    # 24 of 100
    c = rate(pooled((study("a", 24, indirect=(MIXED,)), study("b", 76))))
    assert steps(c, "indirectness") == 0
    assert any("indirectness not rated down" in n and "24 %" in n and MIXED in n for n in c.notes)


def test_indirectness_is_never_two_steps():
    c = rate(pooled(tuple(study(f"i{i}", 100, indirect=(MIXED, SUBGROUP)) for i in range(3))))
    assert steps(c, "indirectness") == 1


# -- imprecision ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "ci, n_total, expected",
    [
        ((0.20, 0.50), 1000, 0),  # width exactly 0.30: not wider
        ((0.20, 0.51), 1000, 1),  # 0.31
        ((0.25, 0.75), 1000, 1),  # exactly 0.50: not wider
        ((0.25, 0.76), 1000, 2),  # 0.51
        ((0.45, 0.55), 99, 1),  # narrow, fewer than 100
        ((0.45, 0.55), 100, 0),  # narrow, 100
        ((0.45, 0.55), None, 1),  # narrow, number unknown
        ((0.20, 0.51), 99, 2),  # 1 + 1
        ((0.10, 0.90), 50, 2),  # 2 + 1, capped at 2
    ],
)
def test_imprecision_of_a_proportion(ci, n_total, expected):
    c = rate(replace(CLEAN, ci_lb=ci[0], ci_ub=ci[1], n_total=n_total))
    assert steps(c, "imprecision") == expected


def test_imprecision_reasons_say_why():
    c = rate(replace(CLEAN, ci_lb=0.10, ci_ub=0.90, n_total=50))  # width 80 points
    text = reason(c, "imprecision")
    assert "80 percentage points" in text and "fewer than 100 patients (50)" in text
    assert "±10 points" in text and "capped at 2" in text


@pytest.mark.parametrize("bound", [math.nan, math.inf])
def test_a_bound_that_is_not_finite_is_two_steps(bound):
    for base in (CLEAN, CLEAN_MEDIAN, CLEAN_HR):
        c = rate(replace(base, ci_ub=bound))
        assert steps(c, "imprecision") == 2 and "not finite" in reason(c, "imprecision")


def test_a_single_cohort_without_an_interval_says_none_was_printed():
    c = rate(replace(CLEAN_MEDIAN, ci_lb=math.nan, ci_ub=math.nan))
    assert steps(c, "imprecision") == 2
    assert reason(c, "imprecision").startswith("no 95 % CI: none printed") and "nan" not in reason(c, "imprecision")


@pytest.mark.parametrize(
    "ci, n_total, expected",
    [
        ((5.0, 10.0), 1000, 0),  # ratio exactly 2
        ((5.0, 10.5), 1000, 1),  # 2.1
        ((5.0, 7.0), 99, 1),  # narrow, fewer than 100
        ((3.0, 9.0), 40, 2),  # ratio 3 and 40 patients
    ],
)
def test_imprecision_of_a_median(ci, n_total, expected):
    c = rate(replace(CLEAN_MEDIAN, ci_lb=ci[0], ci_ub=ci[1], n_total=n_total))
    assert steps(c, "imprecision") == expected


@pytest.mark.parametrize(
    "ci, expected",
    [
        ((0.60, 0.95), 0),  # excludes 1
        ((0.60, 1.00), 1),  # touches 1
        ((0.70, 1.10), 1),  # includes 1, not 1.25
        ((0.85, 1.30), 1),  # includes 1 and 1.25, not 0.8
        ((0.80, 1.25), 2),  # includes both, at the bounds
        ((0.79, 1.30), 2),
    ],
)
def test_imprecision_of_a_hazard_ratio(ci, expected):
    assert steps(rate(replace(CLEAN_HR, ci_lb=ci[0], ci_ub=ci[1])), "imprecision") == expected


def test_a_hazard_ratio_is_not_rated_down_for_few_patients():
    assert steps(rate(replace(CLEAN_HR, n_total=20)), "imprecision") == 0


# -- publication bias -------------------------------------------------------------------------
def test_fewer_than_ten_studies_are_not_tested():
    c = rate(pooled(CLEAN_STUDIES[:9], egger_p=0.001))
    assert steps(c, "publication bias") == 0
    assert "publication bias not tested: 9 studies (a funnel-plot test needs at least 10)" in c.notes


@pytest.mark.parametrize("p, expected", [(0.09, 1), (0.10, 0), (0.5, 0)])
def test_egger_below_a_tenth_with_ten_studies(p, expected):
    c = rate(pooled(CLEAN_STUDIES[:10], egger_p=p))
    assert steps(c, "publication bias") == expected
    if expected:
        assert "p = 0.090" in reason(c, "publication bias")


def test_ten_studies_without_a_test_result_are_noted():
    c = rate(pooled(CLEAN_STUDIES[:10], egger_p=None))
    assert steps(c, "publication bias") == 0 and any("publication bias not tested" in n for n in c.notes)


# -- notes on the records ----------------------------------------------------------------------
def test_derived_counts_abstracts_and_low_confidence_are_noted_when_present():
    studies = (
        study("a", derived=True, abstract=True),
        study("b", derived=True, abstract=True, low_confidence=True),
        study("c", derived=True),
        study("d"),
    )
    c = rate(pooled(studies))
    assert "counts of 3 of 4 studies back-calculated from printed percentages" in c.notes
    assert "2 congress abstracts" in c.notes
    assert "1 record extracted with low confidence" in c.notes


def test_one_abstract_is_singular_and_absent_flags_give_no_note():
    c = rate(pooled(CLEAN_STUDIES[:11] + (study("x", abstract=True),)))
    assert c.notes == ("1 congress abstract",)


# -- every downgrade is well formed -----------------------------------------------------------
def test_every_downgrade_names_a_domain_and_one_or_two_steps():
    cases = [
        replace(CLEAN, ci_lb=0.1, ci_ub=0.9, n_total=None, I2=80.0, pi_lb=0.0, pi_ub=1.0, egger_p=0.01),
        pooled(many((60, "high"), (40, None))),
        pooled((study("a", 100, indirect=(MIXED,)),)),
        replace(CLEAN_MEDIAN, ci_ub=math.inf, I2=None, pi_lb=1.0, pi_ub=30.0),
        replace(CLEAN_HR, ci_lb=0.5, ci_ub=1.5, I2=80.0),
    ]
    seen = set()
    for ev in cases:
        for d in rate(ev).downgrades:
            assert d.domain in DOMAINS and d.steps in (1, 2) and d.reason
            seen.add(d.domain)
    assert seen == set(DOMAINS)
