"""Each validation rule fires on a broken record with the right file, field path and line.

Records are the valid fixture `fixtures/base_2024.yaml` with one edit; expected line numbers are
found in the edited text itself (`line_of`), never copied from the validator's output.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import BASE, CLASSES, FIXTURES, OUTCOMES, REPO, check, edit, find, line_of, only  # noqa: F401

from metaanalysis.evidence.validation import (
    ERROR,
    WARNING,
    Problem,
    percent_matches,
    printed_decimals,
    validate_directory,
    validate_text,
)


def test_base_fixture_is_clean(tmp_path):
    assert check(tmp_path) == []


# -- parsing -------------------------------------------------------------------------
def test_malformed_yaml_reports_line_not_traceback():
    problems = validate_directory(FIXTURES / "malformed", regimen_classes=CLASSES, outcomes=OUTCOMES)
    p = only(problems, "", 4, file="broken_yaml_2024.yaml")
    assert "malformed YAML" in p.message and "line 3" in p.message  # where the unclosed list began


def test_duplicate_key_is_an_error_not_silently_replaced(tmp_path):
    text = edit("  doi: null\n", "  doi: null\n  doi: 10.1/x\n")
    p = only(check(tmp_path, text), "citation.doi", line_of(text, "doi: 10.1/x"))
    assert "appears twice" in p.message


def test_anchors_and_aliases_are_refused(tmp_path):
    text = edit("  - name: Test Hospital", "  - name: &h Test Hospital") + "notes: *h\n"
    p = only(check(tmp_path, text), "notes", line_of(text, "notes: *h"))
    assert "alias" in p.message


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty"),
        (b"id: x\n\xff\xfe broken", "UTF-8"),
        (b"id: a\n---\nid: b\n", "malformed YAML"),
        (b"start: 2023-02-30\n", "unreadable value '2023-02-30'"),
        (b"<<: {id: a}\n", "merge keys"),
    ],
)
def test_unreadable_files(tmp_path, content, message):
    (tmp_path / "x.yaml").write_bytes(content)
    problems = validate_directory(tmp_path, regimen_classes=CLASSES, outcomes=OUTCOMES)
    assert len(problems) == 1 and problems[0].severity == ERROR and message in problems[0].message


def test_directory_problems(tmp_path):
    assert "no such directory" in validate_directory(tmp_path / "absent")[0].message
    assert "no study files" in validate_directory(tmp_path)[0].message
    (tmp_path / "base_2024.yml").write_text(BASE)
    assert any(".yaml" in p.message and p.file.endswith(".yml") for p in validate_directory(tmp_path))


# -- schema: keys and types ----------------------------------------------------------
def test_misspelt_key_suggests_nearest(tmp_path):
    text = edit("    regimen_class: chemotherapy", "    regimen_clas: chemotherapy")
    problems = check(tmp_path, text)
    p = find(problems, "arms[1].regimen_clas")
    assert p.line == line_of(text, "regimen_clas: chemotherapy")
    assert "did you mean 'regimen_class'" in p.message
    missing = find(problems, "arms[1].regimen_class")  # and the required key is then missing
    assert missing.line == line_of(text, "- id: chemo")


def test_missing_required_field(tmp_path):
    text = edit('  title: "A synthetic study for the validator tests"\n', "")
    p = only(check(tmp_path, text), "citation.title", line_of(text, "citation:"))
    assert "required" in p.message


@pytest.mark.parametrize(
    "old, new, path, needle",
    [
        ("  year: 2024", "  year: twenty", "citation.year", "year: twenty"),
        ("      value: 12\n", "      value: 12.5\n", "arms[0].n.value", "value: 12.5"),
        ("    country: Nowhere", "    country: NO", "centres[0].country", "country: NO"),
        ("  start: 2021-01", "  start: 2021-01-15", "enrolment.start", "start: 2021-01-15"),
        ("  prior_failure: [car_t]", "  prior_failure: car_t", "population.prior_failure", "prior_failure: car_t"),
        ("  disease: LBCL", "  disease: LBLC", "population.disease", "disease: LBLC"),
    ],
)
def test_wrong_types_and_values(tmp_path, old, new, path, needle):
    text = edit(old, new)
    p = only(check(tmp_path, text), path, line_of(text, needle))
    if needle == "country: NO":
        assert "quote it" in p.message  # YAML 1.1 reads NO as false
    if needle == "disease: LBLC":
        assert "did you mean 'LBCL'" in p.message


def test_id_must_match_file_name(tmp_path):
    p = only(check(tmp_path, name="other_name"), "id", line_of(BASE, "id: base_2024"), file="other_name.yaml")
    assert "other_name.yaml" in p.message


def test_duplicate_ids_across_files(tmp_path):
    problems = check(tmp_path, copy_2024=BASE)
    dup = [p for p in problems if "duplicate id" in p.message]
    assert len(dup) == 1 and dup[0].path == "id" and dup[0].line == line_of(BASE, "id: base_2024")
    assert Path(dup[0].file).name == "copy_2024.yaml" and "base_2024.yaml" in dup[0].message


@pytest.mark.parametrize(
    "value, suggestion",
    [("bispecfic_antibody", "bispecific_antibody"), ("BsAb", "bispecific_antibody"), ("chemo", "chemotherapy")],
)
def test_unknown_regimen_class_suggests_nearest(tmp_path, value, suggestion):
    text = edit("    regimen_class: chemotherapy", f"    regimen_class: {value}")
    p = only(check(tmp_path, text), "arms[1].regimen_class", line_of(text, f"regimen_class: {value}"))
    assert f"did you mean '{suggestion}'" in p.message


def test_unknown_outcome_name(tmp_path):
    text = edit("      PR:\n", "      PRR:\n")
    p = only(check(tmp_path, text), "arms[0].binary.PRR", line_of(text, "PRR:"))
    assert "unknown outcome" in p.message and "did you mean 'PR'" in p.message


# -- counts ------------------------------------------------------------------------
def test_events_above_n(tmp_path):
    text = edit("        events: 2\n        n: 8", "        events: 9\n        n: 8")
    only(check(tmp_path, text), "arms[1].binary.ORR.events", line_of(text, "events: 9"))


@pytest.mark.parametrize("bad", ["-1", "1.5", "two"])
def test_events_negative_or_not_integer(tmp_path, bad):
    text = edit("        events: 2\n        n: 8\n        percent: 25\n", f"        events: {bad}\n        n: 8\n")
    only(check(tmp_path, text), "arms[1].binary.ORR.events", line_of(text, f"events: {bad}"))


def test_cr_above_orr(tmp_path):
    # CR 7/12 > ORR 6/12 (PR removed so that only CR <= ORR is broken)
    text = edit(
        "        events: 4\n        n: 12\n        percent: 33.3",
        "        events: 7\n        n: 12\n        percent: 58.3",
    )
    text = edit(
        "      PR:\n        events: 2\n        n: 12\n        percent: 16.7\n"
        '        source: {where: "Table 2", quote: "PR 2/12 (16.7%)"}\n',
        "",
        text,
    )
    only(check(tmp_path, text), "arms[0].binary.CR.events", line_of(text, "events: 7"))


def test_cr_plus_pr_not_orr(tmp_path):
    text = edit(
        "        events: 2\n        n: 12\n        percent: 16.7",
        "        events: 3\n        n: 12\n        percent: 25.0",
    )
    p = only(check(tmp_path, text), "arms[0].binary.ORR.events", line_of(text, "events: 6"))
    assert "4 + 3 = 7" in p.message


def test_graded_toxicity_above_any_grade(tmp_path):
    crs = (
        '      CRS_any: {events: 3, n: 12, source: {where: "Table 3", quote: "CRS 3/12"}}\n'
        '      CRS_grade3plus: {events: 4, n: 12, source: {where: "Table 3", quote: "grade >= 3 CRS 4/12"}}\n'
    )
    text = edit("    time_to_event:\n", crs + "    time_to_event:\n")
    only(check(tmp_path, text), "arms[0].binary.CRS_grade3plus.events", line_of(text, "CRS_grade3plus:"))


def test_arm_sizes_above_study_n(tmp_path):
    text = edit("    value: 20\n", "    value: 18\n")  # arms are 12 + 8 = 20
    p = only(check(tmp_path, text), "arms", line_of(text, "arms:"))
    assert "20" in p.message and "18" in p.message


def test_overall_arm_not_counted_in_arm_sum(tmp_path):
    overall = (
        "  - id: everyone\n    role: overall\n    label: All\n    regimen: any\n"
        "    regimen_class: mixed_salvage\n    n:\n      value: 20\n"
        '      source: {where: "Methods", quote: "20 patients"}\n'
    )
    assert check(tmp_path, BASE + overall) == []


def test_outcome_n_above_arm_n(tmp_path):
    text = edit(
        "        events: 2\n        n: 8\n        percent: 25", "        events: 2\n        n: 9\n        percent: 22.2"
    )
    only(check(tmp_path, text), "arms[1].binary.ORR.n", line_of(text, "n: 9"))


# -- percentages ------------------------------------------------------------------
@pytest.mark.parametrize(
    "events, n, printed, ok",
    [
        (4, 12, "33.3", True),  # 33.33 rounded
        (4, 12, "33", True),
        (4, 12, "33.33", True),
        (2, 12, "16.7", True),  # 16.67 rounded
        (2, 12, "16.6", True),  # 16.67 truncated
        (2, 12, "16", True),  # truncated to an integer
        (2, 12, "16.5", False),
        (2, 12, "16.8", False),
        (5, 11, "45.5", True),  # 45.45 rounded
        (5, 11, "45.50", False),  # two printed decimals: 45.45 is not 45.50
        (1, 8, "12.5", True),  # exact
        (1, 8, "13", True),  # 12.5 rounded half up
        (1, 8, "12", True),  # 12.5 rounded half to even / truncated
        (1, 3, "33.4", False),
    ],
)
def test_percent_rounding_and_truncation(events, n, printed, ok):
    assert percent_matches(events, n, float(printed), printed) is ok


def test_printed_decimals_from_the_text_as_written():
    assert printed_decimals(45.5, "45.50") == 2
    assert printed_decimals(100, "100") == 0
    assert printed_decimals(33.3, None) == 1


def test_printed_percent_not_matching(tmp_path):
    text = edit("        percent: 33.3", "        percent: 35.0")
    p = only(check(tmp_path, text), "arms[0].binary.CR.percent", line_of(text, "percent: 35.0"))
    assert "4/12" in p.message


def test_derived_count_inconsistent_with_its_percentage(tmp_path):
    text = edit(
        '        source: {where: "Table 2", quote: "ORR 2/8 (25%)"}',
        '        derived: {from: percent, rule: "40% of 8"}\n        source: {where: "Table 2", quote: "ORR 40%"}',
    )
    text = edit("        percent: 25\n", "        percent: 40\n", text)  # 40% of 8 = 3.2, not 2
    p = only(check(tmp_path, text), "arms[1].binary.ORR.events", line_of(text, "events: 2", 1))
    assert "derived count" in p.message


def test_derived_from_percent_without_percent(tmp_path):
    text = edit(
        '        source: {where: "Table 2", quote: "ORR 2/8 (25%)"}',
        '        derived: {from: percent, rule: "?"}\n        source: {where: "Table 2", quote: "ORR"}',
    )
    text = edit("        percent: 25\n", "", text)
    only(check(tmp_path, text), "arms[1].binary.ORR.derived.from", line_of(text, "derived: {from: percent"))


def test_percent_without_denominator_is_a_warning(tmp_path):
    text = edit("        events: 2\n        n: 8\n        percent: 25\n", "        percent: 25\n")
    only(check(tmp_path, text), "arms[1].binary.ORR.percent", line_of(text, "percent: 25"), severity=WARNING)


# -- sources --------------------------------------------------------------------------
def test_number_without_source(tmp_path):
    text = edit('        source: {where: "Table 2", quote: "ORR 2/8 (25%)"}\n', "")
    only(check(tmp_path, text), "arms[1].binary.ORR.source", line_of(text, "ORR:", 1))


def test_derived_without_rule(tmp_path):
    text = edit(
        '        source: {where: "Table 2", quote: "ORR 2/8 (25%)"}',
        '        derived: {from: table}\n        source: {where: "Table 2", quote: "ORR 2/8 (25%)"}',
    )
    only(check(tmp_path, text), "arms[1].binary.ORR.derived.rule", line_of(text, "derived: {from: table}"))


# -- intervals and dates ---------------------------------------------------------------
@pytest.mark.parametrize(
    "old, new, path",
    [
        ("        ci: [2.1, 7.0]", "        ci: [5.0, 7.0]", "arms[0].time_to_event[0].ci"),  # misses 4.5
        ("        ci: [2.1, 7.0]", "        ci: [7.0, 2.1]", "arms[0].time_to_event[0].ci"),  # lower > upper
        ("        ci: [20.0, 60.0]", "        ci: [41.0, 60.0]", "arms[0].time_to_event[2].ci"),  # landmark 40.0
        ("        ci: [0.25, 0.99]", "        ci: [0, 0.99]", "arms[0].time_to_event[1].ci[0]"),  # ratio bound 0
        ("        ci: [0.25, 0.99]", "        ci: [0.6, 0.99]", "arms[0].time_to_event[1].ci"),  # HR 0.5 outside
    ],
)
def test_confidence_intervals(tmp_path, old, new, path):
    text = edit(old, new)
    p = only(check(tmp_path, text), path, line_of(text, new.strip()))
    assert "ci" in p.message.lower() or "bound" in p.message


def test_hazard_ratio_must_be_positive(tmp_path):
    text = edit("        value: 0.5\n        ci: [0.25, 0.99]", "        value: -0.5")
    only(check(tmp_path, text), "arms[0].time_to_event[1].value", line_of(text, "value: -0.5"))


def test_landmark_needs_months_and_key_of_other_kind_refused(tmp_path):
    text = edit("        months: 12\n", "")
    # a missing key is reported at the line where its mapping starts ("- endpoint: OS", above "kind")
    only(check(tmp_path, text), "arms[0].time_to_event[2].months", line_of(text, "kind: landmark") - 1)
    text = edit(
        "        kind: median\n        value: 4.5\n", "        kind: median\n        value: 4.5\n        months: 6\n"
    )
    only(check(tmp_path, text), "arms[0].time_to_event[0].months", line_of(text, "months: 6"))


def test_median_outside_range(tmp_path):
    text = edit("  median_months: 8.0", "  median_months: 25.0")
    only(check(tmp_path, text), "follow_up.median_months", line_of(text, "median_months: 25.0"))


def test_enrolment_start_after_end(tmp_path):
    text = edit("  start: 2021-01", "  start: 2023-01")
    only(check(tmp_path, text), "enrolment.start", line_of(text, "start: 2023-01"))


# -- relations between records ----------------------------------------------------------
def other_record(
    rid: str, centre: str = "Other Hospital", start: str = "2021-01", end: str = "2022-06", relations: str = ""
) -> str:
    text = edit("id: base_2024", f"id: {rid}")
    text = edit("  - name: Test Hospital", f"  - name: {centre}", text)
    text = edit("  start: 2021-01\n  end: 2022-06", f"  start: {start}\n  end: {end}", text)
    return text + relations


@pytest.mark.parametrize(
    "key, block",
    [
        ("supersedes", "relations:\n  supersedes: [base_2023]\n"),
        ("overlaps", "relations:\n  overlaps:\n    - {id: base_2032, reason: same centre}\n"),
    ],
)
def test_relation_to_unknown_id(tmp_path, key, block):
    p = only(
        check(tmp_path, BASE + block),
        f"relations.{key}[0]" + (".id" if key == "overlaps" else ""),
        line_of(BASE + block, "base_20", 1),
    )
    assert "unknown study id" in p.message and "did you mean 'base_2024'" in p.message


def test_shared_centre_with_overlapping_enrolment_needs_a_declaration(tmp_path):
    later = other_record("later_2025", centre="test  hospital", start="2022-01", end="2023-01")
    problems = check(tmp_path, later_2025=later)
    p = only(problems, "centres[0].name", line_of(later, "- name: test  hospital"), file="later_2025.yaml")
    assert "base_2024" in p.message


@pytest.mark.parametrize("where", ["base", "later"])
def test_declared_overlap_in_either_record_is_enough(tmp_path, where):
    block = "relations:\n  overlaps:\n    - {id: %s, reason: same centre}\n"
    later = other_record("later_2025", centre="Test Hospital", start="2022-01", end="2023-01")
    if where == "base":
        assert check(tmp_path, BASE + block % "later_2025", later_2025=later) == []
    else:
        assert check(tmp_path, later_2025=later + block % "base_2024") == []


def test_shared_centre_without_overlapping_enrolment_is_fine(tmp_path):
    later = other_record("later_2025", centre="Test Hospital", start="2022-07", end="2023-01")
    assert check(tmp_path, later_2025=later) == []


# -- warnings --------------------------------------------------------------------------
def test_low_confidence_is_a_warning(tmp_path):
    text = edit("  source_file: seeds/none.txt", "  source_file: seeds/none.txt\n  confidence: low")
    only(check(tmp_path, text), "citation.confidence", line_of(text, "confidence: low"), severity=WARNING)


def test_treatment_courses_warn_and_need_patients(tmp_path):
    text = edit("unit_of_analysis: patients", "unit_of_analysis: treatment_courses")
    problems = check(tmp_path, text)
    assert find(problems, "unit_of_analysis", WARNING).line == line_of(text, "unit_of_analysis:")
    assert find(problems, "population.patients").line == line_of(text, "population:")
    text = edit("unit_of_analysis: patients", "unit_of_analysis: treatment_courses")
    text = edit("unit_of_analysis: treatment_courses", "unit_of_analysis: treatment_courses", text)
    text = edit(
        '    source: {where: "Methods", quote: "20 patients"}\n',
        '    source: {where: "Methods", quote: "20 courses"}\n  patients:\n    value: 9\n'
        '    source: {where: "Methods", quote: "9 patients"}\n',
        text,
    )
    assert [p.severity for p in check(tmp_path, text)] == [WARNING]


# -- everything at once ----------------------------------------------------------------
def test_one_file_with_many_problems_reports_all_of_them():
    fixture = FIXTURES / "many_problems" / "many_problems_2024.yaml"
    text = fixture.read_text(encoding="utf-8")
    problems = validate_directory(fixture.parent, regimen_classes=CLASSES, outcomes=OUTCOMES)
    expected = {
        ("enrolment.start", line_of(text, "start: 2023-05")),
        ("arms[0].regimen_clas", line_of(text, "regimen_clas:")),
        ("arms[0].regimen_class", line_of(text, "- id: only")),
        ("arms[0].binary.CR.events", line_of(text, "events: 4")),
        ("arms[0].binary.CR.percent", line_of(text, "percent: 45")),
        ("arms[0].binary.CRS_any.source", line_of(text, "CRS_any:")),
        ("arms[0].binary.ORR_week4", line_of(text, "ORR_week4:")),
    }
    assert {(p.path, p.line) for p in problems} == expected
    assert all(p.severity == ERROR and p.file == str(fixture) for p in problems)


def test_validate_text_single_record():
    assert validate_text(BASE, "base_2024.yaml", regimen_classes=CLASSES, outcomes=OUTCOMES) == []


def test_problem_format():
    p = Problem("a.yaml", "arms[0].n", 7, ERROR, "bad")
    assert str(p) == "a.yaml:7: error: arms[0].n: bad"


# -- the real evidence base ----------------------------------------------------------------
def test_extracted_studies_validate_without_errors():
    problems = validate_directory(REPO / "extracted_studies")
    errors = [str(p) for p in problems if p.severity == ERROR]
    assert errors == [], "\n".join(errors)


def test_twenty_files_validate_well_under_a_second(tmp_path):
    for i in range(20):
        other = other_record(f"study_{i:02d}", centre=f"Hospital {i}")
        (tmp_path / f"study_{i:02d}.yaml").write_text(other, encoding="utf-8")
    start = time.perf_counter()
    problems = validate_directory(tmp_path)
    elapsed = time.perf_counter() - start
    assert problems == [] and elapsed < 1.0, elapsed


# -- command line ---------------------------------------------------------------------------
def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "metaanalysis.cli", *args], capture_output=True, text=True, cwd=REPO, timeout=120
    )


def test_cli_validate_exit_codes_and_format(tmp_path):
    (tmp_path / "base_2024.yaml").write_text(BASE, encoding="utf-8")
    clean = run_cli("validate", str(tmp_path))
    assert clean.returncode == 0 and "0 error(s), 0 warning(s)" in clean.stdout

    text = edit("        percent: 33.3", "        percent: 35.0")
    (tmp_path / "base_2024.yaml").write_text(text, encoding="utf-8")
    broken = run_cli("validate", str(tmp_path))
    assert broken.returncode == 1
    line = line_of(text, "percent: 35.0")
    assert re.search(rf"base_2024\.yaml:{line}: error: arms\[0\]\.binary\.CR\.percent: printed 35\.0% ", broken.stdout)
    assert "Traceback" not in broken.stderr


def test_cli_validate_warnings_only_exit_zero(tmp_path):
    text = edit("  source_file: seeds/none.txt", "  source_file: seeds/none.txt\n  confidence: low")
    (tmp_path / "base_2024.yaml").write_text(text, encoding="utf-8")
    result = run_cli("validate", str(tmp_path))
    assert result.returncode == 0 and ": warning: citation.confidence:" in result.stdout


def test_cli_validate_malformed_yaml_no_traceback():
    result = run_cli("validate", str(FIXTURES / "malformed"))
    assert result.returncode == 1 and "broken_yaml_2024.yaml:4: error: malformed YAML" in result.stdout
    assert "Traceback" not in result.stderr


def test_cli_summary(tmp_path):
    (tmp_path / "base_2024.yaml").write_text(BASE, encoding="utf-8")
    ok = run_cli("summary", str(tmp_path))
    assert ok.returncode == 0 and "base_2024 / glofit [bispecific_antibody]: ORR 6/12, CR 4/12, PR 2/12" in ok.stdout
    broken = run_cli("summary", str(FIXTURES / "many_problems"))
    assert broken.returncode == 1 and "7 error(s)" in broken.stdout


def test_shared_centre_with_missing_enrolment_is_a_warning(tmp_path):
    later = other_record("later_2025", centre="Test Hospital")
    later = edit(
        '  start: 2021-01\n  end: 2022-06\n  source: {where: "Methods", quote: "from January 2021 to June 2022"}\n',
        "",
        later,
    ).replace("enrolment:\n", "")
    p = only(
        check(tmp_path, later_2025=later),
        "centres[0].name",
        line_of(later, "- name: Test Hospital"),
        severity=WARNING,
        file="later_2025.yaml",
    )
    assert "base_2024" in p.message


def test_packaged_vocabularies_are_read():
    from metaanalysis.evidence.vocabulary import outcomes, regimen_classes, suggest_regimen_class

    classes, names = regimen_classes(), outcomes()
    assert all("label" in entry for entry in classes.values())
    assert {"ORR", "CR", "PR"} <= set(names) and names["ORR"]["kind"] == "response"
    assert suggest_regimen_class("glofitamab", classes) == "bispecific_antibody"  # a covered drug


SUBGROUP = (
    "    subgroups:\n      - id: late\n        label: Late relapse\n        n:\n          value: 9\n"
    '          source: {where: "Table 4", quote: "late relapse (n = 9)"}\n'
)


@pytest.mark.parametrize(
    "old, new, path, needle",
    [
        # arm ids repeat
        ("  - id: chemo", "  - id: glofit", "arms[1].id", "  - id: glofit"),
        # a p-value that is neither a number in [0, 1] nor "<0.001"-like text
        ("        p: 0.04", "        p: 1.5", "arms[0].time_to_event[1].p", "p: 1.5"),
        ("        p: 0.04", "        p: significant", "arms[0].time_to_event[1].p", "p: significant"),
        # a median with both a value and not_reached
        (
            "        value: 4.5\n",
            "        value: 4.5\n        not_reached: true\n",
            "arms[0].time_to_event[0].value",
            "value: 4.5",
        ),
        # ci_level without ci
        ("        ci: [2.1, 7.0]\n", "        ci_level: 0.9\n", "arms[0].time_to_event[0].ci_level", "ci_level: 0.9"),
        # a baseline value mixing shapes
        ("    median: 60\n", "    median: 60\n    events: 3\n    n: 20\n", "baseline.age_years", "age_years:"),
        # a baseline median outside its range
        ("    median: 60\n", "    median: 90\n", "baseline.age_years.median", "median: 90"),
        # a record superseding itself
        (
            "unit_of_analysis: patients\n",
            "unit_of_analysis: patients\nrelations:\n  supersedes: [base_2024]\n",
            "relations.supersedes[0]",
            "supersedes: [base_2024]",
        ),
        # a placeholder left from the template
        (
            '  title: "A synthetic study for the validator tests"',
            '  title: "<FILL:title>"',
            "citation.title",
            "<FILL:title>",
        ),
    ],
)
def test_other_rules(tmp_path, old, new, path, needle):
    text = edit(old, new)
    only(check(tmp_path, text), path, line_of(text, needle, 1 if needle == "  - id: glofit" else 0))


def test_one_arm_larger_than_the_study(tmp_path):
    text = edit("      value: 12\n", "      value: 21\n")
    problems = check(tmp_path, text)
    assert {(p.path, p.line) for p in problems} == {
        ("arms[0].n.value", line_of(text, "value: 21")),
        ("arms", line_of(text, "arms:")),
    }  # and 21 + 8 > 20


def test_subgroup_larger_than_its_arm(tmp_path):
    text = BASE + SUBGROUP  # chemo arm has n = 8
    only(check(tmp_path, text), "arms[1].subgroups[0].n.value", line_of(text, "value: 9"))


def test_histology_and_patients_counts(tmp_path):
    text = edit(
        "  disease: LBCL\n",
        "  disease: LBCL\n  histology:\n"
        '    DLBCL: {value: 15, source: {where: "Table 1", quote: "DLBCL 15"}}\n'
        '    tFL: {value: 6, source: {where: "Table 1", quote: "tFL 6"}}\n',
    )
    only(check(tmp_path, text), "population.histology", line_of(text, "histology:"))
    text = edit("unit_of_analysis: patients", "unit_of_analysis: treatment_courses")
    text = edit(
        '    source: {where: "Methods", quote: "20 patients"}\n',
        '    source: {where: "Methods", quote: "20 courses"}\n  patients:\n    value: 25\n'
        '    source: {where: "Methods", quote: "25 patients"}\n',
        text,
    )
    problems = [p for p in check(tmp_path, text) if p.severity == ERROR]
    assert [(p.path, p.line) for p in problems] == [("population.patients.value", line_of(text, "value: 25"))]


def test_supersedes_cycle(tmp_path):
    other = other_record("other_2025", relations="relations:\n  supersedes: [base_2024]\n")
    text = BASE + "relations:\n  supersedes: [other_2025]\n"
    problems = check(tmp_path, text, other_2025=other)
    assert {(Path(p.file).name, p.path) for p in problems} == {
        ("base_2024.yaml", "relations.supersedes"),
        ("other_2025.yaml", "relations.supersedes"),
    }
    assert all("cycle" in p.message for p in problems)


def test_population_n_may_be_missing_but_is_warned(tmp_path):
    """A source that gives no study size (e.g. spiegel2021) is kept, with a warning, never imputed."""
    import shutil

    from metaanalysis.evidence.validation import validate_directory

    src = Path(__file__).resolve().parents[2] / "extracted_studies" / "spiegel2021.yaml"
    shutil.copy(src, tmp_path / "spiegel2021.yaml")
    problems = validate_directory(tmp_path)
    assert not [p for p in problems if p.severity == "error" and p.path.startswith("population")]
    assert any(p.path == "population" and "population.n is not given" in p.message for p in problems)


def test_study_files_in_a_subfolder_are_named_not_silently_skipped(tmp_path):
    import shutil

    from metaanalysis.evidence.validation import validate_directory

    src = Path(__file__).resolve().parents[2] / "extracted_studies" / "shumilov2025.yaml"
    shutil.copy(src, tmp_path / "shumilov2025.yaml")
    (tmp_path / "parked").mkdir()
    shutil.copy(src, tmp_path / "parked" / "other.yaml")
    problems = validate_directory(tmp_path)
    assert any(p.file.endswith("other.yaml") and "subfolder" in p.message for p in problems)
