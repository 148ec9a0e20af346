"""What changed since the last complete run: studies added, removed or edited, every table's rows.

A living meta-analysis is re-run whenever a study appears; the reader's first question is what
the new study (or a corrected number) did to each estimate. The report compares the CSV tables
of the previous complete run (its folder holds a manifest, see `staging.py`) with the new ones,
whatever tables they are, so a table added to `run` is covered without further code.

    compare(old_pooled, new_pooled, old_studies, new_studies)   pooled estimates only
    compare_runs(old_dir, new_dir, previous=...)    every table and the evidence base
    compare_with_entry(entry, body, new_dir)        the primary estimates against a history entry,
                                                    when the previous results cannot be trusted
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from metaanalysis.pipeline.history import HistoryEntry, check_evidence, diff_evidence

KEY = ["population", "outcome", "regimen_class", "method"]
ESTIMATE_COLUMNS = ["estimate", "ci_lb", "ci_ub", "k", "tau2", "I2"]
MOVED_TOLERANCE = 1e-9  # anything above floating-point noise is a change worth reporting
# Row identity of the tables `run` writes; other tables: their leading text columns.
TABLE_KEYS = {
    "pooled.csv": ["analysis", "variant", "population", "outcome", "regimen_class", "method"],
    "sensitivity.csv": ["analysis", "variant", "population", "outcome", "regimen_class", "method"],
    "study_level.csv": ["analysis", "variant", "study", "arm", "regimen_class"],
    "excluded.csv": ["analysis", "variant", "study", "arm", "regimen_class", "outcome"],
    "comparisons.csv": ["comparison", "study", "outcome", "measure"],
    "landmarks.csv": ["landmark", "regimen_class", "kind", "study"],
    "studies.csv": ["study"],
}
NOT_COMPARED = ("history", "report")  # folders whose files are not result tables


@dataclass(frozen=True)
class TableDiff:
    """Rows of one CSV table added, removed or edited (key -> [(column, old, new)])."""

    name: str
    key: tuple[str, ...]
    added: tuple[tuple, ...] = ()
    removed: tuple[tuple, ...] = ()
    edited: tuple[tuple[tuple, tuple[tuple[str, str, str], ...]], ...] = ()
    note: str = ""

    def is_empty(self) -> bool:
        return not (self.added or self.removed or self.edited or self.note)

    def summary(self) -> str:
        parts = [
            f"{len(self.added)} row(s) added" if self.added else "",
            f"{len(self.removed)} removed" if self.removed else "",
            f"{len(self.edited)} edited" if self.edited else "",
            self.note,
        ]
        return f"{self.name}: " + "; ".join(p for p in parts if p)


@dataclass(frozen=True)
class PrimaryMove:
    """The primary estimate of one class in the previous and in this run (the row each run's
    pooled.csv marks primary), when it moved, appeared, vanished or changed method."""

    analysis: str
    population: str
    outcome: str
    regimen_class: str
    old: dict | None  # method, estimate, ci_lb, ci_ub, k of the previous primary row
    new: dict | None

    @property
    def switched(self) -> bool:
        return self.old is not None and self.new is not None and self.old["method"] != self.new["method"]

    def where(self) -> str:
        return f"{self.population} / {self.outcome} / {self.regimen_class}"

    def describe(self) -> str:
        side = lambda r: (  # noqa: E731
            f"{r['method']} {_pct(r['estimate'])} ({_pct(r['ci_lb'])} to {_pct(r['ci_ub'])}), k = {_k(r['k'])}"
        )
        if self.old is None:
            assert self.new is not None
            return f"{self.where()}: new, {side(self.new)}"
        if self.new is None:
            return f"{self.where()}: no longer pooled (was {side(self.old)})"
        text = f"{self.where()}: {side(self.old)} -> {side(self.new)}"
        if self.switched:
            text += (
                f"; primary method switched from {self.old['method']} to {self.new['method']} because k went "
                f"from {_k(self.old['k'])} to {_k(self.new['k'])} (the primary rule of the analyses file, "
                "defaults.primary)"
                if self.old["k"] != self.new["k"]
                else f"; primary method switched from {self.old['method']} to {self.new['method']} "
                "(the primary rule of the analyses file, defaults.primary)"
            )
        return text


@dataclass(frozen=True)
class ChangeReport:
    first_run: bool
    studies_added: tuple[str, ...]
    studies_removed: tuple[str, ...]
    estimates: pd.DataFrame  # one row per pooled estimate that appeared, vanished or moved
    studies_edited: tuple[tuple[str, tuple[tuple[str, str, str], ...]], ...] = ()
    tables: tuple[TableDiff, ...] = ()
    primary: frozenset = frozenset()  # (analysis, regimen_class, method) of the rows pooled.csv marks primary
    primary_old: frozenset = frozenset()  # the same in the previous run (for estimates that were removed)
    notes: tuple[str, ...] = ()
    previous: str = ""  # when the run compared against finished
    unchanged: int = 0  # pooled estimates that did not move
    primary_moves: tuple[PrimaryMove, ...] = ()  # the report leads with these
    # Compared with a history entry (results/ could not be used): its name; only the primary
    # estimates and the input hashes are known of it, so studies and tables are not compared.
    against: str = ""
    inputs_changed: bool = False  # against an entry: the evidence or the analyses file differ from it
    nothing_to_compare: str = ""  # said instead of "First run" when the history holds only damaged entries

    def is_empty(self) -> bool:
        if self.against:
            return not (self.primary_moves or self.inputs_changed)
        return not (
            self.studies_added
            or self.studies_removed
            or self.studies_edited
            or len(self.estimates)
            or any(not t.is_empty() for t in self.tables)
        )

    def text(self) -> str:
        """The short version printed at the end of a run."""
        if self.first_run:
            return "\n".join([self._first_line(), *self.notes])
        if self.is_empty():
            return "\n".join([self._no_change(), *self.notes])
        lines = list(self.notes)
        if self.primary_moves:
            lines.append("Primary estimates that changed:")
            lines += [f"  {m.describe()}" for m in self.primary_moves]
        if self.against:
            return "\n".join(lines + ([] if self.primary_moves else ["No primary estimate changed."]))
        if self.studies_added:
            lines.append("Studies added: " + ", ".join(self.studies_added))
        if self.studies_removed:
            lines.append("Studies removed: " + ", ".join(self.studies_removed))
        for study, edits in self.studies_edited:
            lines.append(
                f"Study edited: {study}: "
                + "; ".join(f"{f} {_short(o)} -> {_short(n)}" for f, o, n in edits[:8])
                + (f"; and {len(edits) - 8} more field(s)" if len(edits) > 8 else "")
            )
        for _, r in self.estimates.iterrows():
            where = f"{r.population} / {r.outcome} / {r.regimen_class} / {r.method}{self._star(r)}"
            if r.change == "new":
                lines.append(f"  new      {where}: {_pct(r.estimate_new)} (k = {_k(r.k_new)})")
            elif r.change == "removed":
                lines.append(f"  removed  {where}: was {_pct(r.estimate_old)} (k = {_k(r.k_old)})")
            else:
                delta = r.estimate_new - r.estimate_old
                points = "" if pd.isna(delta) else f"{delta * 100:+.2f} points; "
                lines.append(
                    f"  moved    {where}: {_pct(r.estimate_old)} -> {_pct(r.estimate_new)} "
                    f"({points}k {_k(r.k_old)} -> {_k(r.k_new)})"
                )
        lines += ["Tables: " + t.summary() for t in self.tables if not t.is_empty()]
        return "\n".join(lines)

    def _star(self, r) -> str:
        marked = self.primary_old if getattr(r, "change", "") == "removed" else self.primary
        return " (primary)" if (getattr(r, "analysis", None), r.regimen_class, r.method) in marked else ""

    def _no_change(self) -> str:
        if self.against:
            return f"No change against the history entry {self.against}: the same inputs and primary estimates."
        return "No change against the previous results."

    def _first_line(self) -> str:
        return self.nothing_to_compare or "First run: no previous complete results to compare with."

    def markdown(self) -> str:
        """The full version: this run's entry in the history and `changes.md`."""
        if self.first_run:
            return "\n".join([self._first_line(), *self.notes]) + "\n"
        if self.against:
            head = f"Compared with the history entry {self.against} (run finished {self.previous})."
        else:
            head = f"Compared with the complete run finished {self.previous}." if self.previous else ""
        out = [head, *self.notes]
        if self.is_empty():
            return "\n".join([*filter(None, out), "", self._no_change()]) + "\n"
        if self.primary_moves:
            out += ["", "### Primary estimates that changed", ""]
            out += [f"- {m.describe()}" for m in self.primary_moves]
        if self.against:
            out += [
                "" if self.primary_moves else "\nNo primary estimate changed.\n",
                f"{self.unchanged} primary estimate(s) unchanged. Studies and tables are not compared: a "
                "history entry keeps the primary estimates and the hashes of the inputs, not the records.",
            ]
            return "\n".join(out).lstrip("\n") + "\n"
        out += ["", "### Studies", ""]
        out += [f"- added: {s}" for s in self.studies_added] + [f"- removed: {s}" for s in self.studies_removed]
        for study, edits in self.studies_edited:
            out.append(f"- edited: {study}")
            out += [f"  - `{f}`: {_short(o)} → {_short(n)}" for f, o, n in edits]
        if not (self.studies_added or self.studies_removed or self.studies_edited):
            out.append("- none added, removed or edited")
        out += ["", "### Pooled estimates that changed (★ primary method)", ""]
        if len(self.estimates):
            out += [
                "| population / outcome / class | method | before: estimate (95% CI); k; τ²; I² "
                "| after: estimate (95% CI); k; τ²; I² |",
                "| --- | --- | --- | --- |",
            ]
            for _, r in self.estimates.iterrows():
                star = " ★" if self._star(r) else ""
                out.append(
                    f"| {r.population} / {r.outcome} / {r.regimen_class} | {r.method}{star} "
                    f"| {_estimate(r, 'old')} | {_estimate(r, 'new')} |"
                )
        else:
            out.append("None.")
        out.append(f"\n{self.unchanged} pooled estimate(s) unchanged.")
        out += ["", "### Tables", ""]
        for t in self.tables:
            if t.is_empty():
                continue
            out.append(f"- {t.summary()}")
            out += [f"  - added: {_key(k)}" for k in t.added] + [f"  - removed: {_key(k)}" for k in t.removed]
            out += _edits(t)
        if all(t.is_empty() for t in self.tables):
            out.append("No table changed.")
        return "\n".join(out).lstrip("\n") + "\n"


