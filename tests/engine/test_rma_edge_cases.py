"""Edge cases with a defined answer, bad input, convergence, and agreement with other libraries."""

from __future__ import annotations

import math

import numpy as np
import pytest
from reference import case, effect_sizes, load_reference
from scipy import optimize, stats

from metaanalysis.engine.effects import escalc
from metaanalysis.engine.estimators import ESTIMATORS, Control, ConvergenceError, brent_root, estimate_tau2
from metaanalysis.engine.heterogeneity import qprofile_ci
from metaanalysis.engine.rma import rma, rma_effects
from metaanalysis.engine.transforms import ilogit

Z975 = stats.norm.isf(0.025)


# -- k = 1 -------------------------------------------------------------------------


def test_single_study_is_returned_as_itself_with_a_note():
    res = rma([0.4], [0.09], method="REML", test="z", studies=["Only"])
    assert res.k == 1
    assert res.b == 0.4 and res.se == pytest.approx(0.3)
    assert (res.ci_lb, res.ci_ub) == pytest.approx((0.4 - Z975 * 0.3, 0.4 + Z975 * 0.3))
    for name in ("tau2", "QE", "QEp", "I2", "H2", "pi_lb", "pi_ub", "se_tau2", "tau2_ci_lb", "tau2_ci_ub"):
        assert getattr(res, name) is None, name
    assert any("heterogeneity not estimable with k = 1" in n for n in res.notes)
    assert res.studies.weight == (100.0,)


def test_single_study_knha_falls_back_to_wald_with_a_note():
    res = rma([0.4], [0.09], method="REML", test="knha")
    assert res.test == "z" and res.df is None
    assert any("Wald z interval used instead" in n for n in res.notes)
    assert res.ci_lb == pytest.approx(0.4 - Z975 * 0.3)


def test_single_proportion_is_back_transformed():
    es = escalc("PLO", events=[7], n=[20])
    res = rma_effects(es, test="knha")
    assert res.bt_pred == pytest.approx(7 / 20)
    assert res.bt_ci_lb == pytest.approx(ilogit(es.yi[0] - Z975 * math.sqrt(es.vi[0])))


# -- k = 2, tau2 = 0, bounds -------------------------------------------------------------


def test_higgins2009_prediction_interval_needs_three_studies():
    es = effect_sizes(case("two_studies"), "PLO")
    res = rma_effects(es, method="REML", test="z", pi_method="higgins2009")
    assert res.pi_lb is None and res.pi_ub is None
    assert any("k >= 3" in n for n in res.notes)


def test_higgins2009_prediction_interval_uses_t_with_k_minus_2_df():
    # pinned to metafor's se and tau2 for this fit (reference JSON), t(k-2) per Higgins et al. 2009 eq. 12
    c = case("pritz1997")
    ref = c["fits"]["PLO|REML|z"]
    res = rma_effects(effect_sizes(c, "PLO"), method="REML", test="z", pi_method="higgins2009")
    half = stats.t.isf(0.025, ref["k"] - 2) * math.sqrt(ref["se"] ** 2 + ref["tau2"])
    assert res.pi_method == "higgins2009"
    assert res.pi_lb == pytest.approx(ref["b"] - half, rel=1e-9)
    assert res.pi_ub == pytest.approx(ref["b"] + half, rel=1e-9)


def test_q_below_df_gives_tau2_zero_and_a_null_qprofile_interval():
    yi, vi = [0.10, 0.12, 0.11], [0.04, 0.04, 0.04]  # Q = 0.005, far below df = 2
    for method in ("DL", "REML", "PM", "HE", "ML", "EB"):
        res = rma(yi, vi, method=method, test="z")
        assert res.tau2 == 0.0, method
        assert res.I2 == 0.0 and res.H2 == 1.0
        assert res.tau2_ci_lb == 0.0 and res.tau2_ci_ub == 0.0
        assert any("null set" in n for n in res.notes)
        # with tau2 = 0 the prediction interval is the confidence interval
        assert (res.pi_lb, res.pi_ub) == pytest.approx((res.ci_lb, res.ci_ub))


def test_qprofile_upper_bound_hit_is_reproduced_and_noted():
    # metafor prints 100 for this upper limit (reference JSON): the search bound, not an estimate
    c = case("small_k_with_100_percent")
    assert c["fits"]["PLO|REML|z"]["tau2_ci_ub"] == 100
    res = rma_effects(effect_sizes(c, "PLO"), method="REML", test="z")
    assert res.tau2_ci_ub == 100
    assert any("not estimable" in n and "upper limit" in n for n in res.notes)


