"""Batch fits (engine/batch.py) row by row against rma() on the same data: every
estimator, every test, rows of one study, subsets and sign flips. rma() itself is pinned
to metafor in test_rma_reference.py; leave-one-out against metafor is in test_sensitivity.py."""

from __future__ import annotations

import numpy as np
import pytest

from metaanalysis.engine.batch import BATCH_METHODS, fit_rows
from metaanalysis.engine.diagnostics import leave1out
from metaanalysis.engine.rma import rma

# simulated data (seeded): 9 studies with true tau^2 = 0.15
rng = np.random.default_rng(5)
K = 9
VI = rng.uniform(0.02, 0.6, K)
YI = rng.normal(0.4, np.sqrt(VI + 0.15))
MASKS = np.array(
    [[1] * K, [1, 0] * 4 + [1], [0] * (K - 2) + [1, 1], [1] + [0] * (K - 1), [0, 1, 1, 1, 0, 1, 1, 0, 0]], float
)
FIELDS = {
    "estimate": "b",
    "se": "se",
    "zval": "zval",
    "pval": "pval",
    "ci_lb": "ci_lb",
    "ci_ub": "ci_ub",
    "tau2": "tau2",
    "QE": "QE",
    "QEp": "QEp",
    "I2": "I2",
    "H2": "H2",
}


@pytest.mark.parametrize("test", ["z", "knha", "knha_adhoc"])
@pytest.mark.parametrize("method", BATCH_METHODS)
def test_each_row_equals_rma_on_that_subset(method, test):
    rows = fit_rows(YI, VI, MASKS, method=method, test=test)
    for r, m in enumerate(MASKS):
        keep = m > 0
        one = rma(YI[keep], VI[keep], method=method, test=test)
        assert rows["k"][r] == one.k
        for mine, theirs in FIELDS.items():
            expected = getattr(one, theirs)
            if one.k == 1 and expected is None:  # rma() reports None, metafor 0 / 1 (see leave1out)
                expected = {"tau2": 0.0, "QE": 0.0, "QEp": 1.0, "I2": 0.0, "H2": 1.0}[mine]
            assert rows[mine][r] == pytest.approx(expected, rel=1e-9, abs=1e-12), (method, test, r, mine)


@pytest.mark.parametrize("method", ["REML", "DL", "FE"])
def test_sign_flipped_rows_equal_rma(method):
    signs = np.array([[1] * K, [-1] * K, [1, -1] * 4 + [1]], float)
    rows = fit_rows(signs * YI, VI, method=method, test="knha")
    for r, sg in enumerate(signs):
        one = rma(sg * YI, VI, method=method, test="knha")
        assert rows["zval"][r] == pytest.approx(one.zval, rel=1e-9)
        assert rows["tau2"][r] == pytest.approx(one.tau2, rel=1e-9, abs=1e-12)


def test_failed_rows_are_nan_not_errors():
    # HKSJ with identical estimates has se = 0: rma() refuses, a batch row is NaN
    y = np.array([[0.3, 0.3, 0.3], [0.1, 0.5, 0.2]])
    rows = fit_rows(y, np.array([0.1, 0.2, 0.3]), method="REML", test="knha")
    assert np.isnan(rows["estimate"][0]) and np.isfinite(rows["estimate"][1])
    with pytest.raises(ValueError, match="identical"):
        rma(y[0], [0.1, 0.2, 0.3], method="REML", test="knha")


@pytest.mark.parametrize("method,test", [("REML", "knha"), ("PM", "z"), ("FE", "z")])
def test_leave1out_every_column_equals_rma_without_that_study(method, test):
    frame = leave1out(YI, VI, method=method, test=test)
    for i in range(K):
        keep = np.arange(K) != i
        one = rma(YI[keep], VI[keep], method=method, test=test)
        for mine, theirs in FIELDS.items():
            assert frame[mine][i] == pytest.approx(getattr(one, theirs), rel=1e-9, abs=1e-12)
