"""Permutation tests and GOSH against metafor 3.8-1 (R 4.2.2), on the BCG vaccine trials
(Colditz et al. 1994, metafor's dat.bcg; log risk ratios). The R calls and their output
are in tests/fixtures/metafor_resampling.R / .json, e.g.
    dat <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
    permutest(rma(yi, vi, data = dat, method = "REML"), exact = TRUE)   # pval = 12 / 8192
    gosh(rma(yi, vi, data = dat[1:8, ], method = "REML"))               # 255 subsets
Exact permutation tests enumerate every sign pattern (or row order), so they are
deterministic and must agree exactly; GOSH rows agree to 1e-6 relative."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from metaanalysis.engine.resampling import gosh, permutest

REF = json.loads((Path(__file__).parents[1] / "fixtures" / "metafor_resampling.json").read_text())
YI, VI, ABLAT = np.array(REF["yi"]), np.array(REF["vi"]), np.array(REF["ablat"], float)
PERM = {p["call"]: p for p in REF["permutest"]}


@pytest.mark.parametrize(
    "call,method,test",
    [
        ('permutest(rma(yi, vi, data = dat, method = "REML"), exact = TRUE)', "REML", "z"),
        ('permutest(rma(yi, vi, data = dat, method = "DL", test = "knha"), exact = TRUE)', "DL", "knha"),
    ],
)
def test_exact_sign_flip_test_matches_metafor(call, method, test):
    ref = PERM[call]
    r = permutest(YI, VI, method=method, test=test, exact=True)
    assert r.exact and r.iterations == 2**13
    assert r.zval[0] == pytest.approx(ref["zval"], rel=1e-6)
    assert r.QM == pytest.approx(ref["QM"], rel=1e-6)
    assert r.pval[0] == ref["pval"]  # 12 of 8192 sign patterns, exactly
    assert r.QMp == ref["QMp"]


def test_exact_moderator_permutation_test_matches_metafor():
    ref = PERM['permutest(rma(yi, vi, mods = ~ ablat, data = dat[1:6, ], method = "REML"), exact = TRUE)']
    r = permutest(YI[:6], VI[:6], mods=ABLAT[:6], method="REML", test="z", exact=True)
    assert r.zval == pytest.approx(ref["zval"], rel=1e-6)
    assert r.QM == pytest.approx(ref["QM"], rel=1e-6)
    assert r.pval == pytest.approx(ref["pval"], rel=1e-12)
    assert r.QMp == pytest.approx(ref["QMp"], rel=1e-12)


def test_random_sign_flips_start_with_the_data_and_are_reproducible():
    a = permutest(YI, VI, method="REML", iter=1000, seed=1)
    b = permutest(YI, VI, method="REML", iter=1000, seed=1)
    assert not a.exact and a.iterations == 1000
    assert a.zval_perm[0, 0] == a.zval[0]
    np.testing.assert_array_equal(a.zval_perm, b.zval_perm)
    # the exact p is 12/8192 = 0.0015; 1,000 random patterns land near it
    assert 0.0 < a.pval[0] < 0.02


def test_small_k_switches_to_the_exact_test_as_metafor_does():
    r = permutest(YI[:5], VI[:5], method="DL", iter=1000)
    assert r.exact and r.iterations == 32


@pytest.mark.parametrize("entry", REF["gosh"], ids=lambda e: e["method"])
def test_gosh_matches_metafor_row_by_row(entry):
    g = gosh(YI[:8], VI[:8], method=entry["method"])
    assert g.exact and len(g.res) == 255 and g.fit.all()
    incl = ["".join(str(int(x)) for x in row) for row in g.incl]
    assert incl == entry["incl"]  # same subsets in the same order
    for col in ("k", "QE", "I2", "H2", "tau2", "estimate"):
        np.testing.assert_allclose(
            g.res[col].to_numpy(float),
            np.asarray(entry["res"][col], float),
            rtol=1e-6,
            atol=1e-9,
            err_msg=f"{entry['method']} {col}",
        )


def test_gosh_bad_input():
    with pytest.raises(ValueError, match="at least 2"):
        gosh([0.1], [0.1])
    with pytest.raises(ValueError, match="unknown method"):
        gosh(YI, VI, method="XX")


def test_gosh_plot_draws_and_highlights_one_study(tmp_path):
    from metaanalysis import gosh_plot, save_gosh_plot  # the public names

    g = gosh(YI[:8], VI[:8], method="DL", studies=[f"trial {i + 1}" for i in range(8)])
    fig = gosh_plot(g, out="trial 4")
    ax = fig.axes[0]
    red, blue = [c for c in ax.collections if len(c.get_offsets())][::-1][:2]
    # 247 subsets of 2+ studies; 127 of them contain trial 4
    assert len(red.get_offsets()) + len(blue.get_offsets()) == 255 - 8
    assert sorted([len(red.get_offsets()), len(blue.get_offsets())]) == [120, 127]
    path = save_gosh_plot(g, tmp_path / "gosh.png", het="tau2")
    assert path.stat().st_size > 1000
    with pytest.raises(ValueError, match="het"):
        gosh_plot(g, het="I3")
    with pytest.raises(ValueError):
        gosh_plot(g, out="trial 99")
