"""Bayesian normal-normal random-effects meta-analysis on (yi, vi), as R bayesmeta computes it.

Model (Röver 2020, J Stat Softw 93(6), Sect. 2):

    y_i | mu, tau ~ N(mu, v_i + tau^2),   tau ~ half-normal(scale),   mu ~ flat or N(m0, s0^2).

Computed without sampling. Given tau, mu is conjugate: mu | tau, y ~ N(m(tau), V(tau)) with
V = 1 / (sum w_i + 1/s0^2), m = V (sum w_i y_i + m0/s0^2), w_i = 1 / (v_i + tau^2). Integrating
mu out leaves the one-dimensional marginal posterior of tau,

    p(tau | y) ∝ p(tau) prod (v_i + tau^2)^(-1/2) V^(1/2) exp(-1/2 [sum w_i (y_i - m)^2 + (m0 - m)^2 / s0^2]),

which is interpolated by a Chebyshev series on the interval that holds its mass (refined until
converged; `bayes_numerics`). The marginal posterior of mu is the normal mixture
sum_j W_j N(m(tau_j), V(tau_j)) over Clenshaw-Curtis nodes tau_j with weights W_j ∝ quadrature
weight x p(tau_j | y); the posterior predictive distribution of a new study's true effect is the
mixture with variances V(tau_j) + tau_j^2. Quantiles and intervals are found by root-finding on
these exact CDFs (tolerance 1e-12).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from metaanalysis.engine.bayes_numerics import _TAIL as _CHEBYSHEV_TAIL
from metaanalysis.engine.bayes_numerics import ChebyshevDensity, NormalMixture, chebyshev_nodes, clenshaw_curtis_weights
from metaanalysis.engine.bayes_priors import MuPrior, TauPrior, default_tau_prior
from metaanalysis.engine.bayes_result import BayesResult, posterior_result
from metaanalysis.engine.checks import check_effects
from metaanalysis.engine.effects import EffectSizes
from metaanalysis.engine.study_rows import wald_rows
from metaanalysis.engine.transforms import apply_transform, choose_transform

_DROP = 40.0  # the tau support ends where the log posterior is this far below its maximum


@dataclass(frozen=True)
class NormalNormalPosterior:
    """The joint posterior of (mu, tau) as its exact marginals."""

    tau: ChebyshevDensity
    mu: NormalMixture
    predictive: NormalMixture
    weights: np.ndarray  # posterior mean of each study's normalised weight w_i / sum w


def tau_support(logpost, scale: float, points: int = 481, drop: float = _DROP) -> tuple[float, float]:
    """[lo, hi] outside which log p(tau | data) is more than `drop` below its maximum, found on a
    grid of `points` points from 0 to 12 prior scales (extended while the mass reaches its end)."""
    top = 12.0 * scale
    for _ in range(12):
        grid = np.linspace(0.0, top, points)
        lp = logpost(grid)
        keep = np.flatnonzero(lp > np.max(lp) - drop)
        if len(keep) == 0:  # max - drop rounds to max itself (or the values are not finite)
            raise RuntimeError(
                "the posterior of tau cannot be computed in double precision: its log density is of the "
                f"order of {np.max(np.abs(lp)):.3g} on tau in [0, {top:g}], where a difference of {drop:g} is "
                "lost (are the estimates on a scale far from the prior's?)"
            )
        if keep[-1] < len(grid) - 1:
            step = grid[1] - grid[0]
            return max(0.0, grid[keep[0]] - step), grid[keep[-1]] + step
        top *= 4.0
    raise RuntimeError(f"the posterior of tau does not decay before tau = {top:g}")


# Work arrays of (tau values x studies) are cut into blocks of at most this many elements, so that
# memory stays bounded whatever the number of studies (100,000 studies: a few MB per block, not
# 481 x 100,000 doubles for the support grid). Each block computes exactly what the whole array
# would, row by row (sums run over studies within one row), so the numbers do not depend on it.
_BLOCK = 1 << 18


def _row_blocks(n_rows: int, k: int) -> list[slice]:
    step = max(1, _BLOCK // max(k, 1))
    return [slice(i, min(i + step, n_rows)) for i in range(0, n_rows, step)]


def nn_posterior(yi, vi, tau_prior: TauPrior, mu_prior: MuPrior) -> NormalNormalPosterior:
    y = np.asarray(yi, dtype=float)
    v = np.asarray(vi, dtype=float)
    prec0, m0 = mu_prior.precision, mu_prior.mean
    k = len(y)

    def conditional(tau):
        """(sum w, W, m) for each tau (a 1-d array), w_i = 1 / (v_i + tau^2), one block of tau at a time."""
        tau = np.asarray(tau, dtype=float)
        sw, wy = np.empty(len(tau)), np.empty(len(tau))
        for rows in _row_blocks(len(tau), k):
            w = 1.0 / (v + tau[rows, None] ** 2)
            sw[rows], wy[rows] = w.sum(-1), np.sum(w * y, -1)
        W = sw + prec0
        return sw, W, (wy + prec0 * m0) / W

    def logpost(tau):
        tau = np.asarray(tau, dtype=float)
        _, W, m = conditional(tau)
        out = np.empty(len(tau))
        for rows in _row_blocks(len(tau), k):
            t2 = tau[rows, None] ** 2
            w = 1.0 / (v + t2)
            out[rows] = -0.5 * (
                np.sum(np.log(v + t2), -1)
                + np.log(W[rows])
                + np.sum(w * (y - m[rows, None]) ** 2, -1)
                + prec0 * (m0 - m[rows]) ** 2
            )
        return out + tau_prior.logpdf(tau)

    def rounding(tau: float) -> float:
        """What double precision can resolve of p(tau | y) relative to its maximum: the rounding
        error of the sums in logpost, about eps times the size of their terms."""
        t2 = tau * tau
        w = 1.0 / (v + t2)
        m = (np.sum(w * y) + prec0 * m0) / (w.sum() + prec0)
        size = np.sum(np.abs(np.log(v + t2))) + np.sum(w * (y - m) ** 2) + abs(math.log(w.sum() + prec0))
        return float(np.finfo(float).eps * size)

    lo, hi = tau_support(logpost, tau_prior.scale)
    try:
        tau_dist = ChebyshevDensity.fit(logpost, lo, hi)
    except RuntimeError:
        # With many studies (~50,000 and more) the log posterior is a sum of so many terms that its
        # rounding error exceeds the series' target of 1e-13: resolve it to what double precision
        # holds instead. Only fits that did not converge take this route; every other is unchanged.
        floor = rounding((lo + hi) / 2)
        if floor <= _CHEBYSHEV_TAIL:
            raise
        tau_dist = ChebyshevDensity.fit(logpost, lo, hi, tail=floor)
    # mixture nodes: twice the resolution the tau density itself needed
    n = 2 * len(tau_dist.coef) - 1
    nodes = lo + (hi - lo) * (chebyshev_nodes(n) + 1) / 2
    lp = logpost(nodes)
    mass = clenshaw_curtis_weights(n) * np.exp(lp - lp.max())
    mass = np.clip(mass, 0.0, None)  # CC weights are positive; guards round-off only
    sw, W, m = conditional(nodes)
    V = 1.0 / W
    mu = NormalMixture(mass, m, np.sqrt(V))
    predictive = NormalMixture(mass, m, np.sqrt(V + nodes**2))
    # posterior mean of w_i / sum w: blocks of studies (columns), each a full sum over the nodes
    p = mass / mass.sum()
    weights = np.empty(k)
    for cols in _row_blocks(k, n):
        weights[cols] = p @ ((1.0 / (v[cols] + nodes[:, None] ** 2)) / sw[:, None])
    return NormalNormalPosterior(tau_dist, mu, predictive, weights)


def rma_bayes(
    yi,
    vi,
    *,
    measure: str = "GEN",
    tau_prior: TauPrior | str | None = None,
    mu_prior: MuPrior | None = None,
    level: float = 0.95,
    studies=None,
    events=None,
    n=None,
    transform: str | None = None,
) -> BayesResult:
    """Bayesian normal-normal random-effects meta-analysis of `yi` with sampling variances `vi`.

    tau_prior: a `TauPrior`, 'halfnormal:SCALE', or None for the measure's documented default
    (`bayes_priors.DEFAULT_TAU_SCALE`; GEN has none and must be given one).
    mu_prior: `MuPrior()` (flat, the default) or `MuPrior(mean, sd)`.
    transform: back-transformation overriding the measure's default (e.g. "exp" for GEN log HRs).
    """
    from metaanalysis.engine.bayes_priors import parse_tau_prior

    if not 0 < level < 1:
        raise ValueError(f"level = {level} must lie strictly between 0 and 1")
    prior = (
        default_tau_prior(measure)
        if tau_prior is None
        else (parse_tau_prior(tau_prior) if isinstance(tau_prior, str) else tau_prior)
    )
    mu_prior = MuPrior() if mu_prior is None else mu_prior
    y, v, labels = check_effects(yi, vi, studies)
    nn = None if n is None else np.asarray(n, dtype=float)
    bt = choose_transform(measure, transform, nn)
    post = nn_posterior(y, v, prior, mu_prior)
    notes = []
    if len(y) == 1:
        notes.append("k = 1: the posterior of tau is its prior; mu and the prediction rest on one study")

    def back(x: float, name: str = bt or "") -> float:
        return float(apply_transform(name, x, n=nn))

    return posterior_result(
        model="normal-normal",
        measure=measure,
        tau_prior=prior.label,
        mu_prior=mu_prior.label,
        level=level,
        k=len(y),
        mu=post.mu,
        mu_moments=(post.mu.mean, post.mu.sd),
        predictive=post.predictive,
        tau=post.tau,
        back=None if bt is None else back,
        transform=bt,
        studies=wald_rows(y, v, 100 * post.weights, labels, events, nn, bt, level),
        notes=tuple(notes) + ("study weights: posterior mean of w_i / sum w, w_i = 1 / (v_i + tau^2)",),
        provenance=dict(
            model="normal-normal hierarchical model",
            tau_prior=prior.spec,
            mu_prior=mu_prior.label,
            computation="exact: Chebyshev interpolation of p(tau | y), "
            "normal mixture for mu over Clenshaw-Curtis nodes (no sampling)",
            tau_nodes=len(post.tau.coef),
        ),
    )


def rma_bayes_effects(es: EffectSizes, **kwargs) -> BayesResult:
    """`rma_bayes` on the effect sizes `escalc()` returns (measure, labels and counts carried over)."""
    return rma_bayes(es.yi, es.vi, measure=es.measure, studies=es.studies, events=es.events, n=es.n, **kwargs)


__all__ = ["rma_bayes", "rma_bayes_effects", "nn_posterior", "NormalNormalPosterior", "tau_support"]