def test_hundred_percent_arm_needs_correction_only_when_scale_demands_it():
    # 11/11: logit undefined without correction; Freeman-Tukey is defined without one
    with pytest.raises(ValueError, match=r"study A: PLO effect size undefined"):
        escalc("PLO", events=[11, 6, 4], n=[11, 9, 12], studies=["A", "B", "C"], to="none")
    es = escalc("PFT", events=[11, 6, 4], n=[11, 9, 12], studies=["A", "B", "C"])
    res = rma_effects(es, method="REML", test="knha")
    assert res.k == 3 and 0 < res.bt_pred < 1


# -- Hartung-Knapp variants ------------------------------------------------------------------


def test_knha_with_identical_estimates_is_an_error_not_a_zero_width_interval():
    with pytest.raises(ValueError, match="identical"):
        rma([0.2, 0.2, 0.2], [0.01, 0.02, 0.03], method="REML", test="knha")


def test_knha_adhoc_with_identical_estimates_equals_wald_se():
    adhoc = rma([0.2, 0.2, 0.2], [0.01, 0.02, 0.03], method="REML", test="knha_adhoc")
    wald = rma([0.2, 0.2, 0.2], [0.01, 0.02, 0.03], method="REML", test="z")
    assert adhoc.se == pytest.approx(wald.se)
    assert adhoc.ci_ub - adhoc.ci_lb > wald.ci_ub - wald.ci_lb  # t(2) quantile is wider


@pytest.mark.parametrize("c", [c for c in load_reference() if c.get("effects")], ids=lambda c: c["name"])
def test_knha_adhoc_se_is_the_larger_of_metafor_knha_and_wald(c):
    # metafor test="adhoc": s2w = max(1, s2w), so se = max(se_knha, se_z); pinned to metafor's two se values
    for measure in c["effects"]:
        ref_z, ref_k = c["fits"][f"{measure}|REML|z"], c["fits"][f"{measure}|REML|knha"]
        res = rma_effects(effect_sizes(c, measure), method="REML", test="knha_adhoc")
        assert res.se == pytest.approx(max(ref_z["se"], ref_k["se"]), rel=1e-9), measure
        assert res.df == ref_z["k"] - 1


def test_fe_with_knha_is_allowed_with_a_note():
    res = rma_effects(effect_sizes(case("bcg"), "OR"), method="FE", test="knha")
    assert res.df == 12
    assert any("common-effect" in n for n in res.notes)


# -- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "yi,vi,pattern",
    [
        ([0.1, 0.2], [0.01, 0.0], r"study B \(index 1\): 'vi' must be > 0"),
        ([0.1, 0.2], [0.01, -0.02], r"study B \(index 1\): 'vi' must be > 0"),
        ([0.1, float("nan")], [0.01, 0.02], r"study B \(index 1\): 'yi' must be a finite number"),
        ([0.1, None], [0.01, 0.02], r"study B \(index 1\): 'yi' must be a finite number"),
        ([0.1, 0.2], [float("inf"), 0.02], r"study A \(index 0\): 'vi' must be a finite number"),
        ([0.1, 0.2, 0.3], [0.01, 0.02], r"'yi' has 3 values but 'vi' has 2"),
        ([], [], r"no studies"),
    ],
)
def test_bad_yi_vi_raise_naming_study_and_field(yi, vi, pattern):
    studies = ["A", "B", "C"][: len(yi)] if len(yi) == len(vi) else None
    with pytest.raises(ValueError, match=pattern):
        rma(yi, vi, studies=studies)


