"""Load study records into tidy tables for the analysis code.

    load_studies()        one row per study x arm (x subgroup) x binary outcome
    load_time_to_event()  one row per median / landmark / hazard ratio
    study_table(records)  one row per study
    load_records()        the records themselves (validated), as dicts

Every loader validates first (see `validation.py`) and raises
`StudyValidationError`, listing every error, rather than return numbers from
a broken file. The column sets below are a contract: the analysis code only
reads these frames, so a column is added, never renamed or removed.

Dtypes: counts are pandas nullable `Int64`, decimals nullable `Float64`, text
nullable `string`; a missing value is `<NA>` and is never imputed (a
percentage printed without a denominator keeps `events` and `n` at `<NA>`).

`population` is one string built from `population.prior_failure`:
"after_car_t", "after_bispecific", or "after_car_t_and_bispecific" when the
study's patients failed both (a single value, so that a study is never split
into one row per prior failure).

Subgroup rows carry `stratified_by`; a stratum `stratified_by: regimen` takes its own
`regimen` and `regimen_class` (it is a cohort of that class), a patient-characteristic stratum
keeps its arm's. A stratum that states its own `unit_of_analysis` or `disease` carries them.
`selection` is population.selection as the record states it (required by the schema; an
unvalidated dict without it gives <NA>, never an assumed value). Response rows carry
`assessment` (not_stated when the record is silent) and `timepoint_days`.

Columns naming several ids (`supersedes`, `superseded_by`, `overlaps`) join them with "; ";
`overlaps` lists relations declared in either record.

`poolable` says whether the numbers themselves can enter a pooled
proportion: false, with `not_poolable_reason`, for a percentage without a
denominator ("percentage without denominator"), a percentage and n without a
count ("percentage without count") and a record another one supersedes
("superseded by <id>"). It does NOT look at `role` (whole-cohort arms),
`subgroup`, `unit_of_analysis` or `overlaps`: those are columns the analysis
filters on explicitly (a regimen-class analysis keeps `role == "treatment"`
and `subgroup.isna()`; records listed in `overlaps` are never pooled together).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from metaanalysis.evidence.validation import Problem, check_directory, errors
from metaanalysis.evidence.vocabulary import outcomes as load_outcomes
from metaanalysis.evidence.vocabulary import regimen_classes as load_regimen_classes

# Study-level context repeated on every outcome and time-to-event row.
_CONTEXT = {
    "study": "string",
    "arm": "string",
    "arm_label": "string",
    "role": "string",
    "subgroup": "string",
    "subgroup_label": "string",
    "regimen_class": "string",
    "regimen_class_label": "string",
    "regimen": "string",
    "population": "string",
    "disease": "string",
    "unit_of_analysis": "string",
    "arm_n": "Int64",
    "selection": "string",
    "stratified_by": "string",
}
_PROVENANCE = {
    "derived": "bool",
    "derived_from": "string",
    "derivation": "string",
    "source_where": "string",
    "source_quote": "string",
    "superseded_by": "string",
    "overlaps": "string",
    "confidence": "string",
    "year": "Int64",
    "citation": "string",
    "source_type": "string",
}

OUTCOME_COLUMNS: dict[str, str] = {
    **_CONTEXT,
    "outcome": "string",
    "outcome_kind": "string",
    "outcome_label": "string",
    "events": "Int64",
    "n": "Int64",
    "percent": "Float64",
    "assessment": "string",
    "timepoint_days": "Int64",
    "poolable": "bool",
    "not_poolable_reason": "string",
    **_PROVENANCE,
}

TIME_TO_EVENT_COLUMNS: dict[str, str] = {
    **_CONTEXT,
    "endpoint": "string",
    "kind": "string",
    "start": "string",
    "value": "Float64",
    "not_reached": "boolean",
    "months": "Float64",
    "percent": "Float64",
    "ci_lb": "Float64",
    "ci_ub": "Float64",
    "ci_level": "Float64",
    "range_lb": "Float64",
    "range_ub": "Float64",
    "p_value": "Float64",
    "p_printed": "string",
    "comparison": "string",
    "model": "string",
    **_PROVENANCE,
}

STUDY_COLUMNS: dict[str, str] = {
    "study": "string",
    "citation": "string",
    "label": "string",
    "title": "string",
    "journal": "string",
    "year": "Int64",
    "doi": "string",
    "source_type": "string",
    "confidence": "string",
    "country": "string",
    "centres": "string",
    "n_sites": "Int64",
    "design": "string",
    "setting": "string",
    "enrolment_start": "string",
    "enrolment_end": "string",
    "population": "string",
    "selection": "string",
    "disease": "string",
    "unit_of_analysis": "string",
    "n": "Int64",
    "patients": "Int64",
    "n_arms": "Int64",
    "response_assessment": "string",
    "follow_up_months": "Float64",
    "follow_up_lb": "Float64",
    "follow_up_ub": "Float64",
    "supersedes": "string",
    "superseded_by": "string",
    "overlaps": "string",
}


class StudyValidationError(ValueError):
    """The study records have errors; `.problems` holds every one (errors and warnings)."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        errs = errors(problems)
        lines = [f"{len(errs)} error(s) in the study records:"] + [f"  {p}" for p in errs]
        super().__init__("\n".join(lines))


