"""Figures reach a notebook page as PNG images, whatever the kernel's matplotlib backend."""

from __future__ import annotations

import os
import time

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


def test_saved_figure_is_shown_when_newer_than_the_evidence(tmp_path, monkeypatch):
    shown = []
    monkeypatch.setattr(disp, "display", shown.append)
    studies = tmp_path / "studies"
    studies.mkdir()
    record = studies / "a.yaml"
    record.write_text("id: a\n")
    figures = tmp_path / "results" / "figures"
    figures.mkdir(parents=True)
    _figure().savefig(figures / "orr.png", dpi=300)
    past = time.time() - 3600
    os.utime(record, (past, past))
    drawn = []
    assert (
        disp.show_saved_figure(tmp_path / "results", "orr", lambda: drawn.append(1) or _figure(), inputs=[studies])
        == "saved"
    )
    assert drawn == [] and len(shown) == 1 and shown[0].width == 600

    os.utime(record, None)  # the evidence changed after the figure was written: draw afresh
    os.utime(figures / "orr.png", (past, past))
    assert disp.show_saved_figure(tmp_path / "results", "orr", _figure, inputs=[studies]) == "drawn"
    assert disp.show_saved_figure(tmp_path / "results", "missing", _figure, inputs=[studies]) == "drawn"
    assert disp.show_saved_figure(tmp_path / "results", "missing", lambda: None, inputs=[studies]) == "nothing"
