"""Forest plots, part 4: drawing. `forestplot.forestplot` draws the table and the study rows; this
module adds what it has no notion of (diamonds, prediction bars, text lines, rules, "Favours"
labels, title and footnote) and sizes the figure to its content.

Two facts about forestplot 0.4.1 shape the code:
- its y axis is categorical on the full label string, so two identical labels would share one
  row; blank rows and repeated study names are made unique with trailing no-break spaces;
- importing it sets `warnings.filterwarnings("ignore")` and `numpy.seterr(all="ignore")` for the
  whole process; both are restored here, so that the statistics engine keeps its warnings.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Polygon, Rectangle
from matplotlib.transforms import blended_transform_factory

from metaanalysis.presentation.forest_rows import Row
from metaanalysis.presentation.forest_scale import Scale, tick_label

_np_err = np.geterr()
with warnings.catch_warnings():
    import forestplot as fp
np.seterr(**_np_err)
del _np_err

# Layout, in inches and points. 8 pt text on 0.2 in rows reads well at print size.
FONT_MONO = "DejaVu Sans Mono"  # ships with matplotlib: the column alignment never depends on the host
FONTSIZE = 8
ROW_HEIGHT_IN = 0.2
PLOT_WIDTH_IN = 3.0
MARGIN_IN = 0.15
NULL_LINE = dict(color="0.2", linewidth=1.0)  # the line of no effect: dark enough to see at once
# Pooled estimates: a filled diamond for a frequentist fit (a confidence interval), an open one for
# a Bayesian fit (a credible interval), so that the two never pass for each other; the legend
# below the axis says which is which whenever a plot holds a Bayesian diamond.
DIAMOND = dict(facecolor="0.35", edgecolor="0.1", linewidth=0.8)
BAYES_DIAMOND = dict(facecolor="white", edgecolor="0.1", linewidth=1.1)
PI_BAR = dict(facecolor="#c2463b", edgecolor="#7a1f17", linewidth=0.6)


def draw_table(
    frame: pd.DataFrame,
    grouped: bool,
    columns: list[tuple[str, str]],
    scale: Scale,
    ticks: list[float],
    xlim: tuple[float, float],
    xlabel: str,
    ax,
) -> tuple[pd.DataFrame, object]:
    annote = [col for col, _ in columns]
    # Headers padded like the right-aligned values below them.
    headers = [h if col == "est_ci" else h.rjust(frame[col].str.len().max()) for col, h in columns]
    with warnings.catch_warnings():
        # forestplot labels the categorical y axis with set_yticklabels (one label per category,
        # in order); matplotlib warns because the locator is not a FixedLocator.
        warnings.filterwarnings("ignore", message="set_ticklabels\\(\\) should only be used", category=UserWarning)
        return fp.forestplot(
            frame,
            estimate="estimate",
            varlabel="label",
            ll="ci_lb",
            hl="ci_ub",
            form_ci_report=False,
            ci_report=False,
            groupvar="group" if grouped else None,
            group_order=None,  # order of appearance; its sort is unstable
            logscale=scale.log,
            annote=annote,
            annoteheaders=headers,
            rightannote=None,
            right_annoteheaders=None,
            pval=None,
            capitalize=None,
            starpval=False,
            sort=False,
            sortby=None,
            flush=True,
            decimal_precision=2,
            figsize=None,
            xticks=ticks,
            ylabel=None,
            xlabel=xlabel,
            yticker2=None,
            color_alt_rows=False,
            return_df=True,
            preprocess=True,
            table=False,
            ax=ax,
            # forestplot's **kwargs: every one it reads for this layout, set explicitly.
            fontfamily=FONT_MONO,
            fontsize=FONTSIZE,
            variable_header="Study",
            col_spacing=2,
            # a column name: forestplot calls scatter(data=frame), which reads per-row areas from it
            markersize="marker_area",
            marker="s",
            markercolor="0.15",
            markeralpha=1.0,
            lw=1.0,
            linecolor="0.15",
            xline=scale.xline,
            xlinestyle="-",
            xlinecolor=NULL_LINE["color"],
            xlinewidth=NULL_LINE["linewidth"],
            nticks=len(ticks),
            xtick_size=FONTSIZE,
            xticklabels=[tick_label(t) for t in ticks],
            xlim=xlim,
            grouplab_size=FONTSIZE + 0.5,
            grouplab_fontweight="bold",
            tableheader_fontweight="bold",
            xlabel_size=FONTSIZE + 0.5,
            xlabel_fontweight="bold",
        )


def text_offset_pts(fig: Figure, ax) -> float:
    """Distance in points from the left end of the table labels to the plot's left edge."""
    # Tick label positions are only known after a draw; a draw without rendering lays every
    # artist out (the same positions) without rasterising the canvas, at about half the cost.
    fig.draw_without_rendering()
    renderer = fig.canvas.get_renderer()
    lefts = [t.get_window_extent(renderer).x0 for t in ax.get_yticklabels() if t.get_text().strip()]
    return (ax.get_window_extent(renderer).x0 - min(lefts)) * 72.0 / fig.dpi


