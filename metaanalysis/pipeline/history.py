"""The living history of the review, and the evidence snapshot it is computed from.

Where it lives: in a tracked folder outside the results, `history/` beside the studies folder (the
repository root; `metaanalysis run --history DIR` elsewhere), so that every clone has it and no
damage to `results/` can erase it. One entry per update is one pair of new files:

    history/<UTC stamp>.json   finished, toolkit version, sha256 of the evidence snapshot and of the
                               analyses file, the number of studies, every primary estimate (and the
                               primary survival medians where survival_medians.csv marks them), and a
                               sha256 of its own canonical body, so that a hand-edited entry is known
    history/<UTC stamp>.md     the change report of that run (as `changes.md`)

A run appends an entry only when the evidence or the analyses file differ from the newest intact
entry (an unchanged re-run leaves the folder, and `git status`, as they were), after its results
have replaced `results/`. Files are written under a temporary name and linked into place, never
over an existing file; nothing in the folder is ever rewritten or deleted. An entry that is not
UTF-8, not JSON, of another schema or whose sha256 does not match is named and skipped, as is
anything else in the folder. When `results/manifest.json` is missing or damaged, the run compares
its primary estimates with the newest intact entry (`changes.compare_with_entry`).

`results/history/` and `results/history.md` are a copy rendered by every run from the tracked
entries (and this run's, when it adds one), for the report to link to.

`evidence.json` (in results/) holds every field of every study record as it was read
(`{study: {field: value}}`), so the next run can say which study and which field changed
(`arms[0].binary.ORR.events: 20 -> 21`).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from metaanalysis.evidence.validation import format_path
from metaanalysis.evidence.vocabulary import outcome_labels, regimen_labels
from metaanalysis.pipeline.staging import json_kind
from metaanalysis.presentation.labels import POPULATION_LABELS

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


def check_evidence(folder: Path | None) -> tuple[dict | None, str]:
    """(the snapshot `write_evidence` wrote, '') or (None, what is wrong with it; '' if there is none)."""
    if folder is None or not (Path(folder) / EVIDENCE).exists():
        return None, ""
    try:
        data = json.loads((Path(folder) / EVIDENCE).read_text(encoding="utf-8"))
    except OSError as exc:
        return None, f"cannot be read ({exc.strerror})"
    except UnicodeDecodeError:
        return None, "is not UTF-8"
    except ValueError:
        return None, "is not valid JSON"
    if not isinstance(data, dict):
        return None, f"is JSON {json_kind(data)}, not an object of study records"
    for study, fields in data.items():
        if not isinstance(fields, dict):
            return None, f"field {json.dumps(study)} is {json_kind(fields)}, not an object of field: value"
        for field, value in fields.items():
            if isinstance(value, (dict, list)):
                return None, f"field {json.dumps(study)}.{json.dumps(field)} is {json_kind(value)}, not one value"
    return data, ""


def read_evidence(folder: Path | None) -> dict | None:
    return check_evidence(folder)[0]


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


# -- the tracked history ----------------------------------------------------------------------
SCHEMA = "metaanalysis-history/1"
PRIMARY_FIELDS = ("analysis", "population", "outcome", "regimen_class", "method", "k", "n_total", "estimate", "ci_lb")
PRIMARY_FIELDS += ("ci_ub",)
MEDIAN_FIELDS = ("analysis", "population", "endpoint", "group", "method", "k", "estimate", "ci_lb", "ci_ub")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_STAMP = "%Y-%m-%dT%H%M%SZ"
LEFT = "not used for comparison; left as it is"


def default_history_dir(studies_dir: Path) -> Path:
    """The tracked history folder: `history/` beside the studies folder (the repository root)."""
    return Path(studies_dir).parent / HISTORY_DIR


def canonical(value: Any) -> bytes:
    """The one byte form hashed: sorted keys, no whitespace, UTF-8, no NaN."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _plain(value: Any) -> Any:
    """A table cell as JSON: missing (None, NaN, pd.NA) -> null; numpy numbers -> Python numbers."""
    if value is None or (not isinstance(value, (str, bool)) and pd.isna(value)):
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    return str(value)


