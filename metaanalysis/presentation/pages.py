"""What the notebooks call: each page is a few calls on the computed review.

    review = open_review(RESULTS_DIR)                # results/review.json, as the run wrote it
    outcome_page(review, RESULTS_DIR, ("ORR", "CR")) # the response page: table, then forest plots

A page never pools, fits or re-reads the study files: it shows the review and the figures the run
drew from it (`results/figures/`), and draws a figure in memory only when its file is missing.
Nothing is written into the results folder.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from IPython.display import display

from metaanalysis.evidence.validation import study_files
from metaanalysis.presentation.display import markdown, show_figure, show_saved_figure
from metaanalysis.presentation.figures import analysis_forest, comparison_forests, subgroup_text
from metaanalysis.presentation.labels import arm_labels, citation_labels, population_label
from metaanalysis.presentation.style import paper_table
from metaanalysis.presentation.tables import comparison_table, readable
from metaanalysis.review.result import Review
from metaanalysis.review.result_io import FILE_NAME, load_review

RESPONSE = ("ORR", "CR")


def open_review(results_dir: str | Path, studies_dir: str | Path | None = None) -> Review:
    """The review the last run computed. With `studies_dir` (a notebook opened in JupyterLab), a
    note when a study file changed after the review was computed: the page shows the computed
    review, never a recomputation."""
    review = load_review(results_dir)
    if studies_dir is not None and Path(studies_dir).is_dir():
        computed = (Path(results_dir) / FILE_NAME).stat().st_mtime
        files, _ = study_files(studies_dir)
        newer = sorted(f.name for f in files if os.stat(f).st_mtime > computed)
        if newer:
            display(
                markdown(
                    f"**Note:** {len(newer)} study file(s) changed after this review was computed "
                    f"({', '.join(newer[:5])}{', ...' if len(newer) > 5 else ''}). The page shows the "
                    "review as computed; run `python3 make.py run` to bring it up to date."
                )
            )
    return review


def labels(review: Review) -> tuple[dict, dict]:
    records = list(review.records)
    return citation_labels(records), arm_labels(records)


def primary_table(review: Review, analyses) -> object:
    """Each class's primary estimate for these analyses, as the summary of findings shows it."""
    citations, arms = labels(review)
    ids = {a.id for a in analyses}
    rows = review.primary_rows()
    populations = {a.id: population_label(a) for a in review.plan.analyses}
    return paper_table(readable(rows[rows["analysis"].isin(ids)], citations, arms, populations), numeric=("k", "N"))


def forest_figures(review: Review, results_dir: str | Path, analyses) -> None:
    """The forest plot of each analysis: the file the run drew, or the same drawing in memory."""
    citations, arms = labels(review)
    for a in analyses:  # each plot prints its own subgroup tests, named by their models
        result = review.analysis(a.id)
        show_saved_figure(results_dir, a.id, lambda result=result: analysis_forest(result, citations, arms))


def _cite_ids(text: str, citations: dict[str, str]) -> str:
    """A reason as the run wrote it ("superseded by tongren2025_preprint"), with study ids cited."""
    return re.sub(r"[A-Za-z0-9_]+", lambda m: citations.get(m.group(0), m.group(0)), str(text))


def without_studies(review: Review, analyses) -> list[str]:
    """One line per declared analysis that no study row entered, with the candidate rows the run
    set aside and why: a page shows every outcome it promises, if only to say it has no data."""
    from metaanalysis.presentation.tables import analysis_title

    citations, _ = labels(review)
    lines = []
    for a in analyses:
        result = review.analysis(a.id)
        if result.classes:
            continue
        why = [
            f"{citations.get(r.study, r.study)}: {_cite_ids(r.reason, citations)}"
            for r in result.excluded.drop_duplicates(["study", "reason"]).itertuples()
        ]
        lines.append(
            f"- **{analysis_title(a)}**: no study row can be pooled"
            + (f" ({'; '.join(why)})." if why else "; no study reports it.")
        )
    return lines


def outcome_page(review: Review, results_dir: str | Path, outcomes=RESPONSE, *, exclude: bool = False) -> None:
    """The response page (`outcomes` = ORR, CR) or the safety page (every other outcome, exclude=True)."""
    chosen = [a for a in review.plan.analyses if (a.outcome in outcomes) != exclude]
    display(primary_table(review, chosen))
    missing = without_studies(review, chosen)
    if missing:
        display(markdown("**Declared but without data to pool:**\n\n" + "\n".join(missing)))
    display(markdown("## Forest plots"))
    forest_figures(review, results_dir, chosen)


def comparisons_section(review: Review, results_dir: str | Path) -> None:
    """Two-arm comparisons within a study, as the run computed and drew them."""
    citations, arms = labels(review)
    for comp in review.comparisons:
        study, exp, ctrl = (
            comp.table["study"].iloc[0],
            comp.table["experimental"].iloc[0],
            comp.table["control"].iloc[0],
        )
        names = (arms.get((study, exp), exp), arms.get((study, ctrl), ctrl))
        display(paper_table(comparison_table(comp.table, names), caption=comp.title))
        for measure in comp.by_measure:
            show_saved_figure(
                results_dir,
                f"{comp.id}_{measure}",
                lambda comp=comp, measure=measure: comparison_forests(comp, citations, arms)[measure],
            )


__all__ = [
    "open_review",
    "labels",
    "primary_table",
    "forest_figures",
    "outcome_page",
    "without_studies",
    "comparisons_section",
    "show_figure",
]


# -- the sensitivity page ------------------------------------------------------------------------
def diagnostics_section(review: Review) -> None:
    """For every diagnosed class (k >= MIN_K): the fit, leave-one-out, influence(), Egger, plots."""
    from metaanalysis.presentation.class_diagnostics import MIN_K, class_pages, egger_text

    citations, arms = labels(review)
    pages = class_pages(review, citations, arms)
    for page in pages:
        display(markdown(f"### {page.title}"))
        print(page.summary)
        display(paper_table(page.leave_one_out, caption="Leave-one-out"))
        display(paper_table(page.influence, caption="Influence diagnostics (metafor's influence())"))
        display(markdown(egger_text(page.egger)))
        for name, figure in page.figures.items():
            show_figure(figure, alt=f"{name} plot: {page.title}")
    if not pages:
        display(markdown(f"No class has {MIN_K} or more studies yet."))


def resampling_section(review: Review) -> None:
    """The permutation test of the class factor, beside the chi-square test, and the GOSH plot."""
    from metaanalysis.evidence.vocabulary import regimen_labels
    from metaanalysis.presentation.gosh_plot import gosh_plot
    from metaanalysis.presentation.tables import analysis_title

    r = review.resampling
    if r is None:
        display(markdown("No analysis has two or more pooled classes yet."))
        return
    result = review.analysis(r.analysis)
    names = ", ".join(regimen_labels().get(c, c) for c in r.classes)
    lines = [f"**{analysis_title(result.analysis)}**: {r.k} studies in {len(r.classes)} classes ({names})."]
    lines += subgroup_text(result.subgroup_test)
    display(markdown("  \n".join(lines)))
    if r.gosh is not None:
        citations, arms = labels(review)
        from metaanalysis.presentation.labels import cite

        cls = regimen_labels().get(r.regimen_class, r.regimen_class)
        fig = gosh_plot(
            r.gosh,
            out=r.gosh_highlight,
            ylabel=f"pooled logit, {cls}",
            title=f"GOSH: {cls}, subsets with {cite(r.gosh_highlight, citations, arms)} in red",
        )
        show_figure(fig, alt=f"GOSH plot: {cls}")
