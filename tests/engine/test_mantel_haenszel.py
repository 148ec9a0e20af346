"""rma_mh against metafor 3.8-1 `rma.mh(measure = M, ai, n1i, ci, n2i)` (entries `mh`
of /work/shared/reference/metafor_reference.json, BCG vaccine trials)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from reference import reference_dir  # noqa: E402  (tests/reference.py: shared/ beside the clone)

from metaanalysis.engine.mantel_haenszel import rma_mh

REFERENCE = reference_dir() / "metafor_reference.json"
REL_TOL = 1e-6
CASES = json.loads(REFERENCE.read_text())
MH_CASES = {c["name"]: c for c in CASES if "mh" in c}
GRID = [
    (name, measure, field)
    for name, c in MH_CASES.items()
    for measure in ("OR", "RR")
    for field in ("b", "se", "ci_lb", "ci_ub", "QE")
]


def _fit(name, measure):
    d = MH_CASES[name]["data"]
    return rma_mh(d["ai"], d["n1i"], d["ci"], d["n2i"], measure=measure, studies=d["study"])


@pytest.mark.parametrize("name,measure,field", GRID)
def test_matches_metafor(name, measure, field):
    expected = MH_CASES[name]["mh"][measure][field]
    assert getattr(_fit(name, measure), field) == pytest.approx(expected, rel=REL_TOL)


def test_grid_covers_every_mh_entry():
    in_file = {(c["name"], m, f) for c in CASES if "mh" in c for m, e in c["mh"].items() for f in e}
    assert in_file == set(GRID)


def test_statsmodels_or_equals_the_textbook_formula():
    # Mantel & Haenszel (1959) estimator sum(a d / N) / sum(b c / N), written out here to show
    # that statsmodels' StratifiedTable (used inside rma_mh) computes exactly that.
    d = MH_CASES["bcg"]["data"]
    a, n1, c, n2 = (np.asarray(d[k], float) for k in ("ai", "n1i", "ci", "n2i"))
    b, dd, N = n1 - a, n2 - c, n1 + n2
    r = _fit("bcg", "OR")
    assert r.b == pytest.approx(math.log(np.sum(a * dd / N) / np.sum(b * c / N)), rel=1e-12)
    assert r.bt_pred == pytest.approx(math.exp(MH_CASES["bcg"]["mh"]["OR"]["b"]), rel=REL_TOL)


def test_labels():
    r = _fit("bcg", "RR")
    assert (r.method, r.test, r.tau2, r.transform, r.k) == ("MH", "z", None, "exp", 13)
    assert sum(r.studies.weight) == pytest.approx(100.0)


def test_double_zero_table_counts_for_mh_but_not_for_qe():
    # A table with no events in either arm adds nothing to the MH sums (as in rma.mh) and is
    # left out of QE (escalc drop00 = TRUE), so QE has one degree of freedom fewer.
    base = rma_mh([4, 6, 3], [123, 306, 231], [11, 29, 11], [139, 303, 220], measure="OR")
    more = rma_mh([4, 6, 3, 0], [123, 306, 231, 50], [11, 29, 11, 0], [139, 303, 220, 60], measure="OR")
    assert more.b == pytest.approx(base.b, rel=1e-12)
    assert more.se == pytest.approx(base.se, rel=1e-12)
    assert more.QE == pytest.approx(base.QE, rel=1e-12)
    assert any("both arms" in n for n in more.notes)


@pytest.mark.parametrize(
    "args,msg",
    [
        (([5, 20], [10, 10], [1, 2], [10, 10]), r"study '2'.*ai = 20 exceeds n1i = 10"),
        (([5, 2], [10, 10], [1, 2], [10, 0]), r"study '2'.*n2i = 0"),
        (([5, 2], [10, 10], [1, -2], [10, 10]), r"study '2'.*ci = -2"),
        (([5, 2], [10, 10], [1], [10, 10]), r"ci has 1 values"),
        (([0, 0], [10, 10], [1, 2], [10, 10]), r"not estimable"),
    ],
)
def test_bad_input_is_named(args, msg):
    with pytest.raises(ValueError, match=msg):
        rma_mh(*args, measure="RR")


def test_unknown_measure():
    with pytest.raises(ValueError, match="'RD'"):
        rma_mh([1], [10], [2], [10], measure="RD")


def test_double_zero_table_matches_metafor():
    # R 4.2.2, metafor 3.8-1, run for this test:
    #   m <- rma.mh(measure = "OR", ai = c(4,6,3,0), n1i = c(123,306,231,50),
    #               ci = c(11,29,11,0), n2i = c(139,303,220,60))
    #   c(m$b, m$se, m$QE) = -1.4135131819, 0.3155243709, 0.9397661576
    r = rma_mh([4, 6, 3, 0], [123, 306, 231, 50], [11, 29, 11, 0], [139, 303, 220, 60], measure="OR")
    assert (r.b, r.se, r.QE) == pytest.approx((-1.4135131819, 0.3155243709, 0.9397661576), rel=1e-9)
