"""The loader's tables: one row per study x arm x outcome, stable columns, nothing imputed.

Expected values are the numbers written in the fixture record (tests/fixtures/base_2024.yaml).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from metaanalysis.evidence.studies import (
    OUTCOME_COLUMNS,
    STUDY_COLUMNS,
    TIME_TO_EVENT_COLUMNS,
    StudyValidationError,
    load_records,
    load_studies,
    load_time_to_event,
    population_label,
    study_table,
)

FIXTURES = Path(__file__).parents[1] / "fixtures"
BASE = (FIXTURES / "base_2024.yaml").read_text(encoding="utf-8")
REPO = Path(__file__).resolve().parents[2]


def edit(old: str, new: str, text: str = BASE) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def write(directory: Path, **records: str) -> Path:
    for name, text in records.items():
        (directory / f"{name}.yaml").write_text(text, encoding="utf-8")
    return directory


def test_one_row_per_arm_and_outcome_with_documented_columns(tmp_path):
    frame = load_studies(write(tmp_path, base_2024=BASE))
    assert list(frame.columns) == list(OUTCOME_COLUMNS)
    assert {c: str(t) for c, t in frame.dtypes.items()} == {
        c: str(pd.Series(dtype=t).dtype) for c, t in OUTCOME_COLUMNS.items()
    }
    assert list(zip(frame.arm, frame.outcome, strict=True)) == [
        ("glofit", "ORR"),
        ("glofit", "CR"),
        ("glofit", "PR"),
        ("chemo", "ORR"),
    ]
    glofit_orr = frame.iloc[0]
    assert (glofit_orr.events, glofit_orr.n, glofit_orr.percent) == (6, 12, 50.0)
    assert glofit_orr.regimen_class == "bispecific_antibody" and glofit_orr.population == "after_car_t"
    assert glofit_orr.source_quote == "ORR 6/12 (50.0%)" and glofit_orr.source_where == "Table 2"
    assert glofit_orr.citation == "Doe et al. 2024" and glofit_orr.year == 2024
    assert frame.poolable.all() and frame.not_poolable_reason.isna().all() and frame.subgroup.isna().all()
    assert frame.outcome_kind.tolist() == ["response"] * 4  # from data/outcomes.yaml


def test_percentage_without_denominator_stays_missing(tmp_path):
    text = edit("        events: 2\n        n: 8\n        percent: 25\n", "        percent: 25\n")
    row = load_studies(write(tmp_path, base_2024=text)).query("arm == 'chemo'").iloc[0]
    assert row.events is pd.NA and row.n is pd.NA and row.percent == 25.0
    assert not row.poolable and row.not_poolable_reason == "percentage without denominator"


def test_superseded_record_is_not_poolable(tmp_path):
    update = edit("id: base_2024", "id: base_2025") + "relations:\n  supersedes: [base_2024]\n"
    frame = load_studies(write(tmp_path, base_2024=BASE, base_2025=update))
    old, new = frame[frame.study == "base_2024"], frame[frame.study == "base_2025"]
    assert (~old.poolable).all() and (old.not_poolable_reason == "superseded by base_2025").all()
    assert (old.superseded_by == "base_2025").all() and new.poolable.all()


def test_treatment_courses_and_derivations_are_columns_not_exclusions(tmp_path):
    text = edit("unit_of_analysis: patients", "unit_of_analysis: treatment_courses")
    text = edit(
        '    source: {where: "Methods", quote: "20 patients"}\n',
        '    source: {where: "Methods", quote: "20 courses"}\n  patients:\n    value: 9\n'
        '    source: {where: "Methods", quote: "9 patients"}\n',
        text,
    )
    text = edit(
        '        source: {where: "Table 2", quote: "ORR 2/8 (25%)"}',
        '        derived: {from: percent, rule: "25% of 8 = 2"}\n        source: {where: "Table 2", quote: "ORR 25%"}',
        text,
    )
    frame = load_studies(write(tmp_path, base_2024=text))
    assert frame.poolable.all() and (frame.unit_of_analysis == "treatment_courses").all()
    chemo = frame.query("arm == 'chemo'").iloc[0]
    assert chemo.derived and chemo.derived_from == "percent" and chemo.derivation == "25% of 8 = 2"
    assert study_table(load_records(tmp_path)).patients.tolist() == [9]


def test_subgroup_rows_are_marked(tmp_path):
    subgroup = (
        "    subgroups:\n      - id: late\n        label: Late relapse\n        n:\n          value: 4\n"
        '          source: {where: "Table 4", quote: "late relapse (n = 4)"}\n        binary:\n'
        '          ORR: {events: 1, n: 4, percent: 25, source: {where: "Table 4", quote: "1/4"}}\n'
    )
    frame = load_studies(write(tmp_path, base_2024=BASE + subgroup))
    sub = frame[frame.subgroup.notna()]
    assert len(sub) == 1 and sub.iloc[0].subgroup == "late" and sub.iloc[0].arm == "chemo"
    assert (sub.iloc[0].events, sub.iloc[0].n, sub.iloc[0].arm_n) == (1, 4, 4)


@pytest.mark.parametrize(
    "failed, label",
    [
        (["car_t"], "after_car_t"),
        (["bispecific"], "after_bispecific"),
        (["bispecific", "car_t"], "after_car_t_and_bispecific"),
    ],
)
def test_population_is_one_string(failed, label):
    assert population_label({"population": {"prior_failure": failed}}) == label


def test_errors_raise_with_every_problem_listed(tmp_path):
    text = edit("        percent: 33.3", "        percent: 35.0")
    text = edit("    regimen_class: chemotherapy", "    regimen_class: chemoo", text)
    with pytest.raises(StudyValidationError) as info:
        load_studies(write(tmp_path, base_2024=text))
    message = str(info.value)
    assert "2 error(s)" in message and "arms[0].binary.CR.percent" in message and "arms[1].regimen_class" in message
    assert len(info.value.problems) == 2


def test_empty_or_missing_directory_raises(tmp_path):
    with pytest.raises(StudyValidationError, match="no study files"):
        load_studies(tmp_path)
    with pytest.raises(StudyValidationError, match="no such directory"):
        load_studies(tmp_path / "absent")


def test_unreadable_file_raises_even_without_validation(tmp_path):
    (tmp_path / "x.yaml").write_text("a: [", encoding="utf-8")
    with pytest.raises(StudyValidationError, match="malformed YAML"):
        load_records(tmp_path, validate=False)


def test_time_to_event_rows(tmp_path):
    frame = load_time_to_event(write(tmp_path, base_2024=BASE))
    assert list(frame.columns) == list(TIME_TO_EVENT_COLUMNS)
    assert frame.kind.tolist() == ["median", "hazard_ratio", "landmark"]
    hr = frame.iloc[1]
    assert (hr.value, hr.ci_lb, hr.ci_ub, hr.ci_level, hr.p_value) == (0.5, 0.25, 0.99, 0.95, 0.04)
    assert hr.model == "univariable" and hr.source_where == "Table 3"
    landmark = frame.iloc[2]
    assert (landmark.months, landmark.percent) == (12.0, 40.0) and landmark.value is pd.NA


def test_study_table_one_row_per_study(tmp_path):
    update = edit("id: base_2024", "id: base_2025") + "relations:\n  supersedes: [base_2024]\n"
    table = study_table(load_records(write(tmp_path, base_2024=BASE, base_2025=update)))
    assert list(table.columns) == list(STUDY_COLUMNS)
    assert table.study.tolist() == ["base_2024", "base_2025"]
    first = table.iloc[0]
    assert (first.n, first.n_arms, first.country, first.design, first.enrolment_start) == (
        20,
        2,
        "Nowhere",
        "retrospective",
        "2021-01",
    )
    assert (first.follow_up_months, first.follow_up_lb, first.follow_up_ub) == (8.0, 1.0, 20.0)
    assert first.superseded_by == "base_2025" and table.iloc[1].supersedes == "base_2024"


def test_real_evidence_base_loads():
    frame = load_studies(REPO / "extracted_studies")
    studies = study_table(load_records(REPO / "extracted_studies"))
    assert len(frame) > 0 and set(frame.study) <= set(studies.study) and studies.study.is_unique
    # a missing denominator is never imputed
    assert not (frame.n.isna() & frame.poolable).any()


def test_short_citation_keeps_compound_surnames():
    from metaanalysis.evidence.studies import _short_citation

    assert _short_citation({"authors": ["Di Blasi R", "Gat E"], "year": 2022}) == "Di Blasi et al. 2022"
    assert _short_citation({"authors": ["Alarcon Tomas A"], "year": 2022}) == "Alarcon Tomas 2022"
    assert _short_citation({"authors": [], "year": None}) == "Anonymous n.d."


def test_a_stratum_carries_its_own_unit_and_disease_and_the_record_its_selection(tmp_path):
    end = '        source: {where: "Table 2", quote: "ORR 2/8 (25%)"}\n'
    stratum = (
        "    subgroups:\n      - id: pvbr\n        label: pv-br\n        stratified_by: regimen\n"
        "        regimen: Pola-BR\n        regimen_class: chemotherapy\n"
        "        unit_of_analysis: treatment_courses\n        disease: B-NHL\n"
        '        binary: {ORR: {events: 1, n: 3, source: {where: "Table 2", quote: "1/3"}}}\n'
    )
    frame = load_studies(write(tmp_path, base_2024=edit(end, end + stratum)))
    sub = frame[frame["subgroup"] == "pvbr"].iloc[0]
    arm = frame[(frame["arm"] == "chemo") & frame["subgroup"].isna()].iloc[0]
    assert (sub["unit_of_analysis"], sub["disease"]) == ("treatment_courses", "B-NHL")
    assert (arm["unit_of_analysis"], arm["disease"]) == ("patients", "LBCL")
    assert set(frame["selection"]) == {"after_failure"}


def test_the_study_table_carries_the_citation_label(tmp_path):
    text = edit("  source_file: seeds/none.txt\n", '  source_file: seeds/none.txt\n  label: "Test cohort"\n')
    table = study_table(load_records(write(tmp_path, base_2024=text)))
    assert table.loc[0, "label"] == "Test cohort" and table.loc[0, "citation"] == "Doe et al. 2024"
