"""Forest plots of fitted results, built on the `forestplot` package.

The plot takes results, never raw data: a `MetaResult` or a `SubgroupResult`
(one fit per regimen class plus the test for subgroup differences). Every
number drawn is read from the result; nothing is estimated here.

Division of labour. `forestplot.forestplot` draws the table (study label,
events/N, estimate [CI], weight; class headers in bold) and the study rows
(CI line and square, the square's area passed per row as a column name, which
matplotlib's `scatter(data=...)` resolves). It has no notion of pooled rows,
so this module adds on the same axes: the subtotal diamonds, prediction
interval bars, heterogeneity lines, the test for subgroup differences, the
horizontal rules, the title and the method footnote.

Two facts about forestplot 0.4.1 shape the code below:
- its y axis is categorical on the full label string, so two identical labels
  would share one row; blank rows and repeated study names are made unique
  with trailing no-break spaces (invisible in the monospace font);
- importing it sets `warnings.filterwarnings("ignore")` and
  `numpy.seterr(all="ignore")` for the whole process; both are restored here,
  so that the statistics engine keeps its warnings.
"""
from __future__ import annotations

import math
import textwrap
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Polygon, Rectangle
from matplotlib.ticker import MaxNLocator, NullLocator
from matplotlib.transforms import blended_transform_factory, offset_copy

from metaanalysis.engine.results import MetaResult, SubgroupResult

_np_err = np.geterr()
with warnings.catch_warnings():
    import forestplot as fp
np.seterr(**_np_err)
del _np_err

PROPORTION_MEASURES = frozenset({"PR", "PLO", "PAS", "PFT", "GLMM"})
RATIO_MEASURES = frozenset({"OR", "RR"})

TAU2_METHOD_NAMES = {
    "DL": "DerSimonian-Laird", "HE": "Hedges", "HS": "Hunter-Schmidt", "SJ": "Sidik-Jonkman",
    "ML": "ML", "REML": "REML", "EB": "empirical Bayes", "PM": "Paule-Mandel",
}
RATIO_NAMES = {"OR": ("OR", "Odds ratio"), "RR": ("RR", "Risk ratio")}

# Layout, in inches and points. 8 pt text on 0.2 in rows reads well at print size.
FONT_MONO = "DejaVu Sans Mono"  # ships with matplotlib: the column alignment never depends on the host
FONTSIZE = 8
ROW_HEIGHT_IN = 0.2
PLOT_WIDTH_IN = 3.0
MARGIN_IN = 0.15
MAX_SQUARE_AREA = 70.0   # points^2, the square of the largest weight in the figure
MIN_SQUARE_AREA = 5.0    # so that a study with a tiny weight remains visible
NBSP = "\u00a0"
_TOL = 1e-9              # slack when checking that an estimate lies inside its CI


# --------------------------------------------------------------------------- scale
@dataclass(frozen=True)
class _Scale:
    """How the reporting-scale numbers are shown: unit, axis, reference line, text."""

    family: str            # proportion | ratio | difference
    factor: float          # 100 for percent
    log: bool
    xline: float | None
    decimals: int
    est_header: str
    xlabel: str


def _family(res: MetaResult) -> str:
    if res.measure in PROPORTION_MEASURES:
        return "proportion"
    if res.measure in RATIO_MEASURES or res.transform == "exp":
        return "ratio"
    return "difference"


def _scale(fits: Sequence[tuple[str, MetaResult]], percent: bool | None) -> _Scale:
    families = {name: _family(res) for name, res in fits}
    if len(set(families.values())) > 1:
        listing = ", ".join(f"{name!r}: {res.measure}" for name, res in fits)
        raise ValueError(f"cannot draw proportions, ratios and differences on one axis; measures are {listing}")
    family = next(iter(families.values()))
    levels = {res.level for _, res in fits}
    if len(levels) > 1:
        raise ValueError(f"groups have different confidence levels {sorted(levels)}; one column header "
                         "cannot describe them")
    measures = {res.measure for _, res in fits}
    pct = int(round(fits[0][1].level * 100))
    if family == "proportion":
        use_pct = True if percent is None else bool(percent)
        return _Scale("proportion", 100.0 if use_pct else 1.0, False, None, 1 if use_pct else 3,
                      f"{'Proportion %' if use_pct else 'Proportion'} [{pct}% CI]",
                      "Proportion (%)" if use_pct else "Proportion")
    if percent:
        raise ValueError(f"percent=True is only meaningful for proportion measures "
                         f"({', '.join(sorted(PROPORTION_MEASURES))}); got {', '.join(sorted(measures))}")
    if family == "ratio":
        only = next(iter(measures)) if len(measures) == 1 else None
        short, long = RATIO_NAMES.get(only, ("Ratio", "Ratio"))
        return _Scale("ratio", 1.0, True, 1.0, 2, f"{short} [{pct}% CI]", f"{long} (log scale)")
    if measures == {"RD"}:
        return _Scale("difference", 1.0, False, 0.0, 3, f"RD [{pct}% CI]", "Risk difference")
    return _Scale("difference", 1.0, False, 0.0, 2, f"Estimate [{pct}% CI]", "Estimate")


