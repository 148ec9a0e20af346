"""Published syntheses as data (review/syntheses): the loader names every problem with file, line and
field; the checks against the search log; the real files load clean.

Each broken file is the valid synthesis below with one edit; expected lines are found in the edited
text (`line_of`), never copied from the checker's output.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from helpers import SESSION, evidence, line_of
from helpers import edit_session as edit

from metaanalysis.cli import validate as validate_cli
from metaanalysis.evidence.search_log import load_search_log
from metaanalysis.evidence.syntheses import SYNTHESIS_COLUMNS, check_syntheses, load_syntheses, synthesis_table
from metaanalysis.evidence.validation import ERROR

REPO = Path(__file__).resolve().parents[2]

EXCERPT = """URL: https://example.org/review

A meta-analysis of 7 studies with 210 patients.
The pooled ORR was 48.5% (95% CI: 40.2-56.9%), and the CR was 31% (95% CI, 25–38).
Authors: Roe R, Doe J. J Tests 2025.
"""
SYNTH = """\
id: roe2025_meta
citation:
  authors: [Roe R, Doe J]
  title: "A synthetic meta-analysis"
  journal: "Journal of Tests"
  year: 2025
  doi: null
  url: "https://example.org/review"
  source_type: abstract
  metadata_source:
    - {where: "abstract", quote: "Authors: Roe R, Doe J. J Tests 2025."}
design: meta_analysis
pooled:
  population: after_car_t
  regimen_class: bispecific_antibody
  outcomes: [ORR, CR]
  studies:
    value: 7
    source: {where: "abstract", quote: "A meta-analysis of 7 studies with 210 patients."}
  patients:
    value: 210
    source: {where: "abstract", quote: "A meta-analysis of 7 studies with 210 patients."}
estimates:
  - outcome: ORR
    value: 48.5
    ci: [40.2, 56.9]
    k: 7
    source: {where: "abstract", quote: "The pooled ORR was 48.5% (95% CI: 40.2-56.9%)"}
  - outcome: CR
    value: 31
    ci: [25, 38]
    source: {where: "abstract", quote: "the CR was 31% (95% CI, 25–38)"}
