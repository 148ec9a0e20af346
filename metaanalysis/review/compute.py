"""Compute the whole review once: `compute_review(records, plan)` -> `Review`.

Every declared analysis under every method (and every sensitivity variant), the primary method
of every class decided once, the test for subgroup differences with its permutation test,
two-arm comparisons, survival (medians, hazard ratios, landmark rates), the class diagnostics and
resampling of the sensitivity page, the GRADE certainty of every primary estimate, and the
published syntheses set beside ours. Nothing that
presents the review computes any of it again.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from metaanalysis import __version__
from metaanalysis.evidence.search_log import SearchLog, prisma_counts
from metaanalysis.evidence.studies import outcome_table, study_table
from metaanalysis.review.analyses import Plan
from metaanalysis.review.class_diagnostics import diagnose, resampling
from metaanalysis.review.class_differences import subgroup_test
from metaanalysis.review.comparisons import compare_arms
from metaanalysis.review.grading import certainty_table
from metaanalysis.review.pooling import pool_analysis
from metaanalysis.review.result import Review
from metaanalysis.review.survival import survival_tables


def compute_review(
    records: list[dict],
    plan: Plan,
    *,
    search_log: SearchLog | None = None,
    syntheses: pd.DataFrame | None = None,
    now: datetime | None = None,
) -> Review:
    frame = outcome_table(records)
    fits: dict = {}  # every class fit of this review, by its rows and settings
    pooled = [pool_analysis(frame, a, fits) for a in plan.analyses]
    analyses = tuple(replace(r, subgroup_test=subgroup_test(r)) for r in pooled)
    sensitivity = tuple(pool_analysis(frame, v.apply(a), fits) for a in plan.analyses for v in plan.sensitivity)
    surv = survival_tables(records, plan)
    diagnostics = tuple(d for r in analyses for d in diagnose(r))
    studies = study_table(records)
    return Review(
        toolkit_version=__version__,
        computed=(now or datetime.now(UTC)).isoformat(timespec="seconds"),
        plan=plan,
        records=tuple(records),
        analyses=analyses,
        sensitivity=sensitivity,
        comparisons=tuple(compare_arms(frame, c) for c in plan.comparisons),
        landmarks=surv["landmarks.csv"],
        medians=surv["survival_medians.csv"],
        hazard_ratios=surv["survival_hazard_ratios.csv"],
        hazard_ratio_fits=surv["hazard_ratio_fits"],
        diagnostics=diagnostics,
        resampling=resampling(analyses),
        studies=studies,
        certainty=certainty_table(
            analyses, surv["survival_medians.csv"], records, studies, diagnostics, surv["landmarks.csv"]
        ),
        prisma=None if search_log is None else prisma_counts(search_log),
        last_search=None if search_log is None else last_search(search_log),
        syntheses=syntheses,
    )


def last_search(log: SearchLog) -> str | None:
    """The date of the newest search session: the data cut-off of the review."""
    days = [e.date for e in log.entries if e.date is not None]
    return max(days).isoformat() if days else None


def review_inputs(review_dir: Path) -> dict:
    """The syntheses beside the search log, as compute_review takes them (empty when none)."""
    from metaanalysis.evidence.syntheses import load_syntheses, synthesis_table

    folder = Path(review_dir) / "syntheses"
    if not folder.is_dir():
        return {}
    syntheses, _ = load_syntheses(folder)  # validated by check_review before the run gets here
    return {"syntheses": synthesis_table(syntheses)}


__all__ = ["compute_review", "last_search", "review_inputs"]
