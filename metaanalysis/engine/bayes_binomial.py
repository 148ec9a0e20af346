"""Bayesian binomial-normal random-effects model for single-arm proportions (no MCMC).

    x_i ~ Binomial(n_i, ilogit(theta_i)),  theta_i ~ N(mu, tau^2),
    tau ~ half-normal(scale),  mu ~ flat or N(m0, s0^2).

The binomial likelihood is used as it is, so a 12/12 or 0/15 arm needs no continuity
correction. Computation (deterministic):

1. Each study's marginal likelihood L_i(mu, tau) = integral over u ~ N(0, 1) of
   Binomial(x_i | n_i, ilogit(mu + tau u)) by adaptive Gauss-Hermite quadrature (as lme4 does
   for one random intercept): centred at the mode of the integrand in u (damped Newton) and
   scaled by its curvature, with `nq` nodes.
2. The joint posterior density of (mu, tau) is interpolated by a tensor Chebyshev series on the
   box that holds its mass (log density within 40 of its maximum on a coarse 121 x 61 grid),
   refined until the trailing coefficients in both directions are below 1e-10 of the largest.
3. Marginals of mu and tau are Clenshaw-Curtis integrals of that series over the other
   parameter (`ChebyshevDensity`). The predictive distribution of a new study's theta is the
   convolution of mu | tau with N(0, tau^2), by Gauss-Hermite over that normal at each tau node.

The slow route of the tests (scipy quad over u inside a dense grid over mu and tau) agrees.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.polynomial import chebyshev as C
from scipy import special

from metaanalysis.engine.bayes import tau_support
from metaanalysis.engine.bayes_numerics import (
    ChebyshevDensity,
    _invert,
    chebyshev_nodes,
    clenshaw_curtis_weights,
    shortest_interval,
    values_to_coefficients,
)
from metaanalysis.engine.bayes_priors import MuPrior, TauPrior, default_tau_prior, parse_tau_prior
from metaanalysis.engine.bayes_result import BayesResult, posterior_result
from metaanalysis.engine.checks import check_counts
from metaanalysis.engine.study_rows import exact_rows

_DROP = 20.0  # a conditional of mu (and tau) ends where its log density is this far below the mode
_TAIL_1D = 1e-7  # Chebyshev convergence of each conditional
_U_DROP = 25.0  # the u-integral of a study ends where its log integrand is this far below the mode
_U_NODES = 32  # Gauss-Legendre nodes for that integral
_PRED_NODES = 48  # Gauss-Hermite nodes for the N(0, tau^2) of a new study


def study_loglik(x, n, mu, tau, nodes: int = _U_NODES):
    """sum_i log L_i(mu, tau) (without the binomial coefficients) and its first and second
    derivatives in mu, broadcast over `mu` and `tau` (tau >= 0). `x`, `n` have the studies on
    their last axis and may carry leading axes that broadcast with mu and tau (one data set each).

    L_i = integral exp(h_i(u)) du / sqrt(2 pi), h_i(u) = x_i log p + (n_i - x_i) log(1 - p) - u^2/2,
    p = ilogit(mu + tau u). h_i is concave with h'' <= -1, so its mass lies within sqrt(2 D) of
    the mode u*; Gauss-Legendre with `nodes` points on [u*_left, u*_right], the points where h
    has dropped by D = 25 (a few Newton steps from outside), integrates it also where it is
    skewed (a 12/12 arm under large tau), which Gauss-Hermite centred at the mode does not."""
    x = np.asarray(x, dtype=float)
    n = np.asarray(n, dtype=float)
    mu, tau = np.broadcast_arrays(np.asarray(mu, dtype=float)[..., None], np.asarray(tau, dtype=float)[..., None])

    def parts(u, m=mu, t=tau, xx=x, nn=n):
        eta = m + t * u
        p = special.expit(eta)
        h = -xx * np.logaddexp(0.0, -eta) - (nn - xx) * np.logaddexp(0.0, eta) - 0.5 * u * u
        return h, t * (xx - nn * p) - u, -1.0 - t * t * nn * p * (1 - p), p

    # Safeguarded Newton for the mode of the concave h: h'(u) = tau (x - n p) - u decreases and
    # changes sign in [tau (x - n), tau x]; a Newton step leaving the bracket is replaced by bisection.
    shape = np.broadcast_shapes(mu.shape, x.shape)
    a, b = np.broadcast_to(tau * (x - n), shape).copy(), np.broadcast_to(tau * x, shape).copy()
    u = np.clip(np.zeros(shape), a, b)
    for _ in range(100):
        h, g, c, _ = parts(u)
        a, b = np.where(g > 0, u, a), np.where(g < 0, u, b)
        newton = u - g / c
        new = np.where((newton >= a) & (newton <= b), newton, (a + b) / 2)
        done = np.max(np.abs(new - u)) < 1e-9
        u = new
        if done:
            break
    h, g, c, _ = parts(u)
    reach = math.sqrt(2 * _U_DROP)
    ends = []
    for sign in (-1.0, 1.0):
        e = u + sign * reach / np.sqrt(-c)  # the quadratic guess, then Newton from outside
        for _ in range(4):
            he, ge, _, _ = parts(e)
            e = np.clip(
                e - (he - (h - _U_DROP)) / np.where(ge == 0, sign * -1e-300, ge),
                *((u - reach, u) if sign < 0 else (u, u + reach)),
            )
        ends.append(e)
    zq, wq = _legendre(nodes)
    half = (ends[1] - ends[0])[..., None] / 2
    uq = ends[0][..., None] + half * (zq + 1)
    hq, _, _, pq = parts(uq, mu[..., None], tau[..., None], x[..., None], n[..., None])
    logw = hq + np.log(half * wq)
    logL = special.logsumexp(logw, axis=-1) - 0.5 * math.log(2 * math.pi)
    w = np.exp(logw - logw.max(-1, keepdims=True))
    w /= w.sum(-1, keepdims=True)
    score = x[..., None] - n[..., None] * pq  # d/d mu of the binomial log-likelihood
    mean_s = np.sum(w * score, -1)
    grad = mean_s
    hess = np.sum(w * (score * score - n[..., None] * pq * (1 - pq)), -1) - mean_s**2
    return logL.sum(-1), grad.sum(-1), hess.sum(-1)


@lru_cache(maxsize=4)
def _legendre(nodes: int):
    return np.polynomial.legendre.leggauss(nodes)


@dataclass(frozen=True)
class ConditionalMixture:
    """sum_j W_j p(mu | tau_j), each conditional a Chebyshev series on its own [lo_j, hi_j];
    `spread` adds N(0, spread_j^2) to component j (the predictive distribution)."""

    weights: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    pdf_coef: np.ndarray  # (n_z, n_tau), each column normalised to integrate to 1
    cdf_coef: np.ndarray
    spread: np.ndarray | None = None

    def _eval(self, x, coef, clip_value):
        x = np.asarray(x, dtype=float)
        if self.spread is None:
            shifts, wz = np.zeros((1, 1)), np.ones(1)
        else:
            z, wz = np.polynomial.hermite_e.hermegauss(_PRED_NODES)
            shifts, wz = z[:, None] * self.spread[None, :], wz / math.sqrt(2 * math.pi)
        m = x - shifts  # (nz, n_tau)
        t = (2 * m - self.lo - self.hi) / (self.hi - self.lo)
        vals = np.stack([C.chebval(np.clip(t[q], -1, 1), coef, tensor=False) for q in range(len(wz))])
        if clip_value == "pdf":
            vals = np.where(np.abs(t) <= 1, np.maximum(vals, 0.0), 0.0) * (2 / (self.hi - self.lo))
        else:
            vals = np.clip(vals, 0.0, 1.0)
        return float(wz @ vals @ self.weights)

    def pdf(self, x):
        return self._eval(x, self.pdf_coef, "pdf")

    def cdf(self, x):
        return self._eval(x, self.cdf_coef, "cdf")

    def quantile(self, p: float) -> float:
        reach = 0.0 if self.spread is None else 12 * float(np.max(self.spread))
        return _invert(self.cdf, p, float(self.lo.min()) - reach, float(self.hi.max()) + reach)

    def moments(self) -> tuple[float, float]:
        half, mid = (self.hi - self.lo) / 2, (self.hi + self.lo) / 2
        m1 = m2 = 0.0
        for j, wj in enumerate(self.weights):
            xs = np.array([mid[j], half[j]])
            p1 = C.chebmul(self.pdf_coef[:, j], xs)
            p2 = C.chebmul(p1, xs)
            m1 += wj * C.chebval(1.0, C.chebint(p1, lbnd=-1))
            m2 += wj * C.chebval(1.0, C.chebint(p2, lbnd=-1))
        return float(m1), math.sqrt(max(float(m2) - float(m1) ** 2, 0.0))

    def shortest(self, level: float) -> tuple[float, float]:
        return shortest_interval(self.pdf, self.quantile, level, lower_bound=None)


@dataclass(frozen=True)
class BinomialNormalPosterior:
    tau: ChebyshevDensity
    mu: ConditionalMixture
    predictive: ConditionalMixture


def _conditionals(x, n, taus, mu_prior: MuPrior, start: float, log_prior_tau, n_z: int = 33):
    """For each tau: log of the integral of p(x | mu, tau) p(mu) over mu, and the Chebyshev series
    of the normalised conditional density of mu on an interval holding its mass. A node's series
    must converge to _TAIL_1D relative to the heaviest node (its trailing coefficients times its
    approximate posterior weight p(tau) p(x | mode, tau)), which is what its error adds to a
    mixture over tau."""
    prec0, m0 = mu_prior.precision, mu_prior.mean

    def ell(m):
        v, g, h = study_loglik(x, n, m, taus)
        return v + mu_prior.logpdf(m), g - prec0 * (m - m0), h - prec0

    m = np.full(len(taus), start)
    v, g, h = ell(m)
    # Newton to the mode (log-concave conditional); the mode only centres the interval below,
    # so 1e-6 is precise enough and steps are merely capped, not line-searched
    for _ in range(50):
        step = np.clip(-g / np.minimum(h, -1e-12), -2.0, 2.0)
        m = m + step
        v, g, h = ell(m)
        if np.max(np.abs(step)) < 1e-6:
            break
    sd = 1 / np.sqrt(-np.minimum(h, -1e-12))
    lo, hi = m - 6.5 * sd, m + 6.5 * sd
    for _ in range(30):  # widen a side until the density has dropped by _DROP
        short_lo, short_hi = ell(lo)[0] > v - _DROP, ell(hi)[0] > v - _DROP
        if not (short_lo.any() or short_hi.any()):
            break
        lo = np.where(short_lo, m - 1.5 * (m - lo), lo)
        hi = np.where(short_hi, m + 1.5 * (hi - m), hi)
    weight = v + log_prior_tau
    relative = np.exp(weight - np.max(weight))
    while True:
        t = chebyshev_nodes(n_z)
        grid = lo[None, :] + (hi - lo)[None, :] * (t[:, None] + 1) / 2  # (n_z, n_tau)
        vals = np.exp(ell(grid)[0] - v[None, :])
        coef = values_to_coefficients(vals)
        tail = np.max(np.abs(coef[-3:]), 0) / np.max(np.abs(coef), 0)
        if np.all(tail * relative <= _TAIL_1D) or n_z >= 513:
            break
        n_z = 2 * n_z - 1
    half = (hi - lo) / 2
    anti = np.stack([C.chebint(coef[:, j], lbnd=-1) for j in range(len(taus))], axis=1) * half
    total = C.chebval(1.0, anti, tensor=False)
    # pdf series per unit of t in [-1, 1] (integrates to 1 there); cdf series in mu
    return v + np.log(total), coef * (half / total)[None, :], anti / total[None, :], lo, hi


def bn_posterior(x, n, tau_prior: TauPrior, mu_prior: MuPrior) -> BinomialNormalPosterior:
    x = np.asarray(x, dtype=float)
    n = np.asarray(n, dtype=float)
    start = float(np.log((x.sum() + 0.5) / (n.sum() - x.sum() + 0.5)))

    def logpost(taus):
        taus = np.atleast_1d(np.asarray(taus, dtype=float))
        lp = tau_prior.logpdf(taus)
        return _conditionals(x, n, taus, mu_prior, start, lp)[0] + lp

    lo, hi = tau_support(logpost, tau_prior.scale, points=31, drop=_DROP)
    tau = ChebyshevDensity.fit(logpost, lo, hi, tail=1e-7)
    k = len(tau.coef)
    nodes = lo + (hi - lo) * (chebyshev_nodes(k) + 1) / 2
    logz, pdf_coef, cdf_coef, mlo, mhi = _conditionals(x, n, nodes, mu_prior, start, tau_prior.logpdf(nodes))
    lp = logz + tau_prior.logpdf(nodes)
    w = clenshaw_curtis_weights(k) * np.exp(lp - lp.max())
    w = np.clip(w, 0.0, None) / np.sum(np.clip(w, 0.0, None))
    mu = ConditionalMixture(w, mlo, mhi, pdf_coef, cdf_coef)
    return BinomialNormalPosterior(tau, mu, ConditionalMixture(w, mlo, mhi, pdf_coef, cdf_coef, spread=nodes))


def rma_bayes_binomial(
    events: Sequence[int],
    n: Sequence[int],
    *,
    studies: Sequence[str] | None = None,
    tau_prior: TauPrior | str | None = None,
    mu_prior: MuPrior | None = None,
    level: float = 0.95,
    shortest: bool = True,
) -> BayesResult:
    """Bayesian binomial-normal model on the logit scale; results back-transformed to proportions.

    tau_prior: TauPrior, 'halfnormal:SCALE', or None (the PLO default, half-normal(1.0)).
    mu_prior: MuPrior() flat (default) or MuPrior(mean, sd) on the logit scale.
    shortest: also compute the shortest intervals (slower; the simulation skips them).
    """
    if not 0 < level < 1:
        raise ValueError(f"level = {level} must lie strictly between 0 and 1")
    prior = (
        default_tau_prior("PLO")
        if tau_prior is None
        else (parse_tau_prior(tau_prior) if isinstance(tau_prior, str) else tau_prior)
    )
    mu_prior = MuPrior() if mu_prior is None else mu_prior
    x, nn, names = check_counts(events, n, studies)
    if mu_prior.sd is None and (x.sum() == 0 or x.sum() == nn.sum()):
        raise ValueError(
            f"every study has {'no' if x.sum() == 0 else 'only'} events: under a flat prior on mu "
            "the posterior is improper; name a proper normal prior for mu"
        )
    post = bn_posterior(x, nn, prior, mu_prior)
    # yi, vi: the logit with 0.5 added (escalc PLO), shown beside the exact proportions
    rows = exact_rows(names, x, nn, np.log((x + 0.5) / (nn - x + 0.5)), 1 / (x + 0.5) + 1 / (nn - x + 0.5), level)
    return posterior_result(
        model="binomial-normal",
        measure="PLO",
        tau_prior=prior.label,
        mu_prior=mu_prior.label,
        level=level,
        k=len(x),
        mu=post.mu,
        mu_moments=post.mu.moments(),
        predictive=post.predictive,
        tau=post.tau,
        back=lambda v: float(special.expit(v)),
        transform="ilogit",
        studies=rows,
        notes=(
            "exact binomial likelihood: no continuity correction; study intervals are Clopper-Pearson, "
            "weights are shares of patients (the model has no inverse-variance weights)",
        ),
        provenance=dict(
            model="binomial-normal (logit random intercepts)",
            tau_prior=prior.spec,
            mu_prior=mu_prior.label,
            tau_nodes=len(post.tau.coef),
            mu_nodes=post.mu.pdf_coef.shape[0],
            computation="Gauss-Legendre over each study's random effect; Chebyshev series of "
            "p(mu | tau, x) per tau node and of p(tau | x); mixtures over Clenshaw-Curtis "
            "nodes of tau (no sampling)",
        ),
        shortest=shortest,
    )


__all__ = ["rma_bayes_binomial", "bn_posterior", "BinomialNormalPosterior", "ConditionalMixture", "study_loglik"]
