"""Our effect sizes as a PyMARE Dataset and back; PyMARE's estimators on it agree with ours.

Tolerances are the ones PyMARE's own metafor-alignment tests use
(pymare/tests/test_metafor_alignment.py, test_metafor_random_effects.py): rtol 1e-11, atol 1e-9 for
what both compute in closed form (FE, DL, HE, Cochran's Q); rtol 1e-4, atol 1e-6 for tau^2 found
by numerical search (ML, REML), since the two searches stop at their own tolerances. Every PyMARE
option is passed explicitly (its defaults have changed between releases).
"""

from __future__ import annotations

import numpy as np
import pytest
from pymare import Dataset
from pymare.estimators import DerSimonianLaird, Hedges, VarianceBasedLikelihoodEstimator, WeightedLeastSquares
from reference import effect_sizes, load_reference

from metaanalysis import from_pymare, rma, to_pymare
from metaanalysis.engine.effects import escalc

CLOSED = dict(rtol=1e-11, atol=1e-9)
SEARCHED = dict(rtol=1e-4, atol=1e-6)
CORRECTION = {"z": "wald", "knha": "knapp-hartung"}


def _pymare(method: str, test: str):
    correction = CORRECTION[test]
    return {
        "FE": lambda: WeightedLeastSquares(
            tau2=0.0, weight_scheme="individual", rho=None, small_sample_correction=correction
        ),
        "DL": lambda: DerSimonianLaird(weight_scheme="individual", rho=None, small_sample_correction=correction),
        "HE": lambda: Hedges(weight_scheme="individual", rho=None, small_sample_correction=correction),
        "ML": lambda: VarianceBasedLikelihoodEstimator(
            method="ML", weight_scheme="individual", rho=None, small_sample_correction=correction
        ),
        "REML": lambda: VarianceBasedLikelihoodEstimator(
            method="REML", weight_scheme="individual", rho=None, small_sample_correction=correction
        ),
    }[method]()


def _cases():
    measure = {"prop": "PLO", "2x2": "OR", "generic": "GEN"}
    return [pytest.param(c["name"], measure[c["kind"]], id=c["name"]) for c in load_reference()]


def _es(name, measure):
    return effect_sizes(next(c for c in load_reference() if c["name"] == name), measure)


@pytest.mark.parametrize("name,measure", _cases())
def test_round_trip_keeps_every_number(name, measure):
    es = _es(name, measure)
    ds = to_pymare(es)
    assert isinstance(ds, Dataset) and ds.y.shape == (es.k, 1) and ds.X.shape == (es.k, 1)
    back = from_pymare(ds, measure=measure, studies=es.studies)
    np.testing.assert_array_equal(back.yi, es.yi)
    np.testing.assert_array_equal(back.vi, es.vi)
    assert back.studies == es.studies and back.measure == measure
    if es.n is not None:
        np.testing.assert_array_equal(back.n, es.n)


@pytest.mark.parametrize("name,measure", _cases())
@pytest.mark.parametrize(
    "method,test",
    [(m, t) for m in ("FE", "DL", "HE", "ML", "REML") for t in ("z", "knha") if (m, t) != ("FE", "knha")],
)
def test_pymare_estimators_on_our_dataset_agree_with_rma(name, measure, method, test):
    es = _es(name, measure)
    if es.k < 2:
        pytest.skip("one study")
    ours = rma(to_pymare(es), method=method, test=test, measure="GEN")
    theirs = _pymare(method, test).fit_dataset(to_pymare(es)).summary()
    tol = SEARCHED if method in ("ML", "REML") else CLOSED
    fe = theirs.get_fe_stats()
    np.testing.assert_allclose(float(np.ravel(theirs.tau2)[0]) if method != "FE" else 0.0, ours.tau2 or 0.0, **tol)
    np.testing.assert_allclose(np.ravel(fe["est"])[0], ours.b, **tol)
    np.testing.assert_allclose(np.ravel(fe["se"])[0], ours.se, **tol)
    np.testing.assert_allclose(np.ravel(fe["ci_l"])[0], ours.ci_lb, **tol)
    np.testing.assert_allclose(np.ravel(fe["ci_u"])[0], ours.ci_ub, **tol)
    het = theirs.get_heterogeneity_stats()
    np.testing.assert_allclose(np.ravel(het["Q"])[0], ours.QE, **CLOSED)


def test_rma_on_a_dataset_is_rma_on_its_columns():
    es = escalc("PLO", events=[3, 6, 10, 4], n=[10, 7, 30, 12], studies=list("ABCD"))
    a = rma(to_pymare(es), method="REML", test="knha", measure="PLO", studies=es.studies)
    b = rma(es.yi, es.vi, method="REML", test="knha", measure="PLO", studies=es.studies)
    assert a.to_dict() == b.to_dict()
    assert to_pymare(es).y.ravel().tolist() == es.yi.tolist()


def test_a_dataset_with_moderators_is_refused_not_fitted_without_them():
    ds = Dataset(
        y=np.array([0.1, 0.3, 0.2]), v=np.array([0.01, 0.02, 0.03]), X=np.array([1.0, 2.0, 3.0]), add_intercept=True
    )
    with pytest.raises(ValueError, match="moderators.*rma_mods"):
        rma(ds, method="REML", test="z")
    with pytest.raises(ValueError, match="leave 'vi' out"):
        rma(to_pymare(escalc("GEN", yi=[0.1, 0.2], vi=[0.1, 0.1])), [0.1, 0.1], method="REML", test="z")
    with pytest.raises(TypeError, match="pymare.Dataset"):
        from_pymare({"y": [1.0]})