"""


def write(tmp_path: Path, text: str = SYNTH, name: str = "roe2025_meta", excerpt: str | None = EXCERPT) -> Path:
    d = tmp_path / "syntheses"
    (d / "excerpts").mkdir(parents=True, exist_ok=True)
    (d / f"{name}.yaml").write_text(text, encoding="utf-8")
    if excerpt is not None:
        (d / "excerpts" / f"{name}.txt").write_text(excerpt, encoding="utf-8")
    return d


def problems_of(tmp_path: Path, text: str = SYNTH, **kw):
    return load_syntheses(write(tmp_path, text, **kw))[1]


def one(problems, path: str, line: int | None):
    errs = [p for p in problems if p.severity == ERROR]
    assert len(errs) == 1, "\n".join(map(str, problems))
    assert errs[0].path == path and errs[0].line == line, str(errs[0])
    return errs[0]


def test_valid_synthesis_is_clean(tmp_path):
    syntheses, problems = load_syntheses(write(tmp_path))
    assert problems == [] and [s.id for s in syntheses] == ["roe2025_meta"]


def test_no_syntheses_folder_is_nothing_to_check(tmp_path):
    assert load_syntheses(tmp_path / "absent") == ([], [])


def test_a_value_not_as_printed_is_named(tmp_path):
    text = edit("    value: 48.5", "    value: 48.6", SYNTH)
    p = one(problems_of(tmp_path, text), "estimates[0].value", line_of(text, "value: 48.6"))
    assert "not printed" in p.message


def test_a_ci_bound_not_as_printed_is_named(tmp_path):
    text = edit("ci: [25, 38]", "ci: [25, 39]", SYNTH)
    one(problems_of(tmp_path, text), "estimates[1].ci[1]", line_of(text, "ci: [25, 39]"))


def test_an_estimate_outside_its_interval(tmp_path):
    # printed numbers, inconsistent with each other: 31 outside [33, 38]
    text = edit("ci: [25, 38]", "ci: [33, 38]", SYNTH)
    text = edit('"the CR was 31% (95% CI, 25–38)"', '"the CR was 31% (95% CI, 33–38)"', text)
    excerpt = EXCERPT.replace("25–38", "33–38")
    p = one(problems_of(tmp_path, text, excerpt=excerpt), "estimates[1].value", line_of(text, "value: 31"))
    assert "outside its CI" in p.message


def test_unknown_outcome_and_class_suggest_the_nearest(tmp_path):
    text = edit("  - outcome: CR\n", "  - outcome: CRR\n", SYNTH)
    p = one(problems_of(tmp_path, text), "estimates[1].outcome", line_of(text, "outcome: CRR"))
    assert "unknown outcome 'CRR'" in p.message
    text = edit("regimen_class: bispecific_antibody", "regimen_class: bispecific", SYNTH)
    p = one(problems_of(tmp_path, text), "pooled.regimen_class", line_of(text, "regimen_class: bispecific"))
    assert "did you mean 'bispecific_antibody'" in p.message


def test_unknown_population_and_keys(tmp_path):
    text = edit("population: after_car_t", "population: after_cart", SYNTH)
    p = one(problems_of(tmp_path, text), "pooled.population", line_of(text, "population: after_cart"))
    assert "after_car_t" in p.message
    text = edit("    k: 7\n", "    kk: 7\n", SYNTH)
    p = one(problems_of(tmp_path, text), "estimates[0].kk", line_of(text, "kk: 7"))
    assert "did you mean 'k'" in p.message


def test_k_above_the_studies_pooled(tmp_path):
    text = edit("    k: 7\n", "    k: 9\n", SYNTH)
    p = one(problems_of(tmp_path, text), "estimates[0].k", line_of(text, "k: 9"))
    assert "more than the synthesis pooled" in p.message


def test_id_must_equal_the_file_name(tmp_path):
    one(problems_of(tmp_path, name="other_name"), "id", line_of(SYNTH, "id: roe2025_meta"))


def test_a_quote_not_in_the_excerpt_and_a_missing_excerpt(tmp_path):
    text = edit("the CR was 31%", "CR was 31%", SYNTH)
    excerpt = EXCERPT.replace("the CR was 31%", "CR: 31%")
    p = one(problems_of(tmp_path, text, excerpt=excerpt), "estimates[1].source.quote", line_of(text, "CR was 31%"))
    assert "word for word" in p.message
    problems = problems_of(tmp_path / "b", excerpt=None)
    assert len(problems) == 1 and problems[0].path == "citation.url" and "roe2025_meta.txt" in problems[0].message


def test_metadata_must_be_printed_in_its_quote(tmp_path):
    text = edit("  year: 2025", "  year: 2024", SYNTH)
    p = one(problems_of(tmp_path, text), "citation.metadata_source", line_of(text, "metadata_source:"))
    assert "2024" in p.message


def test_every_problem_at_once(tmp_path):
    text = edit("    value: 48.5", "    value: 48.6", SYNTH)
    text = edit("design: meta_analysis", "design: meta", text)
    text = edit("  - outcome: CR\n", "  - outcome: CRR\n", text)
    assert {p.path for p in problems_of(tmp_path, text)} == {"estimates[0].value", "design", "estimates[1].outcome"}


def test_a_synthesis_must_be_screened_as_review_article(tmp_path, capsys):
    studies = evidence(tmp_path, SESSION)
    write(tmp_path / "review")
    log, _ = load_search_log(tmp_path / "review" / "search_log")
    syntheses, _ = load_syntheses(tmp_path / "review" / "syntheses")
    # SESSION screens https://example.org/review as review_article: clean
    assert check_syntheses(syntheses, log) == []
    moved = edit('url: "https://example.org/review"', 'url: "https://example.org/elsewhere"', SYNTH)
    write(tmp_path / "review", moved, excerpt=EXCERPT.replace("example.org/review", "example.org/elsewhere"))
    syntheses, _ = load_syntheses(tmp_path / "review" / "syntheses")
    problems = check_syntheses(syntheses, log)
    assert len(problems) == 1 and problems[0].path == "citation.url" and "review_article" in problems[0].message
    # and `metaanalysis validate` reports it, and nothing else, with the study records
    code = validate_cli.main(SimpleNamespace(directory=str(studies)))
    out = capsys.readouterr().out
    assert code == 1 and "roe2025_meta.yaml: error: citation.url:" in out and "1 error(s)" in out


def test_synthesis_table_has_one_row_per_estimate(tmp_path):
    syntheses, _ = load_syntheses(write(tmp_path))
    table = synthesis_table(syntheses)
    assert list(table.columns) == list(SYNTHESIS_COLUMNS) and len(table) == 2
    orr = table[table["outcome"] == "ORR"].iloc[0]
    assert (orr["estimate"], orr["ci_lb"], orr["ci_ub"], orr["k"], orr["n_pooled"]) == (48.5, 40.2, 56.9, 7, 210)
    assert orr["citation"] == "Roe 2025" and orr["population"] == "after_car_t"


@pytest.mark.parametrize(
    "name", ["shen2025_bsab_after_cart", "blood2025_4548_bsab_after_cart", "eobt2024_first_salvage"]
)
def test_the_real_syntheses_load_clean_and_are_logged(name):
    syntheses, problems = load_syntheses(REPO / "review" / "syntheses")
    assert problems == []
    log, _ = load_search_log(REPO / "review" / "search_log")
    assert check_syntheses(syntheses, log) == []
    ids = {s.id for s in syntheses}
    assert name in ids
    table = synthesis_table([s for s in syntheses if s.id == name])
    assert len(table) >= 2 and table["quote"].notna().all()
