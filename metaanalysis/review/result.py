"""The review, computed once: every analysis under every method and sensitivity variant, with the
primary method of each class decided once, plus survival, comparisons and diagnostics.

`review.compute.compute_review()` builds a `Review`; the pipeline writes it to
`results/review.json` (`review.result_io`, documented in docs/review-result.md) beside the CSV
tables, which are views of it (`Review.pooled_table()` is `results/pooled.csv`). The notebooks, the
report, the summary of findings and the change report read it; none of them fits or pools.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from metaanalysis.engine.diagnostics import EggerResult
from metaanalysis.engine.methods import SINGLE
from metaanalysis.engine.resampling import GoshResult
from metaanalysis.engine.results import Fit, SubgroupResult
from metaanalysis.evidence.search_log import PrismaCounts
from metaanalysis.review.analyses import Analysis, Plan
from metaanalysis.review.comparisons import ArmComparison

POOLED_COLUMNS = [
    "analysis",
    "variant",
    "population",
    "outcome",
    "regimen_class",
    "method",
    "primary",
    "k",
    "n_total",
    "estimate",
    "ci_lb",
    "ci_ub",
    "pi_lb",
    "pi_ub",
    "tau2",
    "tau",
    "tau_ci_lb",
    "tau_ci_ub",
    "I2",
    "Qbetween",
    "Qbetween_p",
    "Qbetween_method",
    "Qbetween_permutation_p",
    "studies",
    "error",
]


@dataclass(frozen=True)
class ClassResult:
    """One regimen class of one analysis under one method."""

    regimen_class: str
    method: str  # a key of engine.methods.METHODS (SINGLE for a class with one study)
    k: int
    n_total: int
    studies: tuple[str, ...]  # the study labels, in fitting order
    fit: Fit | None  # None when the model could not be fitted (see `error`)
    error: str | None = None

    @property
    def pooled(self) -> bool:
        return self.method != SINGLE and self.fit is not None


@dataclass(frozen=True)
class SubgroupTest:
    """The test for subgroup differences of one analysis, named by the model it is computed from.

    `Q`, `df`, `p`: Cochran's Q between the classes' estimates under `method` (separate tau^2 per
    class, R meta's default). `permutation_p`: metafor's permutest() of the mixed-effects
    meta-regression of the study logits on the class (REML, `iterations` random label orders),
    which leans on no large-sample theory. Both are shown together wherever one is shown."""

    method: str
    Q: float | None
    df: int | None
    p: float | None
    permutation_QM: float | None = None
    permutation_p: float | None = None
    permutation_iterations: int | None = None
    permutation_exact: bool = False
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class AnalysisResult:
    """One declared analysis in one variant (the primary one or a sensitivity variant)."""

    analysis: Analysis
    classes: tuple[str, ...]  # regimen classes with at least one study, sorted
    fits: Mapping[str, Mapping[str, ClassResult]]  # class -> method -> result
    primary: Mapping[str, str]  # class -> its primary method (decided once, by the plan's rule)
    extreme_arm: Mapping[str, bool]  # class -> holds a 0 % or 100 % arm (the rule may depend on it)
    included: pd.DataFrame  # study rows that entered (results/study_level.csv)
    excluded: pd.DataFrame  # candidate rows that did not, with the reason (results/excluded.csv)
    subgroup_test: SubgroupTest | None = None

    @property
    def id(self) -> str:
        return self.analysis.id

    @property
    def variant(self) -> str:
        return self.analysis.variant

    def primary_result(self, cls: str) -> ClassResult:
        return self.fits[cls][self.primary[cls]]

    def alternatives(self, cls: str) -> list[ClassResult]:
        """The class's other fitted methods, in the plan's order."""
        return [r for m, r in self.fits[cls].items() if m != self.primary[cls]]

    def method_groups(self, method: str) -> SubgroupResult:
        """The classes' fits under one method (single-study classes as they are), for plots and tests."""
        groups = {}
        for cls in self.classes:
            res = self.fits[cls].get(method) or self.fits[cls].get(SINGLE)
            if res is not None and res.fit is not None:
                groups[cls] = res.fit
        return SubgroupResult(groups=groups, Qbetween=None, Qbetween_df=None, Qbetween_p=None)

    def primary_groups(self) -> SubgroupResult:
        """Each class under its primary method: what the forest plot draws first."""
        groups = {c: f for c in self.classes if (f := self.primary_result(c).fit) is not None}
        t = self.subgroup_test
        return SubgroupResult(
            groups=groups,
            Qbetween=t.Q if t else None,
            Qbetween_df=t.df if t else None,
            Qbetween_p=t.p if t else None,
        )

    def rows(self) -> list[dict[str, Any]]:
        """The rows of results/pooled.csv (or sensitivity.csv) for this analysis."""
        a, t = self.analysis, self.subgroup_test
        out = []
        for cls in self.classes:
            for method, r in self.fits[cls].items():
                row: dict[str, Any] = dict.fromkeys(POOLED_COLUMNS)
                row.update(
                    analysis=a.id,
                    variant=a.variant,
                    population=a.population,
                    outcome=a.outcome,
                    regimen_class=cls,
                    method=method,
                    primary=method == self.primary[cls],
                    k=r.k,
                    n_total=r.n_total,
                    studies=";".join(r.studies),
                    error=r.error,
                )
                if t is not None:
                    row.update(
                        Qbetween=t.Q, Qbetween_p=t.p, Qbetween_method=t.method, Qbetween_permutation_p=t.permutation_p
                    )
                if r.fit is not None:
                    row.update(estimate=r.fit.estimate, tau2=r.fit.tau2, I2=r.fit.I2, **_tau(r.fit))
                    row["ci_lb"], row["ci_ub"] = r.fit.interval()
                    if r.pooled:
                        row["pi_lb"], row["pi_ub"] = r.fit.prediction()
                out.append(row)
        return out


def _tau(fit: Fit) -> dict[str, float | None]:
    """tau (not tau^2) with its interval: the posterior median and credible interval of a Bayesian
    fit, the square root of the Q-profile interval of an inverse-variance one, else none."""
    f: Any = fit
    if f.tau2 is None:
        return dict(tau=None, tau_ci_lb=None, tau_ci_ub=None)
    if fit.bayesian:
        return dict(tau=f.tau, tau_ci_lb=f.tau_ci_lb, tau_ci_ub=f.tau_ci_ub)
    lb, ub = getattr(f, "tau2_ci_lb", None), getattr(f, "tau2_ci_ub", None)
    return dict(
        tau=f.tau2**0.5,
        tau_ci_lb=None if lb is None else max(lb, 0.0) ** 0.5,
        tau_ci_ub=None if ub is None else max(ub, 0.0) ** 0.5,
    )


@dataclass(frozen=True)
class ClassDiagnostics:
    """Influence and small-study diagnostics of one pooled class, from its logit (PLO) fit, which is
    an inverse-variance model as metafor's influence() needs: leave-one-out, influence() measures,
    Egger's regression, Baujat coordinates and the cumulative meta-analysis by publication year."""

    analysis: str
    regimen_class: str
    fit: Fit
    leave_one_out: pd.DataFrame
    influence: pd.DataFrame
    egger: EggerResult
    baujat: pd.DataFrame
    cumulative: pd.DataFrame


@dataclass(frozen=True)
class Resampling:
    """The permutation test and GOSH of the sensitivity page: the analysis with the most pooled
    studies, and within it the class with the most studies."""

    analysis: str
    regimen_class: str
    classes: tuple[str, ...]
    k: int
    QM: float | None
    permutation_p: float | None
    iterations: int | None
    exact: bool
    gosh: GoshResult | None
    gosh_highlight: str | None  # the class's largest study, coloured in the plot


@dataclass(frozen=True)
class Review:
    """Everything one run computed. Views: `pooled_table()`, `sensitivity_table()`,
    `study_level_table()`, `excluded_table()`, `primary_rows()`."""

    toolkit_version: str
    computed: str  # UTC time, ISO 8601
    plan: Plan
    records: tuple[dict, ...]  # the study records as read (labels, references, quotes)
    analyses: tuple[AnalysisResult, ...]  # the primary variant of every declared analysis
    sensitivity: tuple[AnalysisResult, ...]  # every analysis under every sensitivity variant
    comparisons: tuple[ArmComparison, ...]  # two-arm comparisons within a study
    landmarks: pd.DataFrame
    medians: pd.DataFrame
    hazard_ratios: pd.DataFrame
    hazard_ratio_fits: Mapping[str, Fit]
    diagnostics: tuple[ClassDiagnostics, ...]
    resampling: Resampling | None
    studies: pd.DataFrame  # the evidence base, one row per study (results/studies.csv)
    prisma: PrismaCounts | None = None  # the PRISMA 2020 counts of the search log
    last_search: str | None = None  # the date of the newest search session (the data cut-off)
    syntheses: pd.DataFrame | None = None  # published pooled estimates, set beside ours (never pooled)
    certainty: pd.DataFrame | None = None  # GRADE of every primary estimate (review.grading, docs/grade.md)
    notes: tuple[str, ...] = field(default=())

    def analysis(self, analysis_id: str, variant: str = "primary") -> AnalysisResult:
        for a in self.analyses if variant == "primary" else self.sensitivity:
            if a.id == analysis_id and a.variant == variant:
                return a
        raise KeyError(f"no analysis {analysis_id!r} in variant {variant!r}")

    def pooled_table(self) -> pd.DataFrame:
        return _frame([r for a in self.analyses for r in a.rows()], POOLED_COLUMNS)

    def sensitivity_table(self) -> pd.DataFrame:
        return _frame([r for a in self.sensitivity for r in a.rows()], POOLED_COLUMNS)

    def primary_rows(self) -> pd.DataFrame:
        """One row per class of every analysis: its primary estimate (what every page leads with)."""
        table = self.pooled_table()
        return table[table["primary"].astype(bool)].reset_index(drop=True)

    def study_level_table(self) -> pd.DataFrame:
        return _stack([a.included for a in self.analyses])

    def comparisons_table(self) -> pd.DataFrame:
        """results/comparisons.csv"""
        return pd.concat([c.table for c in self.comparisons], ignore_index=True) if self.comparisons else pd.DataFrame()

    def excluded_table(self) -> pd.DataFrame:
        return _stack([a.excluded for a in self.analyses])


def _stack(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """The parts one below the other; with no rows at all, still their columns."""
    full = [p for p in parts if len(p)]
    if full:
        return pd.concat(full, ignore_index=True)
    return parts[0].iloc[:0].reset_index(drop=True) if parts else pd.DataFrame()


def _frame(rows: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=columns) if rows else pd.DataFrame(columns=columns)


__all__ = [
    "Review",
    "AnalysisResult",
    "ClassResult",
    "SubgroupTest",
    "ClassDiagnostics",
    "Resampling",
    "POOLED_COLUMNS",
]
