"""The report's first page: a summary of findings, then the pages.

For each population and outcome: the primary estimate of every regimen class (as the pipeline
decided it, read from the review) with its interval, prediction interval, k and N, its GRADE
certainty and the footnotes that give the reasons (`findings.py`); then survival. Then the run date, the
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
from metaanalysis.presentation.findings import FindingsTable, findings_tables
from metaanalysis.presentation.labels import MISSING
from metaanalysis.presentation.style import PAGE_CSS, styled
from metaanalysis.review.certainty import SYMBOLS, WORDS
from metaanalysis.review.result import Review

NOT_POOLED = SINGLE
CERTAINTY_LEGEND = ", ".join(f"{SYMBOLS[level]} {WORDS[level]}" for level in sorted(WORDS, reverse=True))


def toolkit_version() -> str:
    try:
        return metadata.version("metaanalysis")
    except metadata.PackageNotFoundError:
        from metaanalysis import __version__

        return __version__


def summary_of_findings(review: Review) -> dict[str, pd.DataFrame]:
    """Table title -> its rows (findings.COLUMNS): every primary estimate with its certainty and
    footnote letters (the footnote texts: `findings_tables`)."""
    return {t.title: t.table for t in findings_tables(review)}


def facts(review: Review) -> list[tuple[str, str]]:
    """What a reader needs to date the summary: run, data cut-off (last search), studies, version."""
    return [
        ("Run date", _date(review.computed)),
        ("Data cut-off (last search of the literature)", _date(review.last_search)),
        ("Studies in the evidence base", str(len(review.studies))),
        ("Toolkit version", f"metaanalysis {toolkit_version()}"),
    ]


def findings_html(table: FindingsTable) -> str:
    """One summary table with its footnotes below it, lettered as its cells name them."""
    notes = "".join(f"<li>{html.escape(text, quote=False)}</li>" for text in table.footnotes)
    return f"<h3>{html.escape(table.title, quote=False)}</h3>{styled(table.table)}" + (
        f"<ol class='footnotes' type='a'>{notes}</ol>" if notes else ""
    )


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
    blocks = "".join(findings_html(t) for t in findings_tables(review)) or "<p>No pooled estimate yet.</p>"
    links = "".join(f"<li><a href='{html.escape(name)}'>{html.escape(title)}</a></li>" for name, title in pages)
    fact_rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in facts(review))
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
({html.escape(primary_rule_text(review))}); then median survival and survival at landmarks. The
interval is a 95 % credible interval for a Bayesian estimate and a 95 % confidence interval otherwise
(for a single study, its exact Clopper-Pearson interval); the prediction interval is where a new
cohort's true value is expected to lie. Studies are non-randomised cohorts and trial subgroups:
classes are not compared head to head.</p>
<p>Certainty (GRADE): {CERTAINTY_LEGEND}. Absolute estimates start High, as GRADE rates overall
prognosis from cohorts (Iorio et al., BMJ 2015;350:h870), and are rated down for risk of bias (JBI
checklist per study), inconsistency, indirectness (trial subgroups with any prior exposure, mixed
B-cell lymphoma populations, treatment courses), imprecision and publication bias. Each footnote
names a reason for rating down, with its numbers, or something a reader should know that was not
rated down; the rule and its thresholds are in the toolkit's docs/grade.md.</p>
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


__all__ = ["summary_of_findings", "index_page", "facts", "findings_html", "toolkit_version", "methods_paragraph"]
