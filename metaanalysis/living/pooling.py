"""Pool the study records by regimen class, as declared in `data/analyses.yaml`.

This module decides WHICH rows enter a model (and records why every other row
does not); the statistics live in the engine (`effects`, `rma`, `glmm`,
`subgroups`). The only input is the tidy frame of `studies.load_studies()`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from metaanalysis.living.analyses import Analysis
from metaanalysis.engine.effects import escalc
from metaanalysis.engine.glmm import rma_glmm
from metaanalysis.engine.results import MetaResult, SubgroupResult
from metaanalysis.engine.rma import rma_effects
from metaanalysis.living.single_study import single_proportion
from metaanalysis.engine.subgroups import subgroup_test

# Why a row was not pooled. One phrase per reason so tables can be filtered.
WHOLE_COHORT = "whole-cohort row (arm role: overall), not a regimen class"
STRATUM = "stratum of an arm (subgroup), not an arm"
NO_DENOMINATOR = "percentage without denominator"
DERIVED = "derived count (excluded in this sensitivity analysis)"
OVERLAPPING = "overlapping cohort (excluded in this sensitivity analysis)"

STUDY_LEVEL_COLUMNS = ["study", "arm", "population", "outcome", "regimen_class", "events", "n", "derived"]


@dataclass(frozen=True)
class ClassFit:
    """One regimen class in one analysis under one method."""

    regimen_class: str
    rows: pd.DataFrame                 # the study rows that entered (STUDY_LEVEL_COLUMNS and more)
    result: MetaResult | None          # None when the fit failed (see `error`)
    pooled: bool                       # False for a single study (shown, not pooled)
    error: str | None = None


@dataclass(frozen=True)
class PooledAnalysis:
    analysis: Analysis
    method: str
    classes: dict[str, ClassFit]
    subgroups: SubgroupResult
    included: pd.DataFrame
    excluded: pd.DataFrame


def _as_list(value) -> list[str]:
    """The loader stores relations as one comma-separated string (or <NA>)."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return []
    return [v.strip() for v in str(value).replace(";", ",").split(",") if v.strip()]