# -- loading ----------------------------------------------------------------------
def load_records(directory: str | Path = "extracted_studies", *, validate: bool = True) -> list[dict[str, Any]]:
    """The study records of `directory`, in file-name order.

    With `validate=True` any error raises `StudyValidationError`. With
    `validate=False` only unreadable files raise; use it for records already
    validated (the tables assume valid types).
    """
    parsed, problems = check_directory(directory)
    fatal = errors(problems) if validate else [p for p in errors(problems) if p.path == ""]
    if fatal:
        raise StudyValidationError(problems)
    return [p.data for p in parsed]


def load_studies(directory: str | Path = "extracted_studies", *, validate: bool = True) -> pd.DataFrame:
    """One row per study x arm x binary outcome, then per subgroup x outcome (columns: OUTCOME_COLUMNS)."""
    return outcome_table(load_records(directory, validate=validate))


def load_time_to_event(directory: str | Path = "extracted_studies", *, validate: bool = True) -> pd.DataFrame:
    """One row per median, landmark rate or hazard ratio (columns: TIME_TO_EVENT_COLUMNS)."""
    return time_to_event_table(load_records(directory, validate=validate))


# -- tables -------------------------------------------------------------------------
def outcome_table(records: list[dict[str, Any]]) -> pd.DataFrame:
    outcome_vocab = load_outcomes()
    rows = []
    for _record, context, group, provenance in _groups(records):
        for name, entry in (group.get("binary") or {}).items():
            events, n, percent = entry.get("events"), entry.get("n"), entry.get("percent")
            reasons = []
            if n is None and percent is not None:
                reasons.append("percentage without denominator")
            elif events is None and percent is not None:
                reasons.append("percentage without count")
            if provenance["superseded_by"]:
                reasons.append(f"superseded by {provenance['superseded_by']}")
            vocab = outcome_vocab.get(name, {})
            rows.append(
                {
                    **context,
                    "outcome": name,
                    "outcome_kind": vocab.get("kind"),
                    "outcome_label": vocab.get("label"),
                    "events": events,
                    "n": n,
                    "percent": percent,
                    **_assessment(entry, vocab.get("kind")),
                    "poolable": not reasons,
                    "not_poolable_reason": "; ".join(reasons) or None,
                    **provenance,
                    **_provenance_of(entry),
                }
            )
    return _frame(rows, OUTCOME_COLUMNS)


def time_to_event_table(records: list[dict[str, Any]]) -> pd.DataFrame:
    rows = []
    for _record, context, group, provenance in _groups(records):
        for entry in group.get("time_to_event") or []:
            ci = entry.get("ci") or [None, None]
            rng = entry.get("range") or [None, None]
            p = entry.get("p")
            rows.append(
                {
                    **context,
                    "endpoint": entry.get("endpoint"),
                    "kind": entry.get("kind"),
                    "start": entry.get("start"),
                    "value": entry.get("value"),
                    "not_reached": entry.get("not_reached", False) if entry.get("kind") == "median" else None,
                    "months": entry.get("months"),
                    "percent": entry.get("percent"),
                    "ci_lb": ci[0],
                    "ci_ub": ci[1],
                    "ci_level": entry.get("ci_level", 0.95) if "ci" in entry else None,
                    "range_lb": rng[0],
                    "range_ub": rng[1],
                    "p_value": p if isinstance(p, (int, float)) else None,
                    "p_printed": None if p is None else str(p),
                    "comparison": entry.get("comparison"),
                    "model": entry.get("model"),
                    **provenance,
                    **_provenance_of(entry),
                }
            )
    return _frame(rows, TIME_TO_EVENT_COLUMNS)


