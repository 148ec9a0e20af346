"""A small copy of the evidence for the walkthrough notebook: the study records behind a few
classes of a few analyses, written as study files, and an analyses file declaring only those.

The walkthrough then runs the whole pipeline twice on it (before and after adding a study) in a
fraction of the time the full evidence base takes, and reads the change report. The records are
those of the computed review, written out as YAML (comments are not kept: it is a demonstration
copy, never the evidence base).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml

from metaanalysis.review.result import Review

DEMO_ANALYSES = ("orr_after_cart", "cr_after_cart")
DEMO_CLASSES = ("bispecific_antibody", "polatuzumab_based")


def small_copy(
    review: Review, folder: str | Path, *, analyses=DEMO_ANALYSES, classes=DEMO_CLASSES
) -> tuple[Path, Path]:
    """(studies folder, analyses file) under `folder`."""
    folder = Path(folder)
    studies = folder / "extracted_studies"
    studies.mkdir(parents=True, exist_ok=True)
    by_id = {r["id"]: r for r in review.records}
    chosen = {i for i, r in by_id.items() if any(a.get("regimen_class") in classes for a in r.get("arms") or [])}
    while True:  # and every record they name as overlapping or superseded, so the copy validates
        named = {x for i in chosen for x in _related(by_id[i])} & set(by_id)
        if named <= chosen:
            break
        chosen |= named
    for i in sorted(chosen):
        text = yaml.safe_dump(dict(by_id[i]), sort_keys=False, allow_unicode=True, width=100)
        (studies / f"{i}.yaml").write_text(text, encoding="utf-8")
    plan = yaml.safe_load((resources.files("metaanalysis") / "data" / "analyses.yaml").read_text(encoding="utf-8"))
    small = {
        "defaults": plan["defaults"],
        "analyses": [a for a in plan["analyses"] if a["id"] in analyses],
    }
    path = folder / "analyses.yaml"
    path.write_text(yaml.safe_dump(small, sort_keys=False), encoding="utf-8")
    return studies, path


def _related(record: dict) -> set[str]:
    rel = record.get("relations") or {}
    return set(rel.get("supersedes") or []) | {o.get("id") for o in rel.get("overlaps") or [] if isinstance(o, dict)}


__all__ = ["small_copy", "DEMO_ANALYSES", "DEMO_CLASSES"]
