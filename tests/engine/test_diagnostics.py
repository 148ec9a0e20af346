"""Leave-one-out and Egger's test against metafor 3.8-1 (entries `leave1out` and `egger`
of /work/shared/reference/metafor_reference.json), produced by
    fit <- rma(yi, vi, method = "REML"); leave1out(fit); regtest(fit)
on escalc(measure = M, xi, ni) for M in PLO, PFT, PAS, PR."""

from __future__ import annotations

import json

import numpy as np
import pytest
from reference import reference_dir  # noqa: E402  (tests/reference.py: shared/ beside the clone)

from metaanalysis.engine.diagnostics import LEAVE1OUT_COLUMNS, egger_test, leave1out

REFERENCE = reference_dir() / "metafor_reference.json"
REL_TOL = 1e-6
ABS_TOL = 1e-10  # for entries that are exactly 0 in the reference (tau2, I2 of one-study fits)
CASES = {c["name"]: c for c in json.loads(REFERENCE.read_text())}

EGGER_GRID = [(name, m, f) for name, c in CASES.items() for m in c.get("egger", {}) for f in ("zval", "pval")]
L1O_FIELDS = ("estimate", "se", "tau2", "I2")
L1O_GRID = [(name, m) for name, c in CASES.items() for m in c.get("leave1out", {})]


def _effects(name, measure):
    e = CASES[name]["effects"][measure]
    return np.asarray(e["yi"]), np.asarray(e["vi"])


@pytest.mark.parametrize("name,measure,field", EGGER_GRID)
def test_egger_matches_metafor(name, measure, field):
    yi, vi = _effects(name, measure)
    res = egger_test(yi, vi)
    assert getattr(res, field) == pytest.approx(CASES[name]["egger"][measure][field], rel=REL_TOL)


def test_egger_grid_covers_every_entry():
    in_file = {(n, m, f) for n, c in CASES.items() for m, e in c.get("egger", {}).items() for f in e}
    assert in_file == set(EGGER_GRID)
    assert len(EGGER_GRID) == 3 * 4 * 2


def test_egger_needs_three_studies():
    # metafor's regtest() refuses k = 2 too; the reference has no egger entry for two_studies.
    assert "egger" not in CASES["two_studies"]
    yi, vi = _effects("two_studies", "PLO")
    with pytest.raises(ValueError, match="at least 3 studies; got k = 2"):
        egger_test(yi, vi)


def test_egger_rejects_bad_variance():
    with pytest.raises(ValueError, match=r"row\(s\) \[2\]"):
        egger_test([0.1, 0.2, 0.3], [0.1, 0.0, 0.2])


@pytest.mark.parametrize("name,measure", L1O_GRID)
def test_leave1out_matches_metafor(name, measure):
    yi, vi = _effects(name, measure)
    d = CASES[name]["data"]
    frame = leave1out(yi, vi, method="REML", test="z", studies=d["study"])
    assert list(frame.columns) == list(LEAVE1OUT_COLUMNS)
    assert list(frame["study"]) == [str(s) for s in d["study"]]
    ref = CASES[name]["leave1out"][measure]
    for field in L1O_FIELDS:
        got = frame[field].to_numpy(dtype=float)
        np.testing.assert_allclose(
            got, np.asarray(ref[field], dtype=float), rtol=REL_TOL, atol=ABS_TOL, err_msg=f"{name} {measure} {field}"
        )


def test_leave1out_grid_covers_every_entry():
    in_file = {(n, m, f) for n, c in CASES.items() for m, e in c.get("leave1out", {}).items() for f in e}
    assert in_file == {(n, m, f) for n, m in L1O_GRID for f in L1O_FIELDS}
    assert len(L1O_GRID) == 4 * 4


def test_leave1out_needs_two_studies():
    with pytest.raises(ValueError, match="at least 2 studies"):
        leave1out([0.1], [0.01])


def test_egger_with_knha_matches_metafor():
    # R 4.2.2, metafor 3.8-1, run for this test on the reference's Kearon PLO effects:
    #   eg <- regtest(rma(yi, vi, method = "REML", test = "knha"))
    #   c(eg$zval, eg$pval, eg$dfs) = 4.41058674354, 1.29960786099e-04, 29
    yi, vi = _effects("kearon1998_sensitivity_by_patients", "PLO")
    res = egger_test(yi, vi, method="REML", test="knha")
    assert (res.zval, res.pval) == pytest.approx((4.41058674354, 1.29960786099e-04), rel=1e-9)
    assert res.df == 29