def draw_summaries(ax, rows: list[Row], ypos: dict[int, float], label_transform) -> None:
    """Diamonds, prediction bars and text lines: the parts forestplot does not draw.

    Text lines are drawn over blank table rows rather than passed as labels, because
    forestplot pads every label to the longest one and a long line would widen the table.
    """
    for i, r in enumerate(rows):
        y = ypos[i]
        if r.kind == "pooled":
            est, lb, ub = r.numbers
            ax.add_patch(
                Polygon(
                    [(lb, y), (est, y + 0.32), (ub, y), (est, y - 0.32)],
                    closed=True,
                    zorder=3,
                    **(BAYES_DIAMOND if r.bayesian else DIAMOND),
                )
            )
        elif r.kind == "pi":
            lb, ub = r.numbers
            ax.add_patch(Rectangle((lb, y - 0.12), ub - lb, 0.24, zorder=3, **PI_BAR))
        elif r.kind == "text":
            ax.text(
                0,
                y,
                ("  " if r.indent else "") + r.text,
                transform=label_transform,
                ha="left",
                va="center",
                fontfamily=FONT_MONO,
                fontsize=FONTSIZE,
                color="0.15",
                clip_on=False,
                zorder=5,
                parse_math=False,
                # a long line may run into the plot: mask the reference line behind it
                bbox=dict(boxstyle="square,pad=0.1", facecolor="white", edgecolor="none"),
            )


def rules(fig: Figure, ax, n_rows: int, offset_pts: float) -> None:
    """Rules above and below the column headers, across table and plot (forestplot's span the labels only)."""
    width_pts = ax.get_window_extent().width * 72.0 / fig.dpi
    x0 = -offset_pts / width_pts
    trans = blended_transform_factory(ax.transAxes, ax.transData)
    for y, lw in ((n_rows - 0.45, 1.0), (n_rows - 1.5, 0.6)):
        ax.plot([x0, 1.0], [y, y], transform=trans, color="0.1", linewidth=lw, clip_on=False, zorder=4)


def below_axis_pts(fig: Figure, ax) -> float:
    """Depth in points of the x tick labels and axis label below the plot."""
    fig.draw_without_rendering()  # layout only, as in text_offset_pts
    renderer = fig.canvas.get_renderer()
    return (ax.get_window_extent(renderer).y0 - ax.xaxis.label.get_window_extent(renderer).y0) * 72 / fig.dpi


FAVOURS_PTS = FONTSIZE * 1.6  # the "Favours" line below the axis label


def favours(ax, scale: Scale, labels: tuple[str, str], below_pts: float) -> None:
    """ "← left" and "right →" either side of the line of no effect, below the axis label."""
    left, right = labels
    x = scale.xline if scale.xline is not None else sum(ax.get_xlim()) / 2
    trans = blended_transform_factory(ax.transData, ax.transAxes)
    for text, ha in ((f"← {left}", "right"), (f"{right} →", "left")):
        ax.annotate(
            text,
            xy=(x, 0),
            xycoords=trans,
            xytext=(-4 if ha == "right" else 4, -(below_pts + 3)),
            textcoords="offset points",
            ha=ha,
            va="top",
            fontsize=FONTSIZE,
            color="0.15",
            annotation_clip=False,
            parse_math=False,
        )


