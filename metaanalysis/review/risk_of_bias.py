"""Risk of bias: from a record's item judgements to one judgement per study (docs/risk-of-bias.md).

The judgements themselves are data (`risk_of_bias` in each study record, validated by
`evidence.schema`); this module holds only the rule that turns them into an overall judgement,
so that the rule is written once and every table, plot and certainty rating reads the same result.

Single-arm cohorts and trial subgroups, JBI Critical Appraisal Checklist for Case Series (ten items).
Items not applicable to a study are left out of every count below.

- KEY_ITEMS are the four items on which a pooled single-arm proportion depends most: who was
  included (q1 inclusion criteria, q4 consecutive, q5 complete inclusion) and whether the outcome
  was reported for them (q8).
- high: a key item is answered "no"; or fewer than half of the applicable items are answered
  "yes" (the source lets us confirm too little to call the series sound).
- low: every key item is "yes" and at most one applicable item is not "yes".
- some concerns: everything else.

Comparisons inside a study, ROBINS-I (seven domains): the overall judgement of a comparison is its
most severe domain judgement (low < moderate < serious < critical); "no_information" when no
domain is serious or critical but at least one has no information. A comparison's judgement
applies to that comparison (an odds ratio, a hazard ratio), not to the study's single-arm rates.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from metaanalysis.evidence.schema import JBI_CASE_SERIES_ITEMS, NOT_REPORTED, ROBINS_I_DOMAINS

KEY_ITEMS = ("q1_inclusion_criteria", "q4_consecutive_inclusion", "q5_complete_inclusion", "q8_outcomes_reported")
LOW, SOME_CONCERNS, HIGH = "low", "some concerns", "high"
LEVELS = (LOW, SOME_CONCERNS, HIGH)
ROBINS_I_ORDER = ("low", "moderate", "serious", "critical")


@dataclass(frozen=True, slots=True)
class Judgement:
    """An overall judgement and the reasons for it, each a sentence a reader can check."""

    level: str
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ComparisonRisk:
    comparison: str
    judgement: Judgement


@dataclass(frozen=True, slots=True)
class StudyRisk:
    study: str
    tool: str
    judgement: Judgement
    comparisons: tuple[ComparisonRisk, ...] = ()


def _short(item: str) -> str:
    """q4_consecutive_inclusion -> "q4 (consecutive inclusion)"."""
    number, _, words = item.partition("_")
    return f"{number} ({words.replace('_', ' ')})"


def jbi_overall(items: Mapping[str, str]) -> Judgement:
    """The overall judgement of a case series from its item judgements (item -> yes/no/unclear/
    not_applicable). Every one of the ten items must be given."""
    missing = [k for k in JBI_CASE_SERIES_ITEMS if k not in items]
    if missing:
        raise ValueError(f"JBI case-series items missing: {', '.join(missing)}")
    applicable = {k: items[k] for k in JBI_CASE_SERIES_ITEMS if items[k] != "not_applicable"}
    yes = [k for k, v in applicable.items() if v == "yes"]
    not_yes = [k for k in applicable if k not in yes]
    key_no = [k for k in KEY_ITEMS if applicable.get(k) == "no"]
    if key_no:
        return Judgement(HIGH, tuple(f"key item {_short(k)} answered no" for k in key_no))
    if 2 * len(yes) < len(applicable):
        return Judgement(
            HIGH,
            (f"only {len(yes)} of {len(applicable)} applicable items answered yes (fewer than half)",),
        )
    key_ok = all(applicable.get(k, "yes") == "yes" for k in KEY_ITEMS)
    if key_ok and len(not_yes) <= 1:
        reasons = ["every key item answered yes"]
        if not_yes:
            reasons.append(f"one other item not answered yes: {_short(not_yes[0])} ({applicable[not_yes[0]]})")
        return Judgement(LOW, tuple(reasons))
    reasons = [f"{_short(k)} {applicable[k]}" for k in not_yes]
    return Judgement(SOME_CONCERNS, tuple(reasons))


def robins_i_overall(domains: Mapping[str, str]) -> Judgement:
    """The overall ROBINS-I judgement of one comparison: its most severe domain."""
    missing = [k for k in ROBINS_I_DOMAINS if k not in domains]
    if missing:
        raise ValueError(f"ROBINS-I domains missing: {', '.join(missing)}")
    judged = {k: domains[k] for k in ROBINS_I_DOMAINS}
    rated = [v for v in judged.values() if v in ROBINS_I_ORDER]
    worst = max(rated, key=ROBINS_I_ORDER.index) if rated else None
    unknown = [k for k, v in judged.items() if v == "no_information"]
    if worst in ("serious", "critical"):
        at_worst = [k.replace("_", " ") for k, v in judged.items() if v == worst]
        return Judgement(worst, tuple(f"{d}: {worst}" for d in at_worst))
    if unknown:
        return Judgement("no_information", tuple(f"{k.replace('_', ' ')}: no information" for k in unknown))
    at_worst = [k.replace("_", " ") for k, v in judged.items() if v == worst]
    return Judgement(worst or "no_information", tuple(f"{d}: {worst}" for d in at_worst))


def _judgements(block: Mapping[str, Any]) -> dict[str, str]:
    return {k: str((v or {}).get("judgement")) for k, v in block.items()}


def assess(record: Mapping[str, Any]) -> StudyRisk | None:
    """The study's overall judgement and each comparison's, or None when it has no assessment."""
    rob = record.get("risk_of_bias")
    if not rob:
        return None
    comparisons = tuple(
        ComparisonRisk(c["comparison"], robins_i_overall(_judgements(c.get("domains") or {})))
        for c in rob.get("comparisons") or []
    )
    return StudyRisk(record["id"], rob.get("tool", ""), jbi_overall(_judgements(rob.get("items") or {})), comparisons)


ITEM_COLUMNS = {
    "study": "string",
    "tool": "string",
    "comparison": "string",
    "item": "string",
    "judgement": "string",
    "supported_by": "string",
    "where": "string",
    "quote": "string",
    "url": "string",
}
SUMMARY_COLUMNS = {
    "study": "string",
    "tool": "string",
    "comparison": "string",
    "overall": "string",
    "reasons": "string",
}


def risk_of_bias_items(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per study x item (and per comparison x domain), with the support as recorded:
    `supported_by` is "quote" or "not_reported" (columns: ITEM_COLUMNS)."""
    rows = []
    for r in records:
        rob = r.get("risk_of_bias") or {}
        blocks = [(rob.get("tool"), None, rob.get("items") or {})]
        blocks += [(c.get("tool"), c.get("comparison"), c.get("domains") or {}) for c in rob.get("comparisons") or []]
        for tool, comparison, block in blocks:
            for item, entry in block.items():
                support = (entry or {}).get("support")
                quoted = isinstance(support, dict)
                rows.append(
                    {
                        "study": r["id"],
                        "tool": tool,
                        "comparison": comparison,
                        "item": item,
                        "judgement": (entry or {}).get("judgement"),
                        "supported_by": "quote" if quoted else NOT_REPORTED,
                        "where": support.get("where") if quoted else None,
                        "quote": support.get("quote") if quoted else None,
                        "url": support.get("url") if quoted else None,
                    }
                )
    return _frame(rows, ITEM_COLUMNS)


def risk_of_bias_summary(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per assessed study (its overall judgement) and per comparison (columns: SUMMARY_COLUMNS)."""
    rows = []
    for r in records:
        risk = assess(r)
        if risk is None:
            continue
        rows.append(
            {
                "study": risk.study,
                "tool": risk.tool,
                "comparison": None,
                "overall": risk.judgement.level,
                "reasons": "; ".join(risk.judgement.reasons),
            }
        )
        for c in risk.comparisons:
            rows.append(
                {
                    "study": risk.study,
                    "tool": "robins_i",
                    "comparison": c.comparison,
                    "overall": c.judgement.level,
                    "reasons": "; ".join(c.judgement.reasons),
                }
            )
    return _frame(rows, SUMMARY_COLUMNS)


def _frame(rows: list[dict[str, Any]], columns: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(columns)).astype(columns)


__all__ = [
    "KEY_ITEMS",
    "LEVELS",
    "Judgement",
    "ComparisonRisk",
    "StudyRisk",
    "jbi_overall",
    "robins_i_overall",
    "assess",
    "risk_of_bias_items",
    "risk_of_bias_summary",
    "ITEM_COLUMNS",
    "SUMMARY_COLUMNS",
]
