"""GRADE certainty of every primary estimate of a review, from what the review already holds.

`certainty_table(analyses, medians, records, studies, diagnostics, landmarks)` gives one row per
class of every declared analysis (its primary estimate, as the review decided it), per primary
median of every median group and per pooled landmark rate (columns: CERTAINTY_COLUMNS). The rule
itself is `review.certainty.rate` (docs/grade.md); this module only gathers its inputs, each from
one place:

- a study's risk of bias: its overall JBI judgement (`risk_of_bias.assess` of its record);
- indirectness, from the study rows: a trial subgroup with any prior exposure (selection
  prior_exposure), a mixed B-cell lymphoma population (disease B-NHL), treatment courses counted
  instead of patients;
- derived counts (study rows), congress abstracts and low-confidence records (the study table);
- Egger's test, from the class diagnostics (only read where k >= 10).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from metaanalysis.review.certainty import Certainty, PooledEvidence, StudyEvidence, rate
from metaanalysis.review.result import AnalysisResult, ClassDiagnostics
from metaanalysis.review.risk_of_bias import assess

CERTAINTY_COLUMNS = {
    "analysis": "string",
    "population": "string",
    "outcome": "string",
    "regimen_class": "string",  # the class, or the median group
    "method": "string",
    "kind": "string",  # proportion, median or landmark (a proportion at a time point)
    "k": "Int64",
    "n_total": "Int64",  # patients behind the estimate (None: no study gives its number)
    "level": "Int64",  # 4 High .. 1 Very low
    "certainty": "string",
    "symbols": "string",
    "downgrades": "string",  # "domain (-steps): reason", joined by " | "
    "notes": "string",  # joined by " | "
}
SEPARATOR = " | "

INDIRECT = {
    "selection": ("prior_exposure", "trial subgroup with any prior exposure, not failure"),
    "disease": ("B-NHL", "mixed B-cell lymphoma population"),
    "unit_of_analysis": ("treatment_courses", "treatment courses counted, not patients"),
}


def indirect_reasons(row: Mapping[str, Any]) -> tuple[str, ...]:
    """Why a study row's patients are not the question's patients (empty: they are)."""
    return tuple(reason for column, (value, reason) in INDIRECT.items() if row.get(column) == value)


def _risk(records: Iterable[Mapping[str, Any]]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for r in records:
        risk = assess(r)
        out[str(r["id"])] = None if risk is None else risk.judgement.level
    return out


def _flags(studies: pd.DataFrame) -> dict[str, tuple[bool, bool]]:
    """study -> (congress abstract, low confidence)."""
    return {
        str(s.study): (s.source_type == "congress_abstract", s.confidence == "low")
        for s in studies[["study", "source_type", "confidence"]].itertuples()
    }


def _study(study: str, n: Any, rows: pd.DataFrame, risk: Mapping, flags: Mapping) -> StudyEvidence:
    reasons = tuple(dict.fromkeys(x for row in rows.to_dict("records") for x in indirect_reasons(row)))
    derived = bool(rows["derived"].fillna(False).astype(bool).any()) if "derived" in rows else False
    abstract, low = flags.get(study, (False, False))
    return StudyEvidence(
        study=study,
        n=None if pd.isna(n) else int(n),
        risk_of_bias=risk.get(study),
        indirect=reasons,
        derived=derived,
        abstract=abstract,
        low_confidence=low,
    )


def _none(x: Any) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def _nan(x: Any) -> float:
    value = _none(x)
    return math.nan if value is None else value


def _row(base: dict[str, Any], kind: str, evidence: PooledEvidence) -> dict[str, Any]:
    grade: Certainty = rate(evidence)
    return dict(
        base,
        kind=kind,
        k=evidence.k,
        n_total=evidence.n_total,
        level=grade.level,
        certainty=grade.word,
        symbols=grade.symbols,
        downgrades=SEPARATOR.join(f"{d.domain} (-{d.steps}): {d.reason}" for d in grade.downgrades) or None,
        notes=SEPARATOR.join(grade.notes) or None,
    )


def _proportion_rows(
    result: AnalysisResult, risk: Mapping, flags: Mapping, egger: Mapping[tuple[str, str], float]
) -> list[dict[str, Any]]:
    a, out = result.analysis, []
    for cls in result.classes:
        primary = result.primary_result(cls)
        if primary.fit is None:
            continue
        rows = result.included[result.included["regimen_class"] == cls]
        studies = tuple(
            _study(str(study), part["n"].sum(min_count=1), part, risk, flags) for study, part in rows.groupby("study")
        )
        lb, ub = primary.fit.interval()
        pi_lb, pi_ub = primary.fit.prediction() if primary.pooled else (None, None)
        evidence = PooledEvidence(
            kind="proportion",
            estimate=float(primary.fit.estimate),
            ci_lb=float(lb),
            ci_ub=float(ub),
            pi_lb=_none(pi_lb),
            pi_ub=_none(pi_ub),
            I2=_none(primary.fit.I2) if primary.pooled else None,
            k=primary.k,
            n_total=primary.n_total,
            studies=studies,
            egger_p=egger.get((a.id, cls)),
        )
        base = dict(analysis=a.id, population=a.population, outcome=a.outcome, regimen_class=cls, method=primary.method)
        out.append(_row(base, "proportion", evidence))
    return out


def _median_rows(medians: pd.DataFrame, studies: pd.DataFrame, risk: Mapping, flags: Mapping) -> list[dict]:
    if medians.empty or "primary" not in medians:
        return []
    by_study = studies.set_index("study")
    out = []
    for m in medians[medians["primary"].fillna(False).astype(bool)].to_dict("records"):
        group = medians[
            (medians["analysis"] == m["analysis"]) & (medians["group"] == m["group"]) & (medians["kind"] == "study")
        ]
        entered = group[group["method"].fillna("").str.split(";").map(lambda ms, m=m: _uses(ms, m["method"]))]
        evidence_studies = tuple(
            _study(
                str(s.study),
                s.n,
                by_study.loc[[s.study]] if s.study in by_study.index else pd.DataFrame(),
                risk,
                flags,
            )
            for s in entered.itertuples()
        )
        n = pd.to_numeric(entered["n"], errors="coerce")
        evidence = PooledEvidence(
            kind="median",
            estimate=float(m["estimate"]),
            ci_lb=_nan(m["ci_lb"]),  # a single cohort may print no interval
            ci_ub=_nan(m["ci_ub"]),
            pi_lb=_none(m.get("pi_lb")),
            pi_ub=_none(m.get("pi_ub")),
            I2=_none(m.get("I2")),
            k=int(m["k"]),
            n_total=None if n.isna().all() else int(n.sum()),
            studies=evidence_studies,
        )
        base = dict(
            analysis=m["analysis"],
            population=m["population"],
            outcome=f"{m['endpoint']} median",
            regimen_class=m["group"],
            method=m["method"],
        )
        out.append(_row(base, "median", evidence))
    return out


def _landmark_rows(landmarks: pd.DataFrame, studies: pd.DataFrame, risk: Mapping, flags: Mapping) -> list[dict]:
    """The primary pooled rate of every landmark and class (a proportion of patients event-free)."""
    if landmarks.empty or "kind" not in landmarks:
        return []
    by_study = studies.set_index("study")
    out = []
    pooled = landmarks[(landmarks["kind"] == "pooled") & (landmarks["variant"] == "primary")]
    for p in pooled.to_dict("records"):
        entered = landmarks[
            (landmarks["landmark"] == p["landmark"])
            & (landmarks["regimen_class"] == p["regimen_class"])
            & (landmarks["kind"] == "study")
            & landmarks["study"].isin(str(p["study"]).split(";"))
            & landmarks["reason"].isna()
        ]
        n = pd.to_numeric(entered["n"], errors="coerce")
        evidence = PooledEvidence(
            kind="proportion",
            estimate=float(p["percent"]) / 100,
            ci_lb=_nan(p["ci_lb"]) / 100,
            ci_ub=_nan(p["ci_ub"]) / 100,
            pi_lb=None if _none(p.get("pi_lb")) is None else float(p["pi_lb"]) / 100,
            pi_ub=None if _none(p.get("pi_ub")) is None else float(p["pi_ub"]) / 100,
            I2=_none(p.get("I2")),
            k=int(p["k"]),
            n_total=None if n.isna().all() else int(n.sum()),
            studies=tuple(
                _study(
                    str(s.study),
                    s.n,
                    by_study.loc[[s.study]] if s.study in by_study.index else pd.DataFrame(),
                    risk,
                    flags,
                )
                for s in entered.itertuples()
            ),
        )
        months = float(p["months"])
        base = dict(
            analysis=p["landmark"],
            population=p["population"],
            outcome=f"{p['endpoint']} at {months:g} months",
            regimen_class=p["regimen_class"],
            method=p["method"],
        )
        out.append(_row(base, "landmark", evidence))
    return out


def _uses(methods: list[str], method: str) -> bool:
    """Whether a cohort row entered `method` (a single-study row entered every method it lists)."""
    return method in methods or (method.startswith("not pooled") and bool([x for x in methods if x]))


def certainty_table(
    analyses: Iterable[AnalysisResult],
    medians: pd.DataFrame,
    records: Iterable[Mapping[str, Any]],
    studies: pd.DataFrame,
    diagnostics: Iterable[ClassDiagnostics] = (),
    landmarks: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The certainty of every primary estimate (columns: CERTAINTY_COLUMNS)."""
    risk, flags = _risk(records), _flags(studies)
    egger = {(d.analysis, d.regimen_class): float(d.egger.pval) for d in diagnostics}
    rows = [r for a in analyses for r in _proportion_rows(a, risk, flags, egger)]
    rows += _median_rows(medians, studies, risk, flags)
    rows += _landmark_rows(pd.DataFrame() if landmarks is None else landmarks, studies, risk, flags)
    return pd.DataFrame(rows, columns=list(CERTAINTY_COLUMNS)).astype(CERTAINTY_COLUMNS)


__all__ = ["certainty_table", "indirect_reasons", "CERTAINTY_COLUMNS", "INDIRECT", "SEPARATOR"]
