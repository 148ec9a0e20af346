"""The project's forest plots, drawn the same way by `run` and by the notebooks: studies cited
("Thieblemont 2023"), classes and outcomes by label, two-arm comparisons with counts per arm."""

from __future__ import annotations

import re

from matplotlib.figure import Figure

from metaanalysis.evidence.vocabulary import outcome_labels, regimen_labels
from metaanalysis.presentation.forest import forest_plot
from metaanalysis.presentation.labels import cite
from metaanalysis.presentation.tables import analysis_title

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


def analysis_forest(pa, citations: dict[str, str] | None = None, arms=None, **options) -> Figure | None:
    """The forest plot of one pooled analysis (living.pooling.PooledAnalysis); None if no class has a study."""
    if not pa.subgroups.groups:
        return None
    return forest_plot(
        pa.subgroups,
        title=analysis_title(pa.analysis),
        group_labels=regimen_labels(),
        study_labels=_study_labels(pa.subgroups, citations, arms),
        **options,
    )


def comparison_forests(comparison, citations: dict[str, str] | None = None, arms=None) -> dict[str, Figure]:
    """Measure -> forest plot of a two-arm comparison (living.comparisons.ArmComparison)."""
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


__all__ = ["analysis_forest", "comparison_forests", "short_arm"]
