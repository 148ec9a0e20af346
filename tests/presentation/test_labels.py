"""How numbers and studies are written for a reader: one format everywhere, no NaN, no <NA>."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from metaanalysis.presentation import labels as L


@pytest.mark.parametrize(
    "args, expected",
    [
        ((0.4771, 0.399, 0.5559), "47.7 % (39.9-55.6)"),  # the example
        ((33 / 61, None, None), "54.1 %"),
        ((0.0, 0.0, 0.0582), "0.0 % (0.0-5.8)"),
        ((-0.237, -0.427, -0.048), "−23.7 % (−42.7 to −4.8)"),  # a hyphen would read as a minus
        ((-0.00001, -0.2, 0.1), "0.0 % (−20.0 to 10.0)"),  # never "-0.0"
        ((float("nan"), 0.1, 0.2), L.MISSING),
        ((pd.NA, pd.NA, pd.NA), L.MISSING),
    ],
)
def test_percent_with_interval(args, expected):
    assert L.fmt_percent_ci(*args) == expected


def test_ratio_and_p_values():
    assert L.fmt_ratio_ci(0.6213, 0.4099, 0.9417) == "0.62 (0.41-0.94)"
    assert L.fmt_ratio_ci(None) == L.MISSING
    assert [L.fmt_p(p) for p in (0.0004, 0.001, 0.03161, 0.7521, 1.0, None, math.nan)] == [
        "< 0.001",
        "0.001",
        "0.032",
        "0.752",
        "1.000",
        L.MISSING,
        L.MISSING,
    ]


@pytest.mark.parametrize(
    "authors, year, journal, expected",
    [
        (["Thieblemont C"], 2023, None, "Thieblemont 2023"),
        (["Di Blasi R", "Le Gouill S"], 2022, None, "Di Blasi 2022"),  # et al. is left out
        (["Alarcon Tomas A", "X Y"], 2022, None, "Alarcon Tomas 2022"),
        (["Cong J. H."], 2025, None, "Cong 2025"),
        (
            ["DESCAR-T registry investigators (authors not named in the returned text)"],
            None,
            None,
            "DESCAR-T registry investigators n.d.",
        ),
        (["not named on the page read (Blood Advances, April 2023)"], 2023, "Blood Advances", "Blood Advances 2023"),
        ([], 2020, None, "Unnamed report 2020"),
    ],
)
def test_citation_label_is_first_author_and_year(authors, year, journal, expected):
    assert L.citation_label(authors, year, journal) == expected


def test_studies_sharing_a_label_get_letters_in_id_order():
    records = [
        {"id": "zurko_b", "citation": {"authors": ["Zurko J"], "year": 2023}},
        {"id": "zurko_a", "citation": {"authors": ["Zurko J", "Q"], "year": 2023}},
        {"id": "cong", "citation": {"authors": ["Cong J"], "year": 2025}},
    ]
    assert L.citation_labels(records) == {"cong": "Cong 2025", "zurko_a": "Zurko 2023a", "zurko_b": "Zurko 2023b"}


def test_pooling_labels_become_citations_with_arm_labels():
    cites = {"wang2025_tongji": "Wang 2025", "shumilov2025": "Shumilov 2025"}
    arms = {("wang2025_tongji", "cti2"): "Second CAR-T infusion"}
    assert L.cite("wang2025_tongji (cti2)", cites, arms) == "Wang 2025 (Second CAR-T infusion)"
    assert L.cite("wang2025_tongji (other)", cites, arms) == "Wang 2025 (other)"
    assert L.cite("unknown_study", cites) == "unknown_study"  # never dropped
    assert (
        L.cite_list("shumilov2025;wang2025_tongji (cti2)", cites, arms)
        == "Shumilov 2025; Wang 2025 (Second CAR-T infusion)"
    )
    assert L.cite_list(None, cites) == L.MISSING


def test_symbols():
    assert L.symbols("CRS grade >= 3, ICANS <= 1") == "CRS grade ≥ 3, ICANS ≤ 1"
