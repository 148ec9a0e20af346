"""Diagnostic plots draw what the engine computed, with the caution a reader needs."""

from __future__ import annotations

import matplotlib
import numpy as np
from matplotlib.text import Text

from metaanalysis.engine.diagnostics import egger_test
from metaanalysis.engine.influence import baujat, cumulative
from metaanalysis.engine.rma import rma
from metaanalysis.presentation.diagnostic_plots import baujat_plot, cumulative_plot, funnel_plot

matplotlib.use("Agg")
Y = [-0.9, -0.2, -0.5, -1.6, -0.3]
V = [0.05, 0.08, 0.04, 0.30, 0.10]
NAMES = ["Alpha 2020", "Beta 2021", "Gamma 2022", "Delta 2023", "Eps 2024"]


def _texts(fig):
    fig.canvas.draw()
    return " ".join(t.get_text() for t in fig.findobj(Text))


def test_funnel_plot_draws_egger_line_and_cautions_below_ten_studies():
    fit = rma(Y, V, method="REML", test="z", studies=NAMES)
    egger = egger_test(Y, V, method="REML", test="z")
    fig = funnel_plot(fit, egger, title="ORR", labels=NAMES)
    ax = fig.axes[0]
    line = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"][0]
    x, se = line.get_data()
    np.testing.assert_allclose(x, egger.limit_estimate + egger.slope * np.asarray(se))
    assert ax.get_ylim()[0] > ax.get_ylim()[1]  # standard error grows downwards
    text = _texts(fig)
    assert "Caution: k = 5" in text and "Delta 2023" in text and f"z = {egger.zval:.2f}" in text


def test_baujat_and_cumulative_plots_place_every_study():
    coords = baujat(Y, V, method="REML", test="z", studies=NAMES)
    fig = baujat_plot(coords, title="ORR")
    offsets = fig.axes[0].collections[0].get_offsets()
    np.testing.assert_allclose(offsets, coords[["x", "y"]].to_numpy())
    steps = cumulative(
        Y, V, order=[2020, 2021, 2022, 2023, 2024], studies=NAMES, measure="PLO", method="REML", test="z"
    )
    fig = cumulative_plot(steps, title="ORR")
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == [f"+ {n} (k = {i + 1})" for i, n in enumerate(NAMES)]
