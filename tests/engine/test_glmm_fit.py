"""The GLMM's fast fit (joint Newton with forward-mode derivatives, glmm_quadrature.py)
against the slow, derivative-free nested searches it replaced, and its derivatives against
finite differences of the same deviance. (Agreement with metafor itself: test_glmm.py.)"""

from __future__ import annotations

import math

import numpy as np
import pytest

from metaanalysis.engine import glmm_quadrature as q
from metaanalysis.engine.glmm import rma_glmm

# Pritz (1997), the first case of the metafor reference
X = np.array([16, 10, 4, 43, 10, 25, 13, 12, 22, 4, 5, 18, 58, 6], float)
N = np.array([17, 12, 8, 58, 10, 42, 14, 12, 41, 5, 6, 23, 68, 10], float)


@pytest.mark.parametrize("beta,tau", [(1.2, 0.7), (-0.5, 2.5), (2.0, 0.05)])
def test_gradient_and_hessian_match_finite_differences(beta, tau):
    dev, g, H, _ = q.deviance_jet(beta, tau, X, N, 7)
    f = lambda b, t: float(q.deviances([b], [t], X, N, 7)[0])  # noqa: E731
    assert dev == pytest.approx(f(beta, tau), rel=1e-12)
    h = 1e-5
    fd_g = [(f(beta + h, tau) - f(beta - h, tau)) / (2 * h), (f(beta, tau + h) - f(beta, tau - h)) / (2 * h)]
    assert g == pytest.approx(fd_g, rel=1e-6, abs=1e-7)
    h = 1e-4
    f0 = f(beta, tau)
    fd_H = [
        [
            (f(beta + h, tau) - 2 * f0 + f(beta - h, tau)) / h**2,
            (f(beta + h, tau + h) - f(beta + h, tau - h) - f(beta - h, tau + h) + f(beta - h, tau - h)) / (4 * h * h),
        ],
        [0.0, (f(beta, tau + h) - 2 * f0 + f(beta, tau - h)) / h**2],
    ]
    fd_H[1][0] = fd_H[0][1]
    assert H == pytest.approx(np.array(fd_H), rel=1e-4, abs=1e-5)


def test_batched_deviance_equals_one_point_at_a_time():
    betas, taus = np.array([0.3, 1.1, -2.0]), np.array([0.0, 0.8, 3.0])
    together = q.deviances(betas, taus, X, N, 7)
    alone = [q.deviances([b], [t], X, N, 7)[0] for b, t in zip(betas, taus, strict=True)]
    assert together == pytest.approx(alone, rel=1e-13)


def test_newton_finds_the_optimum_of_the_nested_searches_on_random_tables():
    # 25 seeded tables with k from 2 to 19 and true tau from 0 to 2: same (beta0, tau) to
    # 1e-6, never a higher deviance (the nested searches stop at xatol 1e-10 / xtol 1e-12).
    rng = np.random.default_rng(20261101)
    for _ in range(25):
        k = int(rng.integers(2, 20))
        n = rng.integers(3, 80, k)
        x = rng.binomial(n, 1 / (1 + np.exp(-(rng.normal(0, 2) + rng.normal(0, rng.uniform(0, 2), k)))))
        if x.sum() in (0, n.sum()):
            continue
        r = rma_glmm(x.tolist(), n.tolist())
        assert "Newton" in r.provenance["optimizer"] and "did not" not in r.provenance["optimizer"]
        b, t = q.fit_nested(x.astype(float), n.astype(float), 7)
        tau = math.sqrt(r.tau2)
        if t < 1e-6:
            t = 0.0
        assert (r.b, tau) == pytest.approx((b, t), rel=1e-6, abs=1e-6)
        d_newton, d_nested = q.deviances([r.b, b], [tau, t], x.astype(float), n.astype(float), 7)
        assert d_newton <= d_nested + 1e-9


def test_rule_is_cached_and_read_only():
    z, w = q.gh_rule(7)
    assert q.gh_rule(7)[0] is z
    assert w.sum() == pytest.approx(1.0, rel=1e-14)
    with pytest.raises(ValueError):
        z[0] = 0.0