def _edits(t: TableDiff) -> list[str]:
    """The edited cells of a table, a change that repeats in several rows (the same column, the
    same old and new value: e.g. one subgroup test printed on every row of an analysis) said once."""
    rows_of: dict[tuple[str, str, str], list[tuple]] = {}
    for k, cells in t.edited:
        for c, o, n in cells:
            rows_of.setdefault((c, o, n), []).append(k)
    repeated = {cell for cell, keys in rows_of.items() if len(keys) > 1}
    out = []
    for (c, o, n), keys in rows_of.items():
        if (c, o, n) in repeated:
            shown = "; ".join(_key(k) for k in keys[:3]) + (f"; and {len(keys) - 3} more" if len(keys) > 3 else "")
            out.append(f"  - `{c}` {_short(o)} → {_short(n)} in {len(keys)} rows ({shown})")
    for k, cells in t.edited:
        rest = [(c, o, n) for c, o, n in cells if (c, o, n) not in repeated]
        if rest:
            out.append(f"  - edited {_key(k)}: " + "; ".join(f"{c} {_short(o)} → {_short(n)}" for c, o, n in rest))
    return out


def _k(x) -> str:
    # k is an integer, but an outer merge leaves it float where one side is missing
    return "NA" if pd.isna(x) else str(int(x))