# --------------------------------------------------------------------------- checks
def _check_fit(name: str, res: MetaResult, scale: _Scale, *, studies_shown: bool = True) -> None:
    """Refuse what would draw a wrong picture; name the class, study and field."""
    where = f"group {name!r}" if name else "the result"
    needs_bt = scale.family == "ratio" or (scale.family == "proportion" and res.measure != "PR")
    if needs_bt and res.bt_pred is None:
        raise ValueError(f"{where}: measure {res.measure} is fitted on a transformed scale but bt_pred is None; "
                         "the plot needs the back-transformed pooled estimate")
    if not studies_shown:
        _check_pooled(where, res, scale)
        return
    s = res.studies
    if s is None or len(s.study) == 0:
        raise ValueError(f"{where} has no study rows (MetaResult.studies is "
                         f"{'None' if s is None else 'empty'}); a forest plot shows studies, not only a pooled estimate")
    k = len(s.study)
    for fname in ("yi", "vi", "weight", "estimate", "ci_lb", "ci_ub", "events", "n"):
        values = getattr(s, fname)
        if values is not None and len(values) != k:
            raise ValueError(f"{where}: StudyRows.{fname} has {len(values)} entries for {k} studies")
    if res.k != k:
        raise ValueError(f"{where}: k = {res.k} but StudyRows has {k} studies")
    if (s.events is None) != (s.n is None):
        raise ValueError(f"{where}: StudyRows has {'events' if s.n is None else 'n'} without "
                         f"{'n' if s.n is None else 'events'}")
    for i, label in enumerate(s.study):
        if not isinstance(label, str) or not label.strip():
            raise ValueError(f"{where}: study row {i + 1} has label {label!r}; a non-empty string is needed")
        _check_interval(f"{where}, study {label!r}", s.estimate[i], s.ci_lb[i], s.ci_ub[i], scale)
        w = s.weight[i]
        if not (isinstance(w, (int, float)) and math.isfinite(w) and w >= 0):
            raise ValueError(f"{where}, study {label!r}: weight = {w!r} must be a finite percentage >= 0")
        if s.events is not None:
            e, n = s.events[i], s.n[i]
            if not (0 <= e <= n and n > 0):
                raise ValueError(f"{where}, study {label!r}: events/n = {e}/{n} is not a valid count")
    if res.k >= 2:
        _check_pooled(where, res, scale)


def _check_pooled(where: str, res: MetaResult, scale: _Scale) -> None:
    if res.k >= 2:
        lb, ub, pi_lb, pi_ub = res.reporting_interval()
        _check_interval(f"{where}, pooled estimate", res.estimate, lb, ub, scale)
        if (pi_lb is None) != (pi_ub is None):
            raise ValueError(f"{where}: only one end of the prediction interval is given")
        if pi_lb is not None:
            _check_interval(f"{where}, prediction interval", res.estimate, pi_lb, pi_ub, scale)


def _check_interval(where: str, est, lb, ub, scale: _Scale) -> None:
    for fname, v in (("estimate", est), ("ci_lb", lb), ("ci_ub", ub)):
        if v is None or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"{where}: {fname} = {v!r} is not a finite number")
    if not (lb - _TOL <= est <= ub + _TOL):
        raise ValueError(f"{where}: estimate {est} lies outside its interval [{lb}, {ub}]")
    if scale.family == "proportion" and not (-_TOL <= lb and ub <= 1 + _TOL):
        raise ValueError(f"{where}: interval [{lb}, {ub}] is not a proportion in [0, 1]; "
                         "is it still on the transformed (e.g. logit) scale?")
    if scale.log and lb <= 0:
        raise ValueError(f"{where}: lower limit {lb} is not positive, so it cannot be drawn on a log axis; "
                         "ratios must be back-transformed (exp) before plotting")


