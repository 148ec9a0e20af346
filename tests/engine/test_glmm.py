"""rma_glmm against metafor 3.8-1 `rma.glmm(measure = "PLO")` (lme4 glmer, nAGQ = 7).

Reference: /work/shared/reference/metafor_reference.json, entries `glmm`, produced by
    g <- rma.glmm(measure = "PLO", xi = xi, ni = ni); predict(g, transf = transf.ilogit)
lme4 stops its Nelder-Mead search at a tolerance, so agreement is to 1e-4 relative, not 1e-10.
"""

from __future__ import annotations

import json
import math

import pytest
from reference import reference_dir  # noqa: E402  (tests/reference.py: shared/ beside the clone)

from metaanalysis.engine.glmm import GLMMConvergenceError, rma_glmm

REFERENCE = reference_dir() / "metafor_reference.json"
REL_TOL = 1e-4
CASES = json.loads(REFERENCE.read_text())
GLMM_CASES = {c["name"]: c for c in CASES if "glmm" in c}

# reference field -> how to read it from our result
FIELDS = {
    "b": lambda r: r.b,
    "se": lambda r: r.se,
    "ci_lb": lambda r: r.ci_lb,
    "ci_ub": lambda r: r.ci_ub,
    "tau2": lambda r: r.tau2,
    "I2": lambda r: r.I2,
    "bt_pred": lambda r: r.bt_pred,
    "bt_ci_lb": lambda r: r.bt_ci_lb,
    "bt_ci_ub": lambda r: r.bt_ci_ub,
    "bt_pi_lb": lambda r: r.bt_pi_lb,
    "bt_pi_ub": lambda r: r.bt_pi_ub,
    "QE_Wld": lambda r: r.QE,
    "QE_LRT": lambda r: r.provenance["QE_LRT"],
}
NOT_NUMBERS = {"settings"}
GRID = [(name, field) for name in GLMM_CASES for field in FIELDS]
_FITS: dict = {}


def _fit(name):
    if name not in _FITS:
        d = GLMM_CASES[name]["data"]
        _FITS[name] = rma_glmm(d["events"], d["n"], studies=d["study"])
    return _FITS[name]


@pytest.mark.parametrize("name,field", GRID)
def test_matches_metafor(name, field):
    expected = GLMM_CASES[name]["glmm"][field]
    assert FIELDS[field](_fit(name)) == pytest.approx(expected, rel=REL_TOL)


def test_grid_covers_every_glmm_entry():
    in_file = {(c["name"], f) for c in CASES if "glmm" in c for f in c["glmm"] if f not in NOT_NUMBERS}
    assert in_file == set(GRID)
    assert {"pritz1997", "small_k_with_100_percent", "two_studies"} <= set(GLMM_CASES)
    assert all("error" not in c["glmm"] for c in GLMM_CASES.values())


def test_result_labels_and_heterogeneity_p():
    r = _fit("pritz1997")
    assert (r.method, r.measure, r.test, r.transform, r.k) == ("GLMM", "PLO", "z", "ilogit", 14)
    # QEp is the chi-square(k - 1) tail of the Wald statistic metafor reports
    from scipy import stats

    assert r.QEp == pytest.approx(stats.chi2.sf(GLMM_CASES["pritz1997"]["glmm"]["QE_Wld"], 13), rel=REL_TOL)


def test_study_rows_clopper_pearson_and_patient_share():
    r = _fit("pritz1997")
    s = r.studies
    d = GLMM_CASES["pritz1997"]["data"]
    i = d["study"].index("Tanabe et al.")  # 10/10
    # Exact interval for x = n: lower limit (alpha/2)^(1/n) (Clopper & Pearson 1934), upper 1.
    assert s.ci_lb[i] == pytest.approx(0.025 ** (1 / 10), rel=1e-12)
    assert s.ci_ub[i] == 1.0
    assert s.estimate[i] == 1.0
    assert s.weight[i] == pytest.approx(100 * 10 / sum(d["n"]), rel=1e-12)
    assert sum(s.weight) == pytest.approx(100.0)
    assert s.events == tuple(d["events"]) and s.n == tuple(d["n"])


