"""`metaanalysis summary [DIR]`: validate, then print studies and their outcomes.

Outcomes read `events/n`; a bare `66.7%` is a percentage printed without a
denominator; `*` marks numbers that are not pooled (reason listed below).
"""

from __future__ import annotations

import pandas as pd

from metaanalysis.cli.validate import report
from metaanalysis.evidence.studies import outcome_table, study_table
from metaanalysis.evidence.validation import ERROR, check_directory
from metaanalysis.presentation.safe_text import printable

STUDY_COLUMNS = [
    "study",
    "citation",
    "design",
    "population",
    "disease",
    "unit_of_analysis",
    "n",
    "n_arms",
    "follow_up_months",
    "superseded_by",
]


def _cell(row) -> str:
    if pd.notna(row.events) and pd.notna(row.n):
        text = f"{row.events}/{row.n}"
    elif pd.notna(row.events):
        text = f"{row.events} ({row.percent:g}%)"
    else:
        text = f"{row.percent:g}%"
    return text + ("" if row.poolable else "*")


def main(args) -> int:
    parsed, problems = check_directory(args.directory)
    for problem in problems:
        _print(problem)
    if any(p.severity == ERROR for p in problems):
        _print(f"{args.directory}: {report(problems)}; fix the errors to see the summary")
        return 1
    records = [p.data for p in parsed]
    studies = study_table(records)
    _print(f"\nStudies ({len(studies)})")
    _print(studies[STUDY_COLUMNS].astype(object).fillna("-").to_string(index=False))
    outcomes = outcome_table(records)
    _print("\nOutcomes (events/n; a bare % has no denominator; * not pooled)")
    for (study, arm, subgroup), rows in outcomes.groupby(["study", "arm", "subgroup"], sort=False, dropna=False):
        first = rows.iloc[0]
        name = f"{study} / {arm}" + ("" if pd.isna(subgroup) else f" / {subgroup}")
        role = "" if first.role == "treatment" else f", {first.role}"
        cells = ", ".join(f"{r.outcome} {_cell(r)}" for r in rows.itertuples())
        _print(f"  {name} [{first.regimen_class}{role}]: {cells}")
    reasons = outcomes.loc[~outcomes.poolable, "not_poolable_reason"].dropna().unique()
    if len(reasons):
        _print("\n* not pooled: " + "; ".join(sorted(set("; ".join(reasons).split("; ")))))
    return 0


def _print(text: object = "") -> None:
    """print() for text that comes from study records or file names: control characters escaped."""
    print(printable(text))
