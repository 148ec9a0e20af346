"""The report's first page: a summary of findings, then the pages.

For each population and outcome: the pooled estimate per regimen class (primary method) with
its CI, k and N, and what limits the certainty of that number (few studies, heterogeneity, few
patients). Then the run date, the data cut-off (the newest study), the toolkit version and the
methods. Read from the run's `results/pooled.csv` and `results/studies.csv`; computed from the
study records where a report is built without them (the tests).
"""

from __future__ import annotations

import datetime as dt
import html
from importlib import metadata
from pathlib import Path

import pandas as pd

from metaanalysis.evidence.vocabulary import outcome_labels, regimen_labels
from metaanalysis.presentation.labels import (
    MISSING,
    POPULATION_LABELS,
    arm_labels,
    citation_labels,
    cite_list,
    fmt_count,
    fmt_percent_ci,
    is_missing,
    symbols,
)
from metaanalysis.presentation.style import PAGE_CSS, styled

NOT_POOLED = "not pooled (k = 1)"
METHOD_TEXT = {
    "GLMM": "binomial-normal random-intercept GLMM (maximum likelihood, adaptive Gauss-Hermite quadrature "
    "with 7 points; R meta's default for single-arm proportions), Wald 95 % CI",
    "PLO": "inverse-variance random effects on the logit scale (REML τ², Hartung-Knapp-Sidik-Jonkman CI)",
    "PFT": "inverse-variance random effects on the Freeman-Tukey double-arcsine scale (REML τ², "
    "Hartung-Knapp-Sidik-Jonkman CI)",
    "PAS": "inverse-variance random effects on the arcsine scale (REML τ², Hartung-Knapp-Sidik-Jonkman CI)",
    "PR": "inverse-variance random effects on raw proportions (REML τ², Hartung-Knapp-Sidik-Jonkman CI)",
}


def toolkit_version() -> str:
    try:
        return metadata.version("metaanalysis")
    except metadata.PackageNotFoundError:
        from metaanalysis import __version__

        return __version__


def primary_rows(pooled: pd.DataFrame) -> pd.DataFrame:
    """The primary row of every class: pooled.csv's `primary` flag (the primary method can depend
    on k: docs/methods-small-k.md); without that column, the first method listed for an analysis."""
    if pooled.empty:
        return pooled
    if "primary" in pooled.columns:
        flag = pooled["primary"].astype(str).str.lower().isin(("true", "1"))
        return pooled[flag | pooled["method"].eq(NOT_POOLED)]
    primary = {
        a: next(m for m in g["method"] if m != NOT_POOLED) if (g["method"] != NOT_POOLED).any() else None
        for a, g in pooled.groupby("analysis", sort=False)
    }
    keep = pooled["method"].eq(NOT_POOLED) | pooled.apply(lambda r: r["method"] == primary[r["analysis"]], axis=1)
    return pooled[keep]


def caveats(row) -> str:
    """What limits the certainty of one pooled number (not a GRADE rating)."""
    out = []
    k = int(row["k"])
    if not is_missing(row.get("error")) and row.get("error"):
        return "model could not be fitted"
    if k == 1:
        out.append("single study, not pooled")
    elif k == 2:
        out.append("2 studies: heterogeneity cannot be judged")
    elif k < 5:
        out.append(f"{k} studies: τ² imprecise")
    i2 = row.get("I2")
    if k >= 2 and not is_missing(i2):
        if i2 >= 75:
            out.append(f"considerable heterogeneity (I² = {i2:.0f} %)")
        elif i2 >= 50:
            out.append(f"substantial heterogeneity (I² = {i2:.0f} %)")
        elif i2 >= 30:
            out.append(f"moderate heterogeneity (I² = {i2:.0f} %)")
    if not is_missing(row.get("n_total")) and int(row["n_total"]) < 100:
        out.append(f"{int(row['n_total'])} patients")
    return "; ".join(out) or MISSING


def summary_of_findings(
    pooled: pd.DataFrame, citations: dict[str, str], arms: dict[tuple[str, str], str] | None = None
) -> dict[str, pd.DataFrame]:
    """Population label -> table (Outcome, Regimen class, Estimate (95 % CI), k, N, Studies, Caveats)."""
    rows = primary_rows(pooled)
    if rows.empty:
        return {}
    outcomes, classes = outcome_labels(), regimen_labels()
    out = {}
    for population, part in rows.groupby("population", sort=False):
        table = pd.DataFrame(
            {
                "Outcome": part["outcome"].map(outcomes).fillna(part["outcome"]).map(symbols),
                "Regimen class": part["regimen_class"].map(classes).fillna(part["regimen_class"]),
                "Estimate (95 % CI)": [
                    fmt_percent_ci(r.estimate, r.ci_lb, r.ci_ub, missing="not estimable") for r in part.itertuples()
                ],
                "k": part["k"].map(fmt_count),
                "N": part["n_total"].map(fmt_count),
                "Studies": part["studies"].map(lambda s: cite_list(s, citations, arms)),
                "Caveats": [caveats(r) for _, r in part.iterrows()],
            }
        )
        # one outcome label per block of rows, as a journal table groups them
        table["Outcome"] = table["Outcome"].where(table["Outcome"].ne(table["Outcome"].shift()), "")
        out[POPULATION_LABELS.get(population, population)] = table.reset_index(drop=True)
    return out