def _pct(x) -> str:
    return "NA" if x is None or pd.isna(x) else f"{x * 100:.1f}%"


def _num(x, fmt: str) -> str:
    return "NA" if x is None or pd.isna(x) else format(float(x), fmt)


def _estimate(r, side: str) -> str:
    get = lambda c: getattr(r, f"{c}_{side}", None)  # noqa: E731
    if get("estimate") is None or pd.isna(get("estimate")):
        return "—" if pd.isna(get("k")) else f"not estimable; k = {_k(get('k'))}"
    return (
        f"{_pct(get('estimate'))} ({_pct(get('ci_lb'))} to {_pct(get('ci_ub'))}); k = {_k(get('k'))}; "
        f"τ² = {_num(get('tau2'), '.4g')}; I² = {_num(get('I2'), '.1f')}%"
    )


def _short(value, width: int = 60) -> str:
    text = "(none)" if value in (None, "") else str(value)
    try:
        number = float(text)
        if math.isfinite(number) and not text.isdigit():
            text = f"{number:.6g}"
    except ValueError:
        pass
    text = " ".join(text.split()).replace("|", "/")
    return text if len(text) <= width else text[: width - 3] + "..."


def _key(k: tuple) -> str:
    return " / ".join(str(x) for x in k if str(x) != "")


