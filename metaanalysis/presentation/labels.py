"""How numbers and names are written for a reader: one place, so every table and plot agrees.

    fmt_percent_ci(0.477, 0.399, 0.556)   -> "47.7 % (39.9-55.6)"
    fmt_p(0.0004)                         -> "< 0.001"
    citation_label(["Di Blasi R", "X"], 2022) -> "Di Blasi 2022"

A missing number is written MISSING (a dash), never NaN or <NA>.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import pandas as pd

MISSING = "–"  # en dash: what a journal prints for "not applicable / not reported"
NOT_ESTIMABLE = "not estimable"

POPULATION_LABELS = {
    "after_car_t": "After CAR-T failure",
    "after_bispecific": "After bispecific-antibody failure",
    "after_car_t_and_bispecific": "After CAR-T and bispecific failure",
}


def population_label(analysis) -> str:
    """What an analysis' population is, named for what it pools: "after failure" only where the
    analysis admits failure cohorts alone; otherwise it says that prior-exposure cohorts are in."""
    base = POPULATION_LABELS.get(analysis.population, analysis.population)
    selections = getattr(analysis, "selections", None)
    if selections is not None and tuple(selections) == ("after_failure",):
        return base
    exposed = {"after_car_t": "CAR-T", "after_bispecific": "bispecific-antibody"}.get(analysis.population)
    if exposed is None:
        return base
    return f"After {exposed} failure, with cohorts of any prior {exposed} exposure"


def is_missing(x: Any) -> bool:
    if x is None or x is pd.NA:
        return True
    try:
        return bool(pd.isna(x))
    except (TypeError, ValueError):
        return False


def _num(x: float, decimals: int) -> str:
    text = f"{x:.{decimals}f}"
    if float(text) == 0:
        text = text.lstrip("-")  # no "-0.0"
    return text.replace("-", "−")  # a true minus sign


def fmt_number(x: Any, decimals: int = 1) -> str:
    return MISSING if is_missing(x) else _num(float(x), decimals)


def fmt_interval(lb: Any, ub: Any, *, scale: float = 100.0, decimals: int = 1) -> str:
    """ "39.9-55.6"; "−42.7 to −4.8" when a limit is negative (a hyphen would read as a minus)."""
    if is_missing(lb) or is_missing(ub):
        return MISSING
    lo, hi = _num(float(lb) * scale, decimals), _num(float(ub) * scale, decimals)
    return f"{lo} to {hi}" if "−" in lo + hi else f"{lo}-{hi}"


def fmt_percent_ci(est: Any, lb: Any = None, ub: Any = None, *, decimals: int = 1, missing: str = MISSING) -> str:
    """A proportion (0-1) as "47.7 % (39.9-55.6)"; without an interval "47.7 %"."""
    if is_missing(est):
        return missing
    text = f"{_num(float(est) * 100, decimals)} %"
    if not (is_missing(lb) or is_missing(ub)):
        text += f" ({fmt_interval(lb, ub, decimals=decimals)})"
    return text


def fmt_ratio_ci(est: Any, lb: Any = None, ub: Any = None, *, decimals: int = 2) -> str:
    """A ratio (HR, OR) as "0.62 (0.41-0.94)"."""
    if is_missing(est):
        return MISSING
    text = _num(float(est), decimals)
    if not (is_missing(lb) or is_missing(ub)):
        text += f" ({fmt_interval(lb, ub, scale=1.0, decimals=decimals)})"
    return text


def fmt_p(p: Any) -> str:
    """p-values as journals print them: "< 0.001", else three decimals ("0.032", "0.752")."""
    if is_missing(p):
        return MISSING
    p = float(p)
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def fmt_count(x: Any) -> str:
    return MISSING if is_missing(x) else str(int(x))


# -- studies ------------------------------------------------------------------------------
_INITIALS = re.compile(r"^[A-Z][A-Z.\-]{0,3}$")


def _surname(author: str) -> str:
    """ "Di Blasi R" -> "Di Blasi"; "Alarcon Tomas A" -> "Alarcon Tomas"; group names unchanged."""
    words = re.sub(r"\([^)]*\)", "", author).replace(" et al.", "").split()
    while len(words) > 1 and _INITIALS.match(words[-1].replace(".", "")):
        words.pop()
    return " ".join(words)


def citation_label(
    authors: Iterable[str] | None, year: Any, journal: str | None = None, label: str | None = None
) -> str:
    """First author's surname and year, as a forest plot or table cites a study:
    "Thieblemont 2023". A source that names no author is cited by its record's short `label`
    (a cohort or trial name), then by its journal; "n.d." only where no source prints a year."""
    first = next(iter(authors or []), "") or ""
    name = _surname(str(first))
    if not name or name.lower().startswith("not named"):
        name = (label or "").strip() or (journal or "").strip() or "Unnamed report"
    return f"{name} {'n.d.' if is_missing(year) else int(year)}"


def citation_labels(records: Iterable[dict]) -> dict[str, str]:
    """Study id -> citation label; two studies sharing one label get "a", "b" (in id order)."""
    labels = {}
    for r in sorted(records, key=lambda r: r["id"]):
        c = r.get("citation") or {}
        labels[r["id"]] = citation_label(c.get("authors"), c.get("year"), c.get("journal"), c.get("label"))
    counts: dict[str, int] = {}
    for label in labels.values():
        counts[label] = counts.get(label, 0) + 1
    seen: dict[str, int] = {}
    for sid, label in labels.items():
        if counts[label] > 1:
            seen[label] = seen.get(label, 0) + 1
            labels[sid] = f"{label}{'abcdefghijklmnopqrstuvwxyz'[seen[label] - 1]}"
    return labels


def arm_labels(records: Iterable[dict]) -> dict[tuple[str, str], str]:
    """(study id, arm id) -> the arm's label in its record."""
    return {(r["id"], a["id"]): a.get("label") or a["id"] for r in records for a in r.get("arms") or []}


def symbols(text: Any) -> str:
    """ ">=" and "<=" as the signs a journal prints."""
    return str(text).replace(">=", "≥").replace("<=", "≤")


def cite(label: str, citations: dict[str, str], arm_labels: dict[tuple[str, str], str] | None = None) -> str:
    """A pooling label ("wang2025_tongji (cti2)": study id and, where a study has several arms,
    the arm id) as a citation ("Wang 2025 (Second CAR-T infusion)")."""
    study, _, arm = str(label).partition(" (")
    arm = arm[:-1] if arm.endswith(")") else arm
    text = citations.get(study, study)
    if arm:
        text += f" ({(arm_labels or {}).get((study, arm), arm)})"
    return text


def cite_list(
    studies: Any, citations: dict[str, str], arms: dict[tuple[str, str], str] | None = None, sep: str = ";"
) -> str:
    """ "a;b" (results/pooled.csv `studies`) -> "Thieblemont 2023; Shumilov 2025"."""
    if is_missing(studies) or not str(studies).strip():
        return MISSING
    return "; ".join(cite(s.strip(), citations, arms) for s in str(studies).split(sep) if s.strip())


__all__ = [
    "MISSING",
    "NOT_ESTIMABLE",
    "POPULATION_LABELS",
    "population_label",
    "fmt_number",
    "fmt_interval",
    "fmt_percent_ci",
    "fmt_ratio_ci",
    "fmt_p",
    "fmt_count",
    "citation_label",
    "citation_labels",
    "arm_labels",
    "symbols",
    "cite",
    "cite_list",
    "is_missing",
]
