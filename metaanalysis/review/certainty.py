"""Certainty of a pooled estimate, GRADE: from the evidence behind it to a level and its reasons
(docs/grade.md).

The inputs are plain records (`StudyEvidence`, `PooledEvidence`) so that the rule can be read and
tested without a pipeline run; every threshold below is a named module constant. Proportions are on
the 0-1 scale, medians in months, hazard ratios on the ratio scale. Shares are weighed by patients
(`n`); a study whose `n` is None counts 0, and when no study gives `n` every study counts once.

- Start. A proportion or a median is an absolute estimate in a defined population, rated as GRADE
  rates overall prognosis (Iorio A, et al. BMJ 2015;350:h870): observational cohorts are the right
  design and start High (4). The rating is of the absolute estimate, never of a treatment effect.
  A hazard ratio from within-study comparisons is a non-randomised comparison and starts Low (2).
- Risk of bias. share_high = patients in studies judged "high" / patients; share_not_low = patients
  in studies judged "some concerns", "high" or not assessed / patients. Down 2 if share_high > 0.5,
  else down 1 if share_not_low > 0.5.
- Inconsistency (k >= 2; with one study not assessable). The width is that of the prediction
  interval, or of the confidence interval when there is none. Proportions: down 1 if I2 >= 50 % and
  the width > 0.30; down 2 if I2 >= 75 % and the width > 0.50. Medians: down 1 if upper / lower > 2
  and I2 >= 50 % (or I2 not given). Hazard ratios: down 1 if I2 >= 50 %, down 2 if I2 >= 75 %.
  Where the rule needs I2 and there is none, the domain is not assessable (a note). For proportions
  without I2 the width alone decides.
- Indirectness. Down 1 if studies with any indirectness reason hold >= 25 % of patients; never 2.
- Imprecision. Proportions: CI width > 0.30 down 1, > 0.50 down 2. Medians: CI upper / lower > 2
  down 1. For both, fewer than 100 patients (or their number unknown) adds 1. Hazard ratios: the CI
  includes 1 down 1; it includes both 0.8 and 1.25 down 2. A bound that is not finite is down 2.
  The domain gives at most 2 steps.
- Publication bias. Not tested with fewer than 10 studies (a note). With 10 or more, down 1 if
  Egger's test gives p < 0.10.
- Level = start - all steps, never below 1 (Very low). Notes report what was considered and not
  rated down but a reader should know: a domain not assessable, counts back-calculated from printed
  percentages, congress abstracts, records extracted with low confidence.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from metaanalysis.review.risk_of_bias import HIGH, LEVELS, LOW

KINDS = ("proportion", "median", "hazard_ratio")
DOMAINS = ("risk of bias", "inconsistency", "indirectness", "imprecision", "publication bias")
# the overall judgements review.risk_of_bias gives (None: not assessed), defined there once
RISK_OF_BIAS_LEVELS = LEVELS

WORDS = {4: "High", 3: "Moderate", 2: "Low", 1: "Very low"}
SYMBOLS = {4: "⊕⊕⊕⊕", 3: "⊕⊕⊕◯", 2: "⊕⊕◯◯", 1: "⊕◯◯◯"}

START_ABSOLUTE = 4  # proportions and medians: GRADE for overall prognosis
START_COMPARISON = 2  # hazard ratios from non-randomised within-study comparisons
MAX_STEPS = 2  # per domain

ROB_HIGH_SHARE = 0.5  # share_high above this: down 2
ROB_NOT_LOW_SHARE = 0.5  # share_not_low above this: down 1

I2_SOME = 50.0  # percent
I2_LARGE = 75.0
PROPORTION_SPREAD_1 = 0.30  # prediction-interval width (0-1 scale), with I2 >= I2_SOME
PROPORTION_SPREAD_2 = 0.50  # with I2 >= I2_LARGE
MEDIAN_SPREAD_RATIO = 2.0  # prediction-interval upper / lower

INDIRECT_SHARE = 0.25  # share of patients from indirect studies at or above this: down 1

PROPORTION_CI_WIDTH_1 = 0.30
PROPORTION_CI_WIDTH_2 = 0.50
MEDIAN_CI_RATIO = 2.0
MIN_PATIENTS = 100  # fewer: imprecision adds 1 (proportions and medians)
HR_NULL = 1.0
HR_APPRECIABLE_BENEFIT = 0.8  # an interval spanning both of these includes appreciable benefit and harm
HR_APPRECIABLE_HARM = 1.25

PUBLICATION_BIAS_MIN_K = 10  # a funnel-plot test needs at least this many studies
EGGER_P = 0.10


@dataclass(frozen=True, slots=True)
class StudyEvidence:
    """One study behind a pooled estimate, as far as certainty is concerned."""

    study: str
    n: int | None
    risk_of_bias: str | None  # RISK_OF_BIAS_LEVELS, or None: not assessed
    indirect: tuple[str, ...]  # why its patients are not the question's patients; empty: direct
    derived: bool  # counts back-calculated from a printed percentage
    abstract: bool  # a congress abstract
    low_confidence: bool


@dataclass(frozen=True, slots=True)
class PooledEvidence:
    """A pooled estimate, its intervals and heterogeneity, and the studies it rests on."""

    kind: str  # KINDS
    estimate: float
    ci_lb: float
    ci_ub: float
    pi_lb: float | None
    pi_ub: float | None
    I2: float | None  # percent
    k: int
    n_total: int | None
    studies: tuple[StudyEvidence, ...]
    egger_p: float | None = None


@dataclass(frozen=True, slots=True)
class Downgrade:
    """Steps down in one domain (DOMAINS) and why, with the numbers a reader can check."""

    domain: str
    steps: int
    reason: str


@dataclass(frozen=True, slots=True)
class Certainty:
    level: int  # 4 high .. 1 very low
    word: str
    symbols: str
    downgrades: tuple[Downgrade, ...]
    notes: tuple[str, ...]


def certainty(level: int, downgrades: Sequence[Downgrade] = (), notes: Sequence[str] = ()) -> Certainty:
    """A Certainty with the word and symbols of its level."""
    if level not in WORDS:
        raise ValueError(f"certainty level must be 1 to 4, not {level}")
    return Certainty(level, WORDS[level], SYMBOLS[level], tuple(downgrades), tuple(notes))


# -- formatting: numbers as a reader checks them ---------------------------------------------
def _num(x: float) -> str:
    """A whole number when it is one (to 0.05), else one decimal: 51 %, 50.5 %."""
    return f"{round(x):d}" if abs(x - round(x)) < 0.05 else f"{x:.1f}"


def _pct(share: float) -> str:
    return f"{_num(100 * share)} %"


def _i2(value: float) -> str:
    return f"I2 = {_num(value)} %"


def _finite(*xs: float) -> bool:
    return all(math.isfinite(x) for x in xs)


def _ratio(lb: float, ub: float) -> float:
    """upper / lower; infinite when the lower bound is not above 0 or a bound is not finite."""
    return ub / lb if _finite(lb, ub) and lb > 0 else math.inf


# -- weights --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Share:
    part: int
    whole: int
    unit: str  # "patients", or "studies" when no study gives n

    @property
    def value(self) -> float:
        return self.part / self.whole if self.whole else 0.0

    def text(self) -> str:
        """62 % of patients (310 of 500)."""
        return f"{_pct(self.value)} of {self.unit} ({self.part} of {self.whole})"


def _share(studies: Sequence[StudyEvidence], chosen: Callable[[StudyEvidence], bool]) -> _Share:
    if any(s.n is not None for s in studies):
        return _Share(sum(s.n or 0 for s in studies if chosen(s)), sum(s.n or 0 for s in studies), "patients")
    return _Share(sum(1 for s in studies if chosen(s)), len(studies), "studies")


# -- the domains ------------------------------------------------------------------------------
def _risk_of_bias(studies: Sequence[StudyEvidence]) -> Downgrade | None:
    high = _share(studies, lambda s: s.risk_of_bias == HIGH)
    not_low = _share(studies, lambda s: s.risk_of_bias != LOW)
    if high.value > ROB_HIGH_SHARE:
        return Downgrade("risk of bias", 2, f"{high.text()} come from studies at high risk of bias")
    if not_low.value > ROB_NOT_LOW_SHARE:
        return Downgrade(
            "risk of bias",
            1,
            f"{not_low.text()} come from studies not judged at low risk of bias (some concerns, high or not assessed)",
        )
    return None


def _spread(ev: PooledEvidence) -> tuple[float, float, str]:
    """The interval that shows how far study results spread: the prediction interval, or the CI."""
    if ev.pi_lb is not None and ev.pi_ub is not None:
        return ev.pi_lb, ev.pi_ub, "prediction interval"
    return ev.ci_lb, ev.ci_ub, "confidence interval (no prediction interval)"


def _inconsistency(ev: PooledEvidence, i2: float | None) -> tuple[Downgrade | None, str | None]:
    if ev.k < 2:
        return None, "inconsistency not assessable with a single study"
    lb, ub, name = _spread(ev)
    if ev.kind == "hazard_ratio":
        if i2 is None:
            return None, "inconsistency not assessable: no I2 given"
        steps = 2 if i2 >= I2_LARGE else 1 if i2 >= I2_SOME else 0
        limit = I2_LARGE if steps == 2 else I2_SOME
        reason = f"{_i2(i2)} (at least {_num(limit)} %) across {ev.k} studies"
        return (Downgrade("inconsistency", steps, reason) if steps else None), None
    if ev.kind == "median":
        ratio = _ratio(lb, ub)
        if ratio > MEDIAN_SPREAD_RATIO and (i2 is None or i2 >= I2_SOME):
            told = f", {_i2(i2)}" if i2 is not None else " (no I2 given)"
            reason = (
                f"the {name} runs from {lb:.3g} to {ub:.3g} months, upper over lower "
                f"{ratio:.2f} (more than {MEDIAN_SPREAD_RATIO:g}){told}"
            )
            return Downgrade("inconsistency", 1, reason), None
        return None, None
    width = ub - lb if _finite(lb, ub) else math.inf
    i2_ok = (lambda limit: True) if i2 is None else (lambda limit: i2 >= limit)
    if i2_ok(I2_LARGE) and width > PROPORTION_SPREAD_2:
        steps, limit = 2, PROPORTION_SPREAD_2
    elif i2_ok(I2_SOME) and width > PROPORTION_SPREAD_1:
        steps, limit = 1, PROPORTION_SPREAD_1
    else:
        return None, None
    told = f", {_i2(i2)}" if i2 is not None else " (no I2 given: the width alone decides)"
    reason = (
        f"the {name} runs from {_pct(lb)} to {_pct(ub)}, {_num(100 * width)} percentage points "
        f"(more than {_num(100 * limit)}){told}"
    )
    return Downgrade("inconsistency", steps, reason), None


def _indirectness(studies: Sequence[StudyEvidence]) -> tuple[Downgrade | None, str | None]:
    share = _share(studies, lambda s: bool(s.indirect))
    if share.part == 0:
        return None, None
    reasons = "; ".join(dict.fromkeys(r for s in studies for r in s.indirect))  # distinct, first-seen order
    if share.value >= INDIRECT_SHARE:
        return Downgrade("indirectness", 1, f"{share.text()} come from indirect studies: {reasons}"), None
    below = f"below {_pct(INDIRECT_SHARE)}"
    return None, f"indirectness not rated down: {share.text()} from indirect studies ({below}): {reasons}"


def _too_few(ev: PooledEvidence, proportion: bool) -> str | None:
    if ev.n_total is not None and ev.n_total >= MIN_PATIENTS:
        return None
    why = ": a 95 % interval of a proportion near 50 % is then wider than ±10 points" if proportion else ""
    if ev.n_total is None:
        return f"number of patients not given, so fewer than {MIN_PATIENTS} patients cannot be ruled out{why}"
    return f"fewer than {MIN_PATIENTS} patients ({ev.n_total}){why}"


def _imprecision(ev: PooledEvidence) -> Downgrade | None:
    lb, ub = ev.ci_lb, ev.ci_ub
    if not _finite(lb, ub):
        if math.isnan(lb) and math.isnan(ub):
            return Downgrade(
                "imprecision", 2, "no 95 % CI: none printed and none estimable (a bound that is not finite)"
            )
        return Downgrade("imprecision", 2, f"a bound of the 95 % CI is not finite ({lb:g} to {ub:g})")
    steps, reasons = 0, []
    if ev.kind == "hazard_ratio":
        if lb <= HR_APPRECIABLE_BENEFIT and ub >= HR_APPRECIABLE_HARM:
            steps = 2
            reasons.append(
                f"the 95 % CI {lb:.2f} to {ub:.2f} includes both {HR_APPRECIABLE_BENEFIT:g} and "
                f"{HR_APPRECIABLE_HARM:g} (appreciable benefit and harm)"
            )
        elif lb <= HR_NULL <= ub:
            steps = 1
            reasons.append(f"the 95 % CI {lb:.2f} to {ub:.2f} includes {HR_NULL:g} (no difference)")
    else:
        if ev.kind == "median":
            ratio = _ratio(lb, ub)
            if ratio > MEDIAN_CI_RATIO:
                steps = 1
                reasons.append(
                    f"the 95 % CI {lb:.3g} to {ub:.3g} months, upper over lower {ratio:.2f} "
                    f"(more than {MEDIAN_CI_RATIO:g})"
                )
        else:
            width = ub - lb
            if width > PROPORTION_CI_WIDTH_1:
                steps = 2 if width > PROPORTION_CI_WIDTH_2 else 1
                limit = PROPORTION_CI_WIDTH_2 if steps == 2 else PROPORTION_CI_WIDTH_1
                reasons.append(
                    f"the 95 % CI {_pct(lb)} to {_pct(ub)} spans {_num(100 * width)} percentage points "
                    f"(more than {_num(100 * limit)})"
                )
        few = _too_few(ev, proportion=ev.kind == "proportion")
        if few:
            steps += 1
            reasons.append(few)
    if not steps:
        return None
    capped = f" (capped at {MAX_STEPS} steps)" if steps > MAX_STEPS else ""
    return Downgrade("imprecision", min(steps, MAX_STEPS), "; ".join(reasons) + capped)


def _publication_bias(ev: PooledEvidence) -> tuple[Downgrade | None, str | None]:
    if ev.k < PUBLICATION_BIAS_MIN_K:
        need = f"a funnel-plot test needs at least {PUBLICATION_BIAS_MIN_K}"
        return None, f"publication bias not tested: {ev.k} {'study' if ev.k == 1 else 'studies'} ({need})"
    if ev.egger_p is None or not math.isfinite(ev.egger_p):
        return None, f"publication bias not tested: no funnel-plot test result for {ev.k} studies"
    if ev.egger_p < EGGER_P:
        return Downgrade(
            "publication bias", 1, f"Egger's test p = {ev.egger_p:.3f} (below {EGGER_P:g}) across {ev.k} studies"
        ), None
    return None, None


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def _record_notes(studies: Sequence[StudyEvidence]) -> list[str]:
    k = len(studies)
    notes = []
    no_n = sum(1 for s in studies if s.n is None)
    if no_n == k:
        notes.append("no study gives its number of patients: shares weigh every study once")
    elif no_n:
        notes.append(f"{no_n} of {k} studies give no number of patients and count 0 in the shares of patients")
    derived = sum(1 for s in studies if s.derived)
    if derived:
        notes.append(f"counts of {derived} of {k} studies back-calculated from printed percentages")
    abstracts = sum(1 for s in studies if s.abstract)
    if abstracts:
        notes.append(_plural(abstracts, "congress abstract", "congress abstracts"))
    low = sum(1 for s in studies if s.low_confidence)
    if low:
        notes.append(_plural(low, "record", "records") + " extracted with low confidence")
    return notes


def rate(evidence: PooledEvidence) -> Certainty:
    """The GRADE certainty of one pooled estimate (rules: module docstring, docs/grade.md)."""
    ev = evidence
    if ev.kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {ev.kind!r}")
    if not ev.studies:
        raise ValueError("a pooled estimate needs the studies it rests on")
    for s in ev.studies:
        if s.risk_of_bias is not None and s.risk_of_bias not in RISK_OF_BIAS_LEVELS:
            raise ValueError(f"{s.study}: risk of bias must be one of {', '.join(RISK_OF_BIAS_LEVELS)} or None")
    # a failed fit reports I2 as NaN: the same as not given
    i2 = ev.I2 if ev.I2 is not None and math.isfinite(ev.I2) else None

    notes: list[str] = []
    if ev.kind == "hazard_ratio":
        start = START_COMPARISON
        notes.append(
            "a hazard ratio from within-study comparisons is a non-randomised comparison: "
            "the rating starts at Low (GRADE for interventions, observational evidence)"
        )
    else:
        start = START_ABSOLUTE
    found: list[Downgrade | None] = [_risk_of_bias(ev.studies)]
    for downgrade, note in (_inconsistency(ev, i2), _indirectness(ev.studies)):
        found.append(downgrade)
        notes += [note] if note else []
    found.append(_imprecision(ev))
    downgrade, note = _publication_bias(ev)
    found.append(downgrade)
    notes += [note] if note else []
    notes += _record_notes(ev.studies)

    downgrades = tuple(d for d in found if d is not None)
    level = max(1, start - sum(d.steps for d in downgrades))
    return certainty(level, downgrades, notes)


__all__ = [
    "KINDS",
    "DOMAINS",
    "RISK_OF_BIAS_LEVELS",
    "WORDS",
    "SYMBOLS",
    "START_ABSOLUTE",
    "START_COMPARISON",
    "MAX_STEPS",
    "ROB_HIGH_SHARE",
    "ROB_NOT_LOW_SHARE",
    "I2_SOME",
    "I2_LARGE",
    "PROPORTION_SPREAD_1",
    "PROPORTION_SPREAD_2",
    "MEDIAN_SPREAD_RATIO",
    "INDIRECT_SHARE",
    "PROPORTION_CI_WIDTH_1",
    "PROPORTION_CI_WIDTH_2",
    "MEDIAN_CI_RATIO",
    "MIN_PATIENTS",
    "HR_NULL",
    "HR_APPRECIABLE_BENEFIT",
    "HR_APPRECIABLE_HARM",
    "PUBLICATION_BIAS_MIN_K",
    "EGGER_P",
    "StudyEvidence",
    "PooledEvidence",
    "Downgrade",
    "Certainty",
    "certainty",
    "rate",
]