# -- pooled estimates ---------------------------------------------------------------------
def compare(
    old_pooled: pd.DataFrame | None,
    new_pooled: pd.DataFrame,
    old_studies: set[str] | None,
    new_studies: set[str],
    **extra,
) -> ChangeReport:
    """Pooled estimates that appeared, vanished or moved, and studies added or removed."""
    if old_pooled is None or old_studies is None:
        return ChangeReport(True, (), (), pd.DataFrame(), **extra)
    key = (["analysis"] if "analysis" in old_pooled and "analysis" in new_pooled else []) + KEY
    cols = [c for c in ESTIMATE_COLUMNS + ["studies"] if c in old_pooled and c in new_pooled]
    old, new = old_pooled[key + cols], new_pooled[key + cols]
    merged = old.merge(new, on=key, how="outer", suffixes=("_old", "_new"), indicator=True)
    merged["change"] = merged["_merge"].map({"left_only": "removed", "right_only": "new", "both": "moved"})
    moved = merged["change"] != "moved"
    for c in cols:
        if c == "studies":
            continue
        a, b = merged[f"{c}_old"].astype(float), merged[f"{c}_new"].astype(float)
        moved |= ~np.isclose(a, b, rtol=0, atol=MOVED_TOLERANCE, equal_nan=True)
    for c in ESTIMATE_COLUMNS:
        for side in ("old", "new"):
            if f"{c}_{side}" not in merged:
                merged[f"{c}_{side}"] = np.nan
    changes = merged[moved].drop(columns="_merge").sort_values(key).reset_index(drop=True)
    return ChangeReport(
        False,
        tuple(sorted(new_studies - old_studies)),
        tuple(sorted(old_studies - new_studies)),
        changes,
        unchanged=int((~moved).sum()),
        **extra,
    )


# -- every table ----------------------------------------------------------------------------
def read_tables(folder: Path | None) -> dict[str, pd.DataFrame]:
    """Every CSV of a results folder (relative path -> text cells), history and report aside."""
    if folder is None or not Path(folder).is_dir():
        return {}
    out = {}
    for path in sorted(Path(folder).rglob("*.csv")):
        rel = path.relative_to(folder)
        if rel.parts[0] in NOT_COMPARED:
            continue
        try:
            out[str(rel)] = pd.read_csv(path, dtype=str, keep_default_na=False)
        except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError):
            out[str(rel)] = pd.DataFrame()
    return out


def _same(a: str, b: str) -> bool:
    if a == b:
        return True
    try:
        x, y = float(a), float(b)
    except ValueError:
        return False
    return math.isclose(x, y, rel_tol=1e-12, abs_tol=MOVED_TOLERANCE) or (math.isnan(x) and math.isnan(y))


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def table_key(name: str, old: pd.DataFrame, new: pd.DataFrame) -> list[str]:
    common = [c for c in new.columns if c in old.columns]
    declared = [c for c in TABLE_KEYS.get(Path(name).name, []) if c in common]
    if declared:
        return declared
    key = []
    for c in common:  # leading text columns: the labels of a row
        if any(_is_number(v) for v in new[c] if v != "") or any(_is_number(v) for v in old[c] if v != ""):
            break
        key.append(c)
    return key or common