def _fits(result, group_labels) -> tuple[list[tuple[str, str, MetaResult]], SubgroupResult | None]:
    """(key, display label, fit) per class, in the result's order."""
    if isinstance(result, MetaResult):
        if group_labels:
            raise ValueError("group_labels was given but the result has no groups (a single MetaResult)")
        return [("", "", result)], None
    if not isinstance(result, SubgroupResult):
        raise TypeError(f"forest_plot takes a MetaResult or SubgroupResult, not {type(result).__name__}")
    if not result.groups:
        raise ValueError("SubgroupResult.groups is empty: there is no group to plot")
    # group_labels may be a whole vocabulary (vocabulary.regimen_labels()): keys without a
    # class in this result are simply unused; a class without a key keeps its key as label.
    group_labels = dict(group_labels or {})
    out = []
    for key, res in result.groups.items():
        if not isinstance(res, MetaResult):
            raise TypeError(f"group {key!r}: expected a MetaResult, got {type(res).__name__}")
        label = str(group_labels.get(key, key))
        if not label.strip():
            raise ValueError(f"group {key!r} has an empty label")
        out.append((key, label, res))
    labels = [lab.strip().lower() for _, lab, _ in out]
    if len(set(labels)) != len(labels):
        raise ValueError(f"two groups share one label (case-insensitive): {[lab for _, lab, _ in out]}")
    for key, label, res in out:
        if res.studies is not None:
            clash = [s for s in res.studies.study if s.strip().lower() in labels]
            if clash:
                raise ValueError(f"group {key!r}: study label(s) {clash} equal a group label; forestplot would "
                                 "draw them as group headers. Rename the study or the group label")
    return out, result


# --------------------------------------------------------------------------- rows
@dataclass
class _Row:
    kind: str                      # header-less kinds: study | pooled | pi | text | blank
    label: str = ""
    events_n: str = ""
    numbers: tuple = ()            # (est, lb, ub) or (lb, ub) for pi, already scaled
    weight: str = ""
    area: float = float("nan")
    text: str = ""                 # drawn by this module over a blank table row
    bold: bool = False
    group: str = ""
    indent: bool = False           # text lines inside a class align with its study labels


def _model_label(res: MetaResult) -> str:
    if res.method == "GLMM":
        return "Random-effects model (GLMM)"
    if res.method == "MH":
        return "Common-effect model (MH)"
    if res.method == "FE":
        return "Common-effect model"
    return "Random-effects model"


def _fmt_p(p: float | None) -> str:
    if p is None or not math.isfinite(p):
        return "p = NA"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _fmt_tau2(t: float) -> str:
    if t == 0:
        return "0"
    return "< 0.0001" if t < 1e-4 else f"{t:.4f}"


def _heterogeneity(res: MetaResult) -> str:
    parts = []
    if res.tau2 is not None and res.method not in ("FE", "MH"):   # a common-effect fit estimates no tau^2
        parts.append(f"τ² = {_fmt_tau2(res.tau2)}")
    if res.I2 is not None:
        parts.append(f"I² = {res.I2:.1f}%")
    if res.QE is not None:
        # the GLMM's QE is metafor's Wald-type test, not Cochran's Q
        name = "Wald Q" if res.method == "GLMM" else "Q"
        parts.append(f"{name} = {res.QE:.2f} (df = {res.k - 1}), {_fmt_p(res.QEp)}")
    return "Heterogeneity: " + ("; ".join(parts) if parts else "not estimated")


def _fit_rows(res: MetaResult, scale: _Scale, wmax: float, show_prediction: bool, group: str) -> list[_Row]:
    s = res.studies
    f = scale.factor
    rows = []
    for i, label in enumerate(s.study):
        area = max(MIN_SQUARE_AREA, MAX_SQUARE_AREA * s.weight[i] / wmax) if wmax > 0 else MIN_SQUARE_AREA
        rows.append(_Row("study", label=label, group=group,
                         events_n="" if s.events is None else f"{s.events[i]}/{s.n[i]}",
                         numbers=(s.estimate[i] * f, s.ci_lb[i] * f, s.ci_ub[i] * f),
                         weight=f"{s.weight[i]:.1f}%", area=area))
    if res.k < 2:
        rows.append(_Row("text", text="k = 1: not pooled", group=group))
        return rows
    lb, ub, pi_lb, pi_ub = res.reporting_interval()
    rows.append(_Row("pooled", label=_model_label(res), group=group, bold=True,
                     numbers=(res.estimate * f, lb * f, ub * f), weight="100.0%"))
    if show_prediction and pi_lb is not None:
        rows.append(_Row("pi", label="Prediction interval", group=group, numbers=(pi_lb * f, pi_ub * f)))
    rows.append(_Row("text", text=_heterogeneity(res), group=group))
    return rows


