"""The project's forest plots, drawn the same way by `run` and by the notebooks: studies cited
("Thieblemont 2023"), classes and outcomes by label, two-arm comparisons with counts per arm."""

from __future__ import annotations

import re

from matplotlib.figure import Figure

from metaanalysis.engine.methods import GLMM
from metaanalysis.evidence.vocabulary import outcome_labels, regimen_labels
from metaanalysis.presentation.forest import forest_plot
from metaanalysis.presentation.forest_text import fmt_p
from metaanalysis.presentation.labels import cite
from metaanalysis.presentation.tables import analysis_title
from metaanalysis.review.result import AnalysisResult, SubgroupTest

MEASURE_NAMES = {"OR": "odds ratio", "RD": "risk difference", "RR": "risk ratio"}


def short_arm(label: str) -> str:
    """An arm's label without its parenthetical, for a plot's narrow label column."""
    return re.sub(r"\s*\([^)]*\)", "", str(label)).strip() or str(label)


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text[1:2].islower() else text  # "Second CAR-T" -> "second CAR-T"


def _study_labels(result, citations, arms) -> dict[str, str]:
    short = {key: short_arm(v) for key, v in (arms or {}).items()}
    return {
        s: cite(s, citations or {}, short)
        for res in result.groups.values()
        if res.studies is not None
        for s in res.studies.study
    }


def subgroup_text(test: SubgroupTest | None) -> list[str]:
    """The lines about subgroup differences, each naming its model; both tests where both exist."""
    if test is None:
        return []
    lines = []
    if test.Q is not None:
        lines.append(
            f"Test for subgroup differences ({test.method} class estimates, separate τ² per class): "
            f"Q = {test.Q:.2f}, df = {test.df}, {fmt_p(test.p)}"
        )
    if test.permutation_p is not None:
        how = "all" if test.permutation_exact else f"{test.permutation_iterations:,}"
        lines.append(
            f"Permutation test (logit meta-regression on class, REML; {how} label orders): {fmt_p(test.permutation_p)}"
        )
    return lines


def analysis_forest(result: AnalysisResult, citations: dict[str, str] | None = None, arms=None, **options):
    """The forest plot of one analysis: each class under its primary method (decided by the
    pipeline), the GLMM drawn beneath a Bayesian primary estimate as the named alternative, and
    the subgroup tests named by their models. None if no class has a study."""
    primary = result.primary_groups()
    if not primary.groups:
        return None
    beside = {}
    for cls in primary.groups:
        if result.primary[cls] != GLMM and (alt := result.fits[cls].get(GLMM)) is not None and alt.fit is not None:
            beside[cls] = alt.fit
    return forest_plot(
        primary,
        title=analysis_title(result.analysis),
        group_labels=regimen_labels(),
        study_labels=_study_labels(primary, citations, arms),
        beside=beside or None,
        subgroup_text=subgroup_text(result.subgroup_test),
        **options,
    )


def comparison_forests(comparison, citations: dict[str, str] | None = None, arms=None) -> dict[str, Figure]:
    """Measure -> forest plot of a two-arm comparison (review.comparisons.ArmComparison)."""
    t = comparison.table
    names = {}
    for role, col in (("exp", "experimental"), ("ctrl", "control")):
        study, arm = t["study"].iloc[0], t[col].iloc[0]
        names[role] = short_arm((arms or {}).get((study, arm), arm))
    counts = {(r.outcome, r.study): (r.events_exp, r.n_exp, r.events_ctrl, r.n_ctrl) for r in t.itertuples()}
    out = {}
    for measure, sub in comparison.by_measure.items():
        title = f"{comparison.title}: {MEASURE_NAMES.get(measure, measure)}"
        # outcomes of benefit and of harm share one plot: say where events were more frequent,
        # not which arm is "favoured"
        out[measure] = forest_plot(
            sub,
            title=title,
            group_labels=outcome_labels(),
            study_labels=_study_labels(sub, citations, arms),
            arm_names=(names["exp"], names["ctrl"]),
            arm_counts=counts,
            favours=(f"more often with {_lower_first(names['ctrl'])}", f"more often with {_lower_first(names['exp'])}"),
        )
    return out


__all__ = ["analysis_forest", "comparison_forests", "short_arm", "subgroup_text"]
