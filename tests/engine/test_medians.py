"""Pooling medians (engine/medians.py) against metamedian's published example and hand computation.

- QE: the README of metamedian 1.2.1 and McGrath et al. 2024 (Res Synth Methods 15:332, the package
  paper, example on dat.age) print the QE analysis of the difference of median ages (nonsurvivors
  minus survivors of COVID-19; Katzenschlager et al. 2021, PLOS One 16:e0255154):
      > metamedian(dat.age, median_method = "qe")
      Random-Effects Model (k = 51; tau^2 estimator: REML)
      tau^2 (estimated amount of total heterogeneity): 33.5585 (SE = 8.3883)
      I^2 (total heterogeneity / total variability):   86.95%
      Q(df = 50) = 373.6841, p-val < .0001
      estimate      se     zval    pval    ci.lb    ci.ub
       13.2238  0.9121  14.4980  <.0001  11.4361  15.0115
  tests/fixtures/metamedian_dat_age.csv is the package's dat.age (51 studies), read from its .rda.
- MM/WM: the data of the `pool.med` documentation example; the expected values are computed by hand
  below from the definitions (R's type-7 quantile at 0.5 -+ z / (2 sqrt(k)); sign-test order statistics).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from metaanalysis.engine.medians import (
    median_of_medians,
    median_variance_from_ci,
    median_variance_qe,
    qe_fit,
    weighted_quantile,
)
from metaanalysis.engine.rma import rma

POOL_MED_EXAMPLE = [5.23, 3.10, 0.50, 0.78, 3.48, 0.59, 2.20, 5.06, 4.00]
Z = stats.norm.ppf(0.975)


def test_mm_normal_approximation_by_hand():
    s = sorted(POOL_MED_EXAMPLE)  # 0.50 0.59 0.78 2.20 3.10 3.48 4.00 5.06 5.23
    half = Z / (2 * 3)  # k = 9
    pos_lo, pos_hi = 8 * (0.5 - half), 8 * (0.5 + half)  # type 7: h = (k - 1) p, 0-based
    lo = s[1] + (pos_lo - 1) * (s[2] - s[1])
    hi = s[6] + (pos_hi - 6) * (s[7] - s[6])
    res = median_of_medians(POOL_MED_EXAMPLE)
    assert res.method == "MM" and res.k == 9 and res.coverage == 0.95
    assert res.estimate == 3.10
    assert res.ci_lb == pytest.approx(lo, rel=1e-12) and res.ci_lb == pytest.approx(0.66347579, abs=1e-8)
    assert res.ci_ub == pytest.approx(hi, rel=1e-12) and res.ci_ub == pytest.approx(4.65008243, abs=1e-8)


def test_mm_exact_sign_test_interval_by_hand():
    # k = 9: P(B <= 1) = 10 / 512, so [x_(2), x_(8)] has coverage 1 - 20/512 = 0.9609375 >= 0.95,
    # while T = 2 gives 1 - 2 * 46/512 = 0.8203 < 0.95.
    res = median_of_medians(POOL_MED_EXAMPLE, approximation="exact")
    assert (res.ci_lb, res.estimate, res.ci_ub) == (0.59, 3.10, 5.06)
    assert res.coverage == pytest.approx(1 - 20 / 512, rel=1e-14)


def test_mm_exact_needs_enough_studies():
    with pytest.raises(ValueError, match="no exact sign-test interval reaches 95% coverage"):
        median_of_medians([1.0, 2.0, 3.0, 4.0, 5.0], approximation="exact")  # best: 1 - 2/32 = 0.9375


def test_wm_small_example_by_hand():
    # weights 1, 1, 2 -> expanded sample 1, 2, 3, 3: type-7 median (2 + 3) / 2
    assert weighted_quantile([1.0, 2.0, 3.0], [1, 1, 2], [0.5])[0] == 2.5
    # the weight of a value is the number of positions it holds: 0.25 -> position 1.75 -> 1 + 0.75 * (2 - 1)
    assert weighted_quantile([1.0, 2.0, 3.0], [1, 1, 2], [0.25])[0] == pytest.approx(1.75, rel=1e-14)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0.1, 60, allow_nan=False), st.integers(1, 30)), min_size=1, max_size=12),
    st.floats(0.0, 1.0),
)
def test_wm_with_integer_weights_is_the_quantile_of_the_expanded_sample(pairs, p):
    x = np.array([a for a, _ in pairs])
    w = np.array([b for _, b in pairs])
    expanded = np.repeat(x, w)
    np.testing.assert_allclose(
        weighted_quantile(x, w, [p]), np.quantile(expanded, [p], method="linear"), rtol=1e-12, atol=1e-12
    )


def test_wm_uses_weights_and_equal_weights_give_mm():
    wm = median_of_medians(POOL_MED_EXAMPLE, weights=[10] * 9)
    mm = median_of_medians(POOL_MED_EXAMPLE)
    assert wm.method == "WM" and wm.estimate == mm.estimate
    heavy = median_of_medians([1.0, 2.0, 9.0], weights=[1, 1, 100])
    assert heavy.estimate == 9.0


def test_a_median_not_reached_is_refused_by_name():
    with pytest.raises(ValueError, match="median missing or not finite for Beta"):
        median_of_medians([5.0, float("nan"), 6.0], studies=["Alpha", "Beta", "Gamma"])
    with pytest.raises(ValueError, match="weight .* for Gamma"):
        median_of_medians([5.0, 7.0, 6.0], weights=[10, 20, float("nan")], studies=["Alpha", "Beta", "Gamma"])


def test_variance_from_a_wald_ci_by_hand():
    assert median_variance_from_ci(10.0, 8.0, 13.0) == pytest.approx((5 / (2 * Z)) ** 2, rel=1e-14)
    # upper bound not reached: one-sided, from the lower bound
    assert median_variance_from_ci(10.0, 8.0, None) == pytest.approx((2 / Z) ** 2, rel=1e-14)
    z90 = stats.norm.ppf(0.95)
    assert median_variance_from_ci(10.0, 8.0, 13.0, level=0.90) == pytest.approx((5 / (2 * z90)) ** 2, rel=1e-14)
    with pytest.raises(ValueError, match="not inside its CI"):
        median_variance_from_ci(14.0, 8.0, 13.0)


def test_qe_recovers_a_known_distribution():
    # exact quartiles of a log-normal(2, 0.5): the log-normal fits with objective ~0 and f(m) is its density
    q = stats.lognorm(s=0.5, scale=math.exp(2))
    fit = qe_fit(q1=q.ppf(0.25), median=q.ppf(0.5), q3=q.ppf(0.75), n=100)
    assert fit.scenario == "S2" and fit.family == "log-normal"
    assert fit.density_at_median == pytest.approx(q.pdf(q.median()), rel=1e-3)


def _group(row, g):
    if not math.isnan(row[f"med.{g}"]):  # S2: quartiles, QE variance of the median
        return row[f"med.{g}"], median_variance_qe(
            median=row[f"med.{g}"], q1=row[f"q1.{g}"], q3=row[f"q3.{g}"], n=int(row[f"n.{g}"])
        )
    return row[f"mean.{g}"], row[f"sd.{g}"] ** 2 / row[f"n.{g}"]  # S4: mean and sd (metamedian)


def test_qe_reproduces_metamedian_dat_age():
    data = pd.read_csv(Path(__file__).parents[1] / "fixtures" / "metamedian_dat_age.csv")
    yi, vi = [], []
    for _, row in data.iterrows():
        (a, va), (b, vb) = _group(row, "g1"), _group(row, "g2")
        yi.append(a - b)
        vi.append(va + vb)
    res = rma(yi, vi, method="REML", test="z", level=0.95)
    assert res.k == 51
    # printed to 4 decimals: agreement within half a unit of the last printed digit
    assert res.b == pytest.approx(13.2238, abs=5e-5)
    assert res.se == pytest.approx(0.9121, abs=5e-5)
    assert res.ci_lb == pytest.approx(11.4361, abs=5e-5)
    assert res.ci_ub == pytest.approx(15.0115, abs=5e-5)
    assert res.tau2 == pytest.approx(33.5585, abs=5e-5)
    assert res.QE == pytest.approx(373.6841, abs=5e-5)
    assert res.I2 == pytest.approx(86.95, abs=5e-3)
