"""Helpers shared by test modules: the valid fixture record and how to break it, one edit at a time.

Expected line numbers are found in the edited text itself (`line_of`), never copied from the
validator's output.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from metaanalysis.evidence.validation import ERROR, Problem, validate_directory
from metaanalysis.review.analyses import Analysis, IVSettings

FIXTURES = Path(__file__).parent / "fixtures"
BASE = (FIXTURES / "base_2024.yaml").read_text(encoding="utf-8")
REPO = Path(__file__).resolve().parents[1]

# A fixed vocabulary, so these tests do not move when entries are appended to metaanalysis/data.
CLASSES = {
    "bispecific_antibody": {"label": "Bispecific antibody", "covers": ["glofitamab"], "aliases": ["BsAb"]},
    "chemotherapy": {"label": "Chemotherapy", "covers": ["R-GemOx"], "aliases": ["chemo"]},
    "mixed_salvage": {"label": "Any salvage", "covers": [], "aliases": []},
}
OUTCOMES = {name: {"kind": "response", "label": name} for name in ("ORR", "CR", "PR", "ORR_day30")}
OUTCOMES["CRS_any"] = {"kind": "safety", "label": "CRS, any grade"}
OUTCOMES["CRS_grade3plus"] = {"kind": "safety", "label": "CRS grade >= 3"}


def edit(old: str, new: str, text: str = BASE, count: int = 1) -> str:
    assert text.count(old) >= count, f"fixture text {old!r} not found"
    return text.replace(old, new, count)


def line_of(text: str, needle: str, nth: int = 0) -> int:
    """1-based line of the nth line containing `needle`."""
    hits = [i + 1 for i, line in enumerate(text.splitlines()) if needle in line]
    return hits[nth]


def check(tmp_path: Path, text: str = BASE, name: str = "base_2024", **files: str) -> list[Problem]:
    (tmp_path / f"{name}.yaml").write_text(text, encoding="utf-8")
    for other, other_text in files.items():
        (tmp_path / f"{other}.yaml").write_text(other_text, encoding="utf-8")
    return validate_directory(tmp_path, regimen_classes=CLASSES, outcomes=OUTCOMES)


def find(problems: list[Problem], path: str, severity: str = ERROR) -> Problem:
    hits = [p for p in problems if p.path == path and p.severity == severity]
    assert hits, f"no {severity} at {path}; got:\n" + "\n".join(map(str, problems))
    return hits[0]


def only(problems: list[Problem], path: str, line: int, severity: str = ERROR, file: str | None = None) -> Problem:
    """The problems are exactly one, at `path` and `line`."""
    assert len(problems) == 1, "\n".join(map(str, problems))
    p = find(problems, path, severity)
    assert p.line == line, str(p)
    if file is not None:
        assert Path(p.file).name == file
    return p


# -- the fixture itself ------------------------------------------------------------


# -- study records as small dicts, for the pooling rules ---------------------------------------
SRC = {"where": "Table 2", "quote": "x"}


def outcome(events, n, **extra):
    return {"events": events, "n": n, "source": SRC, **extra}


def arm(arm_id, cls, orr=None, cr=None, subgroups=(), **binary):
    out = {"id": arm_id, "label": arm_id, "regimen": arm_id, "regimen_class": cls, "binary": dict(binary)}
    if orr is not None:
        out["binary"]["ORR"] = orr
    if cr is not None:
        out["binary"]["CR"] = cr
    if subgroups:
        out["subgroups"] = list(subgroups)
    return out


def record(study, *arms, selection="after_failure", confidence="high", source_type="full_text", year=2024):
    population = {"prior_failure": ["car_t"], "disease": "LBCL", "description": "test"}
    if selection:
        population["selection"] = selection
    return {
        "id": study,
        "citation": {
            "authors": [f"{study.title()} A"],
            "title": "t",
            "journal": None,
            "year": year,
            "doi": None,
            "source_type": source_type,
            "source_file": None,
            "confidence": confidence,
        },
        "centres": [{"name": f"{study} centre", "country": None}],
        "design": {"type": "retrospective", "setting": "single_centre"},
        "population": population,
        "unit_of_analysis": "patients",
        "arms": list(arms),
    }


def analysis(outcome_name="ORR", **kw) -> Analysis:
    return Analysis(
        id=f"{outcome_name.lower()}_after_cart",
        population="after_car_t",
        outcome=outcome_name,
        methods=("GLMM", "PLO"),
        units=("patients", "treatment_courses"),
        level=0.95,
        inverse_variance=IVSettings(),
        **kw,
    )


def reasons(excluded):
    return dict(
        zip(
            excluded["study"] + ":" + excluded["subgroup"].fillna(excluded["arm"]).astype(str),
            excluded["reason"],
            strict=True,
        )
    )


# -- two arms of one study in one class ---------------------------------------------------


# -- a search-log session and a studies folder beside it -------------------------------------
SESSION = """\
session: 2026-01-02-test
date: 2026-01-02
searched: "a test corpus"
method: database
queries:
  - {id: q01, text: "glofitamab after CAR-T", date: 2026-01-02, hits_examined: 8}
  - {id: q02, text: "second query", date: 2026-01-02, hits_examined: 5}
screened:
  - id: r001
    citation: "Doe J et al. A synthetic study. J Tests 2024"
    url: "https://example.org/base"
    found_by: [q01, q02]
    stage: eligibility
    decision: include
    reason: null
    detail: "12 patients"
    study_id: base_2024
  - id: r002
    citation: "A review"
    url: "https://example.org/review"
    found_by: [q01]
    stage: screening
    decision: exclude
    reason: review_article
  - id: r003
    citation: "The review again (mirror)"
    url: "https://mirror.example.org/review"
    found_by: [q02]
    stage: screening
    decision: duplicate
    reason: null
    detail: "same as r002"
"""


def evidence(tmp_path: Path, session: str = SESSION, name: str = "2026-01-02-test", **more: str) -> Path:
    """A studies folder with base_2024.yaml and review/search_log/<name>.yaml beside it."""
    studies = tmp_path / "extracted_studies"
    studies.mkdir(exist_ok=True)
    (studies / "base_2024.yaml").write_text(BASE, encoding="utf-8")
    log = tmp_path / "review" / "search_log"
    log.mkdir(parents=True, exist_ok=True)
    (log / f"{name}.yaml").write_text(session, encoding="utf-8")
    for other, text in more.items():
        (log / f"{other.replace('_', '-')}.yaml").write_text(text, encoding="utf-8")
    return studies


def edit_session(old: str, new: str, text: str = SESSION) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


# -- Debian's headless Chromium, for the pages as a reader sees them --------------------------
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]
_POLICY = re.compile(r'<meta http-equiv="Content-Security-Policy"[^>]*>')


def chromium(*args: str, profile: Path) -> str:
    """Run headless Chromium with `args`; its standard output (e.g. --dump-dom)."""
    cmd = [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout


def without_policy(page: str) -> str:
    """A page's HTML without its Content-Security-Policy (which forbids every script, a test's too)."""
    return _POLICY.sub("", page)
