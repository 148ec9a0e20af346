"""Subgroup analysis against metafor 3.8-1 (entry `subgroups` of
/work/shared/reference/metafor_reference.json, Kearon 1998 by symptom status), produced by
    es <- escalc("PLO", xi, ni); rma(es$yi[sel], es$vi[sel], method = "REML")   # per group
    rma(b_g, sei = se_g, method = "FE")$QE                                        # Qbetween
    rma(es$yi, es$vi, mods = ~ factor(grp), method = "REML")$QM                   # common tau2
"""

from __future__ import annotations

import json

import pytest
from reference import reference_dir  # noqa: E402  (tests/reference.py: shared/ beside the clone)

from metaanalysis.engine.glmm import rma_glmm
from metaanalysis.engine.subgroups import subgroup_test, subgroups

REFERENCE = reference_dir() / "metafor_reference.json"
REL_TOL = 1e-6
CASES = {c["name"]: c for c in json.loads(REFERENCE.read_text())}
SUB_CASES = {n: c for n, c in CASES.items() if "subgroups" in c}
TOP_FIELDS = {
    "Qbetween_separate_tau2": "Qbetween",
    "Qbetween_p": "Qbetween_p",
    "QM_common_tau2": "QM_common_tau2",
    "QMp_common_tau2": "QMp_common_tau2",
}
GROUP_GRID = [
    (n, g, f)
    for n, c in SUB_CASES.items()
    for g, e in c["subgroups"]["by_group"].items()
    for f in e
    if e[f] is not None
]
TOP_GRID = [(n, f) for n in SUB_CASES for f in TOP_FIELDS]
_FITS: dict = {}


def _fit(name):
    if name not in _FITS:
        c = SUB_CASES[name]
        d, e = c["data"], c["effects"]["PLO"]
        _FITS[name] = subgroups(
            e["yi"],
            e["vi"],
            d["group"],
            method="REML",
            test="z",
            measure="PLO",
            studies=d["study"],
            events=d["events"],
            n=d["n"],
        )
    return _FITS[name]


@pytest.mark.parametrize("name,field", TOP_GRID)
def test_tests_for_subgroup_differences(name, field):
    got = getattr(_fit(name), TOP_FIELDS[field])
    assert got == pytest.approx(SUB_CASES[name]["subgroups"][field], rel=REL_TOL)


@pytest.mark.parametrize("name,group,field", GROUP_GRID)
def test_per_group_fit(name, group, field):
    expected = SUB_CASES[name]["subgroups"]["by_group"][group][field]
    assert _fit(name).groups[group].to_dict()[field] == pytest.approx(expected, rel=REL_TOL)


def test_grid_covers_every_subgroup_entry():
    in_file = set()
    for n, c in SUB_CASES.items():
        s = c["subgroups"]
        in_file |= {(n, f) for f in s if f != "by_group"}
        in_file |= {(n, g, f) for g, e in s["by_group"].items() for f in e}
    checked = set(TOP_GRID) | set(GROUP_GRID)
    nulls = {
        (n, g, f)
        for n, c in SUB_CASES.items()
        for g, e in c["subgroups"]["by_group"].items()
        for f in e
        if e[f] is None
    }
    assert in_file == checked | nulls
    assert not nulls  # nothing was left unchecked because metafor returned null
    assert SUB_CASES


def test_groups_keep_order_and_degrees_of_freedom():
    r = _fit("kearon1998_sensitivity_by_patients")
    assert list(r.groups) == ["symptomatic", "asymptomatic"]
    assert r.Qbetween_df == 1
    assert r.overall.k == 31


def test_single_study_group_is_kept_and_enters_qbetween():
    # Group "c" has one study: kept, shown with its own yi, and in Qbetween with se = sqrt(vi).
    yi = [0.1, 0.3, 0.2, 0.9, 1.1, 1.6]
    vi = [0.04, 0.05, 0.03, 0.06, 0.05, 0.08]
    grp = ["a", "a", "a", "b", "b", "c"]
    r = subgroups(yi, vi, grp, method="REML", test="z")
    assert r.groups["c"].k == 1 and r.groups["c"].b == pytest.approx(1.6)
    assert r.Qbetween_df == 2
    assert any("one study" in n and "c" in n for n in r.notes)
    # Qbetween by hand from the three group estimates (common-effect Q, Cochran 1954)
    b = [r.groups[g].b for g in "abc"]
    w = [1 / r.groups[g].se ** 2 for g in "abc"]
    bw = sum(wi * bi for wi, bi in zip(w, b, strict=True)) / sum(w)
    assert r.Qbetween == pytest.approx(sum(wi * (bi - bw) ** 2 for wi, bi in zip(w, b, strict=True)), rel=1e-12)


def test_fewer_than_two_groups_gives_no_test_and_says_why():
    r = subgroups([0.1, 0.3, 0.2], [0.04, 0.05, 0.03], ["a", "a", "a"], method="REML", test="z")
    assert r.Qbetween is None and r.QM_common_tau2 is None
    assert any("only 1 group" in n for n in r.notes)


def test_missing_group_label_is_named():
    with pytest.raises(ValueError, match="row 2: group label is missing"):
        subgroups([0.1, 0.3], [0.04, 0.05], ["a", ""], method="REML", test="z")


def test_subgroup_test_works_with_glmm_fits():
    c = SUB_CASES["kearon1998_sensitivity_by_patients"]["data"]
    fits = {}
    for g in ("symptomatic", "asymptomatic"):
        idx = [i for i, x in enumerate(c["group"]) if x == g]
        fits[g] = rma_glmm([c["events"][i] for i in idx], [c["n"][i] for i in idx])
    q, df, p = subgroup_test(fits)
    (b1, s1), (b2, s2) = [(f.b, f.se) for f in fits.values()]
    # two groups: Q = (b1 - b2)^2 / (s1^2 + s2^2)
    assert q == pytest.approx((b1 - b2) ** 2 / (s1**2 + s2**2), rel=1e-12)
    assert df == 1 and 0 <= p <= 1


def test_subgroup_test_needs_two_groups():
    with pytest.raises(ValueError, match="at least 2 groups"):
        subgroup_test({})


@pytest.mark.parametrize(
    "method,test,expected",
    [
        # R 4.2.2, metafor 3.8-1, run for this test on the reference's Kearon PLO effects:
        #   mr <- rma(yi, vi, mods = ~ factor(grp), method = M, test = T); c(mr$QM, mr$QMp, mr$tau2)
        ("REML", "knha", (5.07440362866e01, 7.71991609210e-08, 5.35344628794e-01)),
        ("ML", "z", (5.52804888335e01, 1.04500750524e-13, 4.85864590736e-01)),
    ],
)
def test_meta_regression_on_group_factor_matches_metafor(method, test, expected):
    from metaanalysis.engine.metareg import factor_design, rma_mods

    c = SUB_CASES["kearon1998_sensitivity_by_patients"]
    X, levels = factor_design(c["data"]["group"])
    assert levels == ["symptomatic", "asymptomatic"]
    e = c["effects"]["PLO"]
    m = rma_mods(e["yi"], e["vi"], X, method=method, test=test)
    assert (m.QM, m.QMp, m.tau2) == pytest.approx(expected, rel=1e-9)
