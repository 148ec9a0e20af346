"""Pool the study records by regimen class, as declared in `data/analyses.yaml`.

This module decides WHICH rows enter a model (and records why every other row
does not); the statistics live in the engine (`effects`, `rma`, `glmm`,
`subgroups`). The only input is the tidy frame of `studies.load_studies()`.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from metaanalysis.engine.methods import SINGLE, fit_proportion
from metaanalysis.review.analyses import EXCLUSIONS, Analysis
from metaanalysis.review.result import AnalysisResult, ClassResult

# Why a row was not pooled. One phrase per reason so tables can be filtered.
WHOLE_COHORT = "whole-cohort row (arm role: overall), not a regimen class"
STRATUM = "stratum of an arm (subgroup), not an arm"
NO_DENOMINATOR = "percentage without denominator"
DERIVED = "derived count (excluded in this sensitivity analysis)"
OVERLAPPING = "overlapping cohort (excluded in this sensitivity analysis)"

TIMING = "response at day {days} (fixed time point), not best response: it belongs to {outcome}_day{days}"
COMBINED = "combined with {others} into one cohort of this class (same study; see study_level.csv)"
STRATUM_IN_POOLED_ARM = "regimen stratum of an arm pooled in the same class (its patients are in the arm)"
# Sensitivity exclusions named in data/analyses.yaml (`exclude: [...]`): which rows, and why.
ROW_EXCLUSIONS = {
    "prior_exposure": (
        lambda c: c["selection"] == "prior_exposure",
        "prior-exposure cohort, not after failure (excluded in this sensitivity analysis)",
    ),
    "low_confidence": (
        lambda c: c["confidence"] == "low",
        "low-confidence record (excluded in this sensitivity analysis)",
    ),
    "congress_abstracts": (
        lambda c: c["source_type"] == "congress_abstract",
        "congress abstract (excluded in this sensitivity analysis)",
    ),
}
assert set(ROW_EXCLUSIONS) == set(EXCLUSIONS)

STUDY_LEVEL_COLUMNS = ["study", "arm", "population", "outcome", "regimen_class", "events", "n", "derived"]


def _as_list(value) -> list[str]:
    """The loader stores relations as one comma-separated string (or <NA>)."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return []
    return [v.strip() for v in str(value).replace(";", ",").split(",") if v.strip()]


def overlap_reasons(live: pd.DataFrame, *, exclude_overlapping: bool = False) -> dict[str, str]:
    """Study -> why it leaves, for cohorts declared overlapping among the rows of `live`
    (columns study, overlaps, n, year). Overlapping cohorts are never pooled together: the
    primary analysis keeps the larger cohort (a cohort of unknown size counts as smallest;
    then the later, then the id); the sensitivity analysis drops both."""
    declared = {(a, b) for a, v in zip(live["study"], live["overlaps"], strict=True) for b in _as_list(v)}
    partners = {s: {b for a, b in declared if a == s} | {a for a, b in declared if b == s} for s in set(live["study"])}
    size = live.groupby("study").agg(n=("n", "max"), year=("year", "max"))
    rank = {
        s: (
            -1 if pd.isna(size.at[s, "n"]) else int(size.at[s, "n"]),
            0 if pd.isna(size.at[s, "year"]) else int(size.at[s, "year"]),
            s,
        )
        for s in size.index
    }
    out = {}
    for study, others in sorted(partners.items()):
        others &= set(live["study"])
        if not others:
            continue
        if exclude_overlapping:
            out[study] = OVERLAPPING
            continue
        keep = max([study, *others], key=rank.get)
        if keep != study:
            out[study] = f"overlaps with {keep} (the larger cohort was kept)"
    return out


def _candidates(frame: pd.DataFrame, population: str, outcome: str) -> tuple[pd.DataFrame, pd.Series]:
    """The rows of one population and outcome, and the reasons that hold for every analysis of
    them (whatever its units, diseases, selections or sensitivity switches)."""
    cand = frame[(frame["population"] == population) & (frame["outcome"] == outcome)].copy()
    reasons = pd.Series([None] * len(cand), index=cand.index, dtype=object)
    mark = _marker(reasons)
    mark(cand["role"].fillna("treatment") != "treatment", WHOLE_COHORT)
    # A stratum by regimen inside a mixed arm is a cohort of its own class; one by a patient
    # characteristic (early vs late relapse) is part of its arm and never pooled on its own.
    mark(cand["subgroup"].notna() & (cand["stratified_by"].fillna("") != "regimen"), STRATUM)
    # Best response (or unstated) and response at a fixed day are different outcomes.
    if not re.search(r"_day\d+$", outcome):
        days = cand["timepoint_days"].astype("Int64").astype(str)
        mark(
            cand["assessment"].fillna("") == "fixed_timepoint",
            pd.Series([TIMING.format(days=d, outcome=outcome) for d in days], index=cand.index),
        )
    # The loader already knows which numbers cannot be a proportion (no denominator,
    # no count, superseded report); its reason is carried over verbatim.
    mark(~cand["poolable"].astype(bool), cand["not_poolable_reason"].astype(object))
    mark(cand["events"].isna() | cand["n"].isna(), NO_DENOMINATOR)
    return cand, reasons


