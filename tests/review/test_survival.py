"""Survival pooling: which rows enter (review/survival.py, review/landmarks.py) and the cloglog scale.

Records here are small hand-made dicts (the evidence base grows in parallel, so no test pins
it); the expected medians are worked by hand from the definitions in engine/medians.py.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from metaanalysis.engine.medians import median_variance_from_ci
from metaanalysis.engine.rma import rma
from metaanalysis.engine.transforms import iloglog
from metaanalysis.review.analyses import HazardRatioAnalysis, IVSettings, Landmark, MedianAnalysis
from metaanalysis.review.landmarks import (
    BINOMIAL,
    NO_PRECISION,
    PRINTED_CI,
    loglog,
    loglog_variance_binomial,
    loglog_variance_from_ci,
    pool_landmarks,
)
from metaanalysis.review.survival import NOT_REACHED, pool_hazard_ratios, pool_medians, survival_frame

Z = stats.norm.ppf(0.975)
IV = IVSettings(method="REML", test="knha", pi_method="metafor")


def _record(
    rid, *, n=None, tte=(), role="overall", regimen_class="mixed_salvage", year=2024, overlaps=(), supersedes=()
):
    arm = {
        "id": "all",
        "label": "all",
        "role": role,
        "regimen": "any",
        "regimen_class": regimen_class,
        "time_to_event": list(tte),
    }
    if n is not None:
        arm["n"] = {"value": n}
    return {
        "id": rid,
        "citation": {"authors": ["Doe J"], "year": year},
        "population": {"prior_failure": ["car_t"], "disease": "LBCL"},
        "unit_of_analysis": "patients",
        "relations": {
            "overlaps": [{"id": o, "reason": "same centres"} for o in overlaps],
            "supersedes": list(supersedes),
        },
        "arms": [arm],
    }


def _os(value=None, ci=None, nr=False):
    e = {"endpoint": "OS", "kind": "median"}
    if nr:
        e["not_reached"] = True
    else:
        e["value"] = value
    if ci is not None:
        e["ci"] = list(ci)
    return e


RECORDS = [
    _record("a2023", n=100, tte=[_os(5.0)], overlaps=["b2024"]),
    _record("b2024", n=200, tte=[_os(6.0)]),
    _record("c2024", tte=[_os(8.0)]),  # size not printed
    _record("d2024", n=50, tte=[_os(nr=True)]),  # not reached
    _record("e2023", n=70, tte=[_os(9.5)]),  # superseded by f2025
    _record("f2025", n=80, tte=[_os(7.0, ci=(5.0, 9.0))], supersedes=["e2023"]),
    _record("g2025", n=40, tte=[_os(4.0, ci=(3.0, None))]),
]
WHOLE = MedianAnalysis(
    id="os", label="OS", population="after_car_t", endpoint="OS", cohorts="whole", level=0.95, inverse_variance=IV
)


def test_medians_respect_overlaps_supersession_and_not_reached():
    table = pool_medians(survival_frame(RECORDS), (WHOLE,))
    why = table[table["kind"] == "excluded"].set_index("study")["reason"]
    assert why["a2023"] == "overlaps with b2024 (the larger cohort was kept)"
    assert why["e2023"] == "superseded by f2025"
    assert why["d2024"] == NOT_REACHED
    entered = table[table["kind"] == "study"].set_index("study")["method"]
    assert entered.to_dict() == {"b2024": "MM;WM", "c2024": "MM", "f2025": "MM;WM;IV", "g2025": "MM;WM;IV"}
    pooled = table[table["kind"] == "pooled"].set_index("method")
    # MM: medians 6, 8, 7, 4 -> (6 + 7) / 2; k = 4 < 6, so the note gives the range's coverage 1 - 2^-3
    assert pooled.at["MM", "estimate"] == 6.5 and pooled.at["MM", "k"] == 4
    assert "0.875" in pooled.at["MM", "note"] and "not reached" in pooled.at["MM", "note"]
    # WM: 4 (weight 40), 6 (200), 7 (80); N = 320, position 160.5 lies within the 6s
    assert pooled.at["WM", "estimate"] == 6.0 and pooled.at["WM", "k"] == 3


def test_iv_medians_use_the_printed_ci_as_a_wald_interval():
    table = pool_medians(survival_frame(RECORDS), (WHOLE,))
    iv = table[(table["kind"] == "pooled") & table["method"].str.startswith("IV")].iloc[0]
    vi = [((9.0 - 5.0) / (2 * Z)) ** 2, ((4.0 - 3.0) / Z) ** 2]  # the upper bound of g2025 not reached
    assert vi == pytest.approx([median_variance_from_ci(7.0, 5.0, 9.0), median_variance_from_ci(4.0, 3.0, None)])
    expected = rma([7.0, 4.0], vi, method="REML", test="knha", level=0.95)
    assert iv["estimate"] == pytest.approx(expected.b, rel=1e-12) and iv["k"] == 2
    assert iv["ci_lb"] == pytest.approx(expected.ci_lb, rel=1e-12)


def test_a_group_with_one_usable_median_is_shown_not_pooled():
    table = pool_medians(survival_frame(RECORDS[:2]), (WHOLE,))
    assert list(table.loc[table["kind"] == "single study", "estimate"]) == [6.0]
    assert not (table["kind"] == "pooled").any()


def _hr(value, lb, ub, comparison="late vs early relapse after CAR-T"):
    return {"endpoint": "OS", "kind": "hazard_ratio", "value": value, "ci": [lb, ub], "comparison": comparison}


def test_hazard_ratios_pool_by_generic_inverse_variance_and_show_the_rest():
    records = [
        _record("h1", n=50, tte=[_hr(0.5, 0.3, 0.83)]),
        _record("h2", n=60, tte=[_hr(0.6, 0.4, 0.9)]),
        _record("h3", n=60, tte=[_hr(0.7, 0.5, 0.98, comparison="bispecific vs chemotherapy")]),
        _record(
            "h4",
            n=60,
            tte=[
                {
                    "endpoint": "OS",
                    "kind": "hazard_ratio",
                    "value": 0.8,
                    "comparison": "late vs early relapse after CAR-T",
                }
            ],
        ),
    ]
    spec = HazardRatioAnalysis(
        id="late",
        label="Late vs early",
        population="after_car_t",
        comparisons=("late vs early relapse after CAR-T",),
        level=0.95,
        inverse_variance=IV,
    )
    table, fits = pool_hazard_ratios(survival_frame(records), (spec,))
    yi = [math.log(0.5), math.log(0.6)]
    vi = [((math.log(0.83) - math.log(0.3)) / (2 * Z)) ** 2, ((math.log(0.9) - math.log(0.4)) / (2 * Z)) ** 2]
    expected = rma(yi, vi, method="REML", test="knha", level=0.95, transform="exp")
    pooled = table[(table["analysis"] == "late") & (table["kind"] == "pooled")].iloc[0]
    assert pooled["k"] == 2 and pooled["hr"] == pytest.approx(math.exp(expected.b), rel=1e-12)
    assert pooled["hr_ci_ub"] == pytest.approx(math.exp(expected.ci_ub), rel=1e-12)
    no_ci = table[table["study"] == "h4"].iloc[0]
    assert no_ci["kind"] == "excluded" and "no CI printed" in no_ci["reason"]
    single = table[(table["analysis"] == "(not declared)") & (table["kind"] == "single study")].iloc[0]
    assert (single["hr"], single["hr_ci_lb"], single["hr_ci_ub"]) == (0.7, 0.5, 0.98)  # as printed
    assert set(fits) == {"Late vs early | OS", "bispecific vs chemotherapy | OS"}
    # The forest plot draws the fit's study rows: the ratios and intervals as printed, not the
    # interval rebuilt from the standard error (which would give 0.3 -> exp(ln 0.5 - 1.96 se)).
    studies = fits["Late vs early | OS"].studies
    assert list(studies.estimate) == [0.5, 0.6]
    assert (list(studies.ci_lb), list(studies.ci_ub)) == ([0.3, 0.4], [0.83, 0.9])


# -- landmark rates on the complementary log-log scale ----------------------------------------


def test_loglog_transform_and_its_inverse():
    assert loglog(math.exp(-1)) == pytest.approx(0.0, abs=1e-15)  # -log(-log e^-1) = -log 1
    assert loglog(0.5) == pytest.approx(-math.log(math.log(2)), rel=1e-15)
    for s in (0.05, 0.3, 0.5, 0.9):
        assert iloglog(loglog(s)) == pytest.approx(s, rel=1e-13)
    with pytest.raises(ValueError, match="100.0%"):
        loglog(1.0)


def test_variance_from_a_log_log_ci_recovers_the_standard_error():
    # The log-log CI of a Kaplan-Meier rate (Kalbfleisch & Prentice; Collett, Modelling Survival
    # Data, sec. 2.2): S^exp(+-z se), se the SE of log(-log S). Build it for S = 0.6, se = 0.2 and
    # read the se back.
    s, se = 0.6, 0.2
    lb, ub = s ** math.exp(Z * se), s ** math.exp(-Z * se)
    assert loglog_variance_from_ci(100 * lb, 100 * ub, 0.95) == pytest.approx(se**2, rel=1e-12)


def test_binomial_variance_by_hand():
    # S = 0.5, n = 100: var(S) = 0.25 / 100; d x / d S = -1 / (S log S) -> var = 0.0025 / (0.5 ln 2)^2
    assert loglog_variance_binomial(50.0, 100) == pytest.approx(0.0025 / (0.5 * math.log(2)) ** 2, rel=1e-14)
    assert loglog_variance_binomial(50.0, 100) == pytest.approx(0.02081369, abs=1e-8)


def _landmark_frame(rows):
    base = dict(
        kind="landmark",
        population="after_car_t",
        endpoint="OS",
        months=12.0,
        regimen_class="pola",
        role="treatment",
        subgroup=pd.NA,
        superseded_by=pd.NA,
        overlaps=pd.NA,
        year=2024,
        arm="a",
        ci_level=pd.NA,
        ci_lb=pd.NA,
        ci_ub=pd.NA,
        group_n=pd.NA,
    )
    return pd.DataFrame([dict(base, **r) for r in rows])


def test_landmarks_pool_printed_cis_and_flag_the_binomial_approximation():
    spec = Landmark(id="os12", population="after_car_t", endpoint="OS", months=12, level=0.95, inverse_variance=IV)
    frame = _landmark_frame(
        [
            dict(study="s1", percent=40.0, ci_lb=30.0, ci_ub=50.0),
            dict(study="s2", percent=55.0, ci_lb=45.0, ci_ub=65.0),
            dict(study="s3", percent=35.0, group_n=60),
            dict(study="s4", percent=45.0),
            dict(study="s5", percent=100.0, group_n=10),
        ]
    )
    out = pool_landmarks(frame, (spec,))
    reasons = out[out["kind"] == "study"].set_index("study")["reason"]
    assert reasons["s4"] == NO_PRECISION and "100 %" in reasons["s5"]
    src = out[out["kind"] == "study"].set_index("study")["variance_from"]
    assert src["s1"] == PRINTED_CI and src["s3"].startswith(BINOMIAL)
    primary = out[(out["kind"] == "pooled") & (out["variant"] == "primary")].iloc[0]
    yi = [loglog(0.40), loglog(0.55), loglog(0.35)]
    vi = [
        loglog_variance_from_ci(30, 50, 0.95),
        loglog_variance_from_ci(45, 65, 0.95),
        loglog_variance_binomial(35.0, 60),
    ]
    expected = rma(yi, vi, method="REML", test="knha", level=0.95)
    assert primary["k"] == 3 and primary["percent"] == pytest.approx(100 * iloglog(expected.b), rel=1e-12)
    assert primary["ci_lb"] < primary["percent"] < primary["ci_ub"]
    assert "binomial" in primary["variance_from"] and "printed CI" in primary["variance_from"]
    ci_only = out[(out["kind"] == "pooled") & (out["variant"] == "printed CIs only")].iloc[0]
    assert ci_only["k"] == 2
    np.testing.assert_allclose(ci_only["percent"], 100 * iloglog(rma(yi[:2], vi[:2], method="REML", test="knha").b))


def test_readable_median_table_has_no_index_and_no_nan():
    from metaanalysis.presentation.survival_figures import readable_medians

    html = readable_medians(pool_medians(survival_frame(RECORDS), (WHOLE,))).to_html()
    assert "nan" not in html.lower() and "<NA>" not in html
    assert 'class="row_heading' not in html  # the index is hidden, as a paper's table has none
    assert "–" in html  # a dash where nothing was printed (e.g. c2024's n)