def _keyed(frame: pd.DataFrame, key: list[str]) -> dict[tuple, dict]:
    out: dict[tuple, dict] = {}
    for record in frame.to_dict("records"):
        k = tuple(record.get(c, "") for c in key)
        n = 1
        while k + ((f"#{n}",) if n > 1 else ()) in out:  # duplicate labels: numbered in order
            n += 1
        out[k + ((f"#{n}",) if n > 1 else ())] = record
    return out


def diff_table(name: str, old: pd.DataFrame | None, new: pd.DataFrame | None) -> TableDiff:
    if old is None:
        return TableDiff(name, (), note=f"new table ({0 if new is None else len(new)} rows)")
    if new is None:
        return TableDiff(name, (), note=f"table no longer written (had {len(old)} rows)")
    key = table_key(name, old, new)
    notes = []
    if added := [c for c in new.columns if c not in old.columns]:
        notes.append("columns added: " + ", ".join(added))
    if removed := [c for c in old.columns if c not in new.columns]:
        notes.append("columns removed: " + ", ".join(removed))
    a, b = _keyed(old, key), _keyed(new, key)
    common = [c for c in new.columns if c in old.columns and c not in key]
    edited = []
    for k in sorted(set(a) & set(b)):
        cells = tuple((c, a[k][c], b[k][c]) for c in common if not _same(a[k][c], b[k][c]))
        if cells:
            edited.append((k, cells))
    return TableDiff(
        name,
        tuple(key),
        tuple(sorted(set(b) - set(a))),
        tuple(sorted(set(a) - set(b))),
        tuple(edited),
        "; ".join(notes),
    )