def _subgroup_lines(sub: SubgroupResult) -> list[str]:
    if sub.Qbetween is None:
        lines = ["Test for subgroup differences: not computed"]
    else:
        lines = [f"Test for subgroup differences: Q = {sub.Qbetween:.2f}, df = {sub.Qbetween_df}, "
                 f"{_fmt_p(sub.Qbetween_p)}"]
    if sub.QM_common_tau2 is not None:
        lines.append(f"  (meta-regression, common τ²: QM = {sub.QM_common_tau2:.2f}, {_fmt_p(sub.QMp_common_tau2)})")
    return lines


def _format_numbers(rows: list[_Row], decimals: int) -> dict[int, str]:
    """'45.5 [16.7, 76.6]' with the brackets aligned down the column."""
    def num(x: float) -> str:
        text = f"{x:.{decimals}f}"
        return text.lstrip("-") if float(text) == 0 else text   # no "-0.000"

    triples = [(num(r.numbers[0]), num(r.numbers[1]), num(r.numbers[2])) for r in rows if len(r.numbers) == 3]
    pis = [(num(r.numbers[0]), num(r.numbers[1])) for r in rows if len(r.numbers) == 2]
    we = max((len(t[0]) for t in triples), default=0)
    wl = max([len(t[1]) for t in triples] + [len(p[0]) for p in pis], default=0)
    wu = max([len(t[2]) for t in triples] + [len(p[1]) for p in pis], default=0)
    out = {}
    for i, r in enumerate(rows):
        if len(r.numbers) == 3:
            e, lo, hi = (num(v) for v in r.numbers)
            out[i] = f"{e:>{we}} [{lo:>{wl}}, {hi:>{wu}}]"
        elif len(r.numbers) == 2:
            lo, hi = (num(v) for v in r.numbers)
            out[i] = f"{'':>{we}} [{lo:>{wl}}, {hi:>{wu}}]"
    return out


def _columns(with_events: bool, scale: _Scale) -> list[tuple[str, str]]:
    """(column, header) of the table, left to right after the study label."""
    events = [("events_n", "Events/N")] if with_events else []
    return events + [("est_ci", scale.est_header), ("weight", "Weight")]


def _frame(rows: list[_Row], columns: list[tuple[str, str]], decimals: int) -> pd.DataFrame:
    est_text = _format_numbers(rows, decimals)
    texts = {"events_n": [r.events_n for r in rows], "weight": [r.weight for r in rows],
             "est_ci": [est_text.get(i, "") for i in range(len(rows))]}
    for col, header in columns:
        if col != "est_ci":   # counts and weights right-aligned under their header
            width = max(len(header), *(len(t) for t in texts[col]))
            texts[col] = [t.rjust(width) for t in texts[col]]
    seen: set[str] = set()
    records = []
    for i, r in enumerate(rows):
        label = r.label
        while not label or label in seen:   # unique, non-empty category
            label += NBSP
        seen.add(label)
        est = r.numbers if r.kind == "study" else (np.nan,) * 3
        records.append(dict(row_id=i, label=label, group=r.group,
                            **{col: texts[col][i] for col, _ in columns},
                            estimate=est[0], ci_lb=est[1], ci_ub=est[2], marker_area=r.area))
    return pd.DataFrame.from_records(records)


# --------------------------------------------------------------------------- axis
def _nice_log_ticks(lo: float, hi: float) -> list[float]:
    """1-2-5 ticks covering [lo, hi] and 1; decades only when that would crowd the axis."""
    lo, hi = min(lo, 1.0), max(hi, 1.0)
    steps = [m * 10.0 ** e for e in range(-6, 7) for m in (1, 2, 5)]
    start = max([t for t in steps if t <= lo * (1 + 1e-12)], default=steps[0])
    stop = min([t for t in steps if t >= hi * (1 - 1e-12)], default=steps[-1])
    ticks = [t for t in steps if start <= t <= stop]
    if len(ticks) > 7:
        first = 10.0 ** math.floor(math.log10(lo) + 1e-12)
        last = 10.0 ** math.ceil(math.log10(hi) - 1e-12)
        ticks = [t for t in steps if first <= t <= last and t == 10.0 ** round(math.log10(t))]
    return ticks


