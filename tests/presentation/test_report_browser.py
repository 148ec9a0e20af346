"""The report as a reader sees it: every page opened in headless Chromium (Debian's `chromium`).

For each page the browser lays the page out and a small script measures every image as drawn
(`getBoundingClientRect`, `naturalWidth`); pages that hold forest plots must show them at a size
that reads without zooming, and no page may print `<Figure size ...>` instead of a picture.
Screenshots of every page are kept under `results/screenshots/` (or $METAANALYSIS_SCREENSHOT_DIR)
as artefacts to look at.

`python3 make.py test` installs chromium with apt-get where it is missing and we are root; without
it this test is skipped locally and fails on CI (CI=true).
"""

from __future__ import annotations

import html
import json
import os
import re
from pathlib import Path

import pytest
from helpers import chromium, without_policy

ROOT = Path(__file__).resolve().parents[2]
WIDTH = 1280  # a laptop screen
MIN_FIGURE_WIDTH_PX = 600  # a forest plot's 8-pt text is then about 11 CSS px
MIN_FIGURE_HEIGHT_PX = 150
# page -> figure files (results/figures/*.png, by name prefix) it must show
FOREST_PAGES = {"02_response": ("orr_", "cr_"), "03_safety": ("crs", "icans", "infection", "tongji")}

MEASURE = """<script>
window.addEventListener('load', () => {
  const imgs = [...document.querySelectorAll('img, svg')].map(e => {
    const r = e.getBoundingClientRect();
    return {tag: e.tagName.toLowerCase(), width: r.width, height: r.height,
            natural: e.naturalWidth === undefined ? null : e.naturalWidth, alt: e.getAttribute('alt') || ''};
  });
  const out = document.createElement('pre');
  out.id = 'measured';
  out.textContent = JSON.stringify({images: imgs, text: document.body.innerText,
                                    height: document.documentElement.scrollHeight});
  document.body.appendChild(out);
});
</script>"""


def _measure(page: Path, tmp: Path) -> dict:
    """Lay the page out in Chromium and read back what the script measured."""
    probe = tmp / page.name
    # the page forbids scripts (its Content-Security-Policy): the probe copy drops the policy so
    # that the measuring script runs; test_report_injection opens the pages with it
    probe.write_text(
        without_policy(page.read_text(encoding="utf-8")).replace("</body>", MEASURE + "</body>"), encoding="utf-8"
    )
    dom = chromium(
        f"--window-size={WIDTH},1000",
        "--virtual-time-budget=10000",
        "--dump-dom",
        probe.as_uri(),
        profile=tmp / "profile-measure",
    )
    found = re.search(r'<pre id="measured">(.*?)</pre>', dom, re.S)
    assert found, f"{page.name}: the measuring script did not run"
    return json.loads(html.unescape(found.group(1)))


@pytest.mark.xdist_group("report")  # the one built report (conftest.built_report)
def test_every_page_shows_its_forest_plots_in_a_browser(browser, built_report, tmp_path):
    results, pages = built_report
    shots = Path(os.environ.get("METAANALYSIS_SCREENSHOT_DIR", ROOT / "results" / "screenshots"))
    shots.mkdir(parents=True, exist_ok=True)
    figures = sorted(p.stem for p in (results / "figures").glob("*.png"))
    failures = []
    for page in pages:
        m = _measure(page, tmp_path)
        height = min(int(m["height"]) + 20, 30000)
        chromium(
            f"--window-size={WIDTH},{height}",
            "--virtual-time-budget=10000",
            f"--screenshot={shots / (page.stem + '.png')}",
            page.as_uri(),
            profile=tmp_path / "profile-shot",
        )
        if "<Figure size" in m["text"] or "Traceback" in m["text"]:
            failures.append(f"{page.name}: prints a figure's text or a traceback instead of a picture")
        if page.stem == "index":  # the history figure (a first entry, in the run's own history folder)
            history = [i for i in m["images"] if i["alt"].startswith("Each primary") and (i["natural"] or 0) > 0]
            if not history or history[0]["width"] < MIN_FIGURE_WIDTH_PX:
                failures.append(f"index.html: the history figure does not show; measured {m['images']}")
        prefixes = FOREST_PAGES.get(page.stem)
        if prefixes is None:
            continue
        expected = [f for f in figures if f.startswith(prefixes)]
        shown = [
            i
            for i in m["images"]
            if i["tag"] == "img"
            and (i["natural"] or 0) > 0
            and i["width"] >= MIN_FIGURE_WIDTH_PX
            and i["height"] >= MIN_FIGURE_HEIGHT_PX
        ]
        if not expected or len(shown) < len(expected):
            failures.append(
                f"{page.name}: {len(shown)} readable images for {len(expected)} saved forest plots "
                f"({expected}); measured {m['images']}"
            )
    assert not failures, "\n".join(failures)
    assert {f"{p.stem}.png" for p in pages} <= {p.name for p in shots.glob("*.png")}