def _marker(reasons: pd.Series):
    """mark(mask, reason): give `reason` to the rows of `mask` that have none yet (the first
    reason that applies to a row is the one it is listed with)."""

    def mark(mask, reason):
        free = reasons.isna() & mask
        reasons[free] = reason if isinstance(reason, str) else reason[free]

    return mark


def select_rows(
    frame: pd.DataFrame, analysis: Analysis, cache: dict | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split the candidate rows of one analysis into (included, excluded-with-reason).

    Candidates are the rows of the analysis' population and outcome. Every
    candidate ends in exactly one of the two frames. `cache`: a dict shared by the analyses of
    one review (and one `frame`), so that what holds for every analysis of a population and
    outcome is worked out once for all its sensitivity variants.
    """
    key = ("candidates", analysis.population, analysis.outcome)
    if cache is not None and key in cache:
        cand, base = cache[key]
    else:
        cand, base = _candidates(frame, analysis.population, analysis.outcome)
        if cache is not None:
            cache[key] = (cand, base)
    reasons = base.copy()  # cand is only read below
    mark = _marker(reasons)
    mark(
        ~cand["unit_of_analysis"].isin(analysis.units),
        "different unit of analysis (" + cand["unit_of_analysis"].astype(str) + ")",
    )
    if analysis.diseases is not None:
        mark(
            ~cand["disease"].isin(analysis.diseases),
            "population outside this sensitivity analysis (" + cand["disease"].astype(str) + ")",
        )
    if analysis.selections is not None:
        mark(
            ~cand["selection"].isin(analysis.selections).fillna(False).astype(bool),
            "population.selection "
            + cand["selection"].astype(object).fillna("not stated").astype(str)
            + ": this analysis pools "
            + " or ".join(analysis.selections)
            + " cohorts only",
        )
    if analysis.exclude_derived:
        mark(cand["derived"].astype(bool), DERIVED)
    for name in analysis.exclude:
        selects, reason = ROW_EXCLUSIONS[name]
        mark(selects(cand).fillna(False).astype(bool), reason)

    live = cand[reasons.isna()]
    for study, reason in overlap_reasons(live, exclude_overlapping=analysis.exclude_overlapping).items():
        mark(cand["study"] == study, reason)

    included = cand[reasons.isna()].copy()
    excluded = cand[reasons.notna()].copy()
    excluded["reason"] = reasons[reasons.notna()]
    included, merged = combine_arms(included, analysis)
    return included, pd.concat([excluded, merged]) if len(merged) else excluded


def combine_arms(rows: pd.DataFrame, analysis: Analysis) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One cohort per study and class: (rows to pool, the rows merged away with the reason).

    Two arms (or regimen strata) of one study in one class are the same kind of patients treated
    in one centre or trial: they enter as one cohort, events and n summed, never as k = 2 (the
    random-effects model would read their agreement as between-study evidence). The summed row is
    marked `derived` (a sum, as `derived.from: sum` in a record) and `combined`, with a note.
    """
    rows = rows.assign(combined=False, note=pd.Series([None] * len(rows), index=rows.index, dtype=object))
    keys = ["study", analysis.group_by]
    # A study with one row in a class is kept as it is; only the others need the steps below.
    several = rows.groupby(keys, sort=False)[keys[0]].transform("size") > 1
    keep, merged = [rows[~several]], []
    for _, group in rows[several].groupby(keys, sort=False):
        # a regimen stratum whose own arm is pooled in the same class is already counted in it
        arms = set(group.loc[group["subgroup"].isna(), "arm"])
        inside = group["subgroup"].notna() & group["arm"].isin(arms)
        merged.append(group[inside].assign(reason=STRATUM_IN_POOLED_ARM))
        group = group[~inside]
        if len(group) == 1:
            keep.append(group)
            continue
        parts = group["subgroup"].fillna(group["arm"]).tolist()
        counts = [f"{p} {int(e)}/{int(n)}" for p, e, n in zip(parts, group["events"], group["n"], strict=True)]
        row = group.iloc[[0]].copy()
        row["arm"] = "+".join(parts)
        row["subgroup"] = pd.NA
        row["events"] = group["events"].sum()
        row["n"] = group["n"].sum()
        row["arm_n"] = group["arm_n"].sum() if group["arm_n"].notna().all() else pd.NA
        row["derived"], row["combined"] = True, True
        row["derived_from"] = "sum"
        row["note"] = row["derivation"] = (
            f"{' + '.join(counts)} combined: one cohort of this class (same study), pooled once"
        )
        if analysis.exclude_derived:  # the summed count is derived like any other sum
            merged.append(group.assign(reason=DERIVED))
            continue
        keep.append(row)
        for i, part in zip(group.index, parts, strict=True):
            others = ", ".join(p for p in parts if p != part)
            merged.append(group.loc[[i]].assign(reason=COMBINED.format(others=others)))
    merged = [m for m in merged if len(m)]
    keep = [k for k in keep if len(k)]
    return (
        pd.concat(keep) if keep else rows.iloc[:0],
        pd.concat(merged) if merged else rows.iloc[:0].assign(reason=pd.Series(dtype=object)),
    )


def _labelled(included: pd.DataFrame, analysis: Analysis) -> pd.DataFrame:
    """Study labels ("study (arm)" where a study has several rows) and one fitting order."""
    several = (included.groupby("study")["arm"].transform("count") > 1) | included["combined"]
    part = included["subgroup"].fillna(included["arm"]).astype(str)
    included = included.assign(label=included["study"] + np.where(several, " (" + part + ")", ""))
    # One order for fitting and for study_level.csv, so a refit from the CSV is the same fit
    # (the GLMM's last digits depend on the order of its studies).
    return included.sort_values([analysis.group_by, "year", "study", "arm"], kind="stable")


def _class_result(cls: str, method: str, rows: pd.DataFrame, analysis: Analysis, cache: dict | None) -> ClassResult:
    labels = tuple(rows["label"])
    base = dict(regimen_class=cls, method=method, k=len(rows), n_total=int(rows["n"].sum()), studies=labels)
    events, n = rows["events"].astype(int).to_numpy(), rows["n"].astype(int).to_numpy()
    # Most sensitivity variants leave most classes as they are: the same rows and settings give
    # the same fit, so one computation serves them all (the fits are immutable).
    key = (method, labels, tuple(events), tuple(n), analysis.level, analysis.inverse_variance, analysis.bayes.tau_prior)
    if cache is not None and key in cache:
        return ClassResult(**base, **cache[key])
    try:
        fit = fit_proportion(
            method,
            events,
            n,
            studies=labels,
            level=analysis.level,
            iv=analysis.inverse_variance,
            tau_prior=analysis.bayes.tau_prior,
        )
    # A model that cannot be fitted (bad counts, no convergence) is reported in the tables,
    # never hidden; any other exception is a bug and propagates.
    except (ValueError, RuntimeError) as exc:
        outcome: dict = dict(fit=None, error=f"{type(exc).__name__}: {exc}")
    else:
        outcome = dict(fit=fit)
    if cache is not None:
        cache[key] = outcome
    return ClassResult(**base, **outcome)


def pool_analysis(frame: pd.DataFrame, analysis: Analysis, cache: dict | None = None) -> AnalysisResult:
    """Select the rows of one analysis once, fit every declared method to every class, and decide
    each class's primary method once, by the plan's rule. `cache`: a dict shared by the
    analyses of one review, so that a class fitted once is never fitted again."""
    included, excluded = select_rows(frame, analysis, cache)
    included = _labelled(included, analysis)
    fits: dict[str, dict[str, ClassResult]] = {}
    primary: dict[str, str] = {}
    extreme: dict[str, bool] = {}
    for cls, rows in included.groupby(analysis.group_by, sort=True):
        k = len(rows)
        extreme[cls] = bool(((rows["events"] == 0) | (rows["events"] == rows["n"])).any())
        methods = [SINGLE] if k == 1 else [m for m in analysis.methods if analysis.fitted(m, k)]
        fits[cls] = {m: _class_result(cls, m, rows, analysis, cache) for m in methods}
        primary[cls] = analysis.primary_for(k, extreme[cls])
    return AnalysisResult(
        analysis=analysis,
        classes=tuple(fits),
        fits=fits,
        primary=primary,
        extreme_arm=extreme,
        included=study_level_rows(included, analysis),
        excluded=excluded_rows(excluded, analysis),
    )


def study_level_rows(included: pd.DataFrame, analysis: Analysis) -> pd.DataFrame:
    cols = STUDY_LEVEL_COLUMNS + [
        "combined",
        "note",
        "subgroup",
        "assessment",
        "selection",
        "unit_of_analysis",
        "disease",
        "derived_from",
        "year",
        "label",
    ]
    return included[cols].assign(
        derived=included["derived"].astype(bool), analysis=analysis.id, variant=analysis.variant
    )


def excluded_rows(excluded: pd.DataFrame, analysis: Analysis) -> pd.DataFrame:
    cols = [
        "study",
        "arm",
        "subgroup",
        "population",
        "outcome",
        "regimen_class",
        "events",
        "n",
        "percent",
        "assessment",
        "reason",
    ]
    return excluded[[c for c in cols if c in excluded]].assign(analysis=analysis.id, variant=analysis.variant)