def _tick_label(t: float) -> str:
    return f"{t:g}"


def _axis(rows: list[_Row], scale: _Scale) -> tuple[list[float], tuple[float, float]]:
    """Ticks and limits covering every CI and prediction interval drawn."""
    if scale.family == "proportion":
        top = scale.factor
        ticks = [top * v for v in (0, 0.2, 0.4, 0.6, 0.8, 1.0)]
        pad = 0.03 * top   # room for half a square at 0 % or 100 %
        return ticks, (-pad, top + pad)
    values = [v for r in rows for v in r.numbers]
    lo, hi = min(values), max(values)
    if scale.log:
        ticks = _nice_log_ticks(lo, hi)
        # keep the reference line at 1 off the frame's edge
        if ticks[0] == 1.0:
            ticks.insert(0, 0.5)
        if ticks[-1] == 1.0:
            ticks.append(2.0)
        return ticks, (ticks[0], ticks[-1])
    lo, hi = min(lo, 0.0), max(hi, 0.0)   # the reference line at 0 is always in view
    ticks = [float(t) for t in MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]).tick_values(lo, hi)]
    first = max(t for t in ticks if t <= lo)
    last = min(t for t in ticks if t >= hi)
    ticks = [t for t in ticks if first <= t <= last]
    return ticks, (first, last)


# --------------------------------------------------------------------------- footnote
POOLING_SCALES = {"PLO": "logit", "PAS": "arcsine", "PFT": "Freeman-Tukey double arcsine", "PR": "raw proportions"}


def _method_text(res: MetaResult) -> str:
    if res.method == "GLMM":
        nagq = res.provenance.get("nAGQ")
        text = f"Binomial-normal GLMM (ML{'' if nagq is None else f', nAGQ = {nagq}'}), Wald CI"
    elif res.method == "MH":
        text = "Common effect, Mantel-Haenszel"
    elif res.method == "FE":
        text = "Common effect, inverse variance"
    else:
        ci = {"knha": "Hartung-Knapp-Sidik-Jonkman CI",
              "knha_adhoc": "Hartung-Knapp-Sidik-Jonkman CI (ad hoc variance floor)"}.get(res.test, "Wald z CI")
        text = f"Random effects, {TAU2_METHOD_NAMES.get(res.method, res.method)} τ², {ci}"
    if res.measure in POOLING_SCALES and res.method != "GLMM":
        text += f", pooled on the {POOLING_SCALES[res.measure]} scale"
    return text


def _pi_text(res: MetaResult) -> str:
    if res.pi_method == "metafor":   # metafor: t(k-1) under knha, normal quantile under z
        return "prediction interval t(k-1)" if res.test != "z" else "prediction interval with normal quantile"
    if res.pi_method == "higgins2009":
        return "prediction interval t(k-2) (Higgins et al. 2009)"
    return f"prediction interval: {res.pi_method}"


def _footnote(fits: list[tuple[str, str, MetaResult]], sub: SubgroupResult | None, show_prediction: bool) -> str:
    """Sentences naming how every drawn pooled number was obtained, read from the results."""
    pooled = [(label, res) for _, label, res in fits if res.k >= 2]
    if sub is not None and sub.overall is not None:
        pooled.append(("Overall", sub.overall))
    methods: dict[str, list[str]] = {}   # method sentence -> classes it applies to
    for label, res in pooled:
        text = _method_text(res)
        if show_prediction and res.reporting_interval()[2] is not None:
            text += f"; {_pi_text(res)}"
        methods.setdefault(text, []).append(label)
    if len(methods) == 1:
        parts = list(methods)
    else:
        parts = [f"{', '.join(labels)}: {text}" for text, labels in methods.items()]
    if any(res.k < 2 for _, _, res in fits):
        parts.append("Groups with k = 1 show the single study, not pooled")
    if sub is not None:
        parts.append("Weights are within each group")
        if sub.Qbetween is not None:
            parts.append("Test for subgroup differences with a separate τ² per group")
        parts += [note[:1].upper() + note[1:] for note in sub.notes]
    if any(res.method == "GLMM" for _, res in pooled):
        parts.append("GLMM weights are shares of patients (a GLMM has no inverse-variance weights)")
    return ". ".join(p.rstrip(".") for p in parts) + "."


