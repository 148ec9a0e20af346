"""Projection (engine/projection.py) against the dense residual-maker it replaces,
P = W - W X (X'WX)^-1 X'W formed explicitly for a small k."""

from __future__ import annotations

import numpy as np
import pytest

from metaanalysis.engine.projection import Projection


@pytest.mark.parametrize("p", [1, 3])
def test_every_quantity_equals_the_dense_formula(p):
    rng = np.random.default_rng(11)
    k = 12
    X = np.column_stack([np.ones(k)] + [rng.normal(size=k) for _ in range(p - 1)])
    w = rng.uniform(0.5, 20, k)
    y = rng.normal(size=k)
    d = rng.uniform(0.01, 0.3, k)
    P = np.diag(w) - (X * w[:, None]) @ np.linalg.solve(X.T @ (X * w[:, None]), (X * w[:, None]).T)
    D = np.diag(d)
    pr = Projection(w, X)
    assert pr.intercept_only == (p == 1)
    assert pr.residual(y) == pytest.approx(P @ y, rel=1e-10, abs=1e-12)
    assert pr.quad(y) == pytest.approx(y @ P @ y, rel=1e-10)
    assert pr.trace() == pytest.approx(np.trace(P), rel=1e-10)
    assert pr.trace_pd(d) == pytest.approx(np.trace(P @ D), rel=1e-10)
    assert pr.trace_pdp() == pytest.approx(np.sum(P * P), rel=1e-10)
    assert pr.trace_pdp(d) == pytest.approx(np.trace(P @ D @ P), rel=1e-10)
    assert pr.trace_pdpd(d) == pytest.approx(np.trace(P @ D @ P @ D), rel=1e-10)


def test_intercept_only_sums_equal_the_qr_path():
    # P depends only on the column space of X: a column of 2s takes the QR path, ones the sums
    rng = np.random.default_rng(3)
    w, y, d = rng.uniform(1, 5, 9), rng.normal(size=9), rng.uniform(0.1, 1, 9)
    fast, qr = Projection(w, np.ones((9, 1))), Projection(w, np.full((9, 1), 2.0))
    assert fast.intercept_only and not qr.intercept_only
    assert fast.h == pytest.approx(qr.h, rel=1e-12)
    assert fast.residual(y) == pytest.approx(qr.residual(y), rel=1e-10, abs=1e-12)
    for f in ("quad",):
        assert getattr(fast, f)(y) == pytest.approx(getattr(qr, f)(y), rel=1e-12)
    assert fast.trace() == pytest.approx(qr.trace(), rel=1e-12)
    assert fast.trace_pdp(d) == pytest.approx(qr.trace_pdp(d), rel=1e-12)
    assert fast.trace_pdpd(d) == pytest.approx(qr.trace_pdpd(d), rel=1e-12)
