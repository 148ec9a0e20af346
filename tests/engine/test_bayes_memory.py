"""The normal-normal posterior (`engine/bayes.py` `nn_posterior`) in bounded memory.

Its work arrays are (tau values x studies): 481 support-grid points, up to 4,097 Chebyshev nodes
and ~257 mixture nodes, each times k. Held whole, 5,000 studies needed ~62 MB of Python-tracked
memory and 100,000 more than a gigabyte; computed in blocks, the peak no longer grows with the
grid times k. Memory is measured with tracemalloc (numpy reports its buffers to it); time is
never asserted.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from metaanalysis.engine import bayes
from metaanalysis.engine.bayes import nn_posterior, rma_bayes
from metaanalysis.engine.bayes_priors import MuPrior, parse_tau_prior

PRIOR = parse_tau_prior("halfnormal:0.5")


def simulated(k: int, seed: int = 1, tau: float = 0.3):
    rng = np.random.default_rng(seed)
    v = rng.uniform(0.01, 0.2, k)
    return rng.normal(0.3, tau, k) + rng.normal(0.0, np.sqrt(v)), v


def peak_bytes(fn, *args, **kwargs):
    tracemalloc.start()
    try:
        result = fn(*args, **kwargs)
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_5000_studies_fit_in_a_bounded_peak():
    y, v = simulated(5_000)
    # one (grid x studies) array of the support search alone would be 481 * 5,000 * 8 = 19 MB
    fit, peak = peak_bytes(rma_bayes, y, v, tau_prior=PRIOR)
    assert peak < 16 * 2**20, f"peak {peak / 2**20:.1f} MB"
    assert fit.k == 5_000 and fit.ci_lb < 0.3 < fit.ci_ub


def test_the_blocks_do_not_change_the_posterior(monkeypatch):
    """Blocks of 7 elements against the default (no split for 300 studies): tau's series and the mu
    and predictive mixtures are the same to the last bit; the study weights (a matrix-vector
    product, whose BLAS kernel sums differently for narrow blocks) to rounding."""
    y, v = simulated(300, seed=4)
    whole = nn_posterior(y, v, PRIOR, MuPrior())
    monkeypatch.setattr(bayes, "_BLOCK", 7)
    blocks = nn_posterior(y, v, PRIOR, MuPrior())
    assert np.array_equal(whole.tau.coef, blocks.tau.coef) and (whole.tau.lo, whole.tau.hi) == (
        blocks.tau.lo,
        blocks.tau.hi,
    )
    for a, b in ((whole.mu, blocks.mu), (whole.predictive, blocks.predictive)):
        assert np.array_equal(a.weights, b.weights) and np.array_equal(a.means, b.means)
        assert np.array_equal(a.sds, b.sds)
    assert blocks.weights == pytest.approx(whole.weights, rel=1e-12, abs=1e-18)
    assert blocks.weights.sum() == pytest.approx(1.0, rel=1e-12)


def test_100000_studies_within_a_gigabyte():
    """At this size the log posterior's rounding error (a sum of 100,000 terms) is above the
    Chebyshev target of 1e-13, so the series is resolved to what double precision holds."""
    y, v = simulated(100_000, tau=0.3)
    fit, peak = peak_bytes(rma_bayes, y, v, tau_prior=PRIOR)
    assert peak < 2**30, f"peak {peak / 2**20:.0f} MB"
    # the data were drawn with mu = 0.3, tau = 0.3: with 100,000 studies both are pinned down
    assert fit.ci_lb < 0.3 < fit.ci_ub and fit.ci_ub - fit.ci_lb < 0.01
    assert abs(fit.tau - 0.3) < 0.01