def _primary_rows(table: pd.DataFrame | None, fields: tuple[str, ...]) -> list[dict]:
    if table is None or "primary" not in table.columns:
        return []
    flag = table["primary"].astype(str).str.lower().isin(("true", "1"))
    return [{f: _plain(r.get(f)) for f in fields if f in table.columns} for r in table[flag].to_dict("records")]


def entry_body(
    *,
    finished: datetime,
    records: list[dict],
    plan_bytes: bytes,
    pooled: pd.DataFrame,
    medians: pd.DataFrame | None = None,
    toolkit_version: str,
) -> dict:
    """What a history entry records of one run: the hashes of its inputs and its primary estimates."""
    return {
        "schema": SCHEMA,
        "finished": finished.astimezone(UTC).isoformat(timespec="seconds"),
        "toolkit_version": toolkit_version,
        "evidence_sha256": _sha(canonical(evidence_snapshot(records))),
        "analyses_sha256": _sha(plan_bytes),
        "studies": len(records),
        "primary": _primary_rows(pooled, PRIMARY_FIELDS),
        # survival_medians.csv marks a primary row only in later versions; without it, none are kept
        "survival_medians": _primary_rows(medians, MEDIAN_FIELDS),
    }


@dataclass(frozen=True)
class HistoryEntry:
    """One intact entry: `<stem>.json` (its body verified against its sha256) and `<stem>.md`."""

    stem: str
    json_path: Path
    body: dict

    @property
    def md_path(self) -> Path:
        return self.json_path.with_suffix(".md")

    @property
    def finished(self) -> str:
        return str(self.body["finished"])


@dataclass(frozen=True)
class History:
    """The intact entries of a history folder, oldest first, and what was set aside (one line each)."""

    folder: Path
    entries: tuple[HistoryEntry, ...] = ()
    problems: tuple[str, ...] = ()

    @property
    def newest(self) -> HistoryEntry | None:
        return self.entries[-1] if self.entries else None


def _schema_problem(data: dict) -> str:
    """'' when `data` (an entry without its sha256) has the fields of SCHEMA, else the first that does not."""
    if data.get("schema") != SCHEMA:
        return f'field "schema" is {json.dumps(data.get("schema"))}, not "{SCHEMA}"'
    for field in ("finished", "toolkit_version"):
        if not isinstance(data.get(field), str):
            return f'field "{field}" is not a string'
    for field in ("evidence_sha256", "analyses_sha256"):
        if not isinstance(data.get(field), str) or not _HEX64.fullmatch(data[field]):
            return f'field "{field}" is not a SHA-256'
    if not isinstance(data.get("studies"), int) or isinstance(data.get("studies"), bool):
        return 'field "studies" is not a whole number'
    try:
        datetime.fromisoformat(data["finished"])
    except ValueError:
        return 'field "finished" is not a date and time'
    for field, names in (("primary", ("analysis", "regimen_class", "method")), ("survival_medians", ("analysis",))):
        rows = data.get(field)
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            return f'field "{field}" is not a list of rows'
        for i, row in enumerate(rows):
            if not all(isinstance(row.get(n), str) for n in names):
                return f'field "{field}"[{i}] lacks ' + " or ".join(names)
            if any(not isinstance(row.get(n), (int, float, type(None))) for n in ("k", "estimate", "ci_lb", "ci_ub")):
                return f'field "{field}"[{i}]: k, estimate, ci_lb and ci_ub must be numbers or null'
    return ""


def read_entry(path: Path) -> tuple[dict | None, str]:
    """(the verified body, '') or (None, what is wrong with the file)."""
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except OSError as exc:
        return None, f"cannot be read ({exc.strerror})"
    except UnicodeDecodeError:
        return None, "not UTF-8"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON (line {exc.lineno}, column {exc.colno})"
    if not isinstance(data, dict) or not isinstance(data.get("sha256"), str):
        return None, "wrong schema (not an object with a sha256)"
    body = {k: v for k, v in data.items() if k != "sha256"}
    try:
        digest = _sha(canonical(body))
    except ValueError:  # NaN or Infinity, which no run writes
        return None, "wrong schema (a number is NaN or infinite)"
    if digest != data["sha256"]:
        return None, "edited or damaged (sha256 does not match)"
    if problem := _schema_problem(body):
        return None, f"wrong schema ({problem})"
    return body, ""


