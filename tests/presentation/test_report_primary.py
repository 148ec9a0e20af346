"""One review, computed once: every page and every forest SVG shows, for each class, the estimate,
interval and prediction interval of the row results/pooled.csv marks primary, and nothing else
is labelled primary. The expected strings are formatted here from pooled.csv itself (the run's
one decision), never from a page."""

from __future__ import annotations

import html
import re

import pandas as pd
import pytest

pytestmark = pytest.mark.xdist_group("report")  # shares the one built report (conftest.built_report)


def _pct(x: float) -> str:
    return f"{x * 100:.1f}"


def _svg_text(path) -> str:
    texts = re.findall(r"<text[^>]*>(.*?)</text>", path.read_text(encoding="utf-8"), flags=re.S)
    return " | ".join(re.sub(r"\s+", " ", html.unescape(t)).replace("[ ", "[").replace(", ", ",") for t in texts)


def _page_text(path) -> str:
    raw = re.sub(r"<[^>]+>", " ", path.read_text(encoding="utf-8"))
    return re.sub(r"\s+", " ", html.unescape(raw))


@pytest.fixture(scope="module")
def report(built_report):
    results, pages = built_report
    pooled = pd.read_csv(results / "pooled.csv")
    primary = pooled[pooled["primary"]]
    return results, {p.name: _page_text(p) for p in pages}, primary, pooled


def test_every_forest_svg_shows_the_primary_estimate_interval_and_prediction_interval(report):
    results, _, primary, _ = report
    checked = 0
    for r in primary[primary["method"] != "not pooled (k = 1)"].itertuples():
        svg = _svg_text(results / "figures" / f"{r.analysis}.svg")
        assert f"{_pct(r.estimate)} [{_pct(r.ci_lb)},{_pct(r.ci_ub)}]" in svg, (r.analysis, r.regimen_class)
        if r.k >= 3:  # the plot draws no prediction interval below 3 studies (its footnote says why)
            assert f"[{_pct(r.pi_lb)},{_pct(r.pi_ub)}]" in svg, (r.analysis, r.regimen_class, "PI")
        checked += 1
    assert checked >= 5


def _cell(r) -> str:
    return f"{_pct(r.estimate)} % ({_pct(r.ci_lb)}-{_pct(r.ci_ub)})"


def test_the_summary_and_the_result_pages_show_the_primary_rows(report):
    _, pages, primary, _ = report
    for r in primary.itertuples():
        page = "02_response.html" if r.outcome in ("ORR", "CR") else "03_safety.html"
        for name in ("index.html", page):
            assert _cell(r) in pages[name], (name, r.analysis, r.regimen_class, _cell(r))
            if not pd.isna(r.pi_lb):
                assert f"{_pct(r.pi_lb)}-{_pct(r.pi_ub)}" in pages[name], (name, r.analysis, r.regimen_class)


def test_nothing_else_is_labelled_primary(report):
    """Every "(primary)" on any page follows the estimate of a row pooled.csv marks primary."""
    _, pages, primary, pooled = report
    expected = {f"{_pct(r.estimate)} % ({_pct(r.ci_lb)}-{_pct(r.ci_ub)})" for r in primary.itertuples()}
    found = 0
    for name, text in pages.items():
        for m in re.finditer(r"(\S+ % \(\S+?\)) \(primary\)", text):
            assert m.group(1) in expected, (name, m.group(0))
            found += 1
        assert "Primary method (GLMM)" not in text and "BAYES: BAYES" not in text, name
    assert found >= 5, "the sensitivity page marks the primary estimate among the models"
    assert set(pooled.loc[pooled["primary"], "method"]) <= {"BAYES-NN", "BAYES-BN", "GLMM", "not pooled (k = 1)"}
