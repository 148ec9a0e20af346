"""Effect sizes (`yi`, `vi`) from raw counts, as metafor's `escalc()` computes them.

This is the one place counts become effect sizes; models only ever see
`yi`/`vi`. Measures: single proportions PR (raw), PLO (logit), PAS (arcsine
square root), PFT (Freeman-Tukey double arcsine); two-arm 2x2 tables OR (log
odds ratio), RR (log risk ratio), RD (risk difference); GEN (yi, vi given).

Continuity correction follows metafor 3.8-1 (R/escalc.r): `add` is added to
every cell of a study (`to="only0"`: studies with a zero cell; "all": every
study; "if0all": every study if any study has a zero cell; "none": never).
metafor's default `add` is 1/2, except for PAS and PFT where it is 0 unless
the user sets it explicitly: `add=None` means exactly that default.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
from scipy import stats

PROPORTION_MEASURES = ("PR", "PLO", "PAS", "PFT")
TWO_BY_TWO_MEASURES = ("OR", "RR", "RD")
MEASURES = PROPORTION_MEASURES + TWO_BY_TWO_MEASURES + ("GEN",)
CONTINUITY_TARGETS = ("only0", "all", "if0all", "none")
# measures for which metafor's escalc() sets add = 0 unless the user passes add
_NO_DEFAULT_CORRECTION = ("PAS", "PFT")


class AsymmetricIntervalWarning(UserWarning):
    """A reported ratio and its CI are not symmetric on the log scale beyond what rounding explains."""


@dataclass(frozen=True, slots=True)
class EffectSizes:
    """Per-study effect sizes on the analysis scale, with the counts they came from.

    `events`/`n` are set for proportions, `ai`/`n1i`/`ci`/`n2i` for 2x2 tables
    (unadjusted counts, as given); `add`/`to` record the continuity correction.
    """

    measure: str
    yi: np.ndarray
    vi: np.ndarray
    events: np.ndarray | None = None
    n: np.ndarray | None = None
    ai: np.ndarray | None = None
    n1i: np.ndarray | None = None
    ci: np.ndarray | None = None
    n2i: np.ndarray | None = None
    studies: tuple[str, ...] | None = None
    add: float = 0.0
    to: str = "none"

    @property
    def k(self) -> int:
        return len(self.yi)


def escalc(
    measure: str,
    *,
    events=None,
    n=None,
    ai=None,
    n1i=None,
    ci=None,
    n2i=None,
    yi=None,
    vi=None,
    add: float | None = None,
    to: str = "only0",
    studies=None,
) -> EffectSizes:
    """Compute `yi`, `vi` for `measure` as metafor's `escalc()` does (vtype "LS").

    Proportions take `events`, `n`; 2x2 measures take `ai` (events, arm 1),
    `n1i`, `ci` (events, arm 2), `n2i`; GEN takes `yi`, `vi` as given.
    `add=None` is metafor's default (1/2, but 0 for PAS and PFT).
    Raises ValueError naming the study and field for any impossible input, or
    for a study whose effect size is undefined (e.g. 0 events with to="none").
    """
    if measure not in MEASURES:
        raise ValueError(f"unknown measure {measure!r}; expected one of {list(MEASURES)}")
    if to not in CONTINUITY_TARGETS:
        raise ValueError(f"'to' must be one of {list(CONTINUITY_TARGETS)}, got {to!r}")
    if add is None:
        add = 0.0 if measure in _NO_DEFAULT_CORRECTION else 0.5
    if not (isinstance(add, (int, float)) and math.isfinite(add) and add >= 0):
        raise ValueError(f"'add' must be a non-negative finite number, got {add!r}")
    add = float(add)

    if measure in PROPORTION_MEASURES:
        _forbid(measure, ai=ai, n1i=n1i, ci=ci, n2i=n2i, yi=yi, vi=vi)
        labels = _labels(studies, _length("events", events))
        x = _counts("events", events, labels)
        nn = _counts("n", n, labels, expected=len(labels))
        for i, lab in enumerate(labels):
            _check_within(lab, "events", x[i], "n", nn[i])
        y, v = _proportion_effects(measure, x, nn, add, to)
        _check_defined(measure, y, v, labels, to)
        return EffectSizes(measure, y, v, events=x, n=nn, studies=labels, add=add, to=to)

    if measure in TWO_BY_TWO_MEASURES:
        _forbid(measure, events=events, n=n, yi=yi, vi=vi)
        labels = _labels(studies, _length("ai", ai))
        a = _counts("ai", ai, labels)
        n1 = _counts("n1i", n1i, labels, expected=len(labels))
        c = _counts("ci", ci, labels, expected=len(labels))
        n2 = _counts("n2i", n2i, labels, expected=len(labels))
        for i, lab in enumerate(labels):
            _check_within(lab, "ai", a[i], "n1i", n1[i])
            _check_within(lab, "ci", c[i], "n2i", n2[i])
        y, v = _two_by_two_effects(measure, a, n1, c, n2, add, to)
        _check_defined(measure, y, v, labels, to)
        return EffectSizes(measure, y, v, ai=a, n1i=n1, ci=c, n2i=n2, studies=labels, add=add, to=to)

    # GEN: effect sizes given directly
    _forbid(measure, events=events, n=n, ai=ai, n1i=n1i, ci=ci, n2i=n2i)
    labels = _labels(studies, _length("yi", yi))
    y = _finite("yi", yi, labels)
    v = _finite("vi", vi, labels, expected=len(labels))
    for i, lab in enumerate(labels):
        if v[i] <= 0:
            raise ValueError(f"study {lab}: 'vi' must be > 0, got {v[i]!r}")
    return EffectSizes("GEN", y, v, studies=labels)


def _check_within(lab: str, events_name: str, events: float, total_name: str, total: float) -> None:
    """A count of events must lie within a positive group size."""
    if total <= 0:
        raise ValueError(f"study {lab}: '{total_name}' must be > 0, got {total:g}")
    if events > total:
        raise ValueError(f"study {lab}: '{events_name}' ({events:g}) larger than '{total_name}' ({total:g})")


def _proportion_effects(measure, x, n, add, to):
    m = n - x
    if to == "all":
        correct = np.ones(len(x), dtype=bool)
    elif to in ("only0", "if0all"):
        zero = (x == 0) | (m == 0)
        correct = zero if to == "only0" else np.full(len(x), bool(zero.any()))
    else:
        correct = np.zeros(len(x), dtype=bool)
    x = np.where(correct, x + add, x)
    m = np.where(correct, m + add, m)
    n = x + m
    p = x / n
    with np.errstate(divide="ignore", invalid="ignore"):
        if measure == "PR":
            return p, p * (1 - p) / n
        if measure == "PLO":
            return np.log(p / (1 - p)), 1 / x + 1 / m
        if measure == "PAS":
            return np.arcsin(np.sqrt(p)), 1 / (4 * n)
        # PFT
        return (0.5 * (np.arcsin(np.sqrt(x / (n + 1))) + np.arcsin(np.sqrt((x + 1) / (n + 1)))), 1 / (4 * n + 2))


def _two_by_two_effects(measure, a, n1, c, n2, add, to):
    b, d = n1 - a, n2 - c
    if to == "all":
        correct = np.ones(len(a), dtype=bool)
    elif to in ("only0", "if0all"):
        zero = (a == 0) | (b == 0) | (c == 0) | (d == 0)
        correct = zero if to == "only0" else np.full(len(a), bool(zero.any()))
    else:
        correct = np.zeros(len(a), dtype=bool)
    a, b, c, d = (np.where(correct, cell + add, cell) for cell in (a, b, c, d))
    n1, n2 = a + b, c + d
    p1, p2 = a / n1, c / n2
    with np.errstate(divide="ignore", invalid="ignore"):
        if measure == "OR":
            return np.log(p1 / (1 - p1)) - np.log(p2 / (1 - p2)), 1 / a + 1 / b + 1 / c + 1 / d
        if measure == "RR":
            return np.log(p1) - np.log(p2), 1 / a - 1 / n1 + 1 / c - 1 / n2
        return p1 - p2, p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2


def _check_defined(measure, y, v, labels, to):
    for i, lab in enumerate(labels):
        if not (math.isfinite(y[i]) and math.isfinite(v[i]) and v[i] > 0):
            raise ValueError(
                f"study {lab}: {measure} effect size undefined (yi = {float(y[i])}, vi = {float(v[i])}): "
                "a 0 % or 100 % "
                f"arm needs a continuity correction on this scale (to={to!r}; use to='only0' with add > 0)"
            )


# -- effect sizes from what a paper prints -------------------------------------


def log_ratio_from_ci(estimate: float, ci_lb: float, ci_ub: float, *, level: float = 0.95) -> tuple[float, float]:
    """(yi, vi) of a log ratio (HR, OR, RR) from the printed ratio and its CI.

    yi = log(estimate); se = (log(ci_ub) - log(ci_lb)) / (2 z), z the normal
    quantile for `level`. Warns (AsymmetricIntervalWarning) when the interval
    is not symmetric around log(estimate) even after allowing each printed
    number to be off by half a unit in its last printed digit: then the CI was
    probably not a Wald interval on the log scale (or a number was mis-typed).
    """
    for name, val in (("estimate", estimate), ("ci_lb", ci_lb), ("ci_ub", ci_ub)):
        if not _is_number(val) or not math.isfinite(val) or val <= 0:
            raise ValueError(f"log_ratio_from_ci: '{name}' must be a positive finite ratio, got {val!r}")
    if not ci_lb < ci_ub:
        raise ValueError(f"log_ratio_from_ci: 'ci_lb' ({ci_lb}) must be below 'ci_ub' ({ci_ub})")
    if not ci_lb <= estimate <= ci_ub:
        raise ValueError(f"log_ratio_from_ci: 'estimate' ({estimate}) outside its CI [{ci_lb}, {ci_ub}]")
    _check_level(level)
    z = stats.norm.ppf(1 - (1 - level) / 2)
    yi = math.log(estimate)
    se = (math.log(ci_ub) - math.log(ci_lb)) / (2 * z)
    # log-scale asymmetry A = log(ub) + log(lb) - 2 log(est); A rises with ub
    # and lb and falls with est, so its range over the rounding box is reached
    # at the corners below.
    h_est, h_lb, h_ub = (_half_unit(val) for val in (estimate, ci_lb, ci_ub))
    a_min = math.log(ci_ub - h_ub) + math.log(max(ci_lb - h_lb, 1e-300)) - 2 * math.log(estimate + h_est)
    a_max = math.log(ci_ub + h_ub) + math.log(ci_lb + h_lb) - 2 * math.log(max(estimate - h_est, 1e-300))
    if not a_min <= 0.0 <= a_max:
        warnings.warn(
            f"ratio {estimate} with CI [{ci_lb}, {ci_ub}] is not symmetric on the log scale beyond "
            f"rounding (log-scale asymmetry {math.log(ci_ub) + math.log(ci_lb) - 2 * yi:+.4f}); "
            "se taken from the CI width",
            AsymmetricIntervalWarning,
            stacklevel=2,
        )
    return yi, se * se


def log_ratio_from_p(estimate: float, p: float) -> tuple[float, float]:
    """(yi, vi) of a log ratio from the printed ratio and its two-sided Wald p-value.

    se = |log(estimate)| / z, z = Phi^-1(1 - p/2). Undefined for a ratio of
    exactly 1 (then log(estimate) = 0 carries no information on se).
    """
    if not _is_number(estimate) or not math.isfinite(estimate) or estimate <= 0:
        raise ValueError(f"log_ratio_from_p: 'estimate' must be a positive finite ratio, got {estimate!r}")
    if not _is_number(p) or not 0 < p < 1:
        raise ValueError(f"log_ratio_from_p: 'p' must be strictly between 0 and 1, got {p!r}")
    yi = math.log(estimate)
    if yi == 0:
        raise ValueError("log_ratio_from_p: 'estimate' is 1, so the p-value does not determine the se")
    z = stats.norm.isf(p / 2)
    se = abs(yi) / z
    return yi, se * se


# -- validation helpers ----------------------------------------------------------


def _labels(studies, k: int) -> tuple[str, ...]:
    if studies is None:
        return tuple(str(i + 1) for i in range(k))
    labels = tuple(str(s) for s in studies)
    if len(labels) != k:
        raise ValueError(f"'studies' has {len(labels)} labels but the data have {k} studies")
    return labels


def _length(name: str, values) -> int:
    if values is None:
        raise ValueError(f"'{name}' is required for this measure")
    try:
        return len(values)
    except TypeError:
        raise ValueError(f"'{name}' must be a sequence, got {type(values).__name__}") from None


def _finite(name: str, values, labels, expected: int | None = None) -> np.ndarray:
    if values is None:
        raise ValueError(f"'{name}' is required for this measure")
    seq = list(values)
    k = len(labels) if expected is None else expected
    if len(seq) != k:
        raise ValueError(f"'{name}' has {len(seq)} values but there are {k} studies")
    out = np.empty(k)
    for i, val in enumerate(seq):
        if not _is_number(val) or not math.isfinite(float(val)):
            raise ValueError(f"study {labels[i]}: '{name}' must be a finite number, got {val!r}")
        out[i] = float(val)
    return out


def _counts(name: str, values, labels, expected: int | None = None) -> np.ndarray:
    out = _finite(name, values, labels, expected)
    for i, val in enumerate(out):
        if val < 0:
            raise ValueError(f"study {labels[i]}: '{name}' must be >= 0, got {val:g}")
        if val != round(val):
            raise ValueError(f"study {labels[i]}: '{name}' must be a whole number of patients, got {val!r}")
    return out


def _forbid(measure: str, **given) -> None:
    extra = [name for name, val in given.items() if val is not None]
    if extra:
        raise ValueError(f"measure {measure} does not take {', '.join(repr(e) for e in extra)}")


def _is_number(val) -> bool:
    return isinstance(val, (int, float, np.integer, np.floating)) and not isinstance(val, bool)


def _check_level(level: float) -> None:
    if not _is_number(level) or not 0 < level < 1:
        raise ValueError(f"'level' must be a fraction strictly between 0 and 1 (e.g. 0.95), got {level!r}")


def _half_unit(value: float) -> float:
    """Half a unit in the last printed digit of `value` (0.85 -> 0.005; 2.0 -> 0.05)."""
    exponent = int(Decimal(repr(float(value))).normalize().as_tuple().exponent)
    return 0.5 * 10.0 ** min(exponent, 0)


__all__ = [
    "EffectSizes",
    "escalc",
    "log_ratio_from_ci",
    "log_ratio_from_p",
    "AsymmetricIntervalWarning",
    "MEASURES",
    "PROPORTION_MEASURES",
    "TWO_BY_TWO_MEASURES",
    "CONTINUITY_TARGETS",
]
