"""Deterministic one-dimensional posterior distributions for the Bayesian models.

Two representations, both exact up to quadrature error (no sampling):

- `ChebyshevDensity`: an unnormalised density known only through its values
  (the posterior of tau; the marginals of the binomial-normal model), interpolated
  by a Chebyshev series on the interval that holds its mass. The series is refined
  (33, 65, 129, ... nodes) until its trailing coefficients are below 1e-13 of the
  largest, as chebfun does; integrals (normalising constant, CDF, moments) are
  then integrals of a polynomial.
- `NormalMixture`: a finite mixture of normals (the marginal posterior of mu in
  the normal-normal model: mu | tau is normal, mixed over the quadrature nodes of
  tau, as R bayesmeta writes it).

Both give median, equal-tailed and shortest intervals. The shortest interval of a
unimodal density is the one whose ends have equal density (or that starts at the
support's lower end when the density is highest there, as for tau near 0).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.polynomial import chebyshev as C
from scipy import optimize, special

_TAIL = 1e-13  # relative size of the last Chebyshev coefficients at convergence
_MAX_NODES = 4097
_ROOT_TOL = 1e-12  # absolute x-tolerance of every quantile


@lru_cache(maxsize=16)
def chebyshev_nodes(n: int) -> np.ndarray:
    """Chebyshev points of the second kind on [-1, 1], ascending (n >= 2)."""
    return -np.cos(np.pi * np.arange(n) / (n - 1))


@lru_cache(maxsize=16)
def clenshaw_curtis_weights(n: int) -> np.ndarray:
    """Weights w with sum w f(x_j) ~ integral_{-1}^{1} f, for the points of `chebyshev_nodes(n)`."""
    vander = C.chebvander(chebyshev_nodes(n), n - 1)
    # integral of T_j over [-1, 1]: 2 / (1 - j^2) for even j, 0 for odd j
    j = np.arange(n)
    moments = np.where(j % 2 == 0, 2.0 / (1.0 - np.where(j == 1, 0, j) ** 2), 0.0)
    return np.linalg.solve(vander.T, moments)


def values_to_coefficients(values: np.ndarray) -> np.ndarray:
    """Chebyshev coefficients of the interpolant through `values` at `chebyshev_nodes(n)`
    (along the first axis), by the discrete cosine transform."""
    v = np.asarray(values, dtype=float)[::-1]  # to x_j = cos(pi j / (n - 1)) order
    n = v.shape[0]
    ext = np.concatenate([v, v[-2:0:-1]], axis=0)  # even extension: a real FFT gives the DCT-I
    coef = np.real(np.fft.fft(ext, axis=0))[:n] / (n - 1)
    coef[0] /= 2
    coef[-1] /= 2
    return coef


def converged(coef: np.ndarray, tail: float = _TAIL) -> bool:
    scale = np.max(np.abs(coef))
    return scale > 0 and np.max(np.abs(coef[-4:])) <= tail * scale


@dataclass(frozen=True)
class ChebyshevDensity:
    """A normalised density on [lo, hi] given by a Chebyshev series (in x mapped to [-1, 1])."""

    lo: float
    hi: float
    coef: np.ndarray  # density series (integrates to 1 over [lo, hi])
    cdf_coef: np.ndarray  # its antiderivative, 0 at lo

    @classmethod
    def from_values(cls, lo: float, hi: float, values: np.ndarray) -> ChebyshevDensity:
        """`values`: the (unnormalised, non-negative) density at lo + (hi-lo)(x+1)/2, x = chebyshev_nodes(n)."""
        coef = values_to_coefficients(values)
        half = (hi - lo) / 2
        anti = C.chebint(coef, lbnd=-1) * half
        total = C.chebval(1.0, anti)
        if not (math.isfinite(total) and total > 0):
            raise ValueError("posterior density integrates to a non-positive or non-finite value")
        return cls(lo, hi, coef / total, anti / total)

    @classmethod
    def fit(
        cls, logf: Callable[[np.ndarray], np.ndarray], lo: float, hi: float, tail: float = _TAIL
    ) -> ChebyshevDensity:
        """Interpolate exp(logf) on [lo, hi], doubling the nodes until the last coefficients are
        below `tail` times the largest (lower it for a logf that is itself only accurate to ~tail)."""
        n = 33
        while True:
            x = lo + (hi - lo) * (chebyshev_nodes(n) + 1) / 2
            lf = logf(x)
            vals = np.exp(lf - np.max(lf))
            coef = values_to_coefficients(vals)
            if converged(coef, tail) or n >= _MAX_NODES:
                if not converged(coef, tail):
                    raise RuntimeError(f"posterior density not resolved by {n} Chebyshev nodes on [{lo:.4g}, {hi:.4g}]")
                return cls.from_values(lo, hi, vals)
            n = 2 * n - 1

    def _t(self, x):
        return (2 * np.asarray(x, dtype=float) - self.lo - self.hi) / (self.hi - self.lo)

    def pdf(self, x):
        x = np.asarray(x, dtype=float)
        inside = (x >= self.lo) & (x <= self.hi)
        val = C.chebval(np.clip(self._t(x), -1, 1), self.coef) * 2 / (self.hi - self.lo)
        return np.where(inside, np.maximum(val, 0.0), 0.0)

    def cdf(self, x):
        t = np.clip(self._t(x), -1, 1)
        return np.clip(C.chebval(t, self.cdf_coef), 0.0, 1.0)

    def quantile(self, p: float) -> float:
        return _invert(self.cdf, p, self.lo, self.hi)

    def moment(self, power: int) -> float:
        """E[x^power] by integrating x^power times the density series."""
        half, mid = (self.hi - self.lo) / 2, (self.hi + self.lo) / 2
        xser = np.array([mid, half])  # x as a series in t
        prod = self.coef.copy()
        for _ in range(power):
            prod = C.chebmul(prod, xser)
        return float(C.chebval(1.0, C.chebint(prod, lbnd=-1)) * half)

    def shortest(self, level: float) -> tuple[float, float]:
        return shortest_interval(self.pdf, self.quantile, level, lower_bound=self.lo)


@dataclass(frozen=True)
class NormalMixture:
    """sum_j w_j N(m_j, s_j^2) with sum_j w_j = 1."""

    weights: np.ndarray
    means: np.ndarray
    sds: np.ndarray

    def __post_init__(self):
        w = np.asarray(self.weights, dtype=float)
        keep = w > 0
        object.__setattr__(self, "weights", w[keep] / w[keep].sum())
        object.__setattr__(self, "means", np.asarray(self.means, dtype=float)[keep])
        object.__setattr__(self, "sds", np.asarray(self.sds, dtype=float)[keep])

    def pdf(self, x):
        x = np.asarray(x, dtype=float)[..., None]
        z = (x - self.means) / self.sds
        return np.sum(self.weights * np.exp(-0.5 * z * z) / (self.sds * math.sqrt(2 * math.pi)), axis=-1)

    def cdf(self, x):
        x = np.asarray(x, dtype=float)[..., None]
        return np.sum(self.weights * special.ndtr((x - self.means) / self.sds), axis=-1)

    def quantile(self, p: float) -> float:
        lo = float(np.min(self.means - 40 * self.sds))
        hi = float(np.max(self.means + 40 * self.sds))
        return _invert(lambda v: float(self.cdf(v)), p, lo, hi)

    @property
    def mean(self) -> float:
        return float(np.sum(self.weights * self.means))

    @property
    def sd(self) -> float:
        second = float(np.sum(self.weights * (self.sds**2 + self.means**2)))
        return math.sqrt(max(second - self.mean**2, 0.0))

    def shortest(self, level: float) -> tuple[float, float]:
        return shortest_interval(self.pdf, self.quantile, level, lower_bound=None)


def _invert(cdf: Callable[[float], float], p: float, lo: float, hi: float) -> float:
    if not 0 < p < 1:
        raise ValueError(f"probability {p} must lie strictly between 0 and 1")
    return float(
        optimize.brentq(lambda v: float(cdf(v)) - p, lo, hi, xtol=_ROOT_TOL, rtol=4 * np.finfo(float).eps, maxiter=500)
    )


def shortest_interval(pdf, quantile, level: float, *, lower_bound: float | None) -> tuple[float, float]:
    """Shortest interval holding `level` of a unimodal distribution: [Q(p), Q(p + level)] with
    equal density at both ends, p found by Brent's method; [lower_bound, Q(level)] when the
    density at the support's lower end is at least the density at Q(level)."""
    if not 0 < level < 1:
        raise ValueError(f"level = {level} must lie strictly between 0 and 1")
    if lower_bound is not None and float(pdf(lower_bound)) >= float(pdf(quantile(level))):
        return lower_bound, quantile(level)
    eps = 1e-9 * (1 - level)

    def gap(p):
        return float(pdf(quantile(p))) - float(pdf(quantile(p + level)))

    p = optimize.brentq(gap, eps, 1 - level - eps, xtol=1e-13, maxiter=500)
    return quantile(p), quantile(p + level)


__all__ = [
    "ChebyshevDensity",
    "NormalMixture",
    "shortest_interval",
    "chebyshev_nodes",
    "clenshaw_curtis_weights",
    "values_to_coefficients",
    "converged",
]
