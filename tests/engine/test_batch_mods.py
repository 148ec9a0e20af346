"""Stacked meta-regressions equal rma_mods() fit by fit (rma_mods is pinned to metafor in
tests/engine/test_subgroups.py and the permutation test to metafor in test_resampling.py)."""

import numpy as np
import pytest

from metaanalysis.engine.batch_mods import fit_designs
from metaanalysis.engine.metareg import factor_design, rma_mods


def _case(seed: int):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(8, 30))
    groups = rng.integers(0, int(rng.integers(2, 6)), size=k)
    X, _ = factor_design(groups)
    y, v = rng.normal(0, 0.8, k), rng.uniform(0.02, 0.5, k)
    return y, v, np.stack([X[rng.permutation(k)] for _ in range(40)])


@pytest.mark.parametrize("method", ["REML", "ML", "FE"])
@pytest.mark.parametrize("test", ["z", "knha"])
@pytest.mark.parametrize("seed", range(6))
def test_every_stacked_fit_is_the_single_fit(method, test, seed):
    y, v, designs = _case(seed)
    got = fit_designs(y, v, designs, method=method, test=test)
    assert not got["failed"].any()
    for i, D in enumerate(designs):
        one = rma_mods(y, v, D, method=method, test=test)
        np.testing.assert_allclose(got["tau2"][i], one.tau2, rtol=1e-9, atol=1e-14)
        np.testing.assert_allclose(got["beta"][i], one.beta, rtol=1e-9, atol=1e-14)
        np.testing.assert_allclose(got["zval"][i], one.zval, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(got["QM"][i], one.QM, rtol=1e-9, atol=1e-12)


def test_a_fit_that_does_not_converge_is_nan_and_the_others_stand():
    from metaanalysis.engine.estimators import Control

    y, v, designs = _case(1)
    got = fit_designs(y, v, designs, method="REML", control=Control(maxiter=0))
    assert got["failed"].any()  # one step is never enough from the Hedges start here
    assert np.isnan(got["QM"][got["failed"]]).all()
    assert np.isnan(got["zval"][got["failed"]]).all()


def test_methods_other_than_likelihood_ones_are_refused():
    y, v, designs = _case(0)
    with pytest.raises(ValueError, match="DL"):
        fit_designs(y, v, designs, method="DL")