def study_table(records: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per study (columns: STUDY_COLUMNS)."""
    superseded, overlaps = _relations(records)
    rows = []
    for r in records:
        citation, design = r.get("citation") or {}, r.get("design") or {}
        enrolment, follow_up = r.get("enrolment") or {}, r.get("follow_up") or {}
        centres = r.get("centres") or []
        sites = [c.get("n_sites") for c in centres if c.get("n_sites") is not None]
        fu_range = follow_up.get("range") or [None, None]
        rows.append(
            {
                "study": r["id"],
                "citation": _short_citation(citation),
                "label": citation.get("label"),
                "title": citation.get("title"),
                "journal": citation.get("journal"),
                "year": citation.get("year"),
                "doi": citation.get("doi"),
                "source_type": citation.get("source_type"),
                "confidence": citation.get("confidence", "high"),
                "country": "; ".join(dict.fromkeys(c["country"] for c in centres if c.get("country"))) or None,
                "centres": "; ".join(c["name"] for c in centres),
                "n_sites": sum(sites) if sites else None,
                "design": design.get("type"),
                "setting": design.get("setting"),
                "enrolment_start": enrolment.get("start"),
                "enrolment_end": enrolment.get("end"),
                "population": population_label(r),
                "selection": _selection(r),
                "disease": (r.get("population") or {}).get("disease"),
                "unit_of_analysis": r.get("unit_of_analysis"),
                "n": ((r.get("population") or {}).get("n") or {}).get("value"),
                "patients": ((r.get("population") or {}).get("patients") or {}).get("value"),
                "n_arms": len(r.get("arms") or []),
                "response_assessment": _response_assessment(r),
                "follow_up_months": follow_up.get("median_months"),
                "follow_up_lb": fu_range[0],
                "follow_up_ub": fu_range[1],
                "supersedes": "; ".join((r.get("relations") or {}).get("supersedes") or []) or None,
                "superseded_by": superseded.get(r["id"]),
                "overlaps": overlaps.get(r["id"]),
            }
        )
    return _frame(rows, STUDY_COLUMNS)


def population_label(record: dict[str, Any]) -> str:
    """ "after_car_t", "after_bispecific" or "after_car_t_and_bispecific"."""
    failed = (record.get("population") or {}).get("prior_failure") or []
    return "after_" + "_and_".join(x for x in ("car_t", "bispecific") if x in failed)


# -- helpers -------------------------------------------------------------------------
def _groups(records: list[dict[str, Any]]) -> Iterable[tuple[dict, dict, dict, dict]]:
    """(record, row context, arm-or-subgroup mapping, study provenance) for every arm, then its subgroups."""
    classes = load_regimen_classes()
    superseded, overlaps = _relations(records)
    for r in records:
        citation = r.get("citation") or {}
        study = {
            "study": r["id"],
            "population": population_label(r),
            "selection": _selection(r),
            "disease": (r.get("population") or {}).get("disease"),
            "unit_of_analysis": r.get("unit_of_analysis"),
        }
        provenance = {
            "superseded_by": superseded.get(r["id"]),
            "overlaps": overlaps.get(r["id"]),
            "confidence": citation.get("confidence", "high"),
            "year": citation.get("year"),
            "citation": _short_citation(citation),
            "source_type": citation.get("source_type"),
        }
        for arm in r.get("arms") or []:
            arm_n = (arm.get("n") or {}).get("value")
            context = {
                **study,
                "arm": arm["id"],
                "arm_label": arm.get("label"),
                "role": arm.get("role", "treatment"),
                "subgroup": None,
                "subgroup_label": None,
                "regimen_class": arm.get("regimen_class"),
                "regimen_class_label": classes.get(arm.get("regimen_class"), {}).get("label"),
                "regimen": arm.get("regimen"),
                "arm_n": arm_n,
                "stratified_by": None,
            }
            yield r, context, arm, provenance
            for sub in arm.get("subgroups") or []:
                sub_n = (sub.get("n") or {}).get("value")
                by = sub.get("stratified_by", "patient_characteristic")
                # a regimen stratum is a cohort of its own class (validation requires both keys)
                regimen = (
                    {
                        "regimen_class": sub.get("regimen_class"),
                        "regimen": sub.get("regimen"),
                        "regimen_class_label": classes.get(sub.get("regimen_class"), {}).get("label"),
                    }
                    if by == "regimen"
                    else {}
                )
                yield (
                    r,
                    {
                        **context,
                        "subgroup": sub["id"],
                        "subgroup_label": sub.get("label"),
                        "stratified_by": by,
                        "arm_n": sub_n if sub_n is not None else arm_n,
                        # a stratum may state its own unit and disease mix (absent: the record's)
                        "disease": sub.get("disease", context["disease"]),
                        "unit_of_analysis": sub.get("unit_of_analysis", context["unit_of_analysis"]),
                        **regimen,
                    },
                    sub,
                    provenance,
                )


def _selection(record: dict[str, Any]) -> str | None:
    """population.selection as the record states it (required: no default is assumed)."""
    return (record.get("population") or {}).get("selection")


def _assessment(entry: dict[str, Any], kind: str | None) -> dict[str, Any]:
    """How a response was read (not_stated unless the record says); none for other outcomes."""
    if kind != "response" and "assessment" not in entry:
        return {"assessment": None, "timepoint_days": None}
    return {"assessment": entry.get("assessment", "not_stated"), "timepoint_days": entry.get("timepoint_days")}


def _response_assessment(record: dict[str, Any]) -> str | None:
    """How the record's ORR/CR were read, e.g. "best" or "fixed_timepoint (day 30); not_stated"."""
    seen = []
    for arm in record.get("arms") or []:
        for group in [arm, *(arm.get("subgroups") or [])]:
            for name, entry in (group.get("binary") or {}).items():
                if name in ("ORR", "CR", "ORR_day30", "CR_day30"):
                    a = entry.get("assessment", "not_stated")
                    days = entry.get("timepoint_days")
                    seen.append(f"{a} (day {days})" if days is not None else a)
    return "; ".join(dict.fromkeys(seen)) or None


def _relations(records: list[dict[str, Any]]) -> tuple[dict[str, str], dict[str, str]]:
    """id -> "ids that supersede it", id -> "ids it overlaps with (declared in either record)"."""
    superseded: dict[str, list[str]] = {}
    overlaps: dict[str, set[str]] = {}
    for r in records:
        rel = r.get("relations") or {}
        for other in rel.get("supersedes") or []:
            superseded.setdefault(other, []).append(r["id"])
        for entry in rel.get("overlaps") or []:
            overlaps.setdefault(r["id"], set()).add(entry["id"])
            overlaps.setdefault(entry["id"], set()).add(r["id"])
    return ({k: "; ".join(v) for k, v in superseded.items()}, {k: "; ".join(sorted(v)) for k, v in overlaps.items()})


def _provenance_of(entry: dict[str, Any]) -> dict[str, Any]:
    derived = entry.get("derived") or {}
    source = entry.get("source") or {}
    return {
        "derived": bool(derived),
        "derived_from": derived.get("from"),
        "derivation": derived.get("rule"),
        "source_where": source.get("where"),
        "source_quote": source.get("quote"),
    }


def _short_citation(citation: dict[str, Any]) -> str:
    """ "Di Blasi et al. 2022": the first author's surname (the name without its trailing
    initials, so "Di Blasi R" and "Alarcon Tomas A" keep both words), then the year or "n.d."."""
    authors = citation.get("authors") or []
    words = str(authors[0]).split() if authors else []
    while len(words) > 1 and words[-1].replace(".", "").replace("-", "").isupper() and len(words[-1]) <= 4:
        words.pop()
    first = " ".join(words) or "Anonymous"
    year = citation.get("year")
    return f"{first}{' et al.' if len(authors) > 1 else ''} {year if year is not None else 'n.d.'}"


def _frame(rows: list[dict[str, Any]], columns: dict[str, str]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(columns))
    return frame.astype(columns) if rows else pd.DataFrame({c: pd.Series(dtype=t) for c, t in columns.items()})


__all__ = [
    "StudyValidationError",
    "load_records",
    "load_studies",
    "load_time_to_event",
    "outcome_table",
    "time_to_event_table",
    "study_table",
    "population_label",
    "OUTCOME_COLUMNS",
    "TIME_TO_EVENT_COLUMNS",
    "STUDY_COLUMNS",
]
