"""Reader-facing tables: pooled rows formatted as a clinician reads them.

Numbers are computed elsewhere (`pooling`); this module only formats and
reshapes them, e.g. "47.7 [39.9, 55.6]" in percent.
"""
from __future__ import annotations

import pandas as pd

from metaanalysis.living.pooling import pooled_table
from metaanalysis.evidence.vocabulary import outcome_labels, regimen_labels

POPULATION_LABELS = {"after_car_t": "After CAR-T failure", "after_bispecific": "After bispecific-antibody failure",
                     "after_car_t_and_bispecific": "After CAR-T and bispecific failure"}


def analysis_title(analysis) -> str:
    """E.g. "Overall response (CR + PR) after CAR-T failure"."""
    population = POPULATION_LABELS.get(analysis.population, analysis.population)
    return f"{outcome_labels().get(analysis.outcome, analysis.outcome)} {population[0].lower()}{population[1:]}"


def _pct(x) -> str:
    return "" if pd.isna(x) else f"{100 * x:.1f}"


def _interval(row, lb: str, ub: str) -> str:
    return "" if pd.isna(row[lb]) else f"[{_pct(row[lb])}, {_pct(row[ub])}]"


def readable(pooled: pd.DataFrame) -> pd.DataFrame:
    """Pooled rows (results/pooled.csv columns) as a table of labels and percentages."""
    if pooled.empty:
        return pd.DataFrame()
    classes, outcomes = regimen_labels(), outcome_labels()
    return pd.DataFrame({
        "Population": pooled["population"].map(POPULATION_LABELS).fillna(pooled["population"]),
        "Outcome": pooled["outcome"].map(outcomes).fillna(pooled["outcome"]),
        "Regimen class": pooled["regimen_class"].map(classes).fillna(pooled["regimen_class"]),
        "Method": pooled["method"],
        "k": pooled["k"], "N": pooled["n_total"],
        "Estimate % [95% CI]": [f"{_pct(r.estimate)} {_interval(r, 'ci_lb', 'ci_ub')}".strip() if pd.notna(r.estimate)
                                else f"not estimated: {r.error}" for _, r in pooled.iterrows()],
        "95% prediction interval": [_interval(r, "pi_lb", "pi_ub") for _, r in pooled.iterrows()],
        # to_numeric: a table of single studies holds only None here (object dtype)
        "tau^2": pd.to_numeric(pooled["tau2"]).round(4), "I^2 %": pd.to_numeric(pooled["I2"]).round(1),
        "Studies": pooled["studies"].str.replace(";", "; "),
    })


def by_method(frame: pd.DataFrame, analyses) -> pd.DataFrame:
    """Pooled classes (k >= 2) side by side under every declared method."""
    table = pooled_table(frame, analyses)
    table = table[table["k"] >= 2]
    if table.empty:
        return pd.DataFrame()
    cell = table.apply(lambda r: f"{_pct(r.estimate)} {_interval(r, 'ci_lb', 'ci_ub')}", axis=1)
    return (table.assign(cell=cell)
            .pivot_table(index=["analysis", "regimen_class", "k"], columns="method", values="cell", aggfunc="first"))


def by_variant(frame: pd.DataFrame, plan) -> pd.DataFrame:
    """Primary-method estimates of every pooled class under each sensitivity variant."""
    parts = [pooled_table(frame, plan.analyses, primary_only=True)]
    parts += [pooled_table(frame, [v.apply(a) for a in plan.analyses], primary_only=True) for v in plan.sensitivity]
    table = pd.concat(parts, ignore_index=True)
    pooled_keys = table.loc[table["k"] >= 2, ["analysis", "regimen_class"]].drop_duplicates()
    table = table.merge(pooled_keys, on=["analysis", "regimen_class"])
    if table.empty:
        return pd.DataFrame()
    cell = table.apply(lambda r: f"{_pct(r.estimate)} {_interval(r, 'ci_lb', 'ci_ub')} (k = {r.k})", axis=1)
    labels = {"primary": "primary", **{v.id: v.label for v in plan.sensitivity}}
    wide = (table.assign(cell=cell, variant=table["variant"].map(labels))
            .pivot_table(index=["analysis", "regimen_class"], columns="variant", values="cell", aggfunc="first"))
    return wide.reindex(columns=[c for c in labels.values() if c in wide.columns]).fillna("no study left")
