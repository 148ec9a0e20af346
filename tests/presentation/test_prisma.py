"""PRISMA 2020 counts from a small search log, every box computed by hand, and the figure and
files `metaanalysis run` writes from them."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from helpers import BASE
from PIL import Image

from metaanalysis.evidence.search_log import load_search_log, prisma_counts
from metaanalysis.evidence.studies import StudyValidationError
from metaanalysis.pipeline.run import run
from metaanalysis.presentation.prisma import prisma_figure, save_prisma
from metaanalysis.presentation.report import write_report

ROOT = Path(__file__).resolve().parents[2]
LOG = Path(__file__).parents[1] / "fixtures" / "search_log"

# By hand from fixtures/search_log (13 entries: a1-a9 from a database session, b1-b4 from other methods):
#   duplicates: a5 (decision: duplicate), b2 (URL of a3, found again), b3 (URL of a9, found again) = 3
#   screened: 13 - 3 = 10; excluded at screening: a3, a4 = 2; sought: 8
#   not retrieved: a6 = 1; assessed: 7; excluded: no_denominator a7, b4 = 2, duplicate_report a8 = 1
#   reports included: a1, a2, a9, b1 = 4 (7 - 3); studies: s1, s2, s3 = 3
EXPECTED = dict(
    sessions=2,
    queries=2,
    identified_databases=9,
    identified_other=4,
    duplicates_removed=3,
    screened=10,
    excluded_screening=2,
    sought=8,
    not_retrieved=1,
    assessed=7,
    excluded_eligibility={"no_denominator": 2, "duplicate_report": 1},
    reports_included=4,
    studies_included=3,
)


@pytest.fixture(scope="module")
def counts():
    log, problems = load_search_log(LOG)
    assert problems == []
    return prisma_counts(log)


def test_counts_by_hand(counts):
    for name, value in EXPECTED.items():
        assert getattr(counts, name) == value, name
    # reasons listed most frequent first
    assert list(counts.excluded_eligibility) == ["no_denominator", "duplicate_report"]


def test_the_flow_adds_up(counts):
    c = counts
    assert c.identified_databases + c.identified_other - c.duplicates_removed == c.screened
    assert c.assessed - sum(c.excluded_eligibility.values()) == c.reports_included


def test_the_figure_shows_every_box(counts):
    fig = prisma_figure(counts)
    text = " ".join(" ".join(t.get_text() for ax in fig.axes for t in ax.texts).replace("\u00a0", " ").split())
    for phrase in (
        "databases (n = 9;",
        "2 queries",
        "other methods (n = 4)",
        "duplicate records (n = 3)",
        "Records screened (n = 10)",
        "Records excluded (n = 2)",
        "retrieval (n = 8)",
        "not retrieved (n = 1)",
        "eligibility (n = 7)",
        "No denominator (n = 2)",
        "Another report of an included cohort (n = 1)",
        "review (n = 3)",
        "studies (n = 4)",
    ):
        assert phrase in text, phrase


def test_save_writes_png_300_dpi_svg_and_the_counts(counts, tmp_path):
    png, svg, csv = save_prisma(counts, tmp_path)
    assert round(Image.open(png).info["dpi"][0]) == 300 and svg.stat().st_size > 1000
    table = pd.read_csv(csv)
    assert list(table.columns) == ["stage", "box", "reason", "n"]
    boxes = dict(zip(table["box"] + table["reason"].fillna(""), table["n"], strict=True))
    assert boxes["records_screened"] == 10 and boxes["reports_excludedno_denominator"] == 2
    assert boxes["studies_included"] == 3 and boxes["duplicates_removed"] == 3


PLAN = """\
defaults: {level: 0.95, methods: [GLMM], units: [patients], group_by: regimen_class,
           inverse_variance: {method: REML, test: knha, pi_method: metafor}}
analyses:
  - {id: orr_after_cart, population: after_car_t, outcome: ORR}
"""


def _run(studies: Path, tmp_path: Path):
    (tmp_path / "analyses.yaml").write_text(PLAN, encoding="utf-8")
    return run(studies, tmp_path / "results", tmp_path / "analyses.yaml", log=lambda *a: None)


def _evidence(tmp_path: Path, found_by: str = "q01") -> Path:
    """One study (base_2024) and a session that includes it, review/ beside the studies."""
    studies = tmp_path / "extracted_studies"
    studies.mkdir()
    (studies / "base_2024.yaml").write_text(BASE, encoding="utf-8")
    log = tmp_path / "review" / "search_log"
    log.mkdir(parents=True)
    (log / "2026-01-02-one.yaml").write_text(
        "session: 2026-01-02-one\ndate: 2026-01-02\nsearched: test\nmethod: database\n"
        "queries: [{id: q01, text: x, date: 2026-01-02, hits_examined: 1}]\n"
        f"screened:\n  - {{id: r1, citation: c, url: 'https://example.org/a', found_by: [{found_by}], "
        "stage: eligibility, decision: include, reason: null, study_id: base_2024}\n",
        encoding="utf-8",
    )
    return studies


def test_run_draws_the_flow_diagram_from_review_beside_the_studies(tmp_path):
    studies = _evidence(tmp_path)
    out = _run(studies, tmp_path)
    assert (tmp_path / "results" / "figures" / "prisma.png") in out["figures"]
    assert (tmp_path / "results" / "figures" / "prisma.svg").exists()
    table = pd.read_csv(tmp_path / "results" / "prisma.csv")
    assert table.set_index("box").loc["studies_included", "n"] == 1


def test_run_refuses_a_broken_search_log(tmp_path):
    studies = _evidence(tmp_path, found_by="q02")
    with pytest.raises(StudyValidationError, match="found_by"):
        _run(studies, tmp_path)
    assert not (tmp_path / "results" / "pooled.csv").exists()


def test_run_without_review_draws_no_diagram(tmp_path):
    studies = _evidence(tmp_path)
    shutil.rmtree(tmp_path / "review")
    _run(studies, tmp_path)
    assert not (tmp_path / "results" / "prisma.csv").exists()


def test_the_evidence_notebook_shows_the_diagram_as_an_image(tmp_path):
    studies = _evidence(tmp_path)
    work = tmp_path / "notebooks"
    work.mkdir()
    notebook = shutil.copy(ROOT / "notebooks" / "01_evidence_overview.py", work)
    plan = tmp_path / "plan.yaml"  # one analysis: the fixture study has none of the declared comparisons
    plan.write_text("analyses:\n  - {id: orr_after_cart, population: after_car_t, outcome: ORR}\n", encoding="utf-8")
    run(studies, tmp_path / "results", plan, log=lambda *a: None)  # the page shows the review the run computed
    pages = write_report(
        [Path(notebook)],
        tmp_path / "report",
        {"STUDIES_DIR": str(studies), "RESULTS_DIR": str(tmp_path / "results")},
        cwd=work,
    )
    html = pages[0].read_text(encoding="utf-8")
    assert "Traceback" not in html
    assert len(re.findall(r'<img[^>]*src="data:image/png;base64,', html)) == 1
    assert "Figure size" not in html
    assert "records_screened" in html  # and the counts under it