# --------------------------------------------------------------------------- drawing
def _draw_forestplot(frame: pd.DataFrame, grouped: bool, columns: list[tuple[str, str]], scale: _Scale,
                     ticks: list[float], xlim: tuple[float, float], xlabel: str, ax) -> tuple[pd.DataFrame, object]:
    annote = [col for col, _ in columns]
    # Headers padded like the right-aligned values below them.
    headers = [h if col == "est_ci" else h.rjust(frame[col].str.len().max()) for col, h in columns]
    with warnings.catch_warnings():
        # forestplot labels the categorical y axis with set_yticklabels (one label per category,
        # in order); matplotlib warns because the locator is not a FixedLocator. Row positions
        # are checked against the returned frame in the tests.
        warnings.filterwarnings("ignore", message="set_ticklabels\\(\\) should only be used",
                                category=UserWarning)
        return fp.forestplot(
            frame, estimate="estimate", varlabel="label", ll="ci_lb", hl="ci_ub",
            form_ci_report=False, ci_report=False,
            groupvar="group" if grouped else None, group_order=None,   # order of appearance; its sort is unstable
            logscale=scale.log, annote=annote, annoteheaders=headers,
            rightannote=None, right_annoteheaders=None, pval=None, capitalize=None, starpval=False,
            sort=False, sortby=None, flush=True, decimal_precision=2, figsize=None,
            xticks=ticks, ylabel=None, xlabel=xlabel, yticker2=None, color_alt_rows=False,
            return_df=True, preprocess=True, table=False, ax=ax,
            # forestplot's **kwargs: every one it reads for this layout, set explicitly.
            fontfamily=FONT_MONO, fontsize=FONTSIZE, variable_header="Study", col_spacing=2,
            # a column name: forestplot calls scatter(data=frame), which reads per-row areas from it
            markersize="marker_area", marker="s", markercolor="0.15", markeralpha=1.0,
            lw=1.0, linecolor="0.15",
            xline=scale.xline, xlinestyle="-", xlinecolor="0.45", xlinewidth=0.8,
            nticks=len(ticks), xtick_size=FONTSIZE, xticklabels=[_tick_label(t) for t in ticks], xlim=xlim,
            grouplab_size=FONTSIZE + 0.5, grouplab_fontweight="bold", tableheader_fontweight="bold",
            xlabel_size=FONTSIZE + 0.5, xlabel_fontweight="bold",
        )


def _text_offset_pts(fig: Figure, ax) -> float:
    """Distance in points from the left end of the table labels to the plot's left edge."""
    fig.canvas.draw()   # tick label positions are only known after a draw
    renderer = fig.canvas.get_renderer()
    lefts = [t.get_window_extent(renderer).x0 for t in ax.get_yticklabels() if t.get_text().strip()]
    return (ax.get_window_extent(renderer).x0 - min(lefts)) * 72.0 / fig.dpi


def _draw_summaries(ax, rows: list[_Row], ypos: dict[int, float], label_transform) -> None:
    """Diamonds, prediction bars and text lines: the parts forestplot does not draw.

    Text lines are drawn over blank table rows rather than passed as labels, because
    forestplot pads every label to the longest one and a long line would widen the table.
    """
    for i, r in enumerate(rows):
        y = ypos[i]
        if r.kind == "pooled":
            est, lb, ub = r.numbers
            ax.add_patch(Polygon([(lb, y), (est, y + 0.32), (ub, y), (est, y - 0.32)], closed=True,
                                 facecolor="0.35", edgecolor="0.1", linewidth=0.8, zorder=3))
        elif r.kind == "pi":
            lb, ub = r.numbers
            ax.add_patch(Rectangle((lb, y - 0.12), ub - lb, 0.24, facecolor="#c2463b", edgecolor="#7a1f17",
                                   linewidth=0.6, zorder=3))
        elif r.kind == "text":
            ax.text(0, y, ("  " if r.indent else "") + r.text, transform=label_transform, ha="left",
                    va="center", fontfamily=FONT_MONO, fontsize=FONTSIZE, color="0.15", clip_on=False,
                    zorder=5, parse_math=False,
                    # a long line may run into the plot: mask the reference line behind it
                    bbox=dict(boxstyle="square,pad=0.1", facecolor="white", edgecolor="none"))


