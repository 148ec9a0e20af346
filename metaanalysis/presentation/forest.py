"""Forest plots of fitted results, built on the `forestplot` package.

The plot takes results, never raw data: a `MetaResult` or a `SubgroupResult` (one fit per
regimen class plus the test for subgroup differences). Every number drawn is read from the
result; nothing is estimated here. The work is split by responsibility:

- `forest_scale`: percent / ratio / difference scale, the x axis, checks on the numbers;
- `forest_rows`: study labels and order, square sizes on one scale, the table's text columns;
- `forest_text`: model names, heterogeneity, subgroup test, the method footnote;
- `forest_draw`: forestplot's table plus diamonds, prediction bars, rules, labels, layout.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator
from matplotlib.transforms import blended_transform_factory, offset_copy

from metaanalysis.engine.results import Fit, SubgroupResult
from metaanalysis.presentation import forest_draw as draw
from metaanalysis.presentation.forest_draw import fp  # noqa: F401  (forestplot, imported with its side effects undone)
from metaanalysis.presentation.forest_rows import (
    NBSP,
    SORT_KEYS,
    Row,
    absolute_weights,
    beside_rows,
    check_study_labels,
    fit_rows,
    frame_of,
    group_fits,
    square_areas,
    table_columns,
)
from metaanalysis.presentation.forest_scale import PROPORTION_MEASURES, RATIO_MEASURES, axis, check_fit, scale_of
from metaanalysis.presentation.forest_text import footnote, subgroup_lines, wrap

__all__ = ["forest_plot", "save_forest", "PROPORTION_MEASURES", "RATIO_MEASURES", "SORT_KEYS", "NBSP"]


def forest_plot(
    result: Fit | SubgroupResult,
    *,
    title: str | None = None,
    percent: bool | None = None,
    xlabel: str | None = None,
    show_prediction: bool = True,
    group_labels: Mapping[str, str] | None = None,
    study_labels: Mapping[str, str] | None = None,
    sort_by: str | None = None,
    xlim: tuple[float, float] | None = None,
    columns: tuple[str, ...] | None = None,
    arm_names: tuple[str, str] | None = None,
    arm_counts: Mapping | None = None,
    favours: tuple[str, str] | None = None,
    beside: Mapping | None = None,
    beside_label: str | None = None,
    subgroup_text: list[str] | None = None,
    ax=None,
) -> Figure:
    """A forest plot of `result`: studies, class subtotals, heterogeneity, subgroup test.

    - `percent` defaults to True for proportions and risk differences (percentage points);
      ratios (OR, RR, or transform "exp") get a log axis with a line of no effect at 1,
      differences one at 0.
    - `group_labels` maps class keys to the labels shown; `study_labels` maps the results' study
      labels to what the plot prints (citations such as "Thieblemont 2023").
    - `sort_by`: None (as given), "year" (read from the citation label), "estimate" or "weight",
      within each group. `xlim` fixes the axis; `columns` picks from ("events", "estimate",
      "weight").
    - Two-arm comparisons: `arm_names` = (experimental, control) and `arm_counts` = {study or
      (group key, study): (events_exp, n_exp, events_ctrl, n_ctrl)} print events/total per arm;
      `favours` = (left, right) labels either side of the line of no effect.
    - Square areas are proportional to weight on one scale across the whole plot.
    - `beside` = {group key: fit}: a second model's pooled estimate drawn under the class's own
      (e.g. the Bayesian model beside the GLMM for classes with few studies); `beside_label`
      names its row (bold when it says "primary"); each alternative carries its own heterogeneity.
    - `subgroup_text`: the lines under the plot about subgroup differences, when the caller has a
      test to name (the review's: GLMM Q beside the permutation test); default: the Q of `result`.

    With `ax=None` the figure is sized to its content and detached from pyplot (no global state
    is left behind); with an `ax`, the plot is drawn there and the figure keeps its size.
    """
    if sort_by not in SORT_KEYS:
        raise ValueError(f"sort_by = {sort_by!r}; choose one of {SORT_KEYS}")
    if (arm_names is None) != (arm_counts is None):
        raise ValueError("arm_names and arm_counts go together: both or neither")
    study_labels = dict(study_labels or {})
    fits, sub = group_fits(result, group_labels)
    shown = [(key or "result", res) for key, _, res in fits]
    overall = [("overall", sub.overall)] if sub is not None and sub.overall is not None else []
    scale = scale_of(shown + overall, percent)
    for name, res in shown:
        check_fit("" if name == "result" else name, res, scale)
    check_study_labels(fits, study_labels)
    for name, res in overall:
        if res.k < 2:
            raise ValueError("SubgroupResult.overall has k < 2: there is no overall estimate to draw")
        if "overall" in [lab.strip().lower() for _, lab, _ in fits]:
            raise ValueError("a group is labelled 'Overall', which is the header of the overall estimate")
        check_fit(name, res, scale, studies_shown=False)

    weights, weight_note = absolute_weights(fits)
    areas = square_areas(weights)
    rows: list[Row] = []
    grouped = sub is not None
    options = dict(study_labels=study_labels, sort_by=sort_by, arm_counts=arm_counts)
    for n_fit, (key, label, res) in enumerate(fits):
        group_rows = fit_rows(res, scale, areas[n_fit], show_prediction, label, group_key=key, **options)
        other = (beside or {}).get(key or "result")
        if other is not None and res.k >= 2:  # after the class's own estimate, PI and heterogeneity
            group_rows += beside_rows(other, scale, label, beside_label)
        rows += [replace(r, indent=grouped) for r in group_rows]
        if grouped and n_fit < len(fits) - 1:
            rows.append(Row("blank", group=label))
    if all(res.k < 2 for _, _, res in fits):  # nothing pooled anywhere: the footnote says so once
        rows = [r for r in rows if not (r.kind == "text" and r.text == "k = 1: not pooled")]
    if subgroup_text is not None:
        closing_lines = list(subgroup_text) if len(fits) > 1 else []
    else:
        closing_lines = subgroup_lines(sub) if sub is not None and len(fits) > 1 else []
    if sub is not None and (sub.overall is not None or closing_lines):
        # The closing lines belong to the last class (or to "Overall"): forestplot needs a group
        # for every row, and a blank group header would collide with the blank row labels.
        closing = fits[-1][1]
        rows.append(Row("blank", group=closing))
        if sub.overall is not None:
            closing = "Overall"
            no_areas = [float("nan")] * len(sub.overall.studies.study)  # its study rows are not drawn again
            rows += [
                replace(r, indent=True)
                for r in fit_rows(
                    sub.overall, scale, no_areas, show_prediction, closing, group_key="overall", **options
                )
                if r.kind != "study"
            ]
            rows.append(Row("blank", group=closing))
        rows += [Row("text", text=line, group=closing) for line in closing_lines]
    columns_ = table_columns(
        scale, with_events=any(res.studies.events is not None for _, res in shown), arm_names=arm_names, columns=columns
    )
    if not any(r.weight for r in rows):  # nothing pooled: a weight column would stay empty
        columns_ = [c for c in columns_ if c[0] != "weight"]
    ticks, limits = axis([v for r in rows for v in r.numbers], scale, xlim)
    frame = frame_of(rows, columns_, scale.decimals)
    fig = _draw(
        frame,
        rows,
        grouped,
        columns_,
        scale,
        ticks,
        limits,
        xlabel,
        ax,
        title,
        footnote(fits, sub, show_prediction, weight_note, beside),
        favours,
    )
    return fig


def _draw(
    frame: pd.DataFrame,
    rows: list[Row],
    grouped: bool,
    columns,
    scale,
    ticks,
    limits,
    xlabel,
    ax,
    title: str | None,
    foot_text: str,
    favours: tuple[str, str] | None,
) -> Figure:
    own_figure = ax is None
    if own_figure:
        # At 72 dpi one pixel is one point: forestplot measures label widths in pixels and
        # uses them as a tick pad in points, which only agree at this resolution.
        fig = plt.figure(figsize=(8.0, draw.ROW_HEIGHT_IN * (len(frame) + 4) + 1.5), dpi=72, facecolor="white")
        ax = fig.add_axes((0.5, 0.2, 0.4, 0.7))
    else:
        fig = ax.figure
        if getattr(fig, "number", None) in plt.get_fignums():
            plt.sca(ax)  # forestplot measures text through plt.gcf(): make it this figure
    with matplotlib.rc_context({"font.family": "DejaVu Sans", "axes.unicode_minus": False}):
        drawn, ax = draw.draw_table(
            frame, grouped, columns, scale, ticks, limits, scale.xlabel if xlabel is None else xlabel, ax
        )
        ypos = {int(rid): float(y) for y, rid in enumerate(drawn["row_id"]) if not pd.isna(rid)}
        n_rows = len(drawn)
        ax.set_ylim(-0.6, n_rows - 0.4)
        ax.xaxis.set_minor_locator(NullLocator())
        ax.tick_params(axis="x", width=0.8, length=3, labelsize=draw.FONTSIZE)
        ax.spines["bottom"].set_linewidth(0.8)
        # light vertical lines at the ticks, behind every mark, as R meta and RevMan draw them
        ax.set_axisbelow(True)
        ax.xaxis.grid(True, which="major", color="0.88", linewidth=0.5, linestyle="-")
        ax.yaxis.grid(False)
        for tick_label in ax.get_yticklabels():
            tick_label.set_parse_math(False)  # a '$' in a study label is a dollar, not mathtext
        for i, r in enumerate(rows):  # pooled rows in bold, as in R meta and RevMan
            if r.bold:
                ax.get_yticklabels()[int(ypos[i])].set_fontweight("bold")

        offset = draw.text_offset_pts(fig, ax)
        label_transform = offset_copy(
            blended_transform_factory(ax.transAxes, ax.transData), fig=fig, x=-offset, y=0, units="points"
        )
        draw.draw_summaries(ax, rows, ypos, label_transform)

        below = draw.below_axis_pts(fig, ax)
        if favours is not None:
            draw.favours(ax, scale, favours, below)
            below += draw.FAVOURS_PTS
        if draw.legend(ax, rows, offset, below):
            below += draw.LEGEND_PTS
        if n_rows >= draw.TALL_ROWS:
            draw.header_ticks(ax, ticks, n_rows)
        width_in = draw.MARGIN_IN + offset / 72 + draw.PLOT_WIDTH_IN + 0.35 if own_figure else fig.get_figwidth()
        chars = int((width_in - 2 * draw.MARGIN_IN) * 72 / (0.56 * (draw.FONTSIZE - 1)))  # ~average glyph width
        foot = "\n".join(wrap(foot_text, chars))
        title_text = "\n".join(wrap(title, int(chars * 0.7))) if title else ""
        if own_figure:
            draw.layout(fig, ax, n_rows, width_in, offset, below, title_text, foot)
        draw.annotate(ax, offset, below, title_text, foot)
        draw.rules(fig, ax, n_rows, offset)
    if own_figure:
        fig.set_dpi(matplotlib.rcParams["figure.dpi"])  # the layout is in points: unchanged
        plt.close(fig)  # detach from pyplot: the caller owns the figure, pyplot keeps no reference
    return fig


def save_forest(fig: Figure, path_without_suffix, *, reuse_from: Path | None = None) -> list[Path]:
    """Write `<path>.png` (300 dpi), `<path>.svg` and `<path>.pdf`; return the three paths.

    SVG and PDF keep text as text (editable in Inkscape or Illustrator; fonts embedded in the
    PDF) and carry no date, so re-running an unchanged analysis rewrites identical files.
    `reuse_from`: a folder of intact earlier output (the previous run's figures). Where its
    SVG of the same name is byte-identical to this one, the figure is the same drawing (the
    SVG holds every mark and string, and matplotlib's version), so its PNG and PDF are copied
    rather than rendered again: most of a re-run's time went into rasterising and into
    subsetting fonts for PDFs of figures that had not changed.
    """
    base = Path(path_without_suffix)
    if base.suffix.lower() in (".png", ".svg", ".pdf"):
        raise ValueError(f"save_forest takes a path without suffix, got {str(base)!r}")
    base.parent.mkdir(parents=True, exist_ok=True)
    png, svg, pdf = (Path(f"{base}.{ext}") for ext in ("png", "svg", "pdf"))
    common = dict(bbox_inches="tight", pad_inches=0.08, facecolor="white")
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "metaanalysis-forest", "pdf.fonttype": 42}):
        buf = io.BytesIO()
        fig.savefig(buf, format="svg", metadata={"Date": None}, **common)
        svg.write_bytes(buf.getvalue())
        if reuse_from is not None and _same_drawing(buf.getvalue(), Path(reuse_from) / base.name):
            for path in (png, pdf):
                shutil.copyfile(Path(reuse_from) / path.name, path)
            return [png, svg, pdf]
        fig.savefig(png, dpi=300, format="png", **common)
        fig.savefig(pdf, format="pdf", metadata={"CreationDate": None, "ModDate": None}, **common)
    return [png, svg, pdf]


def _same_drawing(svg: bytes, earlier: Path) -> bool:
    """Whether `earlier`.svg holds these bytes and its PNG and PDF are there to copy."""
    old_svg, old_png, old_pdf = (Path(f"{earlier}.{ext}") for ext in ("svg", "png", "pdf"))
    if not (old_svg.is_file() and old_png.is_file() and old_pdf.is_file()):
        return False
    return old_svg.read_bytes() == svg
