"""Reader-facing tables: labels, citations, the columns a reader needs first, no NaN."""

from __future__ import annotations

import pandas as pd

from metaanalysis.presentation.tables import comparison_table, hazard_ratio_table, median_table, paper_table

NA = pd.NA


def _tte():
    base = dict(
        study="cartron2025",
        arm="glofit",
        arm_label="Glofitamab",
        subgroup_label=NA,
        regimen_class_label="Bispecific antibody",
        arm_n=46,
        start=NA,
        not_reached=False,
        range_lb=NA,
        range_ub=NA,
        p_value=NA,
        p_printed=NA,
        comparison=NA,
        model=NA,
        months=NA,
        percent=NA,
    )
    return pd.DataFrame(
        [
            dict(base, kind="median", endpoint="OS", value=14.7, ci_lb=8.8, ci_ub=NA),
            dict(base, kind="median", endpoint="PFS", value=3.1, ci_lb=2.0, ci_ub=5.2),
            dict(base, kind="median", endpoint="OS", value=NA, not_reached=True, ci_lb=NA, ci_ub=NA),
            dict(base, kind="median", endpoint="DOR", value=8.1, ci_lb=NA, ci_ub=NA, range_lb=0.5, range_ub=20.3),
            dict(
                base,
                kind="hazard_ratio",
                endpoint="OS",
                value=0.44,
                ci_lb=0.21,
                ci_ub=0.95,
                p_value=0.038,
                p_printed="0.038",
                comparison="late vs early relapse",
                model="univariable",
            ),
            dict(base, kind="hazard_ratio", endpoint="PFS2", value=0.35, ci_lb=0.193, ci_ub=0.633, p_value=0.00012),
        ]
    )


def test_survival_tables_start_with_endpoint_median_spread_and_hr():
    cites = {"cartron2025": "Cartron 2025"}
    medians = median_table(_tte(), cites)
    assert list(medians.columns[:3]) == ["Endpoint", "Median (months)", "95 % CI or range"]
    assert medians["Median (months)"].tolist() == ["14.7", "3.1", "not reached", "8.1"]
    assert medians["95 % CI or range"].tolist() == [
        "95 % CI from 8.8 (upper limit not reported)",
        "95 % CI 2.0 to 5.2",
        "–",
        "range 0.5 to 20.3",
    ]
    assert set(medians["Study"]) == {"Cartron 2025"}
    hrs = hazard_ratio_table(_tte(), cites)
    assert list(hrs.columns[:3]) == ["Endpoint", "HR (95 % CI)", "p"]
    assert hrs["HR (95 % CI)"].tolist() == ["0.44 (0.21-0.95)", "0.35 (0.19-0.63)"]
    assert hrs["p"].tolist() == ["0.038", "< 0.001"]  # as printed, else formatted
    for table in (medians, hrs):
        assert "NaN" not in table.to_string() and "<NA>" not in table.to_string()


def test_two_arm_table_shows_events_per_arm_or_and_rd_in_points():
    rows = []
    for measure, est, lb, ub, p in (("OR", 6.7368, 1.2936, 35.0838, 0.0237), ("RD", 0.2375, 0.0479, 0.4270, 0.0141)):
        rows.append(
            dict(
                outcome="ORR_day30",
                measure=measure,
                events_exp=8,
                n_exp=27,
                events_ctrl=2,
                n_ctrl=34,
                derived=False,
                estimate=est,
                ci_lb=lb,
                ci_ub=ub,
                pval=p,
            )
        )
    table = comparison_table(pd.DataFrame(rows), ("Second CAR-T", "Other salvage"))
    assert table.iloc[0].to_dict() == {
        "Outcome": "Overall response at day 30",
        "Second CAR-T, events/N": "8/27",
        "Other salvage, events/N": "2/34",
        "OR (95 % CI)": "6.74 (1.29-35.08)",
        "p": "0.024",
        "Risk difference (95 % CI)": "23.8 points (4.8-42.7)",
        "Derived counts": "no",
    }


def test_paper_table_has_no_index_column():
    html = paper_table(pd.DataFrame({"Endpoint": ["OS"], "N": ["46"]}), numeric=("N",)).to_html()
    assert "row0_col0" in html and 'class="row_heading' not in html and ">0<" not in html