def forest_plot(result: MetaResult | SubgroupResult, *, title: str | None = None,
                percent: bool | None = None, xlabel: str | None = None, show_prediction: bool = True,
                group_labels: dict[str, str] | None = None, ax=None) -> Figure:
    """A forest plot of `result`: studies, class subtotals, heterogeneity, subgroup test.

    `percent` defaults to True for proportion measures; ratios (OR, RR, or a
    fit with transform "exp") get a log axis with a reference line at 1,
    differences a reference line at 0. `group_labels` maps class keys to the
    labels shown. With `ax=None` the figure is sized to its content and
    detached from pyplot (no global state is left behind); with an `ax`, the
    plot is drawn there, the figure keeps its size, and title, table and
    footnote extend beyond the axes (save with bbox_inches="tight", as
    `save_forest` does).
    """
    fits, sub = _fits(result, group_labels)
    shown = [(key or "result", res) for key, _, res in fits]
    overall = [("overall", sub.overall)] if sub is not None and sub.overall is not None else []
    scale = _scale(shown + overall, percent)
    for name, res in shown:
        _check_fit("" if name == "result" else name, res, scale)
    for name, res in overall:
        if res.k < 2:
            raise ValueError("SubgroupResult.overall has k < 2: there is no overall estimate to draw")
        if "overall" in [lab.strip().lower() for _, lab, _ in fits]:
            raise ValueError("a group is labelled 'Overall', which is the header of the overall estimate")
        _check_fit(name, res, scale, studies_shown=False)

    wmax = max(max(res.studies.weight) for _, res in shown)
    rows: list[_Row] = []
    grouped = sub is not None
    for n_fit, (_, label, res) in enumerate(fits):
        rows += [replace(r, indent=grouped) for r in _fit_rows(res, scale, wmax, show_prediction, group=label)]
        if grouped and n_fit < len(fits) - 1:
            rows.append(_Row("blank", group=label))
    if sub is not None:
        # The closing lines belong to the last class (or to "Overall"): forestplot needs a group
        # for every row, and a blank group header would collide with the blank row labels.
        closing = fits[-1][1]
        rows.append(_Row("blank", group=closing))
        if sub.overall is not None:
            closing = "Overall"
            rows += [replace(r, indent=True) for r in _fit_rows(sub.overall, scale, wmax, show_prediction,
                                                                  group=closing) if r.kind != "study"]
            rows.append(_Row("blank", group=closing))
        rows += [_Row("text", text=line, group=closing) for line in _subgroup_lines(sub)]
    columns = _columns(any(res.studies.events is not None for _, res in shown), scale)
    ticks, xlim = _axis(rows, scale)
    frame = _frame(rows, columns, scale.decimals)

    own_figure = ax is None
    if own_figure:
        # At 72 dpi one pixel is one point: forestplot measures label widths in pixels and
        # uses them as a tick pad in points, which only agree at this resolution.
        fig = plt.figure(figsize=(8.0, ROW_HEIGHT_IN * (len(frame) + 4) + 1.5), dpi=72, facecolor="white")
        ax = fig.add_axes((0.5, 0.2, 0.4, 0.7))
    else:
        fig = ax.figure
        if getattr(fig, "number", None) in plt.get_fignums():
            plt.sca(ax)   # forestplot measures text through plt.gcf(): make it this figure
    with matplotlib.rc_context({"font.family": "DejaVu Sans", "axes.unicode_minus": False}):
        drawn, ax = _draw_forestplot(frame, grouped, columns, scale, ticks, xlim,
                                     scale.xlabel if xlabel is None else xlabel, ax)
        ypos = {int(rid): float(y) for y, rid in enumerate(drawn["row_id"]) if not pd.isna(rid)}
        n_rows = len(drawn)
        ax.set_ylim(-0.6, n_rows - 0.4)
        ax.xaxis.set_minor_locator(NullLocator())
        ax.tick_params(axis="x", width=0.8, length=3, labelsize=FONTSIZE)
        ax.spines["bottom"].set_linewidth(0.8)
        for tick_label in ax.get_yticklabels():
            tick_label.set_parse_math(False)   # a '$' in a study label is a dollar, not mathtext
        for i, r in enumerate(rows):   # pooled rows in bold, as in R meta and RevMan
            if r.bold:
                ax.get_yticklabels()[int(ypos[i])].set_fontweight("bold")

        offset = _text_offset_pts(fig, ax)
        label_transform = offset_copy(blended_transform_factory(ax.transAxes, ax.transData),
                                      fig=fig, x=-offset, y=0, units="points")
        _draw_summaries(ax, rows, ypos, label_transform)

        below = _below_axis_pts(fig, ax)
        width_in = MARGIN_IN + offset / 72 + PLOT_WIDTH_IN + 0.35 if own_figure else fig.get_figwidth()
        chars = int((width_in - 2 * MARGIN_IN) * 72 / (0.56 * (FONTSIZE - 1)))   # ~average glyph width
        foot = "\n".join(textwrap.wrap(_footnote(fits, sub, show_prediction), width=chars))
        title_text = "\n".join(textwrap.wrap(title, width=int(chars * 0.7))) if title else ""
        if own_figure:
            _layout(fig, ax, n_rows, width_in, offset, below, title_text, foot)
        _annotate(ax, offset, below, title_text, foot)
        _rules(fig, ax, n_rows, offset)
    if own_figure:
        fig.set_dpi(matplotlib.rcParams["figure.dpi"])   # the layout is in points: unchanged
        plt.close(fig)   # detach from pyplot: the caller owns the figure, pyplot keeps no reference
    return fig


