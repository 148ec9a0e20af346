"""Diagnostic plots a metafor or meta user expects: funnel plot with Egger's line, Baujat plot,
cumulative meta-analysis. They draw results computed by the engine (`diagnostics`, `influence`);
nothing is estimated here. Figures are built without pyplot (no global state)."""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from metaanalysis.engine.diagnostics import EggerResult
from metaanalysis.engine.results import MetaResult

FONTSIZE = 9
MIN_K_FUNNEL_TEST = 10  # Cochrane Handbook 13.3.5.4: tests for funnel asymmetry need at least 10 studies


def _figure(width: float, height: float) -> tuple[Figure, object]:
    fig = Figure(figsize=(width, height), dpi=100, facecolor="white")
    ax = fig.add_subplot()
    ax.tick_params(labelsize=FONTSIZE)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig, ax


def _note(fig: Figure, text: str, width_chars: int = 95) -> None:
    fig.text(
        0.01,
        0.01,
        "\n".join(textwrap.wrap(text, width_chars)),
        ha="left",
        va="bottom",
        fontsize=FONTSIZE - 1,
        color="0.25",
        parse_math=False,
    )


def _title(ax, title: str | None) -> None:
    if title:
        ax.set_title(textwrap.fill(title, 62), fontsize=FONTSIZE + 1, loc="left", fontweight="bold")


def _label_points(ax, xs, ys, names) -> None:
    """Study labels beside their points, alternately above and below so that neighbours stay legible."""
    order = np.argsort(np.asarray(ys, float))
    for rank, i in enumerate(order):
        ax.annotate(
            str(names[i]),
            (xs[i], ys[i]),
            xytext=(5, 4 if rank % 2 == 0 else -10),
            textcoords="offset points",
            fontsize=FONTSIZE - 1,
            parse_math=False,
        )


def funnel_plot(
    fit: MetaResult,
    egger: EggerResult | None = None,
    *,
    title: str | None = None,
    xlabel: str | None = None,
    labels=None,
) -> Figure:
    """Study estimates (model scale) against their standard error, the pseudo 95 % region around
    the pooled estimate and, where given, Egger's regression line (estimate = intercept + slope x se)."""
    s = fit.studies
    if s is None or len(s.yi) < 2:
        raise ValueError("a funnel plot needs the study rows of a fit with k >= 2")
    y, se = np.asarray(s.yi, float), np.sqrt(np.asarray(s.vi, float))
    fig, ax = _figure(8.0, 4.8)
    top = float(se.max()) * 1.1
    grid = np.linspace(0.0, top, 50)
    ax.fill_betweenx(
        grid, fit.b - 1.96 * grid, fit.b + 1.96 * grid, color="0.93", zorder=0, label="pseudo 95 % region (±1.96 se)"
    )
    ax.axvline(fit.b, color="0.2", linewidth=1.0, label=f"pooled estimate ({fit.method})")
    ax.scatter(y, se, s=28, color="0.1", zorder=3, label="studies")
    _label_points(ax, y, se, list(labels) if labels is not None else list(s.study))
    note = []
    if egger is not None:
        ax.plot(
            egger.limit_estimate + egger.slope * grid,
            grid,
            color="#c2463b",
            linewidth=1.2,
            linestyle="--",
            label="Egger's regression line",
        )
        stat = "t" if egger.test != "z" else "z"
        note.append(
            f"Egger's test ({egger.method}, slope on se): {stat} = {egger.zval:.2f}, p = {egger.pval:.3f}"
            f"; limit estimate {egger.limit_estimate:.3f}."
        )
    if len(y) < MIN_K_FUNNEL_TEST:
        note.append(
            f"Caution: k = {len(y)}. With fewer than {MIN_K_FUNNEL_TEST} studies a funnel plot and tests "
            "for its asymmetry cannot tell small-study effects from chance (Cochrane Handbook 13.3.5.4)."
        )
    ax.set_ylim(top, 0.0)  # precise studies at the top
    ax.set_xlabel(xlabel or f"Estimate ({fit.measure}, model scale)", fontsize=FONTSIZE)
    ax.set_ylabel("Standard error", fontsize=FONTSIZE)
    ax.legend(fontsize=FONTSIZE - 1, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    _title(ax, title)
    fig.subplots_adjust(
        left=0.1, right=0.68, top=0.86, bottom=0.14 + 0.05 * len(note) * (1 + (len(" ".join(note)) > 180))
    )
    if note:
        _note(fig, " ".join(note))
    return fig


def baujat_plot(coords: pd.DataFrame, *, title: str | None = None) -> Figure:
    """metafor's Baujat plot from `influence.baujat()`: contribution to heterogeneity (x) against
    influence on the pooled result (y); studies up and to the right drive both."""
    fig, ax = _figure(6.0, 4.4)
    ax.scatter(coords["x"], coords["y"], s=28, color="0.1", zorder=3)
    _label_points(ax, list(coords["x"]), list(coords["y"]), list(coords["study"]))
    ax.grid(color="0.9")
    ax.set_xlabel("Squared Pearson residual (contribution to heterogeneity)", fontsize=FONTSIZE)
    ax.set_ylabel("Influence on the pooled result", fontsize=FONTSIZE)
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.margins(x=0.15, y=0.1)
    _title(ax, title)
    fig.tight_layout()
    return fig


def cumulative_plot(
    steps: pd.DataFrame, *, factor: float = 100.0, xlabel: str = "Proportion (%)", title: str | None = None
) -> Figure:
    """Cumulative meta-analysis (`influence.cumulative()`, reporting scale): one row per study
    added, in the order given (e.g. publication year), estimate and CI after each addition."""
    k = len(steps)
    fig, ax = _figure(6.5, 1.3 + 0.32 * k)
    ypos = np.arange(k)[::-1]
    for y, (_, r) in zip(ypos, steps.iterrows(), strict=True):
        ax.plot([r["ci_lb"] * factor, r["ci_ub"] * factor], [y, y], color="0.15", linewidth=1.0)
        ax.scatter([r["estimate"] * factor], [y], marker="D" if r["k"] > 1 else "s", s=24, color="0.15", zorder=3)
    labels = [f"+ {r['added']} (k = {r['k']})" for _, r in steps.iterrows()]
    ax.set_yticks(ypos, labels, fontsize=FONTSIZE - 1)
    ax.tick_params(axis="y", length=0)
    ax.spines["left"].set_visible(False)
    ax.set_xlabel(xlabel, fontsize=FONTSIZE)
    ax.set_ylim(-0.7, k - 0.3)
    _title(ax, title)
    fig.tight_layout()
    return fig


__all__ = ["funnel_plot", "baujat_plot", "cumulative_plot", "MIN_K_FUNNEL_TEST"]