def _inputs(results_dir: Path | None, studies_dir):
    """(pooled rows, study table, run date, citations, arm labels)."""
    from metaanalysis.evidence.studies import load_records, study_table

    records = load_records(studies_dir) if studies_dir else []
    citations = citation_labels(records)
    pooled_csv = results_dir / "pooled.csv" if results_dir else None
    if pooled_csv is not None and pooled_csv.exists():
        pooled = pd.read_csv(pooled_csv)
        when = dt.datetime.fromtimestamp(pooled_csv.stat().st_mtime)
    elif records:
        from metaanalysis.evidence.studies import outcome_table
        from metaanalysis.review.analyses import load_plan
        from metaanalysis.review.pooling import pooled_table

        pooled = pooled_table(outcome_table(records), load_plan().analyses)  # every method: k decides which is primary
        when = dt.datetime.now()
    else:
        pooled, when = pd.DataFrame(), dt.datetime.now()
    studies = study_table(records) if records else pd.DataFrame(columns=["study", "year"])
    return pooled, studies, when.strftime("%d %B %Y"), citations, arm_labels(records)


def _cutoff(studies: pd.DataFrame, citations: dict[str, str]) -> str:
    years = pd.to_numeric(studies["year"], errors="coerce")
    if years.notna().sum() == 0:
        return MISSING
    newest = studies.loc[years == years.max(), "study"]
    return f"{int(years.max())} (newest: {', '.join(citations.get(s, s) for s in newest)})"


def index_page(pages: list[tuple[str, str]], results_dir: Path | None, *, studies_dir=None) -> str:
    pooled, studies, run_date, citations, arms = _inputs(results_dir, studies_dir)
    sof = summary_of_findings(pooled, citations, arms)
    methods = sorted(set(primary_rows(pooled)["method"]) - {NOT_POOLED}) if not pooled.empty else []
    method_text = "; ".join(f"{m}: {METHOD_TEXT.get(m, m)}" for m in methods) or MISSING
    blocks = (
        "".join(f"<h3>{html.escape(pop)}</h3>{styled(table)}" for pop, table in sof.items())
        or "<p>No pooled estimate yet.</p>"
    )
    links = "".join(f"<li><a href='{html.escape(name)}'>{html.escape(title)}</a></li>" for name, title in pages)
    facts = [
        ("Run date", run_date),
        ("Data cut-off (newest study year)", _cutoff(studies, citations)),
        ("Studies in the evidence base", str(len(studies))),
        ("Toolkit version", f"metaanalysis {toolkit_version()}"),
    ]
    fact_rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in facts)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Salvage after CAR-T or bispecific-antibody failure: living meta-analysis</title>
<style>{PAGE_CSS}</style></head>
<body><main>
<h1>Salvage therapy after CAR-T or bispecific-antibody failure in large B-cell lymphoma</h1>
<p class="lead">A living meta-analysis: every estimate below is traceable to a sentence in a published
report (study records) and to a named method.</p>
<table class="facts">{fact_rows}</table>
<h2>Summary of findings</h2>
<p>Proportion of patients with the outcome, pooled per regimen class with the primary method;
a class with one study shows that study's own proportion and exact (Clopper-Pearson) interval.
Caveats name what limits certainty (number of studies, heterogeneity, patients); they are not a
GRADE rating. Studies are non-randomised cohorts and trial subgroups: classes are not compared
head to head.</p>
{blocks}
<h2>Methods</h2>
<p>Primary method, per regimen class: {html.escape(method_text)}. Heterogeneity: τ² and I²
(separate τ² per class); test for subgroup differences between pooled classes. Sensitivity
analyses (other models; without derived counts, treatment-course units, mixed B-NHL populations
and overlapping cohorts) are on the sensitivity page.</p>
<h2>Pages</h2>
<ol class="pages">{links}</ol>
</main></body></html>
"""


__all__ = ["summary_of_findings", "index_page", "primary_rows", "caveats", "toolkit_version"]
