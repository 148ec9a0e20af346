"""Figures reach a notebook page as PNG images, whatever the kernel's matplotlib backend."""

from __future__ import annotations

import matplotlib
from matplotlib.figure import Figure

from metaanalysis.presentation import display as disp

matplotlib.use("Agg")


def _figure(width_in=6.0, height_in=3.0) -> Figure:
    fig = Figure(figsize=(width_in, height_in))
    fig.add_subplot().plot([0, 1], [0, 1])
    return fig


def test_figure_image_is_a_png_shown_at_100_px_per_inch():
    image = disp.figure_image(_figure(6.0, 3.0))
    assert image.format == "png" and image.data[:4] == b"\x89PNG"
    width_px, _ = disp._png_size(image.data)
    # rendered at RENDER_DPI, shown at 100 px per inch: about 6 in less the trimmed margins
    assert abs(width_px - image.width * disp.RENDER_DPI / disp.DISPLAY_PX_PER_INCH) <= 2
    assert 450 <= image.width <= 650


def test_the_saved_figure_is_shown_and_a_missing_one_drawn_in_memory(tmp_path, monkeypatch):
    """A page shows the figure the run drew; it draws (from the same review) only a missing one,
    and writes nothing into the results folder."""
    shown = []
    monkeypatch.setattr(disp, "display", shown.append)
    figures = tmp_path / "results" / "figures"
    figures.mkdir(parents=True)
    _figure().savefig(figures / "orr.png", dpi=300)
    before = sorted(p.name for p in figures.iterdir())
    drawn = []
    assert disp.show_saved_figure(tmp_path / "results", "orr", lambda: drawn.append(1) or _figure()) == "saved"
    assert drawn == [] and len(shown) == 1 and shown[0].width == 600
    assert disp.show_saved_figure(tmp_path / "results", "missing", _figure) == "drawn"
    assert disp.show_saved_figure(tmp_path / "results", "missing", lambda: None) == "nothing"
    assert sorted(p.name for p in figures.iterdir()) == before  # nothing written
