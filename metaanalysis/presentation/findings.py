"""The summary of findings as GRADEpro lays it out: per population, one row per primary estimate
(response and safety proportions, pooled median survival, pooled landmark rates), each with its
certainty and lettered footnotes that give every reason for rating down.

Everything is read from the review: the primary rows (`Review.primary_rows`), the primary
medians (`primary` in `Review.medians`), the pooled landmark rates and the certainty of each
(`Review.certainty`, rated once by `review.grading`). The same tables feed the index page, the
CSV (`findings_frame`) and the Word document (`findings_docx.write_docx`); nothing here is rated
or pooled again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from string import ascii_lowercase
from typing import Any

import pandas as pd

from metaanalysis.engine.methods import SINGLE
from metaanalysis.engine.methods import label as method_label
from metaanalysis.evidence.vocabulary import outcome_labels, regimen_labels
from metaanalysis.presentation.labels import (
    MISSING,
    arm_labels,
    citation_labels,
    cite_list,
    fmt_count,
    fmt_interval,
    fmt_number,
    fmt_percent_ci,
    is_missing,
    population_label,
    symbols,
)
from metaanalysis.presentation.survival_figures import Readers
from metaanalysis.review.grading import SEPARATOR
from metaanalysis.review.result import Review

CERTAINTY = "Certainty (GRADE)"
FOOTNOTES = "Footnotes"
COLUMNS = [
    "Outcome",
    "Regimen class",
    "Method",
    "Estimate (95 % interval)",
    "95 % prediction interval",
    "k",
    "N",
    "Studies",
    CERTAINTY,
    FOOTNOTES,
]
GROUP = "Group"  # survival tables group cohorts by class, by timing or not at all
NOT_RATED = "not rated"
ENDPOINTS = {"OS": "Overall survival", "PFS": "Progression-free survival"}
MEDIAN_METHODS = {  # engine/medians.py and review/survival.py name them by their short codes
    "WM": "Weighted median of medians",
    "MM": "Median of medians",
    "IV": "Inverse-variance pooled medians",
}


@dataclass(frozen=True)
class FindingsTable:
    """One table of the summary: its title, its rows (COLUMNS) and the footnotes its letters name."""

    title: str
    table: pd.DataFrame
    footnotes: tuple[str, ...]


def letter(i: int) -> str:
    """a, b, ..., z, aa, ab, ...: GRADEpro's footnote marks."""
    return letter(i // 26 - 1) + ascii_lowercase[i % 26] if i >= 26 else ascii_lowercase[i]


def reasons(grade: dict[str, Any] | None) -> list[str]:
    """A certainty row's footnotes: each rating down with its steps and reason, then each note."""
    if grade is None:
        return []
    out = []
    for part in _parts(grade.get("downgrades")):
        domain, _, why = part.partition(": ")
        name, _, steps = domain.partition(" (-")
        out.append(f"{name[:1].upper()}{name[1:]}, rated down {steps.rstrip(')')}: {why}")
    out += [f"{p[:1].upper()}{p[1:]}" for p in _parts(grade.get("notes"))]
    return out


def _parts(text: Any) -> list[str]:
    return [] if is_missing(text) or not str(text) else str(text).split(SEPARATOR)


def certainty_text(grade: dict[str, Any] | None) -> str:
    return NOT_RATED if grade is None else f"{grade['symbols']} {grade['certainty']}"


class _Notes:
    """The footnotes of one table: the same text gets the same letter."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def marks(self, texts: Iterable[str]) -> str:
        out = []
        for t in texts:
            if t not in self.texts:
                self.texts.append(t)
            out.append(letter(self.texts.index(t)))
        return ", ".join(out) or MISSING


def _grades(review: Review) -> dict[tuple[str, str], dict[str, Any]]:
    if review.certainty is None or review.certainty.empty:
        return {}
    return {(str(r["analysis"]), str(r["regimen_class"])): r for r in review.certainty.to_dict("records")}


def _finish(title: str, rows: list[dict[str, Any]], notes: _Notes, group_column: str) -> FindingsTable:
    table = pd.DataFrame(rows, columns=COLUMNS)
    # one outcome label per block of rows, as a journal table groups them
    table["Outcome"] = table["Outcome"].where(table["Outcome"].ne(table["Outcome"].shift()), "")
    if group_column != "Regimen class":
        table = table.rename(columns={"Regimen class": group_column})
    return FindingsTable(title, table.reset_index(drop=True), tuple(notes.texts))


def _proportions(review: Review, grades, citations, arms) -> list[FindingsTable]:
    rows = review.primary_rows()
    if rows.empty:
        return []
    outcomes, classes = outcome_labels(), regimen_labels()
    populations = {a.id: population_label(a) for a in review.plan.analyses}
    out = []
    for population, part in rows.groupby(rows["analysis"].map(populations), sort=False):
        notes, lines = _Notes(), []
        for r in part.to_dict("records"):
            grade = grades.get((str(r["analysis"]), str(r["regimen_class"])))
            lines.append(
                {
                    "Outcome": symbols(outcomes.get(r["outcome"], r["outcome"])),
                    "Regimen class": classes.get(r["regimen_class"], r["regimen_class"]),
                    "Method": method_label(r["method"]),
                    "Estimate (95 % interval)": fmt_percent_ci(
                        r["estimate"], r["ci_lb"], r["ci_ub"], missing="not estimable"
                    ),
                    "95 % prediction interval": fmt_interval(r["pi_lb"], r["pi_ub"]),
                    "k": fmt_count(r["k"]),
                    "N": fmt_count(r["n_total"]),
                    "Studies": cite_list(r["studies"], citations, arms),
                    CERTAINTY: certainty_text(grade),
                    FOOTNOTES: notes.marks(reasons(grade)),
                }
            )
        out.append(_finish(str(population), lines, notes, "Regimen class"))
    return out


def _median_method(method: Any) -> str:
    text = str(method)
    if text.startswith("not pooled"):  # review/survival.py's single-cohort row
        return method_label(SINGLE)
    return MEDIAN_METHODS.get(text.split(" ")[0], text)


def _medians(review: Review, grades, citations, arms) -> list[FindingsTable]:
    m = review.medians
    if m.empty or "primary" not in m:
        return []
    chosen = m[m["primary"].fillna(False).astype(bool)]
    readers = Readers.of(review)  # cohorts are arms or strata of arms
    classes, populations = regimen_labels(), {a.population: population_label(a) for a in review.plan.analyses}
    out = []
    for population, part in chosen.groupby("population", sort=False):
        notes, lines = _Notes(), []
        for r in part.to_dict("records"):
            grade = grades.get((str(r["analysis"]), str(r["group"])))
            estimate = MISSING if is_missing(r["estimate"]) else f"{fmt_number(r['estimate'])} months"
            if not (is_missing(r["ci_lb"]) or is_missing(r["ci_ub"])):
                estimate += f" ({fmt_interval(r['ci_lb'], r['ci_ub'], scale=1.0)})"
            lines.append(
                {
                    "Outcome": f"{ENDPOINTS.get(r['endpoint'], r['endpoint'])}, median",
                    "Regimen class": _capital(classes.get(r["group_label"], r["group_label"])),
                    "Method": _median_method(r["method"]),
                    "Estimate (95 % interval)": estimate,
                    "95 % prediction interval": fmt_interval(r.get("pi_lb"), r.get("pi_ub"), scale=1.0),
                    "k": fmt_count(r["k"]),
                    "N": MISSING if grade is None else fmt_count(grade["n_total"]),
                    "Studies": readers.cohorts(r["studies"]) if isinstance(r["studies"], str) else MISSING,
                    CERTAINTY: certainty_text(grade),
                    FOOTNOTES: notes.marks(reasons(grade)),
                }
            )
        title = f"{populations.get(population, population)}: survival"
        out.append(_finish(title, lines, notes, GROUP))
    return out


def _capital(text: Any) -> str:
    text = str(text)
    return text[:1].upper() + text[1:]


def _landmarks(review: Review, grades, citations, arms) -> list[FindingsTable]:
    lm = review.landmarks
    if lm.empty or "kind" not in lm:
        return []
    pooled = lm[(lm["kind"] == "pooled") & (lm["variant"] == "primary")]
    classes, populations = regimen_labels(), {a.population: population_label(a) for a in review.plan.analyses}
    out = []
    for population, part in pooled.groupby("population", sort=False):
        notes, lines = _Notes(), []
        for r in part.to_dict("records"):
            grade = grades.get((str(r["landmark"]), str(r["regimen_class"])))
            pct = [None if is_missing(r.get(c)) else float(r[c]) / 100 for c in ("percent", "ci_lb", "ci_ub")]
            lines.append(
                {
                    "Outcome": f"{ENDPOINTS.get(r['endpoint'], r['endpoint'])} at {float(r['months']):g} months",
                    "Regimen class": classes.get(r["regimen_class"], r["regimen_class"]),
                    "Method": str(r["method"]),
                    "Estimate (95 % interval)": fmt_percent_ci(*pct, missing="not estimable"),
                    "95 % prediction interval": fmt_interval(r.get("pi_lb"), r.get("pi_ub"), scale=1.0),
                    "k": fmt_count(r["k"]),
                    "N": MISSING if grade is None else fmt_count(grade["n_total"]),
                    "Studies": cite_list(r["study"], citations, arms),
                    CERTAINTY: certainty_text(grade),
                    FOOTNOTES: notes.marks(reasons(grade)),
                }
            )
        out.append(_finish(f"{populations.get(population, population)}: survival at landmarks", lines, notes, GROUP))
    return out


def findings_tables(review: Review) -> list[FindingsTable]:
    """Every table of the summary of findings, proportions first, then survival."""
    records = list(review.records)
    citations, arms = citation_labels(records), arm_labels(records)
    grades = _grades(review)
    return [
        *_proportions(review, grades, citations, arms),
        *_medians(review, grades, citations, arms),
        *_landmarks(review, grades, citations, arms),
    ]


def findings_frame(tables: Iterable[FindingsTable]) -> pd.DataFrame:
    """results/summary_of_findings.csv: every table one below the other, the footnotes spelt out
    (a spreadsheet has no place under a table for them)."""
    parts = []
    for t in tables:
        frame = t.table.rename(columns={GROUP: "Regimen class"}).copy()
        frame["Outcome"] = frame["Outcome"].replace("", pd.NA).ffill()
        frame.insert(0, "Table", t.title)
        frame["Footnote text"] = [
            MISSING
            if marks == MISSING
            else " | ".join(f"{m}. {t.footnotes[_index(m)]}" for m in str(marks).split(", "))
            for marks in frame[FOOTNOTES]
        ]
        parts.append(frame)
    columns = ["Table", *COLUMNS, "Footnote text"]
    return pd.concat(parts, ignore_index=True)[columns] if parts else pd.DataFrame(columns=columns)


def _index(mark: str) -> int:
    value = 0
    for ch in mark:
        value = value * 26 + ascii_lowercase.index(ch) + 1
    return value - 1


__all__ = [
    "FindingsTable",
    "findings_tables",
    "findings_frame",
    "reasons",
    "letter",
    "certainty_text",
    "COLUMNS",
    "CERTAINTY",
    "FOOTNOTES",
    "GROUP",
    "NOT_RATED",
]
