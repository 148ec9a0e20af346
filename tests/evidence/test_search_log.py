"""The search log (review/search_log) and the excerpts the quotes were read from.

Each broken log is the valid session below with one edit; expected lines are found in the edited
text (`line_of`), never copied from the checker's output.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from helpers import BASE, SESSION, evidence, line_of
from helpers import edit_session as edit

from metaanalysis.cli import validate as validate_cli
from metaanalysis.evidence.excerpts import quote_problems, quotes
from metaanalysis.evidence.review_folder import check_review
from metaanalysis.evidence.search_log import load_search_log
from metaanalysis.evidence.validation import ERROR, check_directory

REPO = Path(__file__).resolve().parents[2]


def problems_of(tmp_path: Path, session: str = SESSION, **kw):
    studies = evidence(tmp_path, session, **kw)
    parsed, _ = check_directory(studies)
    return check_review(tmp_path / "review", studies, parsed)[1]


def one(problems, path: str, line: int, file_name: str | None = None):
    errs = [p for p in problems if p.severity == ERROR]
    assert len(errs) == 1, "\n".join(map(str, problems))
    assert errs[0].path == path and errs[0].line == line, str(errs[0])
    if file_name:
        assert Path(errs[0].file).name == file_name, str(errs[0])
    return errs[0]


def test_valid_session_is_clean(tmp_path):
    assert problems_of(tmp_path) == []


def test_session_must_equal_file_name(tmp_path):
    p = one(problems_of(tmp_path, name="2026-01-02-other"), "session", 1, "2026-01-02-other.yaml")
    assert "2026-01-02-other.yaml" in p.message


def test_date_must_match_session_name(tmp_path):
    text = edit("date: 2026-01-02\nsearched", "date: 2026-01-03\nsearched")
    one(problems_of(tmp_path, text), "date", line_of(text, "date: 2026-01-03"))


def test_repeated_ids(tmp_path):
    text = edit("  - id: r002", "  - id: r001")
    p = one(problems_of(tmp_path, text), "screened[1].id", line_of(text, "- id: r001", nth=1))
    assert "screened[0]" in p.message
    text = edit("{id: q02,", "{id: q01,")
    problems = problems_of(tmp_path, text)  # and the entries found by q02 now name no query
    assert {p.path for p in problems} == {"queries[1].id", "screened[0].found_by[1]", "screened[2].found_by[0]"}
    assert next(p for p in problems if p.path == "queries[1].id").line == line_of(text, "{id: q01,", nth=1)


def test_found_by_names_a_query_of_the_session(tmp_path):
    text = edit("found_by: [q01]\n", "found_by: [q03]\n")
    p = one(problems_of(tmp_path, text), "screened[1].found_by[0]", line_of(text, "found_by: [q03]"))
    assert "not a query of this session" in p.message


def test_other_method_found_by_is_free_text(tmp_path):
    text = edit("method: database", "method: other")
    text = edit("found_by: [q01]\n", 'found_by: ["handed over: sources/candidates.md"]\n', text)
    assert problems_of(tmp_path, text) == []


@pytest.mark.parametrize(
    "old, new, path, suggestion",
    [
        ("decision: exclude", "decision: exlude", "screened[1].decision", "exclude"),
        ("reason: review_article", "reason: review", "screened[1].reason", "review_article"),
        (
            "stage: screening\n    decision: exclude",
            "stage: screen\n    decision: exclude",
            "screened[1].stage",
            "screening",
        ),
    ],
)
def test_vocabularies_suggest_the_nearest(tmp_path, old, new, path, suggestion):
    text = edit(old, new)
    p = one(problems_of(tmp_path, text), path, line_of(text, new.split("\n")[0]))
    assert f"did you mean '{suggestion}'" in p.message


def test_decision_rules(tmp_path):
    text = edit("    reason: review_article\n", "    reason: null\n")
    p = one(problems_of(tmp_path, text), "screened[1].reason", line_of(text, "reason: null", nth=1))
    assert "needs a reason" in p.message
    text = edit("    stage: eligibility\n", "    stage: screening\n")
    one(problems_of(tmp_path, text), "screened[0].stage", line_of(text, "stage: screening"))
    text = edit('    detail: "same as r002"', '    detail: "same as r002"\n    study_id: nothing_here', SESSION)
    text = edit("    decision: duplicate\n    reason: null", "    decision: duplicate\n    reason: other", text)
    problems = problems_of(tmp_path, text)
    assert {p.path for p in problems} == {"screened[2].reason", "screened[2].study_id"}, problems


def test_included_study_must_exist(tmp_path):
    text = edit("    study_id: base_2024", "    study_id: base_2025")
    problems = problems_of(tmp_path, text)
    unknown = [p for p in problems if p.path == "screened[0].study_id"]
    assert len(unknown) == 1 and unknown[0].line == line_of(text, "study_id: base_2025")
    assert "did you mean 'base_2024'" in unknown[0].message
    # and base_2024.yaml is now included by nobody
    orphan = [p for p in problems if Path(p.file).name == "base_2024.yaml"]
    assert len(orphan) == 1 and "no entry of review/search_log includes this study" in orphan[0].message


def test_every_problem_at_once(tmp_path):
    text = edit("found_by: [q01]\n", "found_by: [q09]\n")
    text = edit("decision: duplicate", "decision: dup", text)
    text = edit("hits_examined: 5", "hits_examined: five", text)
    problems = problems_of(tmp_path, text)
    assert {p.path for p in problems} == {"screened[1].found_by[0]", "screened[2].decision", "queries[1].hits_examined"}
    assert all(p.line is not None for p in problems)


def test_same_url_twice_in_one_session_unless_marked_duplicate(tmp_path):
    text = edit('url: "https://mirror.example.org/review"', 'url: "https://www.example.org/review/"')
    assert problems_of(tmp_path, text) == []  # r003 says it is the duplicate
    text = edit("decision: duplicate\n    reason: null", "decision: exclude\n    reason: review_article", text)
    p = one(problems_of(tmp_path, text), "screened[2].url", line_of(text, "www.example.org/review/"))
    assert "screened[1]" in p.message


def test_one_report_included_as_two_studies_is_an_error(tmp_path):
    second = (
        SESSION.replace("2026-01-02-test", "2026-02-01-again")
        .replace("date: 2026-01-02", "date: 2026-02-01")
        .replace("study_id: base_2024", "study_id: copy_2024")
    )
    studies = evidence(tmp_path, name="2026-01-02-test", **{"2026_02_01_again": second})
    (studies / "copy_2024.yaml").write_text(
        BASE.replace("id: base_2024", "id: copy_2024").replace("Test Hospital", "Other Hospital"), encoding="utf-8"
    )
    parsed, _ = check_directory(studies)
    problems = check_review(tmp_path / "review", studies, parsed)[1]
    p = one(problems, "screened[0].study_id", line_of(second, "study_id: copy_2024"), "2026-02-01-again.yaml")
    assert "base_2024" in p.message


def test_validate_command_checks_review_beside_the_studies(tmp_path, capsys):
    studies = evidence(tmp_path, edit("found_by: [q01]\n", "found_by: [q03]\n"))
    code = validate_cli.main(SimpleNamespace(directory=str(studies)))
    out = capsys.readouterr().out
    assert code == 1 and "2026-01-02-test.yaml:" in out and "screened[1].found_by[0]" in out
    assert "1 search session(s)" in out


def test_the_real_search_log_parses_without_errors():
    log, problems = load_search_log(REPO / "review" / "search_log")
    assert [p for p in problems if p.severity == ERROR] == [] and len(log.entries) > 0


# -- excerpts --------------------------------------------------------------------------
def test_every_quote_read_at_a_url_is_in_its_excerpt():
    """On the real evidence base: records with source_file null, and quotes with their own url."""
    parsed, _ = check_directory(REPO / "extracted_studies")
    checked = [p for p in parsed if p.data["citation"]["source_file"] is None]
    assert len(checked) >= 5
    assert quote_problems(parsed, REPO / "review" / "excerpts") == []


def url_record(tmp_path: Path, cr_quote: str = "CR 4/12 (33.3%)"):
    """base_2024 read at a URL, its CR quote replaced; an excerpt holding every original quote."""
    text = BASE.replace("  source_file: seeds/none.txt", '  source_file: null\n  url: "https://example.org/base"')
    original = [q for _, q, _ in quotes(yaml.safe_load(text))]
    text = text.replace('quote: "CR 4/12 (33.3%)"', f'quote: "{cr_quote}"')
    studies = tmp_path / "studies"
    studies.mkdir(exist_ok=True)
    (studies / "base_2024.yaml").write_text(text, encoding="utf-8")
    excerpts = tmp_path / "excerpts"
    excerpts.mkdir(exist_ok=True)
    # the page as returned: line breaks and double spaces where the record has none
    (excerpts / "base_2024.txt").write_text(
        "URL: https://example.org/base\n\n"
        + "\n".join("  ".join(q.split(" ")).replace("  ", "\n", 1) + " ..." for q in original),
        encoding="utf-8",
    )
    parsed, problems = check_directory(studies)
    assert not [p for p in problems if p.severity == ERROR], problems
    return text, parsed, excerpts


def test_unchanged_quotes_pass_whatever_the_whitespace(tmp_path):
    _, parsed, excerpts = url_record(tmp_path)
    assert quote_problems(parsed, excerpts) == []


@pytest.mark.parametrize("changed", ["CR 4/12 (33%)", "CR 5/12 (33.3%)", "complete response 4/12 (33.3%)"])
def test_a_changed_quote_fails_against_its_excerpt(tmp_path, changed):
    text, parsed, excerpts = url_record(tmp_path, changed)
    problems = quote_problems(parsed, excerpts)
    assert len(problems) == 1 and problems[0].path == "arms[0].binary.CR.source.quote", problems
    assert problems[0].line == line_of(text, changed) and "word for word" in problems[0].message


def test_a_missing_excerpt_is_named(tmp_path):
    _, parsed, excerpts = url_record(tmp_path)
    (excerpts / "base_2024.txt").unlink()
    problems = quote_problems(parsed, excerpts)
    assert len(problems) == 1 and problems[0].path == "citation.source_file" and "base_2024.txt" in problems[0].message


def test_an_excerpt_that_is_not_utf8_is_named_by_line_not_read_with_replacements(tmp_path):
    _, parsed, excerpts = url_record(tmp_path)
    good = (excerpts / "base_2024.txt").read_bytes()
    (excerpts / "base_2024.txt").write_bytes(good + b"\nOS caf\xe9\n")
    problems = quote_problems(parsed, excerpts)
    assert len(problems) == 1 and Path(problems[0].file).name == "base_2024.txt", problems
    assert problems[0].line == good.count(b"\n") + 2 and "0xE9 at column 7" in problems[0].message
