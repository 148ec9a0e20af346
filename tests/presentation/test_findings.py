"""The summary of findings as a run writes it: the CSV and the Word document hold the same rows as
the index page, survival is in them, and every primary estimate has a certainty."""

from __future__ import annotations

import csv

import pytest

from metaanalysis.presentation.findings import COLUMNS, letter


@pytest.fixture(scope="module")
def findings(built_report):
    results, _ = built_report
    with open(results / "summary_of_findings.csv", encoding="utf-8", newline="") as handle:
        return results, list(csv.DictReader(handle))


@pytest.mark.xdist_group("report")  # the one built report (conftest.built_report)
def test_csv_holds_every_primary_estimate_and_survival_with_a_certainty(findings):
    results, rows = findings
    with open(results / "pooled.csv", encoding="utf-8", newline="") as handle:
        primary = [r for r in csv.DictReader(handle) if r["primary"] == "True"]
    with open(results / "survival_medians.csv", encoding="utf-8", newline="") as handle:
        medians = [r for r in csv.DictReader(handle) if r["primary"] == "True"]
    assert primary and medians
    outcomes = [r["Outcome"] for r in rows]
    assert sum(o.endswith(", median") for o in outcomes) == len(medians)
    assert len(rows) >= len(primary) + len(medians)
    words = ("High", "Moderate", "Low", "Very low")
    assert all(r["Certainty (GRADE)"].split(" ", 1)[1] in words for r in rows), {r["Certainty (GRADE)"] for r in rows}
    for r in rows:  # every letter is spelt out beside it
        marks = r["Footnotes"].split(", ")
        assert [t.split(". ", 1)[0] for t in r["Footnote text"].split(" | ")] == marks
    assert not any(v in ("nan", "NaN", "<NA>", "None") for r in rows for v in r.values())


@pytest.mark.xdist_group("report")
def test_word_document_has_the_same_tables_and_footnotes(findings):
    docx = pytest.importorskip("docx")
    results, rows = findings
    doc = docx.Document(str(results / "summary_of_findings.docx"))
    tables = {r["Table"] for r in rows}
    assert len(doc.tables) == len(tables)
    header = [c.text for c in doc.tables[0].rows[0].cells]
    assert header == COLUMNS
    body = [[c.text for c in row.cells] for t in doc.tables for row in t.rows[1:]]
    assert len(body) == len(rows)
    certainty = COLUMNS.index("Certainty (GRADE)")
    assert [b[certainty] for b in body] == [r["Certainty (GRADE)"] for r in rows]
    text = "\n".join(p.text for p in doc.paragraphs)
    assert "Data cut-off (last search of the literature)" in text
    assert f"{letter(0)}. Risk of bias, rated down" in text


@pytest.mark.xdist_group("report")
def test_index_page_shows_survival_and_footnotes(built_report):
    _, pages = built_report
    index = next(p for p in pages if p.name == "index.html").read_text(encoding="utf-8")
    assert "survival</h3>" in index and "Overall survival, median" in index
    assert "<ol class='footnotes' type='a'>" in index and "Certainty (GRADE)" in index


def test_letters_run_on_after_z():
    assert [letter(i) for i in (0, 25, 26, 27, 51, 52)] == ["a", "z", "aa", "ab", "az", "ba"]
