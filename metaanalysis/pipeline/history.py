"""The run history of a living review, and the evidence snapshot it is computed from.

Where it lives: inside the results folder, so that the atomic swap (`staging.py`) keeps the
results and their history consistent: `history/<UTC time>.md` holds one entry per complete run
(never rewritten: each run copies the earlier entries byte for byte into its staging folder and
adds its own), `history.md` lists them all, newest first (regenerated from the entries). The
results folder is not in git, so a fresh clone starts with an empty history; copy `results/`
(or at least `results/history/`) along to keep it.

`evidence.json` holds every field of every study record as it was read (`{study: {field: value}}`),
so the next run can say which study and which field changed (`arms[0].binary.ORR.events: 20 -> 21`).
"""

from __future__ import annotations

import json
import shutil
from datetime import date, datetime
from pathlib import Path
from typing import Any

from metaanalysis.evidence.validation import format_path

EVIDENCE = "evidence.json"
HISTORY_DIR = "history"
HISTORY_INDEX = "history.md"


# -- evidence snapshot ------------------------------------------------------------------------
def _leaves(value: Any, path: tuple) -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_leaves(v, path + (str(k),)))
        return out
    if isinstance(value, list):
        out = {}
        for i, v in enumerate(value):
            out.update(_leaves(v, path + (i,)))
        return out
    if isinstance(value, (date, datetime)):
        value = value.isoformat()
    elif not isinstance(value, (str, int, float, bool)) and value is not None:
        value = str(value)
    return {format_path(path): value}


def evidence_snapshot(records: list[dict]) -> dict[str, dict[str, Any]]:
    """{study id: {field path: value}} for every leaf of every record."""
    return {str(r.get("id")): _leaves({k: v for k, v in r.items() if k != "id"}, ()) for r in records}


def write_evidence(folder: Path, records: list[dict]) -> Path:
    path = Path(folder) / EVIDENCE
    path.write_text(
        json.dumps(evidence_snapshot(records), indent=1, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n",
        encoding="utf-8",
    )
    return path


def read_evidence(folder: Path | None) -> dict | None:
    if folder is None:
        return None
    try:
        data = json.loads((Path(folder) / EVIDENCE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def diff_evidence(old: dict, new: dict) -> tuple[tuple[str, ...], tuple[str, ...], list]:
    """(studies added, studies removed, [(study, ((field, old, new), ...)), ...] for edited studies)."""
    edited = []
    for study in sorted(set(old) & set(new)):
        a, b = old[study], new[study]
        fields = tuple(
            (f, _shown(a.get(f)), _shown(b.get(f)))
            for f in sorted(set(a) | set(b))
            if f not in a or f not in b or a[f] != b[f] or type(a[f]) is not type(b[f])
        )
        if fields:
            edited.append((study, fields))
    return tuple(sorted(set(new) - set(old))), tuple(sorted(set(old) - set(new))), edited


def _shown(value: Any) -> str:
    if value is None:
        return "(none)"
    return json.dumps(value, ensure_ascii=False) if isinstance(value, bool) else str(value)


# -- history ------------------------------------------------------------------------------
def carry_history(previous: Path | None, stage: Path) -> list[Path]:
    """Copy the earlier entries, byte for byte, from the previous complete run into the staging folder."""
    target = Path(stage) / HISTORY_DIR
    target.mkdir(parents=True, exist_ok=True)
    if previous is None or not (Path(previous) / HISTORY_DIR).is_dir():
        return []
    carried = []
    for entry in sorted((Path(previous) / HISTORY_DIR).glob("*.md")):
        shutil.copy2(entry, target / entry.name)
        carried.append(target / entry.name)
    return carried


def add_entry(stage: Path, when: datetime, text: str) -> Path:
    """Write this run's entry (a new file, never an existing one) and regenerate `history.md`."""
    folder = Path(stage) / HISTORY_DIR
    folder.mkdir(parents=True, exist_ok=True)
    stem, n = when.strftime("%Y-%m-%dT%H%M%S.%fZ"), 1
    while (folder / f"{stem}{'' if n == 1 else f'_{n}'}.md").exists():
        n += 1
    entry = folder / f"{stem}{'' if n == 1 else f'_{n}'}.md"
    with open(entry, "x", encoding="utf-8") as handle:
        handle.write(text.rstrip("\n") + "\n")
    entries = sorted(folder.glob("*.md"), reverse=True)
    index = [
        "# Run history (newest first)",
        "",
        f"{len(entries)} complete run(s). Each entry is also a file in `{HISTORY_DIR}/`; this page is "
        "rebuilt from them by every run.",
        "",
    ]
    for path in entries:
        index += [path.read_text(encoding="utf-8").rstrip("\n"), "", "---", ""]
    (Path(stage) / HISTORY_INDEX).write_text("\n".join(index), encoding="utf-8")
    return entry


__all__ = [
    "evidence_snapshot",
    "write_evidence",
    "read_evidence",
    "diff_evidence",
    "carry_history",
    "add_entry",
    "EVIDENCE",
    "HISTORY_DIR",
    "HISTORY_INDEX",
]
