"""Record text never runs as code on a report page, and a page fetches nothing from the network.

Study files come from many hands and the report is mailed around. Every free-text field of every
study record (authors, title, journal, centre names, population description, arm labels, regimens,
notes, and every `where` a number was read) gets an HTML payload; the whole run, notebooks included,
is repeated on that copy. Then, for every page and every SVG figure:

1. the payload never stands in the file unescaped (and it does stand there escaped: the text is
   shown, so the test cannot pass by losing it);
2. in Chromium, with the page's Content-Security-Policy taken out (escaping alone is tested), no
   payload runs;
3. with the policy in place, the page asks the network for nothing (Chromium's network log).
"""

from __future__ import annotations

import json
import shutil
from urllib.parse import urlsplit

import pytest
import yaml
from helpers import REPO, chromium, without_policy

from metaanalysis.pipeline.run import run
from metaanalysis.presentation.report import CONTENT_SECURITY_POLICY

MARK = "data-injected"
PAYLOADS = (
    f"<img src=x onerror=\"document.body.setAttribute('{MARK}','img')\">",
    f"<script>document.body.setAttribute('{MARK}','script')</script>",
    f"<svg onload=\"document.body.setAttribute('{MARK}','svg')\"></svg>",
)
PAYLOAD = " " + "".join(PAYLOADS)  # after a space: a surname stays a surname for the validator
FREE_TEXT = {"authors", "title", "journal", "name", "description", "label", "regimen", "notes", "where"}
# Chromium's own background requests (clock, account and search services), made for any page
BROWSER_HOSTS = ("google.com", "gstatic.com", "googleapis.com")


def _plant(node, key=None):
    if isinstance(node, dict):
        return {k: _plant(v, k) for k, v in node.items()}
    if isinstance(node, list):
        return [_plant(v, key) for v in node]
    if isinstance(node, str) and key in FREE_TEXT:
        return node + PAYLOAD
    return node


@pytest.fixture(scope="module")
def hostile_report(tmp_path_factory):
    base = tmp_path_factory.mktemp("hostile")
    studies = base / "extracted_studies"
    shutil.copytree(REPO / "extracted_studies", studies)
    shutil.copytree(REPO / "review", base / "review")
    for f in studies.glob("*.yaml"):
        planted = _plant(yaml.safe_load(f.read_text(encoding="utf-8")))
        f.write_text(yaml.safe_dump(planted, allow_unicode=True, sort_keys=False), encoding="utf-8")
    work = base / "notebooks"
    work.mkdir()
    for f in [*(REPO / "notebooks").glob("*.py"), *(REPO / "notebooks").glob("*.yaml")]:
        shutil.copy(f, work / f.name)
    out = run(studies, base / "results", notebooks_dir=work, log=lambda *a: None)
    return base / "results", out["html"]


def test_payloads_in_record_text_stand_escaped_in_every_page_and_figure(hostile_report):
    results, pages = hostile_report
    assert {p.name for p in pages} >= {"index.html", "02_response.html", "05_sensitivity.html"}
    files = [*pages, *sorted((results / "figures").glob("*.svg"))]
    raw = {f.name: [p for p in PAYLOADS if p in f.read_text(encoding="utf-8")] for f in files}
    assert not {k: v for k, v in raw.items() if v}, "record text written into a page as HTML"
    for name in ("index.html", "02_response.html", "05_sensitivity.html"):
        text = (results / "report" / name).read_text(encoding="utf-8")
        assert "&lt;img src=x onerror=" in text, f"{name} does not show the planted text"


def test_no_payload_runs_in_a_browser_even_without_the_policy(browser, hostile_report, tmp_path):
    _, pages = hostile_report
    ran = []
    for page in pages:
        probe = tmp_path / page.name
        probe.write_text(without_policy(page.read_text(encoding="utf-8")), encoding="utf-8")
        assert "Content-Security-Policy" not in probe.read_text(encoding="utf-8")
        dom = chromium("--virtual-time-budget=5000", "--dump-dom", probe.as_uri(), profile=tmp_path / "profile")
        assert "<body" in dom, f"{page.name}: Chromium returned no page"
        if f'{MARK}="' in dom:
            ran.append(page.name)
    assert not ran, f"a payload from record text ran on {ran}"


def test_every_page_forbids_scripts_and_asks_the_network_for_nothing(browser, hostile_report, tmp_path):
    _, pages = hostile_report
    assert "script-src" not in CONTENT_SECURITY_POLICY and "default-src 'none'" in CONTENT_SECURITY_POLICY
    requested = {}
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert CONTENT_SECURITY_POLICY in text, f"{page.name} has no Content-Security-Policy"
        assert "<script" not in text.lower(), f"{page.name} still holds a script"
        log = tmp_path / f"{page.stem}.netlog.json"
        chromium(
            f"--log-net-log={log}",
            "--virtual-time-budget=5000",
            "--dump-dom",
            page.as_uri(),
            profile=tmp_path / "profile",
        )
        urls = {
            e["params"]["url"]
            for e in json.loads(log.read_text(encoding="utf-8"))["events"]
            if isinstance(e.get("params"), dict) and isinstance(e["params"].get("url"), str)
        }
        remote = sorted(
            u
            for u in urls
            if urlsplit(u).scheme in ("http", "https", "ws", "wss")
            and not (urlsplit(u).hostname or "").endswith(BROWSER_HOSTS)
        )
        if remote:
            requested[page.name] = remote
    assert not requested, f"pages that fetch from the network: {requested}"
