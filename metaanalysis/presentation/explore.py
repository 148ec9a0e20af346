"""The explore notebook: one analysis redrawn under the method, tau^2 estimator, prior scale and
sensitivity variant a reader picks, from the review the run computed.

    view = explore(review, Choice("orr_after_cart", method="PLO", tau2="DL"))
    view.figure, view.table, view.notes
    explorer(review)   # the same, with ipywidgets controls (JupyterLab)

Nothing is re-read or re-validated: the study rows are the ones the run selected (each analysis
result's `included`), and a fit the run stored is shown as stored. Only a combination the run did
not compute (another tau^2 estimator, prior scale or method) is fitted here, from those rows, with
the registry's `fit_proportion`; such a view says that it is an exploration, not the review's
analysis, and carries no test for subgroup differences (the stored one belongs to other fits).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pandas as pd
from matplotlib.figure import Figure

from metaanalysis.engine.bayes_priors import parse_tau_prior
from metaanalysis.engine.methods import (
    BAYES_BN,
    BAYES_NN,
    GLMM,
    PROPORTION_METHODS,
    SCALES,
    SINGLE,
    TAU2_NAMES,
)
from metaanalysis.presentation.figures import analysis_forest
from metaanalysis.presentation.labels import arm_labels, citation_labels, population_label
from metaanalysis.presentation.tables import readable
from metaanalysis.review.result import POOLED_COLUMNS, AnalysisResult, ClassResult, Review

PRIMARY = "primary"  # each class under the method the run chose for it
BAYESIAN = (BAYES_NN, BAYES_BN)


@dataclass(frozen=True)
class Choice:
    """What the reader picked. None keeps the analyses file's setting."""

    analysis: str
    variant: str = "primary"
    method: str = PRIMARY
    tau2: str | None = None  # an inverse-variance tau^2 estimator (TAU2_NAMES)
    prior_scale: float | None = None  # the half-normal prior's scale on tau (Bayesian methods)


@dataclass(frozen=True)
class View:
    result: AnalysisResult
    figure: Figure | None
    table: pd.DataFrame
    refitted: tuple[str, ...]  # the classes fitted here rather than read from the review
    notes: tuple[str, ...]


def options(review: Review) -> dict[str, list]:
    """The values each control offers."""
    variants = ["primary", *sorted({a.variant for a in review.sensitivity})]
    return {
        "analysis": [a.id for a in review.plan.analyses],
        "variant": variants,
        "method": [PRIMARY, *PROPORTION_METHODS],
        "tau2": list(TAU2_NAMES),
        "prior_scale": [0.25, 0.5, 1.0, 2.0],
    }


def _prior(spec: str, scale: float | None) -> str:
    if scale is None:
        return spec
    return replace(parse_tau_prior(spec), scale=float(scale)).spec  # same family, another scale


def _settings_changed(method: str, stored: AnalysisResult, choice: Choice) -> bool:
    a = stored.analysis
    if method in SCALES:
        return choice.tau2 is not None and choice.tau2 != a.inverse_variance.method
    if method in BAYESIAN:
        return parse_tau_prior(_prior(a.bayes.tau_prior, choice.prior_scale)) != parse_tau_prior(a.bayes.tau_prior)
    return False


def _refit(stored: AnalysisResult, cls: str, method: str, choice: Choice) -> ClassResult:
    """`method` on the class's stored rows, in the order the run fitted them."""
    from metaanalysis.engine.methods import fit_proportion  # the models load only when needed

    a = stored.analysis
    rows = stored.included[stored.included[a.group_by] == cls]
    iv = a.inverse_variance if choice.tau2 is None else replace(a.inverse_variance, method=choice.tau2)
    labels = tuple(rows["label"])
    base = dict(regimen_class=cls, method=method, k=len(rows), n_total=int(rows["n"].sum()), studies=labels)
    try:
        fit = fit_proportion(
            method,
            rows["events"].astype(int).to_numpy(),
            rows["n"].astype(int).to_numpy(),
            studies=labels,
            level=a.level,
            iv=iv,
            tau_prior=_prior(a.bayes.tau_prior, choice.prior_scale),
        )
    except (ValueError, RuntimeError) as exc:  # shown in the table, as the run shows its own
        return ClassResult(**base, fit=None, error=f"{type(exc).__name__}: {exc}")
    return ClassResult(**base, fit=fit)