LEGEND_PTS = FONTSIZE * 2.2  # the key's line below the axis (and the "Favours" line, if any)


def legend(ax, rows: list[Row], offset_pts: float, below_pts: float) -> bool:
    """A key to the marks under the axis, flush with the study labels, when the plot holds a
    Bayesian diamond beside frequentist ones (or alone, where a reader expects a filled one)."""
    from matplotlib.lines import Line2D
    from matplotlib.transforms import offset_copy

    pooled = [r for r in rows if r.kind == "pooled"]
    if not any(r.bayesian for r in pooled):
        return False
    diamond = dict(marker="D", markersize=6, linestyle="none")
    handles, names = [], []
    if any(not r.bayesian for r in pooled):
        handles.append(Line2D([], [], markerfacecolor=DIAMOND["facecolor"], markeredgecolor="0.1", **diamond))
        names.append("pooled estimate, confidence interval")
    handles.append(Line2D([], [], markerfacecolor="white", markeredgecolor="0.1", markeredgewidth=1.1, **diamond))
    names.append("Bayesian posterior median, credible interval")
    if any(r.kind == "pi" for r in rows):
        handles.append(Line2D([], [], color=PI_BAR["facecolor"], linewidth=4))
        names.append("prediction interval")
    anchor = offset_copy(ax.transAxes, fig=ax.figure, x=-offset_pts, y=-(below_pts + 2), units="points")
    ax.legend(
        handles,
        names,
        loc="upper left",
        bbox_to_anchor=(0, 0),
        bbox_transform=anchor,
        ncol=len(handles),
        frameon=False,
        fontsize=FONTSIZE,
        handlelength=1.2,
        handletextpad=0.4,
        columnspacing=1.4,
        borderaxespad=0,
        borderpad=0,
    )
    return True


TALL_ROWS = 40  # from this many rows, the tick values are repeated in the header row


def header_ticks(ax, ticks: list[float], n_rows: int) -> None:
    """On a tall plot the x axis is far from the first rows: the tick values are printed again
    between the header rules, above the plot column."""
    for t in ticks:
        ax.text(
            t, n_rows - 1, tick_label(t), ha="center", va="center", fontsize=FONTSIZE - 0.5, color="0.3", clip_on=False
        )


def layout(
    fig: Figure, ax, n_rows: int, width_in: float, offset_pts: float, below_pts: float, title_text: str, foot: str
) -> None:
    """Size the figure to the table, the plot, the title and the footnote."""
    title_pts = (title_text.count("\n") + 1) * (FONTSIZE + 2) * 1.3 + 8 if title_text else 6
    foot_pts = (foot.count("\n") + 1) * (FONTSIZE - 1) * 1.3
    top_in = (title_pts + 6) / 72
    bottom_in = (below_pts + 8 + foot_pts + 6) / 72
    height = top_in + n_rows * ROW_HEIGHT_IN + bottom_in
    fig.set_size_inches(width_in, height)
    ax.set_position(
        (
            (MARGIN_IN + offset_pts / 72) / width_in,
            bottom_in / height,
            PLOT_WIDTH_IN / width_in,
            n_rows * ROW_HEIGHT_IN / height,
        )
    )


def annotate(ax, offset_pts: float, below_pts: float, title_text: str, foot: str) -> None:
    """Title above the table and the method footnote below the x axis, both flush with the study labels."""
    if title_text:
        ax.annotate(
            title_text,
            xy=(0, 1),
            xycoords="axes fraction",
            xytext=(-offset_pts, 8),
            textcoords="offset points",
            ha="left",
            va="bottom",
            fontsize=FONTSIZE + 2,
            fontweight="bold",
            parse_math=False,
        )
    ax.annotate(
        foot,
        xy=(0, 0),
        xycoords="axes fraction",
        xytext=(-offset_pts, -(below_pts + 8)),
        textcoords="offset points",
        ha="left",
        va="top",
        fontsize=FONTSIZE - 1,
        color="0.25",
        linespacing=1.3,
        parse_math=False,
    )
