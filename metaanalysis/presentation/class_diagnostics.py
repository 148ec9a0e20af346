"""The sensitivity page's view of one pooled class: the fit's summary (metafor style),
leave-one-out, influence diagnostics, Egger's test, funnel and Baujat plots and the cumulative
meta-analysis by publication year, read from the review's `ClassDiagnostics` (computed once by
the pipeline, on the class's logit fit); nothing is fitted here."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from matplotlib.figure import Figure

from metaanalysis.engine.diagnostics import EggerResult
from metaanalysis.engine.transforms import apply_transform
from metaanalysis.evidence.vocabulary import regimen_labels
from metaanalysis.presentation.diagnostic_plots import baujat_plot, cumulative_plot, funnel_plot
from metaanalysis.presentation.figures import short_arm
from metaanalysis.presentation.labels import MISSING, cite, fmt_number, fmt_p, fmt_percent_ci
from metaanalysis.presentation.tables import analysis_title
from metaanalysis.review.class_diagnostics import MIN_K
from metaanalysis.review.result import ClassDiagnostics, Review


@dataclass(frozen=True)
class ClassPage:
    title: str
    summary: str
    leave_one_out: pd.DataFrame
    influence: pd.DataFrame
    egger: EggerResult
    figures: dict[str, Figure]


def class_pages(review: Review, citations: dict[str, str], arms=None) -> list[ClassPage]:
    """One page section per diagnosed class, in the order of the analyses."""
    titles = {a.id: analysis_title(a) for a in review.plan.analyses}
    return [present(d, titles.get(d.analysis, d.analysis), citations, arms) for d in review.diagnostics]


def present(d: ClassDiagnostics, analysis: str, citations: dict[str, str], arms=None) -> ClassPage:
    title = f"{analysis}, {regimen_labels().get(d.regimen_class, d.regimen_class).lower()}"
    res = d.fit
    short = {key: short_arm(v) for key, v in (arms or {}).items()}

    def name(x: str) -> str:
        return cite(x, citations, short)

    back = (lambda x: apply_transform(res.transform, x)) if res.transform else (lambda x: x)
    l1o = d.leave_one_out
    loo = pd.DataFrame(
        {
            "Study left out": l1o["study"].map(name),
            "Estimate (95 % CI)": [
                fmt_percent_ci(back(r.estimate), back(r.ci_lb), back(r.ci_ub)) for r in l1o.itertuples()
            ],
            "τ²": l1o["tau2"].map(lambda v: fmt_number(v, 3)),
            "I² (%)": l1o["I2"].map(lambda v: fmt_number(v, 0)),
            "Q": l1o["QE"].map(lambda v: fmt_number(v, 2)),
            "p (Q)": l1o["QEp"].map(fmt_p),
        }
    )
    infl = d.influence
    inf_table = pd.DataFrame(
        {
            "Study": infl["study"].map(name),
            "rstudent": infl["rstudent"].map(lambda v: fmt_number(v, 2)),
            "DFFITS": infl["dffits"].map(lambda v: fmt_number(v, 2)),
            "Cook's distance": infl["cook_d"].map(lambda v: fmt_number(v, 3)),
            "cov.r": infl["cov_r"].map(lambda v: fmt_number(v, 3)),
            "τ² without": infl["tau2_del"].map(lambda v: fmt_number(v, 3)),
            "Q without": infl["QE_del"].map(lambda v: fmt_number(v, 2)),
            "hat": infl["hat"].map(lambda v: fmt_number(v, 3)),
            "Weight (%)": infl["weight"].map(lambda v: fmt_number(v, 1)),
            "Influential": infl["influential"].map(lambda f: "yes" if f else "no"),
        }
    )
    labels = [name(x) for x in res.studies.study]
    baujat = d.baujat.assign(study=d.baujat["study"].map(name))
    steps = d.cumulative.assign(added=d.cumulative["added"].map(name))
    figures = {
        "funnel": funnel_plot(
            res,
            d.egger,
            title=f"Funnel plot: {title}",
            labels=labels,
            xlabel=f"{'Logit proportion' if res.measure == 'PLO' else res.measure} (model scale)",
        ),
        "baujat": baujat_plot(baujat, title=f"Baujat plot: {title}"),
        "cumulative": cumulative_plot(steps, title=f"Cumulative meta-analysis by publication year: {title}"),
    }
    return ClassPage(title, res.summary(), loo, inf_table, d.egger, figures)


def egger_text(e: EggerResult) -> str:
    stat = "t" if e.test != "z" else "z"
    return (
        f"Egger's regression test (rma with the standard error as moderator, {e.method}): slope "
        f"{e.slope:.3f} (se {e.slope_se:.3f}), {stat} = {e.zval:.2f}, p = {fmt_p(e.pval)}; k = {e.k}."
        + (
            " Fewer than 10 studies: the test has too little power to rule small-study effects in or out."
            if e.k < 10
            else ""
        )
    )


__all__ = ["class_pages", "present", "egger_text", "ClassPage", "MIN_K", "MISSING"]
