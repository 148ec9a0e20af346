"""Every fit and effect size in metafor_reference.json, field by field, at rel 1e-6.

Reference: shared/reference/metafor_reference.json, written by
metafor_reference.R with R metafor 3.8-1, e.g. for key "PLO|REML|knha":
    es <- escalc(measure = "PLO", xi = xi, ni = ni)
    fit <- rma(es$yi, es$vi, method = "REML", test = "knha"); confint(fit); predict(fit, transf = transf.ilogit)
Keys `leave1out`, `egger`, `glmm`, `subgroups`, `mh` belong to other modules' tests.
"""

from __future__ import annotations

import numpy as np
import pytest
from reference import ATOL, RTOL, close, effect_sizes, is_log_scale, load_reference

from metaanalysis.engine.results import REFERENCE_FIELDS
from metaanalysis.engine.rma import rma_effects

# reference case keys checked here; the rest belong to other engineers' tests
OWN_KEYS = {"fits", "effects"}
OTHER_KEYS = {"leave1out", "egger", "glmm", "subgroups", "mh"}
META_KEYS = {"name", "kind", "data"}


def _fit_params():
    return [pytest.param(c["name"], key, id=f"{c['name']}:{key}") for c in load_reference() for key in c["fits"]]


def _effect_params():
    return [pytest.param(c["name"], m, id=f"{c['name']}:{m}") for c in load_reference() for m in c.get("effects", {})]


def _case(name):
    return next(c for c in load_reference() if c["name"] == name)


def _fit(c, key):
    measure, method, test = key.split("|")
    es = effect_sizes(c, measure)
    # a generic case flagged log_scale is back-transformed with exp, as the R script does
    transform = "exp" if measure == "GEN" and is_log_scale(c["name"]) else None
    return rma_effects(es, method=method, test=test, transform=transform)


@pytest.mark.parametrize("name,key", _fit_params())
def test_fit_matches_metafor(name, key):
    c = _case(name)
    ref = c["fits"][key]
    assert "error" not in ref, f"metafor failed on {key}: {ref.get('error')}"
    ours = _fit(c, key).to_dict()
    problems = []
    for field in REFERENCE_FIELDS:
        expected = ref.get(field)  # absent (FE has no prediction/tau2 CI) or null -> we must give None
        got = ours[field]
        if expected is None:
            if got is not None:
                problems.append(f"{field}: metafor gives nothing, we give {got!r}")
        elif got is None:
            problems.append(f"{field}: metafor gives {expected!r}, we give None")
        elif not close(got, expected):
            problems.append(
                f"{field}: ours {got!r} vs metafor {expected!r} "
                f"(rel {abs(got - expected) / max(abs(expected), ATOL):.2e})"
            )
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name,measure", _effect_params())
def test_effect_sizes_match_escalc(name, measure):
    c = _case(name)
    ref = c["effects"][measure]
    es = effect_sizes(c, measure)
    for field in ("yi", "vi"):
        expected = np.asarray(ref[field], dtype=float)
        got = getattr(es, field)
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL, err_msg=f"{measure} {field}")


def test_reference_keys_are_all_accounted_for():
    """Every top-level key of every case is either checked here or owned elsewhere (none silently ignored)."""
    for c in load_reference():
        unknown = set(c) - OWN_KEYS - OTHER_KEYS - META_KEYS
        assert not unknown, f"{c['name']}: reference keys nobody checks: {unknown}"


def test_checked_grid_covers_every_reference_combination():
    """The grid the tests above are parametrised over equals the grid in the JSON, so it cannot quietly
    shrink; each parametrised fit compares every field of REFERENCE_FIELDS (it loops over all of them).
    Read from the parameter lists, not from which tests ran, so it holds under -k and pytest-xdist."""
    methods = {"FE", "DL", "HE", "HS", "SJ", "ML", "REML", "EB", "PM"}
    for c in load_reference():
        measures = {"prop": {"PLO", "PFT", "PAS", "PR"}, "2x2": {"OR", "RR", "RD"}, "generic": {"GEN"}}[c["kind"]]
        keys = {f"{m}|{meth}|{t}" for m in measures for meth in methods for t in ("z", "knha")} - {
            f"{m}|FE|knha" for m in measures
        }
        assert set(c["fits"]) == keys, f"{c['name']}: reference fit grid differs from the documented grid"
    fits = {(p.values[0], p.values[1]) for p in _fit_params()}
    assert fits == {(c["name"], key) for c in load_reference() for key in c["fits"]}
    effects = {(p.values[0], p.values[1]) for p in _effect_params()}
    assert effects == {(c["name"], m) for c in load_reference() for m in c.get("effects", {})}
    assert len(fits) > 100 and len(effects) > 10, "the reference grid is unexpectedly small"