def read_history(folder: Path) -> History:
    """Every intact entry of `folder`; anything else in it is named in `problems` and left alone
    (never deleted or rewritten: an entry that does not verify costs the comparison, not the record)."""
    folder = Path(folder)
    if not folder.is_dir():
        problems = (f"{folder}: is a file, not a history folder; {LEFT}",) if folder.exists() else ()
        return History(folder, (), problems)
    entries, problems = [], []
    items = sorted(folder.iterdir(), key=lambda p: p.name)
    stems = {p.stem for p in items if p.suffix == ".json" and p.is_file()}
    for path in items:
        if path.is_dir():
            problems.append(f"{path}/: a folder, not a history entry; ignored, left as it is")
        elif path.name.startswith("."):
            problems.append(f"{path}: not a history entry (an append that was interrupted?); ignored, left as it is")
        elif path.suffix == ".json":
            body, problem = read_entry(path)
            if body is None:
                problems.append(f"{path}: {problem}; {LEFT}")
            else:
                entries.append(HistoryEntry(path.stem, path, body))
        elif path.suffix == ".md" and path.stem in stems:
            continue  # the change report of an entry
        else:
            problems.append(f"{path}: not a history entry (no {path.stem}.json beside it); ignored, left as it is")
    entries.sort(key=lambda e: (e.body["finished"], e.stem))
    return History(folder, tuple(entries), tuple(problems))


def needs_entry(history: History, body: dict) -> bool:
    """A run is recorded only when its evidence or its analyses file differ from the newest intact entry."""
    newest = history.newest
    return newest is None or any(newest.body[f] != body[f] for f in ("evidence_sha256", "analyses_sha256"))


