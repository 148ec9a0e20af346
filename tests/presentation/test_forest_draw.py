"""What the forest plot draws beyond forestplot's table: open diamonds for Bayesian estimates with
a key under the axis, heterogeneity lines that name their model, tick values repeated on tall plots.

The fits are the engine's, on small counts; what is checked is the drawing (patch colours, legend
texts, the strings on the figure), never numbers taken from our own output."""

from __future__ import annotations

import matplotlib.colors as mcolors
from matplotlib.patches import Polygon
from matplotlib.text import Text

from metaanalysis.engine.bayes_binomial import rma_bayes_binomial
from metaanalysis.engine.effects import escalc
from metaanalysis.engine.glmm import rma_glmm
from metaanalysis.engine.results import SubgroupResult
from metaanalysis.engine.rma import rma_effects
from metaanalysis.presentation.forest import forest_plot
from metaanalysis.presentation.forest_draw import TALL_ROWS

EVENTS, N = [12, 40, 9], [20, 47, 30]
STUDIES = ("A 2025", "B 2024", "C 2023")


def _texts(fig) -> list[str]:
    fig.canvas.draw()
    return [" ".join(t.get_text().split()) for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]


def _diamonds(fig) -> list[tuple[float, ...]]:
    """Face colours (RGBA) of the four-cornered patches: the pooled diamonds."""
    ax = fig.axes[0]
    return [tuple(p.get_facecolor()) for p in ax.patches if isinstance(p, Polygon) and len(p.get_xy()) in (4, 5)]


def _legend_texts(fig) -> list[str]:
    legend = fig.axes[0].get_legend()
    return [] if legend is None else [t.get_text() for t in legend.get_texts()]


def _groups(**fits):
    return SubgroupResult(groups=fits, Qbetween=None, Qbetween_df=None, Qbetween_p=None, notes=())


def test_a_bayesian_estimate_is_an_open_diamond_named_in_the_key():
    glmm = rma_glmm(EVENTS, N, studies=STUDIES, nAGQ=7)
    bayes = rma_bayes_binomial(EVENTS, N, studies=STUDIES, tau_prior="halfnormal:0.5", shortest=False)
    fig = forest_plot(_groups(c=bayes), beside={"c": glmm})
    faces = _diamonds(fig)
    white = mcolors.to_rgba("white")
    assert faces.count(white) == 1  # the Bayesian estimate
    assert len(faces) == 2 and any(f != white for f in faces)  # the GLMM beneath it stays filled
    key = _legend_texts(fig)
    assert key[:2] == ["pooled estimate, confidence interval", "Bayesian posterior median, credible interval"]
    assert "prediction interval" in key  # k = 3: the Bayesian fit has its posterior predictive interval


def test_a_plot_without_a_bayesian_fit_keeps_no_key_and_filled_diamonds():
    es = escalc("PLO", events=EVENTS, n=N, add=None, to="only0", studies=STUDIES)
    fig = forest_plot(rma_effects(es, method="REML", test="z", level=0.95, pi_method="metafor"))
    assert _legend_texts(fig) == []
    assert mcolors.to_rgba("white") not in _diamonds(fig)


def test_every_heterogeneity_line_names_its_model():
    es = escalc("PLO", events=EVENTS, n=N, add=None, to="only0", studies=STUDIES)
    iv = rma_effects(es, method="DL", test="z", level=0.95, pi_method="metafor")
    glmm = rma_glmm(EVENTS, N, studies=STUDIES, nAGQ=7)
    bayes = rma_bayes_binomial(EVENTS, N, studies=STUDIES, tau_prior="halfnormal:0.5", shortest=False)
    texts = _texts(forest_plot(_groups(a=iv, b=glmm, c=bayes)))
    lines = [t for t in texts if "heterogeneity:" in t.lower()]
    assert len(lines) == 3
    assert any(t.startswith("Random effects (DL), heterogeneity: τ² =") for t in lines)
    assert any(t.startswith("GLMM, heterogeneity: τ² =") for t in lines)
    assert any(t.startswith("Bayesian binomial-normal model, heterogeneity: τ =") for t in lines)
    assert not any(t.startswith("Heterogeneity") for t in texts)


def _tall(n_studies: int):
    events = [5 + i % 7 for i in range(n_studies)]
    n = [20 + i % 5 for i in range(n_studies)]
    names = tuple(f"S{i} {2000 + i}" for i in range(n_studies))
    es = escalc("PLO", events=events, n=n, add=None, to="only0", studies=names)
    return forest_plot(rma_effects(es, method="REML", test="z", level=0.95, pi_method="metafor"))


def _tick_values(fig) -> list[str]:
    ax = fig.axes[0]
    fig.canvas.draw()
    return [t.get_text() for t in ax.get_xticklabels() if t.get_text()]


def test_a_tall_plot_repeats_its_tick_values_above_the_plot():
    tall, short = _tall(TALL_ROWS), _tall(5)
    ticks = _tick_values(tall)
    assert len(ticks) >= 3
    texts = [t.get_text() for t in tall.axes[0].texts]
    for value in ticks:  # each tick value drawn once more, as text in the header row
        assert texts.count(value) == 1, value
    assert not set(_tick_values(short)) & {t.get_text() for t in short.axes[0].texts}
