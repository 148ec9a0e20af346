"""Everything the sensitivity page shows for one pooled regimen class: the fit's summary (metafor
style), leave-one-out, influence diagnostics, Egger's test, funnel and Baujat plots and the
cumulative meta-analysis by publication year. Influence diagnostics are defined for
inverse-variance models, so the class is read from its logit (PLO) fit."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from matplotlib.figure import Figure

from metaanalysis.engine.diagnostics import EggerResult, egger_test, leave1out
from metaanalysis.engine.influence import baujat, cumulative, influence
from metaanalysis.engine.transforms import apply_transform
from metaanalysis.presentation.diagnostic_plots import baujat_plot, cumulative_plot, funnel_plot
from metaanalysis.presentation.figures import short_arm
from metaanalysis.presentation.labels import MISSING, cite, fmt_number, fmt_p, fmt_percent_ci, is_missing

MIN_K = 3  # leave-one-out keeps two studies, Egger's regression one residual degree of freedom


@dataclass(frozen=True)
class ClassDiagnostics:
    title: str
    summary: str
    leave_one_out: pd.DataFrame
    influence: pd.DataFrame
    egger: EggerResult
    figures: dict[str, Figure]


def diagnose(class_fit, analysis, title: str, citations: dict[str, str], arms=None) -> ClassDiagnostics | None:
    """`class_fit`: a living.pooling.ClassFit from an inverse-variance (PLO) pooling; None below MIN_K."""
    res = class_fit.result
    if res is None or not class_fit.pooled or res.k < MIN_K:
        return None
    s = res.studies
    short = {key: short_arm(v) for key, v in (arms or {}).items()}
    labels = [cite(x, citations, short) for x in s.study]
    iv = analysis.inverse_variance
    opts = dict(method=iv.method, test=iv.test)
    l1o = leave1out(s.yi, s.vi, studies=labels, level=analysis.level, **opts)
    back = (lambda x: apply_transform(res.transform, x)) if res.transform else (lambda x: x)
    loo = pd.DataFrame(
        {
            "Study left out": l1o["study"],
            "Estimate (95 % CI)": [
                fmt_percent_ci(back(r.estimate), back(r.ci_lb), back(r.ci_ub)) for r in l1o.itertuples()
            ],
            "τ²": l1o["tau2"].map(lambda v: fmt_number(v, 3)),
            "I² (%)": l1o["I2"].map(lambda v: fmt_number(v, 0)),
            "Q": l1o["QE"].map(lambda v: fmt_number(v, 2)),
            "p (Q)": l1o["QEp"].map(fmt_p),
        }
    )
    infl = influence(s.yi, s.vi, studies=labels, **opts)
    inf_table = pd.DataFrame(
        {
            "Study": infl["study"],
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
    egger = egger_test(s.yi, s.vi, method=iv.method, test="z")
    years = [9999 if is_missing(y) else int(y) for y in class_fit.rows["year"]]  # undated reports last
    steps = cumulative(
        s.yi,
        s.vi,
        order=years,
        studies=labels,
        measure=res.measure,
        level=analysis.level,
        pi_method=iv.pi_method,
        **opts,
    )
    figures = {
        "funnel": funnel_plot(
            res,
            egger,
            title=f"Funnel plot: {title}",
            labels=labels,
            xlabel=f"{'Logit proportion' if res.measure == 'PLO' else res.measure} (model scale)",
        ),
        "baujat": baujat_plot(baujat(s.yi, s.vi, studies=labels, **opts), title=f"Baujat plot: {title}"),
        "cumulative": cumulative_plot(steps, title=f"Cumulative meta-analysis by publication year: {title}"),
    }
    return ClassDiagnostics(title, res.summary(), loo, inf_table, egger, figures)


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


__all__ = ["diagnose", "egger_text", "ClassDiagnostics", "MIN_K", "MISSING"]
