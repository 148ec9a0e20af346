"""The report's first page: a summary of findings, then the pages.

For each population and outcome: the primary estimate of every regimen class (as the pipeline
decided it, read from the review) with its interval, prediction interval, k and N, and what limits
the certainty of that number (few studies, heterogeneity, few patients). Then the run date, the
data cut-off (the date of the last search session), the toolkit version and the methods, each
method described once by the method registry. Nothing here pools or fits.
"""

from __future__ import annotations

import html
from datetime import datetime
from importlib import metadata

import pandas as pd

from metaanalysis.engine.methods import SINGLE, describe
from metaanalysis.engine.methods import label as method_label
from metaanalysis.evidence.vocabulary import outcome_labels, regimen_labels
from metaanalysis.presentation.labels import (
    MISSING,
    arm_labels,
    citation_labels,
    cite_list,
    fmt_count,
    fmt_interval,
    fmt_percent_ci,
    is_missing,
    population_label,
    symbols,
)
from metaanalysis.presentation.style import PAGE_CSS, styled
from metaanalysis.review.result import Review

NOT_POOLED = SINGLE


def toolkit_version() -> str:
    try:
        return metadata.version("metaanalysis")
    except metadata.PackageNotFoundError:
        from metaanalysis import __version__

        return __version__


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


def summary_of_findings(review: Review) -> dict[str, pd.DataFrame]:
    """Population label -> table (Outcome, Regimen class, Method, Estimate (95 % interval),
    95 % prediction interval, k, N, Studies, Caveats), one row per class: its primary estimate."""
    rows = review.primary_rows()
    if rows.empty:
        return {}
    records = list(review.records)
    citations, arms = citation_labels(records), arm_labels(records)
    outcomes, classes = outcome_labels(), regimen_labels()
    out = {}
    populations = {a.id: population_label(a) for a in review.plan.analyses}
    for population, part in rows.groupby(rows["analysis"].map(populations), sort=False):
        table = pd.DataFrame(
            {
                "Outcome": part["outcome"].map(outcomes).fillna(part["outcome"]).map(symbols),
                "Regimen class": part["regimen_class"].map(classes).fillna(part["regimen_class"]),
                "Method": part["method"].map(method_label),
                "Estimate (95 % interval)": [
                    fmt_percent_ci(r.estimate, r.ci_lb, r.ci_ub, missing="not estimable") for r in part.itertuples()
                ],
                "95 % prediction interval": [fmt_interval(r.pi_lb, r.pi_ub) for r in part.itertuples()],
                "k": part["k"].map(fmt_count),
                "N": part["n_total"].map(fmt_count),
                "Studies": part["studies"].map(lambda s: cite_list(s, citations, arms)),
                "Caveats": [caveats(r) for _, r in part.iterrows()],
            }
        )
        # one outcome label per block of rows, as a journal table groups them
        table["Outcome"] = table["Outcome"].where(table["Outcome"].ne(table["Outcome"].shift()), "")
        out[population] = table.reset_index(drop=True)
    return out


def primary_rule_text(review: Review) -> str:
    """The analyses file's rule, in words: which method is primary for which classes."""
    if not review.plan.analyses:
        return MISSING
    rules = review.plan.analyses[0].primary
    parts = []
    for rule in rules:
        when = []
        if rule.max_k is not None:
            when.append(f"2 to {rule.max_k} studies")
        if rule.extreme_arm is not None:
            when.append("with a 0 % or 100 % arm" if rule.extreme_arm else "without a 0 % or 100 % arm")
        parts.append(f"{method_label(rule.method)} for {', '.join(when) if when else 'every other class'}")
    return "; ".join(parts) + "; a class with one study shows that study's proportion"


def methods_paragraph(review: Review) -> str:
    """Each method the summary shows, described once by the method registry, with its settings."""
    shown = list(dict.fromkeys(m for m in review.primary_rows()["method"] if m != SINGLE))
    if not review.plan.analyses:
        return MISSING
    a = review.plan.analyses[0]
    return " ".join(f"{method_label(m)}: {describe(m, a.inverse_variance, a.bayes.tau_prior, a.level)}." for m in shown)


def _date(text: str | None) -> str:
    if not text:
        return MISSING
    try:
        return datetime.fromisoformat(text).strftime("%d %B %Y")
    except ValueError:
        return text


def index_page(review: Review, pages: list[tuple[str, str]]) -> str:
    sof = summary_of_findings(review)
    blocks = (
        "".join(f"<h3>{html.escape(pop)}</h3>{styled(table)}" for pop, table in sof.items())
        or "<p>No pooled estimate yet.</p>"
    )
    links = "".join(f"<li><a href='{html.escape(name)}'>{html.escape(title)}</a></li>" for name, title in pages)
    facts = [
        ("Run date", _date(review.computed)),
        ("Data cut-off (last search of the literature)", _date(review.last_search)),
        ("Studies in the evidence base", str(len(review.studies))),
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
<p>Proportion of patients with the outcome, pooled per regimen class with its primary method
({html.escape(primary_rule_text(review))}). The interval is a 95 % credible interval for a Bayesian
estimate and a 95 % confidence interval otherwise (for a single study, its exact Clopper-Pearson
interval); the prediction interval is where a new cohort's true rate is expected to lie.
Caveats name what limits certainty (number of studies, heterogeneity, patients).
Studies are non-randomised cohorts and trial subgroups: classes are not compared head to head.</p>
{blocks}
<h2>Methods</h2>
<p>{html.escape(methods_paragraph(review))} Heterogeneity: τ (posterior median and credible interval)
for Bayesian estimates, τ² and I² otherwise. The test for subgroup differences (GLMM class estimates)
is shown with its permutation test on the forest plots and the sensitivity page. Sensitivity
analyses (other models; without derived counts, treatment-course units, mixed B-NHL populations,
overlapping cohorts, prior-exposure cohorts, low-confidence records and congress abstracts) are on
the sensitivity page.</p>
<h2>Pages</h2>
<ol class="pages">{links}</ol>
</main></body></html>
"""


__all__ = ["summary_of_findings", "index_page", "caveats", "toolkit_version", "methods_paragraph"]
