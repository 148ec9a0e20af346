"""GOSH plot (Olkin, Dahabreh & Trikalinos 2012), drawn as metafor's plot.gosh.rma() draws
it: each subset's heterogeneity (I^2 by default) against its pooled estimate, with the
marginal histograms above and to the right. `out` colours the subsets that contain one
study, the way to see whether a cluster of subsets is that study's doing. Unlike metafor,
single-study subsets (no heterogeneity to show, I^2 = 0 by convention) are left out.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from metaanalysis.engine.resampling import GoshResult

_HET_LABELS = {"I2": "I² (%)", "H2": "H²", "QE": "Q", "tau2": "τ²"}


def gosh_plot(
    result: GoshResult,
    *,
    het: str = "I2",
    out: str | int | None = None,
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
    xlabel: str | None = None,
    ylabel: str = "pooled estimate",
    bins: int = 40,
    title: str | None = None,
) -> Figure:
    """Scatter of `het` (a column of result.res: I2, H2, QE, tau2) against the estimate.

    out: a study (name or 0-based index); subsets containing it are drawn in red.
    transform: applied to the estimates before plotting (e.g. numpy.exp for log ratios).
    Returns a Figure not attached to pyplot (save it with fig.savefig)."""
    if het not in _HET_LABELS:
        raise ValueError(f"het = {het!r}: expected one of {sorted(_HET_LABELS)}")
    ok = result.fit & (result.res["k"].to_numpy() > 1)  # one-study subsets carry no heterogeneity
    x = result.res[het].to_numpy(float)[ok]
    y = result.res["estimate"].to_numpy(float)[ok]
    if transform is not None:
        y = np.asarray(transform(y), dtype=float)
    groups = [(np.ones(len(x), bool), "#3366aa", None)]
    if out is not None:
        j = result.studies.index(out) if isinstance(out, str) and out in result.studies else out
        if isinstance(j, str) or not 0 <= int(j) < len(result.studies):
            raise ValueError(f"out = {out!r} is not one of the {len(result.studies)} studies")
        has = result.incl[ok, j]
        groups = [(~has, "#3366aa", f"without {result.studies[j]}"), (has, "#cc3333", f"with {result.studies[j]}")]

    fig = Figure(figsize=(6.5, 6.0))
    gs = fig.add_gridspec(2, 2, width_ratios=(4, 1), height_ratios=(1, 4), wspace=0.05, hspace=0.05)
    ax = fig.add_subplot(gs[1, 0])
    top = fig.add_subplot(gs[0, 0], sharex=ax)
    right = fig.add_subplot(gs[1, 1], sharey=ax)
    alpha = float(np.clip(200.0 / max(len(x), 1), 0.05, 0.8))  # dense clouds stay readable
    size = float(np.clip(2000.0 / max(len(x), 1), 4.0, 30.0))  # sparse ones stay visible
    xbins = np.linspace(np.nanmin(x), np.nanmax(x), bins + 1) if len(x) else bins
    ybins = np.linspace(np.nanmin(y), np.nanmax(y), bins + 1) if len(y) else bins
    for mask, colour, label in groups:
        ax.scatter(x[mask], y[mask], s=size, c=colour, alpha=alpha, linewidths=0, label=label, rasterized=True)
        top.hist(x[mask], bins=xbins, color=colour, alpha=0.6)
        right.hist(y[mask], bins=ybins, color=colour, alpha=0.6, orientation="horizontal")
    ax.set_xlabel(xlabel or _HET_LABELS[het])
    ax.set_ylabel(ylabel)
    if out is not None:
        ax.legend(loc="best", markerscale=3, frameon=False)
    top.tick_params(labelbottom=False)
    right.tick_params(labelleft=False)
    top.set_yticks([])
    right.set_xticks([])
    for a in (top, right):
        for side in ("top", "right", "left") if a is top else ("top", "right", "bottom"):
            a.spines[side].set_visible(False)
    n_fit = int(ok.sum())
    kind = "all " if result.exact else ""
    fig.suptitle(
        title
        or f"GOSH plot: {result.method} fits to {kind}{n_fit:,} subsets of 2 or more studies"
        + ("" if result.exact else " (random)"),
        fontsize=10,
    )
    return fig


def save_gosh_plot(result: GoshResult, path: str | Path, *, dpi: int = 200, **kwargs) -> Path:
    """Draw the GOSH plot and write it to `path` (format from the suffix)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    gosh_plot(result, **kwargs).savefig(path, dpi=dpi)
    return path


__all__ = ["gosh_plot", "save_gosh_plot"]
