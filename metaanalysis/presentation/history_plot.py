"""How each primary estimate moved over the updates of the living review.

`history_plot(frame)` draws one small panel per estimate (a class of an analysis, or a primary
survival median): the estimate and its interval at each update's date, the method written by
its marker, so that a switch of primary method is seen where it happened. The frame has one row
per update and estimate: `date, label, estimate, ci_lb, ci_ub, method`, and optionally `unit`
("proportion", drawn in percent, or anything else, drawn as it is, e.g. "months").
"""

from __future__ import annotations

import io
import math
import shutil
import textwrap
from pathlib import Path

import matplotlib
import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

COLUMNS = ("date", "label", "estimate", "ci_lb", "ci_ub", "method")
MARKERS = ("o", "s", "D", "^", "v", "P", "X", "*")
PANEL = (3.0, 2.0)  # inches per panel: four across fit a landscape page


def history_plot(frame: pd.DataFrame, *, columns: int = 4) -> Figure:
    """The figure (a matplotlib Figure, no pyplot state): one panel per label, in order of appearance."""
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"history_plot: the frame lacks column(s) {', '.join(missing)}")
    if frame.empty:
        raise ValueError("history_plot: the frame has no rows (the history has no entry)")
    frame = frame.assign(date=pd.to_datetime(frame["date"], utc=True).dt.tz_localize(None))
    labels = list(dict.fromkeys(frame["label"]))
    methods = list(dict.fromkeys(frame["method"]))
    marker = {m: MARKERS[i % len(MARKERS)] for i, m in enumerate(methods)}
    ncols = min(columns, len(labels))
    nrows = math.ceil(len(labels) / ncols)
    fig = Figure(figsize=(PANEL[0] * ncols, PANEL[1] * nrows + 0.7), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, sharex=True)
    for ax, label in zip(axes.flat, labels, strict=False):
        rows = frame[frame["label"] == label].sort_values("date")
        percent = "unit" not in rows or (rows["unit"] == "proportion").all()
        scale = 100.0 if percent else 1.0
        est, lb, ub = (rows[c].astype(float).to_numpy() * scale for c in ("estimate", "ci_lb", "ci_ub"))
        ax.plot(rows["date"], est, color="0.6", lw=0.8, zorder=1)
        for method in dict.fromkeys(rows["method"]):
            mine = (rows["method"] == method).to_numpy()
            # a missing bound is drawn as no bar on that side (never as a bar to zero)
            low = np.where(np.isnan(lb[mine]), 0.0, est[mine] - lb[mine])
            high = np.where(np.isnan(ub[mine]), 0.0, ub[mine] - est[mine])
            ax.errorbar(
                rows["date"][mine],
                est[mine],
                yerr=np.clip([low, high], 0, None),
                fmt=marker[method],
                ms=4,
                color="black",
                ecolor="0.3",
                elinewidth=0.9,
                capsize=2,
                zorder=2,
            )
        ax.set_title("\n".join(textwrap.wrap(str(label), 40)), fontsize=7)
        ax.set_ylabel("%" if percent else str(rows["unit"].iloc[0]), fontsize=7)
        ax.tick_params(labelsize=6)
        ax.grid(axis="y", color="0.9", lw=0.5)
        locator = mdates.AutoDateLocator(maxticks=4)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        ax.xaxis.get_offset_text().set_fontsize(6)
        ax.xaxis.set_tick_params(labelbottom=True)  # every panel dated: the last row may be short
    first, last = frame["date"].min(), frame["date"].max()
    if last - first < pd.Timedelta(days=2):  # one update (or a few in a day): give the axis a width
        axes.flat[0].set_xlim(first - pd.Timedelta(days=10), last + pd.Timedelta(days=10))
    for ax in axes.flat[len(labels) :]:
        ax.set_visible(False)
    handles = [Line2D([], [], marker=marker[m], color="black", ls="none", ms=4, label=m) for m in methods]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(methods), 6), fontsize=7, frameon=False)
    fig.suptitle("Primary estimates and their intervals at each update of the review", fontsize=9)
    return fig


def save_history_plot(frame: pd.DataFrame, figures_dir: Path, *, reuse_from: Path | None = None) -> list[Path]:
    """`history.svg` and `history.png` (300 dpi) in `figures_dir`; nothing when the frame is empty.
    `reuse_from`: an intact earlier figures folder; the same SVG there means the same drawing, so
    its PNG is copied instead of rendered (as `forest.save_forest` does)."""
    if frame.empty:
        return []
    folder = Path(figures_dir)
    folder.mkdir(parents=True, exist_ok=True)
    svg, png = folder / "history.svg", folder / "history.png"
    fig = history_plot(frame)
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "metaanalysis-history"}):
        buf = io.BytesIO()
        fig.savefig(buf, format="svg", metadata={"Date": None}, facecolor="white")
        svg.write_bytes(buf.getvalue())
        old = Path(reuse_from) if reuse_from is not None else None
        if old is not None and (old / png.name).is_file() and (old / svg.name).is_file():
            if (old / svg.name).read_bytes() == buf.getvalue():
                shutil.copyfile(old / png.name, png)
                return [png, svg]
        fig.savefig(png, dpi=300, format="png", facecolor="white")
    return [png, svg]


__all__ = ["history_plot", "save_history_plot"]
