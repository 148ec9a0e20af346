"""The frame of every report page: navigation between pages and the change report on the index."""

from __future__ import annotations

import base64
import re

import pytest

from metaanalysis.presentation.report import CONTENT_SECURITY_POLICY, navigation, with_changes, with_navigation

INDEX = (
    "<html><body><main><h1>Report</h1><table class='facts'></table><h2>Summary of findings</h2></main></body></html>"
)


def test_the_change_report_opens_the_index_escaped_and_links_the_history():
    md = "### Primary estimates that changed\n\n- study <img src=x onerror=alert(1)> added\n"
    page = with_changes(INDEX, md)
    assert page.index("What changed in this update") < page.index("Summary of findings")
    assert "<img" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<h3>Primary estimates that changed</h3>" in page and "href='../history.md'" in page


def test_the_history_figure_is_inline_because_the_policy_admits_only_data_images(tmp_path):
    svg = tmp_path / "history.svg"
    svg.write_bytes(b"<svg xmlns='http://www.w3.org/2000/svg'><text>ORR</text></svg>")
    page = with_changes(INDEX, "- nothing changed", history_figure=svg)
    assert "img-src data:" in CONTENT_SECURITY_POLICY and "img-src data: " + "'self'" not in CONTENT_SECURITY_POLICY
    src = re.search(r"<img src='data:image/svg\+xml;base64,([^']+)'", page)
    assert src is not None and base64.b64decode(src.group(1)) == svg.read_bytes()
    assert (
        page.index("What changed in this update")
        < page.index("<figure class='history'>")
        < page.index("Summary of findings")
    )
    assert "<figure" not in with_changes(INDEX, "- nothing changed")


def test_a_page_without_sections_is_an_error_not_a_silent_omission():
    with pytest.raises(ValueError, match="section heading"):
        with_changes("<html><body>nothing</body></html>", "- a")


def test_navigation_comes_first_in_the_body_and_escapes_titles():
    page = with_navigation("<html><body class='x'><p>content</p></body></html>", ("01.html", "A & B"), None)
    body = page[page.index("<body class='x'>") + len("<body class='x'>") :]
    assert body.startswith("<style>") and body.index("</nav>") < body.index("<p>content</p>")
    assert "A &amp; B" in body and "href='index.html'" in body and "Next:" not in body
    assert "Previous" not in navigation(None, ("02.html", "Two")) and "Next: Two" in navigation(
        None, ("02.html", "Two")
    )