def _rules(fig: Figure, ax, n_rows: int, offset_pts: float) -> None:
    """Rules above and below the column headers, across table and plot (forestplot's span the labels only)."""
    width_pts = ax.get_window_extent().width * 72.0 / fig.dpi
    x0 = -offset_pts / width_pts
    trans = blended_transform_factory(ax.transAxes, ax.transData)
    for y, lw in ((n_rows - 0.45, 1.0), (n_rows - 1.5, 0.6)):
        ax.plot([x0, 1.0], [y, y], transform=trans, color="0.1", linewidth=lw, clip_on=False, zorder=4)


def _below_axis_pts(fig: Figure, ax) -> float:
    """Depth in points of the x tick labels and axis label below the plot."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    return (ax.get_window_extent(renderer).y0 - ax.xaxis.label.get_window_extent(renderer).y0) * 72 / fig.dpi


def _layout(fig: Figure, ax, n_rows: int, width_in: float, offset_pts: float, below_pts: float,
            title_text: str, foot: str) -> None:
    """Size the figure to the table, the plot, the title and the footnote."""
    title_pts = (title_text.count("\n") + 1) * (FONTSIZE + 2) * 1.3 + 8 if title_text else 6
    foot_pts = (foot.count("\n") + 1) * (FONTSIZE - 1) * 1.3
    top_in = (title_pts + 6) / 72
    bottom_in = (below_pts + 8 + foot_pts + 6) / 72
    height = top_in + n_rows * ROW_HEIGHT_IN + bottom_in
    fig.set_size_inches(width_in, height)
    ax.set_position(((MARGIN_IN + offset_pts / 72) / width_in, bottom_in / height,
                     PLOT_WIDTH_IN / width_in, n_rows * ROW_HEIGHT_IN / height))


def _annotate(ax, offset_pts: float, below_pts: float, title_text: str, foot: str) -> None:
    """Title above the table and the method footnote below the x axis, both flush with the study labels."""
    if title_text:
        ax.annotate(title_text, xy=(0, 1), xycoords="axes fraction", xytext=(-offset_pts, 8),
                    textcoords="offset points", ha="left", va="bottom", fontsize=FONTSIZE + 2,
                    fontweight="bold", parse_math=False)
    ax.annotate(foot, xy=(0, 0), xycoords="axes fraction", xytext=(-offset_pts, -(below_pts + 8)),
                textcoords="offset points", ha="left", va="top", fontsize=FONTSIZE - 1, color="0.25",
                linespacing=1.3, parse_math=False)


def save_forest(fig: Figure, path_without_suffix) -> list[Path]:
    """Write `<path>.png` (300 dpi) and `<path>.svg`; return both paths.

    The SVG keeps text as paths and carries no date, so re-running an
    unchanged analysis rewrites byte-identical files.
    """
    base = Path(path_without_suffix)
    if base.suffix.lower() in (".png", ".svg", ".pdf"):
        raise ValueError(f"save_forest takes a path without suffix, got {str(base)!r}")
    base.parent.mkdir(parents=True, exist_ok=True)
    png, svg = Path(f"{base}.png"), Path(f"{base}.svg")
    with matplotlib.rc_context({"svg.fonttype": "path", "svg.hashsalt": "metaanalysis-forest"}):
        fig.savefig(png, dpi=300, format="png", bbox_inches="tight", pad_inches=0.08, facecolor="white")
        fig.savefig(svg, format="svg", bbox_inches="tight", pad_inches=0.08, facecolor="white",
                    metadata={"Date": None})
    return [png, svg]


__all__ = ["forest_plot", "save_forest", "PROPORTION_MEASURES", "RATIO_MEASURES"]
