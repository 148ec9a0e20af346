"""The report's summary of findings: primary-method rows, labels, caveats."""

from __future__ import annotations

import pandas as pd

from metaanalysis.presentation.summary import caveats, index_page, primary_rows, summary_of_findings


def _pooled():
    base = dict(
        analysis="orr_after_cart",
        variant="primary",
        population="after_car_t",
        outcome="ORR",
        pi_lb=None,
        pi_ub=None,
        tau2=0.0,
        Qbetween=None,
        Qbetween_p=None,
        error=None,
    )
    rows = [
        dict(
            base,
            regimen_class="bispecific_antibody",
            method="GLMM",
            k=3,
            n_total=213,
            estimate=0.4789,
            ci_lb=0.4126,
            ci_ub=0.5459,
            I2=0.0,
            studies="thieblemont;shumilov;topp",
        ),
        dict(
            base,
            regimen_class="lenalidomide_based",
            method="not pooled (k = 1)",
            k=1,
            n_total=52,
            estimate=0.1346,
            ci_lb=0.0559,
            ci_ub=0.2579,
            I2=None,
            studies="descart",
        ),
        dict(
            base,
            regimen_class="polatuzumab_based",
            method="GLMM",
            k=2,
            n_total=70,
            estimate=0.20749,
            ci_lb=0.0911,
            ci_ub=0.4063,
            I2=61.2,
            studies="gouni;kjim (pola)",
        ),
        dict(
            base,
            regimen_class="bispecific_antibody",
            method="PLO",
            k=3,
            n_total=213,
            estimate=0.4790,
            ci_lb=0.3490,
            ci_ub=0.6119,
            I2=0.0,
            studies="thieblemont;shumilov;topp",
        ),
    ]
    return pd.DataFrame(rows)


def test_only_the_primary_method_and_single_studies_are_summarised():
    rows = primary_rows(_pooled())
    assert list(rows["method"]) == ["GLMM", "not pooled (k = 1)", "GLMM"]


def test_summary_table_reads_like_a_paper():
    cites = {
        "thieblemont": "Thieblemont 2023",
        "shumilov": "Shumilov 2025",
        "topp": "Topp 2025",
        "descart": "DESCAR-T 2025",
        "gouni": "Gouni 2024",
        "kjim": "Kim 2023",
    }
    ((population, table),) = summary_of_findings(_pooled(), cites, {("kjim", "pola"): "Pola-BR"}).items()
    assert population == "After CAR-T failure"
    assert list(table.columns) == ["Outcome", "Regimen class", "Estimate (95 % CI)", "k", "N", "Studies", "Caveats"]
    assert list(table["Outcome"]) == ["Overall response (CR + PR)", "", ""]
    assert list(table["Estimate (95 % CI)"]) == ["47.9 % (41.3-54.6)", "13.5 % (5.6-25.8)", "20.7 % (9.1-40.6)"]
    assert table.loc[0, "Studies"] == "Thieblemont 2023; Shumilov 2025; Topp 2025"
    assert table.loc[2, "Studies"] == "Gouni 2024; Kim 2023 (Pola-BR)"
    assert "NaN" not in table.to_string() and "<NA>" not in table.to_string()


def test_caveats_name_few_studies_heterogeneity_and_patients():
    rows = _pooled()
    assert caveats(rows.iloc[0]) == "3 studies: τ² imprecise"
    assert caveats(rows.iloc[1]) == "single study, not pooled; 52 patients"
    assert caveats(rows.iloc[2]) == (
        "2 studies: heterogeneity cannot be judged; substantial heterogeneity (I² = 61 %); 70 patients"
    )


def test_index_page_states_run_date_cutoff_version_and_methods(tmp_path):
    _pooled().to_csv(tmp_path / "pooled.csv", index=False)
    page = index_page([("02_response.html", "Response by regimen class")], tmp_path)
    for text in (
        "Summary of findings",
        "Run date",
        "Data cut-off",
        "Toolkit version",
        "metaanalysis ",
        "binomial-normal random-intercept GLMM",
        "47.9 % (41.3-54.6)",
        "href='02_response.html'",
    ):
        assert text in page, text
    assert "NaN" not in page and "&lt;NA&gt;" not in page
