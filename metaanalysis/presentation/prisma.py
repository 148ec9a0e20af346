"""The PRISMA 2020 flow diagram, drawn from the search log's counts.

Boxes as in the PRISMA 2020 flow diagram for new systematic reviews (Page MJ et al. BMJ
2021;372:n71, Fig. 1), with records from databases and from other methods in one column (the
log sends both through the same screening). Every number is a field of `PrismaCounts`
(`evidence/search_log.py`, which says how each is counted); nothing is computed here.
"""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

import matplotlib
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from metaanalysis.evidence.search_log import REASONS, PrismaCounts

FONTSIZE = 9
LINE = FONTSIZE * 1.35 / 72  # inches per text line
PAD = 0.09  # inches inside a box
GAP = 0.32  # inches between rows
STAGE_X, STAGE_W = 0.05, 0.32  # the coloured stage bars on the left
MAIN_X, MAIN_W = 0.55, 3.3
SIDE_X, SIDE_W = 4.35, 3.0
WIDTH = SIDE_X + SIDE_W + 0.1
STAGE_COLOUR = "#cfe2f3"
MIN_ROW = 1.15  # inches: "Identification" written upwards fits


def _lines(text: str, width_in: float) -> list[str]:
    chars = max(10, int((width_in - 2 * PAD) * 72 / (0.52 * FONTSIZE)))
    out: list[str] = []
    for paragraph in text.split("\n"):
        out += textwrap.wrap(paragraph, chars) or [""]
    return out


def _height(text: str, width_in: float) -> float:
    return len(_lines(text, width_in)) * LINE + 2 * PAD


def _box(ax, x: float, top: float, width: float, text: str, height: float | None = None) -> tuple[float, float]:
    """Draw a box with its top-left corner at (x, top); return (top, bottom)."""
    h = height if height is not None else _height(text, width)
    ax.add_patch(Rectangle((x, top - h), width, h, facecolor="white", edgecolor="black", linewidth=0.8))
    ax.text(x + PAD, top - PAD, "\n".join(_lines(text, width)), ha="left", va="top", fontsize=FONTSIZE, linespacing=1.2)
    return top, top - h


def _arrow(ax, start: tuple[float, float], end: tuple[float, float]) -> None:
    ax.annotate(
        "",
        xy=end,
        xytext=start,
        arrowprops=dict(arrowstyle="-|>", color="black", linewidth=0.8, shrinkA=0, shrinkB=0, mutation_scale=10),
    )


def _n(value: int) -> str:
    return f"(n\u00a0=\u00a0{value})"  # no-break spaces: "(n = 4)" is never split across lines


def _texts(c: PrismaCounts, reason_labels: dict[str, str]) -> list[tuple[str, str | None, str]]:
    """(main box, side box or None, stage) per row, top to bottom."""
    reasons = "\n".join(f"{reason_labels.get(r, r)} {_n(n)}" for r, n in c.excluded_eligibility.items())
    return [
        (
            f"Records identified from:\n  databases (n = {c.identified_databases};\n"
            f"    {c.queries} queries in the search log)\n  other methods (n = {c.identified_other})",
            f"Records removed before screening:\n  duplicate records (n = {c.duplicates_removed})",
            "Identification",
        ),
        (f"Records screened\n(n = {c.screened})", f"Records excluded\n(n = {c.excluded_screening})", "Screening"),
        (
            f"Reports sought for retrieval\n(n = {c.sought})",
            f"Reports not retrieved\n(n = {c.not_retrieved})",
            "Screening",
        ),
        (
            f"Reports assessed for eligibility\n(n = {c.assessed})",
            "Reports excluded:" + (f"\n{reasons}" if reasons else " none"),
            "Screening",
        ),
        (
            f"Studies included in review\n(n = {c.studies_included})\nReports of included studies\n"
            f"(n = {c.reports_included})",
            None,
            "Included",
        ),
    ]