@pytest.mark.parametrize(
    "kwargs,pattern",
    [
        (dict(method="XYZ"), "unknown method"),
        (dict(test="t"), "unknown test"),
        (dict(pi_method="riley"), "unknown pi_method"),
        (dict(level=95), "fraction strictly between 0 and 1"),
        (dict(studies=["a"]), "'studies' has 1 labels"),
        (dict(events=[1, 2]), "'events' has 2 values"),
        (dict(measure="PFT"), "pass n="),
        (dict(transform="sqrt"), "unknown transform"),
    ],
)
def test_bad_options_raise(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        rma([0.1, 0.2, 0.4], [0.01, 0.02, 0.03], **kwargs)


# -- convergence -----------------------------------------------------------------------------


def test_fisher_scoring_non_convergence_raises_named_error():
    es = effect_sizes(case("pritz1997"), "PLO")
    with pytest.raises(ConvergenceError) as err:
        rma_effects(es, method="REML", control=Control(maxiter=1))
    assert err.value.estimator == "REML"


def test_pm_search_bound_too_low_raises_named_error():
    es = effect_sizes(case("pritz1997"), "PLO")
    with pytest.raises(ConvergenceError) as err:
        rma_effects(es, method="PM", control=Control(tau2_max=1e-6))
    assert err.value.estimator == "PM"


def test_brent_root_without_sign_change_raises():
    with pytest.raises(ConvergenceError, match="no sign change"):
        brent_root(lambda x: x * x + 1, 0.0, 1.0, tol=1e-8, maxiter=100)


def test_every_registered_estimator_fits_every_reference_case():
    assert set(ESTIMATORS) == {"FE", "DL", "HE", "HS", "SJ", "ML", "REML", "EB", "PM"}
    for c in load_reference():
        for measure in c.get("effects") or {"GEN": None}:
            es = effect_sizes(c, measure)
            for method in ESTIMATORS:
                fit = estimate_tau2(method, es.yi, es.vi)
                assert fit.tau2 >= 0 and math.isfinite(fit.tau2)


# -- metafor's stopping rules vs the exact root ---------------------------------------------------

EXACT = Control(threshold=1e-13, tol=1e-15, maxiter=10_000)


def _exact_reml(y, v):
    def score(t):  # REML estimating equation for an intercept-only model
        w = 1 / (v + t)
        r = y - np.sum(w * y) / np.sum(w)
        return np.sum(w**2 * r**2) - (np.sum(w) - np.sum(w**2) / np.sum(w))

    return 0.0 if score(0.0) <= 0 else optimize.brentq(score, 0.0, 1e3, xtol=1e-15, rtol=1e-15)


@pytest.mark.parametrize("c", [c for c in load_reference() if c.get("effects")], ids=lambda c: c["name"])
def test_exact_roots_lie_within_metafor_tolerances(c):
    """Why we replicate metafor's iterations: its answers are within its own tolerance of the exact
    root, but not within 1e-6 of it (e.g. bcg RD under PM: 2 %). With a tight Control we get the exact root."""
    control = Control()
    for measure in c["effects"]:
        es = effect_sizes(c, measure)
        exact = _exact_reml(es.yi, es.vi)
        assert estimate_tau2("REML", es.yi, es.vi, control=EXACT).tau2 == pytest.approx(exact, rel=1e-9, abs=1e-14)
        # Fisher scoring stops when a step is below `threshold`; the remaining error is of that order
        assert abs(estimate_tau2("REML", es.yi, es.vi).tau2 - exact) < 10 * control.threshold
        pm_metafor = c["fits"][f"{measure}|PM|z"]["tau2"]
        pm_exact = estimate_tau2("PM", es.yi, es.vi, control=EXACT).tau2
        assert abs(pm_metafor - pm_exact) <= control.tol  # uniroot's absolute tolerance
        lb_metafor = c["fits"][f"{measure}|REML|z"]["tau2_ci_lb"]
        lb_exact = qprofile_ci(es.yi, es.vi, exact, control=EXACT).tau2_ci_lb
        assert abs(lb_metafor - lb_exact) <= control.tol


# -- other libraries computing the same quantity (pymare 0.0.13, statsmodels 0.15.0) -----------------


@pytest.mark.parametrize("c", [c for c in load_reference() if c.get("effects")], ids=lambda c: c["name"])
def test_pymare_and_statsmodels_agree_within_their_tolerances(c):
    from pymare.estimators import DerSimonianLaird, VarianceBasedLikelihoodEstimator
    from statsmodels.stats.meta_analysis import combine_effects

    for measure in c["effects"]:
        es = effect_sizes(c, measure)
        y, v, X = es.yi, es.vi, np.ones((len(es.yi), 1))
        ours_dl = estimate_tau2("DL", y, v).tau2
        assert ours_dl > 0  # statsmodels does not truncate DL at 0; these cases never need it
        # DL is closed form: agreement to rounding. pymare >= 0.0.11 defaults to Knapp-Hartung, so
        # every option is passed explicitly.
        dl = DerSimonianLaird(weight_scheme="individual", rho=None, small_sample_correction="wald")
        assert float(np.ravel(dl.fit(y=y, v=v, X=X).params_["tau2"])[0]) == pytest.approx(ours_dl, rel=1e-12)
        sm_dl = combine_effects(y, v, method_re="chi2", use_t=False, alpha=0.05)
        assert sm_dl.tau2 == pytest.approx(ours_dl, rel=1e-12)
        # REML: pymare's bounded search stops at a bracket 1e-6 of its start, so agreement is ~1e-6
        reml = VarianceBasedLikelihoodEstimator(
            method="REML",
            weight_scheme="individual",
            rho=None,
            small_sample_correction="wald",
            xtol=1e-6,
            ftol=1e-12,
            maxiter=50,
        )
        assert float(np.ravel(reml.fit(y=y, v=v, X=X).params_["tau2"])[0]) == pytest.approx(
            estimate_tau2("REML", y, v, control=EXACT).tau2, rel=1e-5
        )
        # Paule-Mandel: statsmodels iterates to its own default tolerance (~1e-5 relative)
        sm_pm = combine_effects(y, v, method_re="iterated", use_t=False, alpha=0.05)
        assert sm_pm.tau2 == pytest.approx(estimate_tau2("PM", y, v, control=EXACT).tau2, rel=1e-4)


# -- study rows and provenance ------------------------------------------------------------------


def test_study_rows_are_on_the_reporting_scale():
    c = case("pritz1997")
    es = effect_sizes(c, "PLO")
    res = rma_effects(es, method="REML", test="knha")
    s = res.studies
    assert sum(s.weight) == pytest.approx(100.0)
    assert s.study == tuple(c["data"]["study"])
    assert s.events == tuple(c["data"]["events"]) and s.n == tuple(c["data"]["n"])
    # uncorrected studies show their observed proportion; 10/10 shows the corrected 10.5/11
    expected = [
        e / n if e not in (0, n) else (e + 0.5) / (n + 1)
        for e, n in zip(c["data"]["events"], c["data"]["n"], strict=True)
    ]
    np.testing.assert_allclose(s.estimate, expected, rtol=1e-12)
    np.testing.assert_allclose(s.ci_lb, ilogit(es.yi - Z975 * np.sqrt(es.vi)), rtol=1e-12)
    # weights are 1/(vi + tau2), tau2 pinned to metafor
    w = 1 / (es.vi + c["fits"]["PLO|REML|knha"]["tau2"])
    np.testing.assert_allclose(s.weight, 100 * w / w.sum(), rtol=1e-9)
    frame = res.to_frame()
    assert list(frame["kind"]) == ["study"] * 14 + ["pooled"]


def test_provenance_records_options_and_input_digest():
    a = rma([0.1, 0.3, 0.5], [0.01, 0.02, 0.03], method="DL", test="z")
    b = rma([0.1, 0.3, 0.5000001], [0.01, 0.02, 0.03], method="DL", test="z")
    assert a.provenance["method"] == "DL" and a.provenance["test"] == "z"
    assert len(a.provenance["inputs_sha256"]) == 64
    assert a.provenance["inputs_sha256"] != b.provenance["inputs_sha256"]
    assert a.provenance["control"]["threshold"] == 1e-5


def test_building_blocks_validate_their_inputs_too():
    # meta-regression and leave-one-out call these directly, bypassing rma()'s checks
    from metaanalysis.engine.heterogeneity import q_test

    with pytest.raises(ValueError, match=r"index 1: 'vi' must be > 0"):
        estimate_tau2("REML", [0.1, 0.2, 0.3], [0.1, 0.0, 0.1])
    with pytest.raises(ValueError, match=r"index 2: 'yi' must be finite"):
        q_test([0.1, 0.2, float("nan")], [0.1, 0.1, 0.1])
    with pytest.raises(ValueError, match="more studies than coefficients"):
        estimate_tau2("DL", [0.1], [0.1])
    with pytest.raises(ValueError, match="unknown tau"):
        estimate_tau2("XX", [0.1, 0.2], [0.1, 0.1])


def test_tau2_with_moderators_reproduces_metafor_meta_regression():
    # metafor: rma(yi, vi, mods = ~ factor(group), method = "REML")$QM (reference `subgroups`);
    # checks the design-matrix path that meta-regression builds on (the key itself is tested elsewhere)
    c = case("kearon1998_sensitivity_by_patients")
    es = effect_sizes(c, "PLO")
    group = np.array(c["data"]["group"])
    X = np.column_stack([np.ones(len(group)), group == "symptomatic"]).astype(float)  # R's level order
    tau2 = estimate_tau2("REML", es.yi, es.vi, X=X).tau2
    w = 1 / (es.vi + tau2)
    xtwx = X.T @ (X * w[:, None])
    beta = np.linalg.solve(xtwx, X.T @ (w * es.yi))
    qm = beta[1] ** 2 / np.linalg.inv(xtwx)[1, 1]
    assert qm == pytest.approx(c["subgroups"]["QM_common_tau2"], rel=1e-6)


# -- invariances any correct implementation has ----------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_studies = st.integers(min_value=3, max_value=12).flatmap(
    lambda k: st.tuples(
        st.lists(st.floats(-3, 3), min_size=k, max_size=k), st.lists(st.floats(0.005, 2.0), min_size=k, max_size=k)
    )
)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(data=_studies, shift=st.floats(-5, 5), method=st.sampled_from(sorted(ESTIMATORS)))
def test_shifting_all_estimates_shifts_only_the_pooled_estimate(data, shift, method):
    yi, vi = data
    if len(set(yi)) == 1:
        return  # HKSJ undefined for identical estimates (tested above)
    try:
        a = rma(yi, vi, method=method, test="knha")
    except ConvergenceError:
        return  # oscillating Fisher scoring: tested separately
    b = rma([y + shift for y in yi], vi, method=method, test="knha")
    assert b.b == pytest.approx(a.b + shift, abs=1e-8)
    for name in ("tau2", "se", "QE", "I2", "tau2_ci_lb", "tau2_ci_ub"):
        if getattr(a, name) is None:
            assert getattr(b, name) is None, name
        else:
            assert getattr(b, name) == pytest.approx(getattr(a, name), rel=1e-6, abs=1e-8), name


