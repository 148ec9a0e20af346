"""Figures on a notebook page, whatever matplotlib backend the kernel runs.

`show_figure(fig)` renders a figure to PNG itself, so a page shows the picture even in a kernel
started with MPLBACKEND=Agg (where `display(fig)` prints only `<Figure size ...>`).
`show_saved_figure(...)` shows the PNG that `metaanalysis run` already wrote to
`results/figures/` (no second drawing of the same plot) and draws the figure in memory only when
that file is missing; it never writes into the results folder.
"""

from __future__ import annotations

import html
import io
import struct
from collections.abc import Callable
from pathlib import Path

from IPython.display import Image, Markdown, display
from matplotlib.figure import Figure

# CSS pixels per inch of figure: 8-pt text then shows at about 11 px, readable without zooming.
DISPLAY_PX_PER_INCH = 100
RENDER_DPI = 200  # sharp on high-density screens; the page scales it to DISPLAY_PX_PER_INCH


def _png_size(data: bytes) -> tuple[int, int]:
    """(width, height) in pixels from a PNG's IHDR chunk."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG file")
    return struct.unpack(">II", data[16:24])


def figure_image(fig: Figure, *, dpi: int = RENDER_DPI, alt: str = "figure") -> Image:
    """The figure as an embedded PNG, displayed at DISPLAY_PX_PER_INCH."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", pad_inches=0.08, facecolor="white")
    data = buf.getvalue()
    width, _ = _png_size(data)
    return Image(data=data, format="png", width=round(width * DISPLAY_PX_PER_INCH / dpi), alt=alt)


def saved_image(path: Path, *, dpi: int = 300, alt: str = "figure") -> Image:
    """A PNG written at `dpi` (save_forest writes 300), displayed at DISPLAY_PX_PER_INCH."""
    data = Path(path).read_bytes()
    width, _ = _png_size(data)
    return Image(data=data, format="png", width=round(width * DISPLAY_PX_PER_INCH / dpi), alt=alt)


def markdown(text: str) -> Markdown:
    """`text` as Markdown with every HTML special character escaped: page text carries record text
    (authors, arm labels, file names), which is shown, never run. Markdown syntax needs none of
    < > &, and the escaped entities display as the characters."""
    return Markdown(html.escape(text, quote=False))


def show_figure(fig: Figure, *, alt: str = "figure") -> None:
    display(figure_image(fig, alt=alt))


def show_saved_figure(results_dir, name: str, draw: Callable[[], Figure | None], *, alt: str | None = None) -> str:
    """Show `<results_dir>/figures/<name>.png`, the figure the run drew from the review; when that
    file is missing, call `draw()` (the same drawing from the same review, in memory; None when
    there is nothing to plot). Nothing is written. Returns "saved", "drawn" or "nothing", so a
    caller (or a test) can tell what the page shows."""
    png = Path(results_dir) / "figures" / f"{name}.png"
    alt = alt or f"Forest plot {name}"
    if png.exists():
        display(saved_image(png, alt=alt))
        return "saved"
    fig = draw()
    if fig is None:
        return "nothing"
    show_figure(fig, alt=alt)
    return "drawn"


__all__ = ["markdown", "figure_image", "saved_image", "show_figure", "show_saved_figure", "DISPLAY_PX_PER_INCH"]