def prisma_figure(
    counts: PrismaCounts, *, reason_labels: dict[str, str] | None = None, title: str | None = "PRISMA 2020 flow diagram"
) -> Figure:
    """The flow diagram as a matplotlib Figure (not attached to pyplot)."""
    rows = _texts(counts, REASONS if reason_labels is None else reason_labels)
    per_stage = {stage: sum(r[2] == stage for r in rows) for _, _, stage in rows}
    # a stage of one row is at least tall enough for its name, written upwards beside it
    heights = [
        max(_height(main, MAIN_W), _height(side, SIDE_W) if side else 0, MIN_ROW if per_stage[stage] == 1 else 0)
        for main, side, stage in rows
    ]
    top_margin = 0.45 if title else 0.1
    total = top_margin + sum(heights) + GAP * (len(rows) - 1) + 0.1
    fig = Figure(figsize=(WIDTH, total))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, WIDTH)
    ax.set_ylim(0, total)
    ax.axis("off")
    if title:
        ax.text(WIDTH / 2, total - 0.12, title, ha="center", va="top", fontsize=FONTSIZE + 2, fontweight="bold")
    y = total - top_margin
    spans: dict[str, list[float]] = {}
    previous_bottom = None
    for (main, side, stage), h in zip(rows, heights, strict=True):
        top, bottom = _box(ax, MAIN_X, y, MAIN_W, main, h)
        if previous_bottom is not None:
            _arrow(ax, (MAIN_X + MAIN_W / 2, previous_bottom), (MAIN_X + MAIN_W / 2, top))
        if side:
            _box(ax, SIDE_X, y, SIDE_W, side, h)
            _arrow(ax, (MAIN_X + MAIN_W, y - h / 2), (SIDE_X, y - h / 2))
        span = spans.setdefault(stage, [top, bottom])
        span[1] = bottom
        previous_bottom = bottom
        y = bottom - GAP
    for stage, (top, bottom) in spans.items():
        ax.add_patch(Rectangle((STAGE_X, bottom), STAGE_W, top - bottom, facecolor=STAGE_COLOUR, edgecolor="none"))
        ax.text(
            STAGE_X + STAGE_W / 2,
            (top + bottom) / 2,
            stage,
            rotation=90,
            ha="center",
            va="center",
            fontsize=FONTSIZE,
            fontweight="bold",
        )
    return fig


def counts_table(counts: PrismaCounts) -> pd.DataFrame:
    """results/prisma.csv: stage, box, reason, n."""
    return pd.DataFrame(counts.rows(), columns=["stage", "box", "reason", "n"])


def save_prisma_figure(counts: PrismaCounts, figures_dir: str | Path) -> list[Path]:
    """Write prisma.png (300 dpi) and prisma.svg into `figures_dir`."""
    folder = Path(figures_dir)
    folder.mkdir(parents=True, exist_ok=True)
    fig = prisma_figure(counts)
    png, svg = folder / "prisma.png", folder / "prisma.svg"
    with matplotlib.rc_context({"svg.fonttype": "path", "svg.hashsalt": "metaanalysis-prisma"}):
        fig.savefig(png, dpi=300, format="png", facecolor="white")
        fig.savefig(svg, format="svg", facecolor="white", metadata={"Date": None})
    return [png, svg]


def save_prisma(counts: PrismaCounts, out_dir: str | Path) -> list[Path]:
    """Write figures/prisma.png (300 dpi), figures/prisma.svg and prisma.csv under `out_dir`."""
    csv = Path(out_dir) / "prisma.csv"
    figures = save_prisma_figure(counts, Path(out_dir) / "figures")
    counts_table(counts).to_csv(csv, index=False)
    return [*figures, csv]


def png_bytes(fig: Figure, dpi: int = 110) -> bytes:
    """The figure as PNG bytes, for notebooks (an image whatever the kernel's matplotlib backend)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
    return buf.getvalue()


__all__ = ["prisma_figure", "save_prisma", "counts_table", "png_bytes"]