def select_rows(frame: pd.DataFrame, analysis: Analysis) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split the candidate rows of one analysis into (included, excluded-with-reason).

    Candidates are the rows of the analysis' population and outcome. Every
    candidate ends in exactly one of the two frames.
    """
    cand = frame[(frame["population"] == analysis.population) & (frame["outcome"] == analysis.outcome)].copy()
    reasons = pd.Series([None] * len(cand), index=cand.index, dtype=object)

    def mark(mask, reason):
        free = reasons.isna() & mask
        reasons[free] = reason if isinstance(reason, str) else reason[free]

    mark(cand["role"].fillna("treatment") != "treatment", WHOLE_COHORT)
    mark(cand["subgroup"].notna(), STRATUM)
    # The loader already knows which numbers cannot be a proportion (no denominator,
    # no count, superseded report); its reason is carried over verbatim.
    mark(~cand["poolable"].astype(bool), cand["not_poolable_reason"].astype(object))
    mark(cand["events"].isna() | cand["n"].isna(), NO_DENOMINATOR)
    mark(~cand["unit_of_analysis"].isin(analysis.units),
         "different unit of analysis (" + cand["unit_of_analysis"].astype(str) + ")")
    if analysis.diseases is not None:
        mark(~cand["disease"].isin(analysis.diseases),
             "population outside this sensitivity analysis (" + cand["disease"].astype(str) + ")")
    if analysis.exclude_derived:
        mark(cand["derived"].astype(bool), DERIVED)

    # Overlapping cohorts: never pooled together. The primary analysis keeps the
    # larger cohort (then the later one); the sensitivity analysis drops both.
    live = cand[reasons.isna()]
    declared = {(a, b) for a, v in zip(live["study"], live["overlaps"]) for b in _as_list(v)}
    partners = {s: {b for a, b in declared if a == s} | {a for a, b in declared if b == s}
                for s in set(live["study"])}
    size = live.groupby("study").agg(n=("n", "max"), year=("year", "max"))
    for study, others in sorted(partners.items()):
        others &= set(live["study"])
        if not others:
            continue
        if analysis.exclude_overlapping:
            mark(cand["study"] == study, OVERLAPPING)
            continue
        keep = max([study, *others], key=lambda s: (int(size.at[s, "n"]), int(size.at[s, "year"] or 0), s))
        if keep != study:
            mark(cand["study"] == study, f"overlaps with {keep} (the larger cohort was kept)")

    included = cand[reasons.isna()].copy()
    excluded = cand[reasons.notna()].copy()
    excluded["reason"] = reasons[reasons.notna()]
    return included, excluded


def _fit(method: str, rows: pd.DataFrame, analysis: Analysis) -> MetaResult:
    events = rows["events"].astype(int).to_numpy()
    n = rows["n"].astype(int).to_numpy()
    labels = tuple(rows["label"])
    if method == "GLMM":
        return rma_glmm(events, n, studies=labels, level=analysis.level, nAGQ=7)
    if method == "BAYES" and analysis.bayes.model == "normal-normal":
        from metaanalysis.engine.bayes import rma_bayes_effects
        es = escalc("PLO", events=events, n=n, add=None, to="only0", studies=labels)
        return rma_bayes_effects(es, tau_prior=analysis.bayes.tau_prior, level=analysis.level)
    if method == "BAYES":
        from metaanalysis.engine.bayes_binomial import rma_bayes_binomial
        return rma_bayes_binomial(events, n, studies=labels, level=analysis.level,
                                  tau_prior=analysis.bayes.tau_prior, shortest=False)
    iv = analysis.inverse_variance
    # add=None: metafor's default (1/2 for PLO, no correction for PFT/PAS)
    es = escalc(method, events=events, n=n, add=None, to="only0", studies=labels)
    return rma_effects(es, method=iv.method, test=iv.test, level=analysis.level, pi_method=iv.pi_method)


def _single(rows: pd.DataFrame, analysis: Analysis) -> MetaResult:
    row = rows.iloc[0]
    return single_proportion(int(row["events"]), int(row["n"]), study=row["label"], level=analysis.level)


def pool(frame: pd.DataFrame, analysis: Analysis, method: str) -> PooledAnalysis:
    included, excluded = select_rows(frame, analysis)
    included = included.assign(label=included["study"] + np.where(
        included.groupby("study")["arm"].transform("count") > 1, " (" + included["arm"] + ")", ""))
    classes: dict[str, ClassFit] = {}
    for cls, rows in included.groupby(analysis.group_by, sort=True):
        rows = rows.sort_values(["year", "study", "arm"])
        if method == "BAYES" and len(rows) > analysis.bayes.max_k:
            continue    # the Bayesian model is the small-k method (docs/methods-small-k.md)
        try:
            if len(rows) == 1:
                classes[cls] = ClassFit(cls, rows, _single(rows, analysis), pooled=False)
            else:
                classes[cls] = ClassFit(cls, rows, _fit(method, rows, analysis), pooled=True)
        # A model that cannot be fitted (bad counts, no convergence) is reported in the
        # tables, never hidden; any other exception is a bug and propagates.
        except (ValueError, RuntimeError) as exc:
            classes[cls] = ClassFit(cls, rows, None, pooled=False, error=f"{type(exc).__name__}: {exc}")
    pooled = {c: f.result for c, f in classes.items() if f.pooled and f.result is not None}
    notes = []
    if method == "BAYES":
        q = df = p = None
        notes.append("test for subgroup differences not computed for the Bayesian model")
    elif len(pooled) >= 2:
        q, df, p = subgroup_test(pooled)
    else:
        q = df = p = None
        notes.append("test for subgroup differences not computed: fewer than two classes with k >= 2")
    shown = {c: f.result for c, f in classes.items() if f.result is not None}
    sub = SubgroupResult(groups=shown, Qbetween=q, Qbetween_df=df, Qbetween_p=p, notes=tuple(notes))
    return PooledAnalysis(analysis, method, classes, sub, included, excluded)


def pooled_rows(pa: PooledAnalysis) -> list[dict]:
    """Rows of results/pooled.csv for one analysis and method."""
    out = []
    for cls, fit in pa.classes.items():
        if not fit.pooled and fit.error is None and pa.method != pa.analysis.primary_method:
            continue  # a single study is the same under every method: one row, under the primary
        res = fit.result
        row = dict(analysis=pa.analysis.id, variant=pa.analysis.variant, population=pa.analysis.population,
                   outcome=pa.analysis.outcome, regimen_class=cls,
                   method=pa.method if fit.pooled or fit.error else "not pooled (k = 1)",
                   primary=pa.method == pa.analysis.primary_for(len(fit.rows)),
                   k=len(fit.rows), n_total=int(fit.rows["n"].sum()),
                   estimate=None, ci_lb=None, ci_ub=None, pi_lb=None, pi_ub=None, tau2=None, I2=None,
                   Qbetween=pa.subgroups.Qbetween, Qbetween_p=pa.subgroups.Qbetween_p,
                   studies=";".join(fit.rows["label"]), error=fit.error)
        if res is not None:
            ci_lb, ci_ub, pi_lb, pi_ub = res.reporting_interval()
            row.update(estimate=res.estimate, ci_lb=ci_lb, ci_ub=ci_ub, tau2=res.tau2, I2=res.I2)
            if fit.pooled:
                row.update(pi_lb=pi_lb, pi_ub=pi_ub)
        out.append(row)
    return out


def study_level_rows(pa: PooledAnalysis) -> pd.DataFrame:
    cols = STUDY_LEVEL_COLUMNS + ["unit_of_analysis", "disease", "label"]
    return pa.included[cols].assign(derived=pa.included["derived"].astype(bool), analysis=pa.analysis.id,
                                    variant=pa.analysis.variant)


def excluded_rows(pa: PooledAnalysis) -> pd.DataFrame:
    cols = ["study", "arm", "population", "outcome", "regimen_class", "events", "n", "percent", "reason"]
    return pa.excluded[[c for c in cols if c in pa.excluded]].assign(analysis=pa.analysis.id,
                                                                    variant=pa.analysis.variant)


def pooled_table(frame: pd.DataFrame, analyses, *, primary_only: bool = False) -> pd.DataFrame:
    """Pooled rows (as in results/pooled.csv) for several analyses and their methods."""
    rows = []
    for analysis in analyses:
        methods = analysis.methods[:1] if primary_only else analysis.methods
        for method in methods:
            rows += pooled_rows(pool(frame, analysis, method))
    return pd.DataFrame(rows)


def excluded_table(frame: pd.DataFrame, analyses) -> pd.DataFrame:
    """Every candidate row that did not enter the analyses, with the reason."""
    parts = [excluded_rows(pool(frame, a, a.primary_method)) for a in analyses]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