def _floats(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for c in ESTIMATE_COLUMNS:
        if c in out:
            out[c] = pd.to_numeric(out[c].replace("", np.nan), errors="coerce")
    return out


def primary_rows(*pooled: pd.DataFrame | None) -> frozenset:
    """(analysis, regimen_class, method) of every row a pooled.csv marks primary (the pipeline
    decided it; the change report only reads it)."""
    out = set()
    for t in pooled:
        if t is not None and {"analysis", "regimen_class", "method", "primary"} <= set(t.columns):
            flag = t["primary"].astype(str).str.lower().isin(("true", "1"))
            out |= set(zip(t.loc[flag, "analysis"], t.loc[flag, "regimen_class"], t.loc[flag, "method"], strict=True))
    return frozenset(out)


def _primary_of(pooled: pd.DataFrame) -> dict[tuple, dict]:
    """(analysis, population, outcome, class) -> the row pooled.csv marks primary there."""
    if pooled is None or not {"analysis", "primary", *KEY} <= set(pooled.columns):
        return {}
    flag = pooled["primary"].astype(str).str.lower().isin(("true", "1"))
    cols = ["method", *ESTIMATE_COLUMNS]
    return {
        (r["analysis"], r["population"], r["outcome"], r["regimen_class"]): {c: r[c] for c in cols}
        for _, r in pooled[flag].iterrows()
    }


def primary_moves(old_pooled: pd.DataFrame, new_pooled: pd.DataFrame) -> tuple[PrimaryMove, ...]:
    """Each class whose primary estimate moved, appeared, vanished or changed method, in table order."""
    old, new = _primary_of(old_pooled), _primary_of(new_pooled)
    moves = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if a is not None and b is not None and a["method"] == b["method"]:
            numbers = ["estimate", "ci_lb", "ci_ub", "k"]
            x, y = np.array([a[c] for c in numbers], float), np.array([b[c] for c in numbers], float)
            if np.allclose(x, y, rtol=0, atol=MOVED_TOLERANCE, equal_nan=True):
                continue
        moves.append(PrimaryMove(*key, old=a, new=b))
    return tuple(moves)


def compare_runs(
    old_dir: Path | None,
    new_dir: Path,
    *,
    previous: str = "",
    notes: tuple[str, ...] = (),
) -> ChangeReport:
    """The full report: `old_dir` is the last complete run (None on a first run)."""
    new_tables = read_tables(new_dir)
    primary = primary_rows(new_tables.get("pooled.csv"))
    if old_dir is None:
        return ChangeReport(True, (), (), pd.DataFrame(), primary=primary, notes=notes)
    old_tables = read_tables(old_dir)
    tables = tuple(
        diff_table(n, old_tables.get(n), new_tables.get(n)) for n in sorted(set(old_tables) | set(new_tables))
    )
    (old_ev, problem), (new_ev, _) = check_evidence(old_dir), check_evidence(new_dir)
    if problem:  # read back from disk: say what is wrong rather than fail on it
        notes = (*notes, f"Note: {Path(old_dir) / 'evidence.json'} {problem}: studies compared by studies.csv only.")
    if old_ev is not None and new_ev is not None:
        added, removed, edited = diff_evidence(old_ev, new_ev)
        old_ids, new_ids = set(old_ev), set(new_ev)
    else:  # a run from before evidence snapshots: study ids from studies.csv
        ids = lambda t: set(t["study"]) if t is not None and "study" in t else set()  # noqa: E731
        old_ids, new_ids = ids(old_tables.get("studies.csv")), ids(new_tables.get("studies.csv"))
        edited = ()
    pooled_old, pooled_new = old_tables.get("pooled.csv"), new_tables.get("pooled.csv")
    primary_old = primary_rows(pooled_old)  # a removed estimate is starred as the old run marked it
    if pooled_old is None or pooled_new is None or not len(pooled_new.columns) or not set(KEY) <= set(pooled_old):
        pooled_old = pooled_new = pd.DataFrame(columns=KEY + ESTIMATE_COLUMNS)
    return compare(
        _floats(pooled_old),
        _floats(pooled_new),
        old_ids,
        new_ids,
        primary_moves=primary_moves(_floats(pooled_old), _floats(pooled_new)),
        studies_edited=tuple(edited),
        tables=tables,
        primary=primary,
        primary_old=primary_old,
        previous=previous,
        notes=notes,
    )


# -- against a history entry ---------------------------------------------------------------
def entry_pooled(body: dict) -> pd.DataFrame:
    """A history entry's primary estimates as the rows of a pooled.csv marked primary."""
    frame = pd.DataFrame([{**r, "primary": True} for r in body.get("primary", [])])
    for c in ["analysis", *KEY, "primary"]:
        if c not in frame:
            frame[c] = pd.Series(dtype=object)
    for c in ESTIMATE_COLUMNS:  # tau2 and I2 are not kept in an entry
        frame[c] = pd.to_numeric(frame[c], errors="coerce") if c in frame else np.nan
    return frame


def compare_with_entry(entry: HistoryEntry, body: dict, new_dir: Path, *, notes: tuple[str, ...] = ()) -> ChangeReport:
    """This run's primary estimates against those of a history entry (`body`: this run's own
    entry body, for the input hashes), old -> new estimate, interval, method and k per class."""
    old, was = _floats(entry_pooled(entry.body)), entry.body
    new = read_tables(new_dir).get("pooled.csv")
    if new is None or not {"primary", *KEY} <= set(new.columns):
        new = pd.DataFrame(columns=[*KEY, "analysis", "primary"])
    new = _floats(new[new["primary"].astype(str).str.lower().isin(("true", "1"))])
    evidence = was["evidence_sha256"] != body["evidence_sha256"]
    analyses = was["analyses_sha256"] != body["analyses_sha256"]
    facts = [
        f"Evidence base: {'changed' if evidence else 'unchanged'} since that entry "
        f"({was['studies']} study records then, {body['studies']} now).",
        f"Analyses file: {'changed' if analyses else 'unchanged'} since that entry.",
    ]
    if was["toolkit_version"] != body["toolkit_version"]:
        facts.append(f"Toolkit: {was['toolkit_version']} then, {body['toolkit_version']} now.")
    moves = primary_moves(old, new)
    return ChangeReport(
        False,
        (),
        (),
        pd.DataFrame(),
        primary_moves=moves,
        unchanged=len(set(_primary_of(old)) | set(_primary_of(new))) - len(moves),
        primary=primary_rows(new),
        primary_old=primary_rows(old),
        previous=entry.finished,
        notes=(*notes, *facts),
        against=entry.stem,
        inputs_changed=evidence or analyses,
    )
