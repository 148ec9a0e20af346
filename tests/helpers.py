"""Helpers shared by test modules: the valid fixture record and how to break it, one edit at a time.

Expected line numbers are found in the edited text itself (`line_of`), never copied from the
validator's output.
"""

from __future__ import annotations

from pathlib import Path

from metaanalysis.evidence.validation import ERROR, Problem, validate_directory

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
