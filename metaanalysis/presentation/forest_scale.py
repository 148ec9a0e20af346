"""Forest plots, part 1: the scale of the numbers (percent, ratio, difference), the x axis, and the
checks that refuse to draw a wrong picture (every message names the group, study and field)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from matplotlib.ticker import MaxNLocator

from metaanalysis.engine.results import Fit

PROPORTION_MEASURES = frozenset({"PR", "PLO", "PAS", "PFT", "GLMM"})
RATIO_MEASURES = frozenset({"OR", "RR"})
RATIO_NAMES = {"OR": ("OR", "Odds ratio"), "RR": ("RR", "Risk ratio")}
_TOL = 1e-9  # slack when checking that an estimate lies inside its CI


@dataclass(frozen=True)
class Scale:
    """How the reporting-scale numbers are shown: unit, axis, reference line, text."""

    family: str  # proportion | ratio | difference
    factor: float  # 100 for percent
    log: bool
    xline: float | None
    decimals: int
    est_header: str
    xlabel: str


def _family(res: Fit) -> str:
    if res.measure in PROPORTION_MEASURES:
        return "proportion"
    if res.measure in RATIO_MEASURES or res.transform == "exp":
        return "ratio"
    return "difference"


def scale_of(fits: Sequence[tuple[str, Fit]], percent: bool | None) -> Scale:
    families = {name: _family(res) for name, res in fits}
    if len(set(families.values())) > 1:
        listing = ", ".join(f"{name!r}: {res.measure}" for name, res in fits)
        raise ValueError(f"cannot draw proportions, ratios and differences on one axis; measures are {listing}")
    family = next(iter(families.values()))
    levels = {res.level for _, res in fits}
    if len(levels) > 1:
        raise ValueError(
            f"groups have different confidence levels {sorted(levels)}; one column header cannot describe them"
        )
    measures = {res.measure for _, res in fits}
    pct = int(round(fits[0][1].level * 100))
    if family == "proportion":
        use_pct = True if percent is None else bool(percent)
        return Scale(
            "proportion",
            100.0 if use_pct else 1.0,
            False,
            None,
            1 if use_pct else 3,
            f"{'Proportion, %' if use_pct else 'Proportion'} [{pct}% CI]",
            "Proportion (%)" if use_pct else "Proportion",
        )
    if family == "ratio":
        if percent:
            raise ValueError(
                f"percent=True is only meaningful for proportion measures "
                f"({', '.join(sorted(PROPORTION_MEASURES))}) and RD; got {', '.join(sorted(measures))}"
            )
        only = next(iter(measures)) if len(measures) == 1 else None
        short, long = RATIO_NAMES.get(only, ("Ratio", "Ratio"))
        return Scale("ratio", 1.0, True, 1.0, 2, f"{short} [{pct}% CI]", f"{long} (log scale)")
    if measures == {"RD"}:
        # in percentage points, like the proportions of the same outcomes elsewhere in the report
        if percent is None or percent:
            return Scale(
                "difference", 100.0, False, 0.0, 1, f"RD, % [{pct}% CI]", "Risk difference (percentage points)"
            )
        return Scale("difference", 1.0, False, 0.0, 3, f"RD [{pct}% CI]", "Risk difference")
    if percent:
        raise ValueError(
            f"percent=True is only meaningful for proportion measures "
            f"({', '.join(sorted(PROPORTION_MEASURES))}) and RD; got {', '.join(sorted(measures))}"
        )
    return Scale("difference", 1.0, False, 0.0, 2, f"Estimate [{pct}% CI]", "Estimate")


# --------------------------------------------------------------------------- checks
def check_fit(name: str, res: Fit, scale: Scale, *, studies_shown: bool = True) -> None:
    """Refuse what would draw a wrong picture; name the class, study and field."""
    where = f"group {name!r}" if name else "the result"
    needs_bt = scale.family == "ratio" or (scale.family == "proportion" and res.measure != "PR")
    if needs_bt and res.bt_pred is None:
        raise ValueError(
            f"{where}: measure {res.measure} is fitted on a transformed scale but bt_pred is None; "
            "the plot needs the back-transformed pooled estimate"
        )
    if not studies_shown:
        check_pooled(where, res, scale)
        return
    s = res.studies
    if s is None or len(s.study) == 0:
        raise ValueError(
            f"{where} has no study rows (MetaResult.studies is "
            f"{'None' if s is None else 'empty'}); a forest plot shows studies, not only a pooled estimate"
        )
    k = len(s.study)
    for fname in ("yi", "vi", "weight", "estimate", "ci_lb", "ci_ub", "events", "n"):
        values = getattr(s, fname)
        if values is not None and len(values) != k:
            raise ValueError(f"{where}: StudyRows.{fname} has {len(values)} entries for {k} studies")
    if res.k != k:
        raise ValueError(f"{where}: k = {res.k} but StudyRows has {k} studies")
    if (s.events is None) != (s.n is None):
        raise ValueError(
            f"{where}: StudyRows has {'events' if s.n is None else 'n'} without {'n' if s.n is None else 'events'}"
        )
    for i, label in enumerate(s.study):
        if not isinstance(label, str) or not label.strip():
            raise ValueError(f"{where}: study row {i + 1} has label {label!r}; a non-empty string is needed")
        check_interval(f"{where}, study {label!r}", s.estimate[i], s.ci_lb[i], s.ci_ub[i], scale)
        w = s.weight[i]
        if not (isinstance(w, (int, float)) and math.isfinite(w) and w >= 0):
            raise ValueError(f"{where}, study {label!r}: weight = {w!r} must be a finite percentage >= 0")
        if s.events is not None:
            e, n = s.events[i], s.n[i]
            if not (0 <= e <= n and n > 0):
                raise ValueError(f"{where}, study {label!r}: events/n = {e}/{n} is not a valid count")
    if res.k >= 2:
        check_pooled(where, res, scale)


def check_pooled(where: str, res: Fit, scale: Scale) -> None:
    if res.k >= 2:
        lb, ub, pi_lb, pi_ub = res.reporting_interval()
        check_interval(f"{where}, pooled estimate", res.estimate, lb, ub, scale)
        if (pi_lb is None) != (pi_ub is None):
            raise ValueError(f"{where}: only one end of the prediction interval is given")
        if pi_lb is not None:
            check_interval(f"{where}, prediction interval", res.estimate, pi_lb, pi_ub, scale)


def check_interval(where: str, est, lb, ub, scale: Scale) -> None:
    for fname, v in (("estimate", est), ("ci_lb", lb), ("ci_ub", ub)):
        if v is None or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"{where}: {fname} = {v!r} is not a finite number")
    if not (lb - _TOL <= est <= ub + _TOL):
        raise ValueError(f"{where}: estimate {est} lies outside its interval [{lb}, {ub}]")
    if scale.family == "proportion" and not (-_TOL <= lb and ub <= 1 + _TOL):
        raise ValueError(
            f"{where}: interval [{lb}, {ub}] is not a proportion in [0, 1]; "
            "is it still on the transformed (e.g. logit) scale?"
        )
    if scale.log and lb <= 0:
        raise ValueError(
            f"{where}: lower limit {lb} is not positive, so it cannot be drawn on a log axis; "
            "ratios must be back-transformed (exp) before plotting"
        )


# --------------------------------------------------------------------------- axis
def _nice_log_ticks(lo: float, hi: float) -> list[float]:
    """1-2-5 ticks covering [lo, hi] and 1; decades only when that would crowd the axis."""
    lo, hi = min(lo, 1.0), max(hi, 1.0)
    steps = [m * 10.0**e for e in range(-6, 7) for m in (1, 2, 5)]
    start = max([t for t in steps if t <= lo * (1 + 1e-12)], default=steps[0])
    stop = min([t for t in steps if t >= hi * (1 - 1e-12)], default=steps[-1])
    ticks = [t for t in steps if start <= t <= stop]
    if len(ticks) > 7:
        first = 10.0 ** math.floor(math.log10(lo) + 1e-12)
        last = 10.0 ** math.ceil(math.log10(hi) - 1e-12)
        ticks = [t for t in steps if first <= t <= last and t == 10.0 ** round(math.log10(t))]
    return ticks


def tick_label(t: float) -> str:
    return f"{t:g}".replace("-", "−")


def axis(
    values: list[float], scale: Scale, xlim: tuple[float, float] | None = None
) -> tuple[list[float], tuple[float, float]]:
    """Ticks and limits covering every CI and prediction interval drawn (`values`, on the shown
    scale), or the caller's `xlim` (intervals beyond it run off the plot's edge)."""
    if xlim is not None:
        lo, hi = map(float, xlim)
        if not lo < hi or (scale.log and lo <= 0):
            raise ValueError(
                f"xlim = {xlim!r} must be (low, high) with low < high{' and low > 0' if scale.log else ''}"
            )
        if scale.log:
            return [t for t in _nice_log_ticks(lo, hi) if lo <= t <= hi], (lo, hi)
        ticks = [float(t) for t in MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]).tick_values(lo, hi)]
        return [t for t in ticks if lo - 1e-9 <= t <= hi + 1e-9], (lo, hi)
    if scale.family == "proportion":
        top = scale.factor
        ticks = [top * v for v in (0, 0.2, 0.4, 0.6, 0.8, 1.0)]
        pad = 0.03 * top  # room for half a square at 0 % or 100 %
        return ticks, (-pad, top + pad)
    lo, hi = min(values), max(values)
    if scale.log:
        ticks = _nice_log_ticks(lo, hi)
        # keep the reference line at 1 off the frame's edge
        if ticks[0] == 1.0:
            ticks.insert(0, 0.5)
        if ticks[-1] == 1.0:
            ticks.append(2.0)
        return ticks, (ticks[0], ticks[-1])
    lo, hi = min(lo, 0.0), max(hi, 0.0)  # the reference line at 0 is always in view
    ticks = [float(t) for t in MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]).tick_values(lo, hi)]
    first = max(t for t in ticks if t <= lo)
    last = min(t for t in ticks if t >= hi)
    ticks = [t for t in ticks if first <= t <= last]
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    # the line of no effect stands inside the frame, not on its edge where it reads as the axis
    if ticks[0] == 0.0:
        ticks.insert(0, -step)
    if ticks[-1] == 0.0:
        ticks.append(step)
    return ticks, (ticks[0], ticks[-1])