def entry_json(body: dict) -> str:
    """An entry file's text: the body and the sha256 of its canonical form."""
    return json.dumps({**body, "sha256": _sha(canonical(body))}, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def next_stem(folder: Path, finished: str) -> str:
    """`<UTC stamp>` for an entry finished at `finished`, numbered when that name is taken."""
    stem = datetime.fromisoformat(finished).astimezone(UTC).strftime(_STAMP)
    n = 1
    while any((Path(folder) / f"{stem}{'' if n == 1 else f'_{n}'}{ext}").exists() for ext in (".json", ".md")):
        n += 1
    return stem if n == 1 else f"{stem}_{n}"


def _write_new(path: Path, text: str) -> None:
    """Write a new file, whole or not at all, never replacing one: a temporary name in the same
    folder, then a hard link to the name (fails if it exists; a rename would overwrite)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "x", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise
        except OSError:  # a file system without hard links: check, then rename
            if path.exists():
                raise FileExistsError(errno.EEXIST, "exists", str(path)) from None
            os.rename(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def append_entry(folder: Path, body: dict, markdown: str) -> HistoryEntry:
    """Add `<stamp>.md` then `<stamp>.json` (the .json last: it is what makes the entry) to `folder`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    while True:
        stem = next_stem(folder, body["finished"])
        try:
            _write_new(folder / f"{stem}.md", markdown.rstrip("\n") + "\n")
            _write_new(folder / f"{stem}.json", entry_json(body))
        except FileExistsError:  # another run took the name between the check and the write
            continue
        return HistoryEntry(stem, folder / f"{stem}.json", body)


# -- the rendered copy in results/ ------------------------------------------------------------
def render_history(out_dir: Path, history: History, pending: HistoryEntry | None = None, markdown: str = "") -> Path:
    """`history/` (a copy of every intact entry, and of `pending`, this run's, about to be appended)
    and `history.md` (them all, newest first) in the results folder `out_dir`."""
    copy = Path(out_dir) / HISTORY_DIR
    copy.mkdir(parents=True, exist_ok=True)
    texts = []
    for entry in history.entries:
        shutil.copyfile(entry.json_path, copy / entry.json_path.name)
        if entry.md_path.is_file():
            shutil.copyfile(entry.md_path, copy / entry.md_path.name)
            texts.append(entry.md_path.read_text(encoding="utf-8", errors="replace"))
        else:  # killed between its two files: the entry without its report
            texts.append(f"## Run finished {entry.finished}\n\n(no change report: {entry.md_path} is missing)\n")
    if pending is not None:
        (copy / f"{pending.stem}.json").write_text(entry_json(pending.body), encoding="utf-8")
        (copy / f"{pending.stem}.md").write_text(markdown.rstrip("\n") + "\n", encoding="utf-8")
        texts.append(markdown)
    index = [
        "# Update history (newest first)",
        "",
        f"{len(texts)} update(s). This page is rebuilt by every run from the tracked history folder "
        f"`{history.folder}` (an entry is added when the evidence or the analyses file changed).",
        "",
    ]
    if history.problems:
        index += ["Not shown (left as they are):", "", *[f"- {p}" for p in history.problems], ""]
    for text in reversed(texts):
        index += [text.rstrip("\n"), "", "---", ""]
    path = Path(out_dir) / HISTORY_INDEX
    path.write_text("\n".join(index), encoding="utf-8")
    return path


def history_frame(bodies: list[dict]) -> pd.DataFrame:
    """One row per entry and primary estimate: date, label, estimate, ci_lb, ci_ub, method, k, unit
    (what `presentation.history_plot.history_plot` draws)."""
    rows = []
    for body in bodies:
        when = datetime.fromisoformat(body["finished"])
        for r in body.get("primary", []):
            rows.append(
                dict(
                    date=when,
                    key=(r["analysis"], r["regimen_class"]),
                    label=_pooled_label(r),
                    unit="proportion",
                    **_numbers(r),
                )
            )
        for r in body.get("survival_medians", []):
            rows.append(
                dict(
                    date=when, key=(r["analysis"], r.get("group")), label=_median_label(r), unit="months", **_numbers(r)
                )
            )
    columns = ["date", "label", "estimate", "ci_lb", "ci_ub", "method", "k", "unit"]
    frame = pd.DataFrame(rows, columns=["key", *columns])
    # readable labels, never ids; two analyses may share outcome, population and class (a
    # sensitivity population), and only then does the analysis id tell their panels apart
    if not frame.empty:
        keys_per_label = frame.groupby("label")["key"].transform("nunique")
        frame.loc[keys_per_label > 1, "label"] = [
            f"{label} [{key[0]}]"
            for label, key in zip(frame["label"][keys_per_label > 1], frame["key"][keys_per_label > 1], strict=True)
        ]
    return frame[columns]


def _pooled_label(r: dict) -> str:
    outcome = outcome_labels().get(str(r.get("outcome")), str(r.get("outcome", r["analysis"])))
    population = POPULATION_LABELS.get(str(r.get("population")), str(r.get("population", "")))
    regimen = regimen_labels().get(r["regimen_class"], r["regimen_class"])
    return f"{outcome}, {population[:1].lower()}{population[1:]}: {regimen}"


def _median_label(r: dict) -> str:
    analysis, group = str(r["analysis"]), str(r.get("group"))
    what = "Median OS" if analysis.startswith("os") else "Median PFS" if analysis.startswith("pfs") else analysis
    name = "all cohorts" if group == "all" else regimen_labels().get(group, group.replace("_", " "))
    return f"{what}: {name}"


def _numbers(r: dict) -> dict:
    num = lambda x: np.nan if x is None else float(x)  # noqa: E731
    return dict(
        estimate=num(r.get("estimate")),
        ci_lb=num(r.get("ci_lb")),
        ci_ub=num(r.get("ci_ub")),
        method=str(r.get("method")),
        k=num(r.get("k")),
    )


__all__ = [
    "evidence_snapshot",
    "write_evidence",
    "check_evidence",
    "read_evidence",
    "diff_evidence",
    "default_history_dir",
    "canonical",
    "entry_body",
    "entry_json",
    "HistoryEntry",
    "History",
    "read_entry",
    "read_history",
    "needs_entry",
    "next_stem",
    "append_entry",
    "render_history",
    "history_frame",
    "EVIDENCE",
    "HISTORY_DIR",
    "HISTORY_INDEX",
    "SCHEMA",
]