def test_single_study_reports_its_own_logit():
    r = rma_glmm([3], [12], studies=["only"])
    assert r.k == 1 and r.tau2 is None and r.I2 is None and r.pi_lb is None
    assert r.b == pytest.approx(math.log(3 / 9))
    assert r.se == pytest.approx(math.sqrt(1 / 3 + 1 / 9))
    assert r.bt_pred == pytest.approx(0.25)
    assert any("k = 1" in n for n in r.notes)


def test_single_study_with_all_events_is_an_error():
    with pytest.raises(ValueError, match="only.*10/10"):
        rma_glmm([10], [10], studies=["only"])


@pytest.mark.parametrize("events,n", [([5, 7], [5, 7]), ([0, 0, 0], [5, 6, 7])])
def test_all_or_no_events_is_an_error(events, n):
    with pytest.raises(ValueError, match="infinity"):
        rma_glmm(events, n)


def test_no_finite_maximum_raises_named_error():
    # 0/5 and 5/5: the between-study variance grows without bound.
    with pytest.raises(GLMMConvergenceError):
        rma_glmm([0, 5], [5, 5])


@pytest.mark.parametrize(
    "events,n,msg",
    [
        ([3, 12], [10, 10], r"study 'B'.*events = 12"),
        ([3, -1], [10, 10], r"study 'B'.*events = -1"),
        ([3, 2.5], [10, 10], r"study 'B'.*events = 2.5 is not a whole number"),
        ([3, 2], [10, 0], r"study 'B'.*n = 0"),
        ([3], [10, 10], r"events has 1 values but n has 2"),
    ],
)
def test_bad_input_names_study_and_field(events, n, msg):
    with pytest.raises(ValueError, match=msg):
        rma_glmm(events, n, studies=["A", "B"][: len(n)] if len(events) == len(n) else None)


@pytest.mark.parametrize("name", list(GLMM_CASES))
def test_study_rows_carry_escalc_plo(name):
    # the yi/vi behind I^2: escalc(measure = "PLO") as in the reference `effects`
    r = _fit(name)
    ref = GLMM_CASES[name]["effects"]["PLO"]
    assert r.studies.yi == pytest.approx(ref["yi"], rel=1e-12)
    assert r.studies.vi == pytest.approx(ref["vi"], rel=1e-12)


def test_zero_arms_and_large_tau_fit_with_a_stable_hessian():
    # Several 0 % arms and a 3/3 arm drive tau^2 high; plain Newton for the per-study mode
    # oscillates here. The se must not depend on the finite-difference step (lme4 uses 1e-4).
    from metaanalysis.engine import glmm

    r = rma_glmm([16, 0, 18, 0, 0, 3], [23, 12, 42, 8, 4, 3])
    assert r.tau2 > 5 and math.isfinite(r.se)
    old = glmm._HESSIAN_STEP
    try:
        glmm._HESSIAN_STEP = 1e-3
        r3 = rma_glmm([16, 0, 18, 0, 0, 3], [23, 12, 42, 8, 4, 3])
    finally:
        glmm._HESSIAN_STEP = old
    assert r3.se == pytest.approx(r.se, rel=1e-5)


def test_tau2_on_the_boundary_matches_metafor():
    # R 4.2.2, metafor 3.8-1, lme4 1.1-31 (the reference's versions), run for this test:
    #   g <- rma.glmm(measure = "PLO", xi = c(1, 2), ni = c(10, 10))
    #   g$b = -1.7346010519, g$se = 0.6262242695, g$tau2 = 0, g$QE.Wld = 0.3787821413, g$QE.LRT = 0.3986555736
    # tau = 0 is a singular fit: lme4 takes vcov from the RX factor, not the Hessian.
    r = rma_glmm([1, 2], [10, 10])
    assert r.tau2 == 0.0 and r.I2 == 0.0
    assert r.b == pytest.approx(-1.7346010519, rel=1e-6)
    assert r.se == pytest.approx(0.6262242695, rel=1e-6)
    assert r.QE == pytest.approx(0.3787821413, rel=1e-6)
    assert r.provenance["QE_LRT"] == pytest.approx(0.3986555736, rel=1e-6)
