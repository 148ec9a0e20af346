"""Effect sizes (escalc), effect sizes from printed ratios, and back-transformations.

The per-measure values for the reference cases are pinned to metafor in
test_rma_reference.py; here: continuity-correction rules (metafor 3.8-1,
R/escalc.r), input errors, and the transformations' defining identities.
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from metaanalysis.engine.effects import AsymmetricIntervalWarning, escalc, log_ratio_from_ci, log_ratio_from_p
from metaanalysis.engine.transforms import back_transform, exp, iarcsin, ilogit, ipft, ipft_hm, pft

Z975 = stats.norm.isf(0.025)
EVENTS, N = [0, 5, 10], [10, 10, 10]


# -- continuity correction -------------------------------------------------------------------


def _plo(x, n):
    """logit and its variance 1/x + 1/(n - x) (escalc PLO, vtype LS)."""
    return math.log(x / (n - x)), 1 / x + 1 / (n - x)


def test_only0_corrects_only_studies_with_a_zero_cell():
    es = escalc("PLO", events=EVENTS, n=N)
    expected = [_plo(0.5, 11), _plo(5, 10), _plo(10.5, 11)]
    np.testing.assert_allclose(es.yi, [e[0] for e in expected], rtol=1e-14)
    np.testing.assert_allclose(es.vi, [e[1] for e in expected], rtol=1e-14)
    assert es.add == 0.5 and es.to == "only0"


@pytest.mark.parametrize("to", ["all", "if0all"])
def test_all_and_if0all_correct_every_study_when_any_cell_is_zero(to):
    es = escalc("PLO", events=EVENTS, n=N, to=to)
    np.testing.assert_allclose(es.vi, [_plo(0.5, 11)[1], _plo(5.5, 11)[1], _plo(10.5, 11)[1]], rtol=1e-14)


def test_if0all_without_zero_cells_corrects_nothing_but_all_does():
    none = escalc("PLO", events=[3, 5], n=[10, 10], to="if0all")
    np.testing.assert_allclose(none.vi, [_plo(3, 10)[1], _plo(5, 10)[1]], rtol=1e-14)
    every = escalc("PLO", events=[3, 5], n=[10, 10], to="all")
    np.testing.assert_allclose(every.vi, [_plo(3.5, 11)[1], _plo(5.5, 11)[1]], rtol=1e-14)


def test_to_none_with_a_zero_cell_is_an_error_naming_the_study():
    with pytest.raises(ValueError, match=r"study Alpha: PLO effect size undefined"):
        escalc("PLO", events=EVENTS, n=N, to="none", studies=["Alpha", "Beta", "Gamma"])
    with pytest.raises(ValueError, match=r"study 2: PR effect size undefined"):
        escalc("PR", events=EVENTS[1:] + [10], n=N, to="none")


def test_freeman_tukey_and_arcsine_are_not_corrected_by_default_but_are_on_request():
    # metafor sets add = 0 for PAS and PFT unless the user passes add explicitly
    es = escalc("PFT", events=[0], n=[10])
    assert es.add == 0.0
    assert es.yi[0] == pytest.approx(0.5 * (0 + math.asin(math.sqrt(1 / 11))), rel=1e-14)
    assert es.vi[0] == pytest.approx(1 / 42, rel=1e-14)
    corrected = escalc("PFT", events=[0], n=[10], add=0.5)
    x, n = 0.5, 11.0
    assert corrected.yi[0] == pytest.approx(
        0.5 * (math.asin(math.sqrt(x / (n + 1))) + math.asin(math.sqrt((x + 1) / (n + 1))))
    )
    assert escalc("PAS", events=[10], n=[10]).yi[0] == pytest.approx(math.pi / 2)


def test_two_by_two_zero_cell_corrects_all_four_cells_of_that_study():
    es = escalc("OR", ai=[0, 4], n1i=[20, 20], ci=[3, 6], n2i=[20, 20])
    a, b, c, d = 0.5, 20.5, 3.5, 17.5
    assert es.yi[0] == pytest.approx(math.log(a * d / (b * c)), rel=1e-14)
    assert es.vi[0] == pytest.approx(1 / a + 1 / b + 1 / c + 1 / d, rel=1e-14)
    assert es.yi[1] == pytest.approx(math.log(4 * 14 / (16 * 6)), rel=1e-14)
    rr = escalc("RR", ai=[0], n1i=[20], ci=[3], n2i=[20])
    assert rr.vi[0] == pytest.approx(1 / 0.5 - 1 / 21 + 1 / 3.5 - 1 / 21, rel=1e-14)
    rd = escalc("RD", ai=[0], n1i=[20], ci=[0], n2i=[20])  # double zero: RD 0 with a positive variance
    assert rd.yi[0] == 0.0 and rd.vi[0] == pytest.approx(2 * (0.5 / 21) * (20.5 / 21) / 21)


# -- input errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs,pattern",
    [
        (dict(events=[3, 12], n=[10, 10]), r"study 2: 'events' \(12\) larger than 'n' \(10\)"),
        (dict(events=[3, -1], n=[10, 10]), r"study 2: 'events' must be >= 0"),
        (dict(events=[3, 2.5], n=[10, 10]), r"study 2: 'events' must be a whole number"),
        (dict(events=[3, float("nan")], n=[10, 10]), r"study 2: 'events' must be a finite number"),
        (dict(events=[3, None], n=[10, 10]), r"study 2: 'events' must be a finite number"),
        (dict(events=[3, 4], n=[10, math.inf]), r"study 2: 'n' must be a finite number"),
        (dict(events=[3, 4], n=[10]), r"'n' has 1 values but there are 2 studies"),
        (dict(events=[0, 0], n=[10, 0]), r"study 2: 'n' must be > 0"),
        (dict(events=[3, 4], n=[10, 10], to="some"), r"'to' must be one of"),
        (dict(events=[3, 4], n=[10, 10], add=-1), r"'add' must be a non-negative"),
        (dict(events=[3, 4], n=[10, 10], studies=["a"]), r"'studies' has 1 labels"),
        (dict(events=[3, 4], n=[10, 10], yi=[1, 2]), r"does not take 'yi'"),
        (dict(n=[10, 10]), r"'events' is required"),
    ],
)
def test_bad_proportion_input_is_named(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        escalc("PLO", **kwargs)


def test_bad_two_by_two_and_generic_input_is_named():
    with pytest.raises(ValueError, match=r"study T2: 'ci' \(25\) larger than 'n2i' \(20\)"):
        escalc("OR", ai=[1, 2], n1i=[20, 20], ci=[3, 25], n2i=[20, 20], studies=["T1", "T2"])
    with pytest.raises(ValueError, match=r"study 1: 'vi' must be > 0"):
        escalc("GEN", yi=[0.1, 0.2], vi=[0.0, 0.1])
    with pytest.raises(ValueError, match="unknown measure"):
        escalc("SMD", yi=[0.1], vi=[0.1])


def test_effect_sizes_are_frozen():
    es = escalc("PLO", events=[3], n=[10])
    with pytest.raises(dataclasses.FrozenInstanceError):
        es.measure = "PR"


# -- ratios from what a paper prints ----------------------------------------------------------


def test_log_ratio_from_symmetric_ci():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # rounding-level asymmetry must not warn
        yi, vi = log_ratio_from_ci(0.75, 0.60, 0.94)
    assert yi == pytest.approx(math.log(0.75))
    assert math.sqrt(vi) == pytest.approx((math.log(0.94) - math.log(0.60)) / (2 * Z975))


def test_log_ratio_from_asymmetric_ci_warns():
    with pytest.warns(AsymmetricIntervalWarning, match="not symmetric on the log scale"):
        log_ratio_from_ci(0.75, 0.40, 0.94)


def test_log_ratio_from_ci_level():
    _, vi95 = log_ratio_from_ci(2.0, 1.0, 4.0)
    _, vi90 = log_ratio_from_ci(2.0, 1.0, 4.0, level=0.90)
    assert math.sqrt(vi90) / math.sqrt(vi95) == pytest.approx(Z975 / stats.norm.isf(0.05))


@pytest.mark.parametrize(
    "args,pattern",
    [
        ((0.75, 0.80, 0.94), "outside its CI"),
        ((0.75, 0.94, 0.60), "must be below"),
        ((0.0, 0.60, 0.94), "'estimate' must be a positive"),
        ((0.75, float("nan"), 0.94), "'ci_lb' must be a positive"),
    ],
)
def test_log_ratio_from_ci_errors(args, pattern):
    with pytest.raises(ValueError, match=pattern):
        log_ratio_from_ci(*args)


def test_log_ratio_from_p_inverts_the_wald_test():
    # from a CI, compute the Wald p; from that p, the same se must come back
    yi, vi = log_ratio_from_ci(0.62, 0.45, 0.85)
    p = 2 * stats.norm.sf(abs(yi) / math.sqrt(vi))
    yi_p, vi_p = log_ratio_from_p(0.62, p)
    assert yi_p == pytest.approx(yi) and vi_p == pytest.approx(vi, rel=1e-12)
    assert log_ratio_from_p(0.5, 0.05)[1] == pytest.approx((math.log(2) / Z975) ** 2)


@pytest.mark.parametrize(
    "args,pattern",
    [((1.0, 0.5), "is 1"), ((0.5, 0.0), "strictly between"), ((0.5, 1.2), "strictly between"), ((-2, 0.1), "positive")],
)
def test_log_ratio_from_p_errors(args, pattern):
    with pytest.raises(ValueError, match=pattern):
        log_ratio_from_p(*args)


# -- back-transformations -------------------------------------------------------------------


def test_inverse_logit_and_exp():
    assert ilogit(0.0) == 0.5
    assert ilogit(math.log(3)) == pytest.approx(0.75)
    assert exp(math.log(0.6)) == pytest.approx(0.6)
    assert back_transform("OR", math.log(0.6)) == pytest.approx(0.6)
    assert back_transform("RD", -0.1) == -0.1  # reported on its own scale
    assert back_transform("GEN", 0.2, transform="exp") == pytest.approx(math.exp(0.2))


def test_inverse_arcsine_clips_where_metafor_does():
    assert iarcsin(math.asin(math.sqrt(0.3))) == pytest.approx(0.3)
    np.testing.assert_array_equal(iarcsin(np.array([-0.1, 2.0])), [0.0, 1.0])


@settings(max_examples=200, deadline=None)
@given(x=st.integers(min_value=0, max_value=500), extra=st.integers(min_value=0, max_value=500))
def test_inverse_freeman_tukey_recovers_the_proportion(x, extra):
    # Miller (1978): with the study's own n the inverse is exact
    n = x + max(extra, 1 if x == 0 else 0)
    assert ipft(pft(x / n, n), n) == pytest.approx(x / n, abs=1e-9)


def test_inverse_freeman_tukey_clips_and_uses_harmonic_mean():
    assert ipft(-0.1, 10) == 0.0 and ipft(2.0, 10) == 1.0
    x = np.array([0.7, 0.9])
    np.testing.assert_allclose(ipft_hm(x, [10, 30]), ipft(x, 15.0))  # harmonic mean of 10 and 30 is 15
    with pytest.raises(ValueError, match="pass n="):
        back_transform("PFT", 0.8)
    with pytest.raises(ValueError, match="unknown transform"):
        back_transform("GEN", 0.8, transform="square")