@settings(max_examples=60, deadline=None, derandomize=True)
@given(data=_studies, method=st.sampled_from(sorted(ESTIMATORS)))
def test_study_order_does_not_matter(data, method):
    yi, vi = data
    fits = []
    for order in (slice(None), slice(None, None, -1)):
        try:
            fits.append(rma(yi[order], vi[order], method=method, test="z"))
        except ConvergenceError:
            fits.append(None)
    a, b = fits
    if a is None or b is None:  # Fisher scoring can oscillate (as in metafor): then in either order
        assert a is None and b is None
        return
    for name in ("b", "se", "tau2", "QE", "I2", "pi_lb", "tau2_ci_ub"):
        if getattr(a, name) is None:
            assert getattr(b, name) is None, name
        else:
            assert getattr(b, name) == pytest.approx(getattr(a, name), rel=1e-6, abs=1e-8), name


def test_oscillating_fisher_scoring_raises_and_step_halving_fixes_it():
    # Fisher scoring from tau2 = 0 overshoots back and forth here (metafor's algorithm does the same
    # and stops with "did not converge"); the suggested stepadj = 0.5 reaches the REML root
    yi, vi = [0.0, 0, 0, 0, 0, 1], [1.0, 1, 1, 1, 1, 0.125]
    with pytest.raises(ConvergenceError, match="stepadj"):
        rma(yi, vi, method="REML")
    res = rma(yi, vi, method="REML", control=Control(stepadj=0.5, maxiter=1000, threshold=1e-12))
    assert res.tau2 == pytest.approx(_exact_reml(np.array(yi), np.array(vi)), rel=1e-8)


def test_level_reaches_every_interval():
    es = effect_sizes(case("bcg"), "RR")
    r95 = rma_effects(es, method="REML", test="z", level=0.95)
    r90 = rma_effects(es, method="REML", test="z", level=0.90)
    assert (r90.ci_ub - r90.b) / r90.se == pytest.approx(stats.norm.isf(0.05))
    assert (r90.pi_ub - r90.b) / math.sqrt(r90.se**2 + r90.tau2) == pytest.approx(stats.norm.isf(0.05))
    assert r95.tau2_ci_lb < r90.tau2_ci_lb < r90.tau2 < r90.tau2_ci_ub < r95.tau2_ci_ub
    rows = r90.studies
    assert (rows.ci_ub[0] - rows.estimate[0]) > 0
    assert math.log(rows.ci_ub[0]) - es.yi[0] == pytest.approx(stats.norm.isf(0.05) * math.sqrt(es.vi[0]))
