"""`metaanalysis new-study`: writes the template, refuses to overwrite, rejects bad ids; the template
fails validation while placeholders remain and validates clean once they are filled."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from metaanalysis.cli.new_study import template_text
from metaanalysis.evidence.validation import ERROR, validate_directory

REPO = Path(__file__).resolve().parents[2]

# One value per placeholder, written as YAML. Consistent on purpose: 9/20 = 45 %, 4/20 = 20 %.
FILLED = {
    "first_author": '"Smith A"',
    "title": '"Glofitamab after CAR-T"',
    "journal": '"Blood Adv"',
    "year": "2026",
    "doi": "null",
    "source_type": "full_text",
    "source_file": "seeds/099_example.txt",
    "centre_name": '"Example Hospital"',
    "country": "USA",
    "design_type": "retrospective",
    "design_setting": "single_centre",
    "enrolment_start": "2022-01",
    "enrolment_end": "2024-06",
    "enrolment_where": "Methods",
    "enrolment_quote": '"between January 2022 and June 2024"',
    "prior_failure": "car_t",
    "selection": "after_failure",
    "selection_where": "Methods",
    "selection_quote": '"patients whose LBCL progressed after CAR-T"',
    "disease": "LBCL",
    "population_description": '"LBCL relapsing after CAR-T."',
    "population_n": "20",
    "population_n_where": "Methods",
    "population_n_quote": '"20 patients"',
    "follow_up_months": "11.2",
    "follow_up_where": "Results",
    "follow_up_quote": '"median follow-up 11.2 months"',
    "arm_id": "glofitamab",
    "arm_label": "Glofitamab",
    "arm_regimen": "glofitamab monotherapy",
    "regimen_class": "bispecific_antibody",
    "arm_n": "20",
    "arm_n_where": "Methods",
    "arm_n_quote": '"20 patients received glofitamab"',
    "orr_events": "9",
    "orr_n": "20",
    "orr_percent": "45",
    "orr_where": "Table 2",
    "orr_quote": '"ORR 45% (9/20)"',
    "cr_events": "4",
    "cr_n": "20",
    "cr_percent": "20",
    "cr_where": "Table 2",
    "cr_quote": '"CR 20% (4/20)"',
    "os_median_months": "9.8",
    "os_where": "Fig. 2",
    "os_quote": '"median OS 9.8 months"',
}
PLACEHOLDER = re.compile(r'"<FILL:([a-z_]+)>"')


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "metaanalysis.cli", "new-study", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )


def test_writes_the_template_with_the_id(tmp_path):
    result = run("smith_2026", "--directory", str(tmp_path))
    assert result.returncode == 0, result.stderr
    written = (tmp_path / "smith_2026.yaml").read_text(encoding="utf-8")
    assert written == template_text("smith_2026") and "id: smith_2026\n" in written
    assert "smith_2026.yaml" in result.stdout


def test_refuses_to_overwrite(tmp_path):
    target = tmp_path / "smith_2026.yaml"
    target.write_text("id: smith_2026\n# my work\n", encoding="utf-8")
    result = run("smith_2026", "--directory", str(tmp_path))
    assert result.returncode == 1 and "already exists" in result.stderr
    assert target.read_text(encoding="utf-8") == "id: smith_2026\n# my work\n"


def test_rejects_invalid_ids(tmp_path):
    for bad in ("Smith2026", "smith-2026", "smith 2026", "../escape", ""):
        result = run(bad, "--directory", str(tmp_path))
        assert result.returncode == 1 and "invalid study id" in result.stderr, bad
    assert list(tmp_path.iterdir()) == []


def test_missing_directory(tmp_path):
    result = run("smith_2026", "--directory", str(tmp_path / "absent"))
    assert result.returncode == 1 and "does not exist" in result.stderr


def test_unfilled_template_reports_every_placeholder(tmp_path):
    text = template_text("smith_2026")
    (tmp_path / "smith_2026.yaml").write_text(text, encoding="utf-8")
    problems = validate_directory(tmp_path)
    assert all(p.severity == ERROR for p in problems)
    placeholder_lines = {i + 1 for i, line in enumerate(text.splitlines()) if PLACEHOLDER.search(line)}
    assert {p.line for p in problems} == placeholder_lines
    assert sum("placeholder" in p.message for p in problems) == len(PLACEHOLDER.findall(text))


def test_filled_template_validates_clean(tmp_path):
    text = template_text("smith_2026")
    assert set(PLACEHOLDER.findall(text)) == set(FILLED)  # a new placeholder needs a value here
    filled = PLACEHOLDER.sub(lambda m: FILLED[m.group(1)], text)
    (tmp_path / "smith_2026.yaml").write_text(filled, encoding="utf-8")
    assert validate_directory(tmp_path) == []