def explored(review: Review, choice: Choice) -> tuple[AnalysisResult, tuple[str, ...]]:
    """The analysis result under `choice` (the stored one when nothing differs), and the classes
    fitted here."""
    stored = review.analysis(choice.analysis, choice.variant)
    if choice.tau2 is not None and choice.tau2 not in TAU2_NAMES:
        raise ValueError(f"unknown tau^2 estimator {choice.tau2!r}; known: {', '.join(TAU2_NAMES)}")
    if choice.method != PRIMARY and choice.method not in PROPORTION_METHODS:
        raise ValueError(f"unknown method {choice.method!r}; known: {PRIMARY}, {', '.join(PROPORTION_METHODS)}")
    fits: dict[str, dict[str, ClassResult]] = {}
    primary: dict[str, str] = {}
    refitted = []
    for cls in stored.classes:
        stored_method = stored.primary[cls]
        method = stored_method if choice.method == PRIMARY or stored_method == SINGLE else choice.method
        have = stored.fits[cls].get(method)
        if have is None or _settings_changed(method, stored, choice):
            have = _refit(stored, cls, method, choice)
            refitted.append(cls)
        fits[cls] = {method: have}
        if method != GLMM and (glmm := stored.fits[cls].get(GLMM)) is not None:
            fits[cls][GLMM] = glmm  # drawn beside, as on the review's own plots
        primary[cls] = method
    if not refitted and primary == dict(stored.primary):
        return stored, ()
    result = replace(
        stored,
        fits=fits,
        primary=primary,
        # the stored tests compare the run's primary fits; for other fits they would mislead
        subgroup_test=None,
    )
    return result, tuple(refitted)


def explore(review: Review, choice: Choice) -> View:
    """The forest plot and the table of one analysis under `choice`."""
    result, refitted = explored(review, choice)
    records = list(review.records)
    citations, arms = citation_labels(records), arm_labels(records)
    rows = pd.DataFrame([r for r in result.rows() if r["primary"]], columns=POOLED_COLUMNS)
    populations = {a.id: population_label(a) for a in review.plan.analyses}
    table = readable(rows, citations, arms, populations)
    notes = []
    if result is not review.analysis(choice.analysis, choice.variant):
        notes.append(
            "An exploration, not the review's analysis: the estimates below use the settings chosen "
            "here, and no test for subgroup differences is shown."
        )
    if refitted:
        notes.append(f"Fitted here from the run's study rows: {len(refitted)} class(es).")
    if choice.tau2 is not None and not any(m in SCALES for m in result.primary.values()):
        notes.append("The tau^2 estimator applies to the inverse-variance methods (PLO, PFT, PAS, PR) only.")
    if choice.prior_scale is not None and not any(m in BAYESIAN for m in result.primary.values()):
        notes.append("The prior scale applies to the Bayesian methods only.")
    figure = analysis_forest(result, citations, arms)
    return View(result=result, figure=figure, table=table, refitted=refitted, notes=tuple(notes))


def explorer(review: Review, start: Choice | None = None):
    """Controls for every choice; the plot and the table redraw on each change (JupyterLab)."""
    import ipywidgets as widgets
    from IPython.display import display

    from metaanalysis.presentation.display import markdown

    opts = options(review)
    start = start or Choice(opts["analysis"][0])
    controls = {
        "analysis": widgets.Dropdown(options=opts["analysis"], value=start.analysis, description="Analysis"),
        "variant": widgets.Dropdown(options=opts["variant"], value=start.variant, description="Variant"),
        "method": widgets.Dropdown(options=opts["method"], value=start.method, description="Method"),
        "tau2": widgets.Dropdown(
            options=[("as in the analyses file", None), *[(f"{k} ({v})", k) for k, v in TAU2_NAMES.items()]],
            value=start.tau2,
            description="τ² estimator",
        ),
        "prior_scale": widgets.Dropdown(
            options=[("as in the analyses file", None), *[(f"half-normal({s:g})", s) for s in opts["prior_scale"]]],
            value=start.prior_scale,
            description="Prior on τ",
        ),
    }
    out = widgets.Output()

    def redraw(_=None) -> None:
        choice = Choice(**{name: c.value for name, c in controls.items()})
        with out:
            out.clear_output(wait=True)
            try:
                view = explore(review, choice)
            except (KeyError, ValueError) as exc:  # e.g. an analysis without that variant
                display(markdown(f"**Cannot show this choice:** {exc}"))
                return
            show(view)

    for c in controls.values():
        c.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox(list(controls.values())[:3]), widgets.HBox(list(controls.values())[3:]), out])


def show(view: View) -> None:
    """A view on the page as it stands (the report's static copy of what the controls draw)."""
    from IPython.display import display

    from metaanalysis.presentation.display import markdown, show_figure
    from metaanalysis.presentation.style import paper_table

    for note in view.notes:
        display(markdown(f"*{note}*"))
    display(paper_table(view.table, numeric=("k", "N")))
    if view.figure is not None:
        show_figure(view.figure, alt=f"Forest plot {view.result.id} ({view.result.variant})")
