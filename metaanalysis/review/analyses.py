"""The declared analyses (`data/analyses.yaml`): what `metaanalysis run` pools.

The file is read and checked as the study records are (`analyses_format.py`): a declaration
error names the file, the line and the field of every problem, all at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from metaanalysis.engine.methods import METHODS, SINGLE, IVSettings
from metaanalysis.evidence.problems import Problem
from metaanalysis.evidence.schema import UNITS
from metaanalysis.review.analyses_format import (  # noqa: F401 (MEDIAN_COHORTS, EXCLUSIONS: names read from here)
    DEFAULT_METHODS,
    EXCLUSIONS,
    MEDIAN_COHORTS,
    check_plan_file,
)


class AnalysisDeclarationError(ValueError):
    """The analyses file is malformed; the message lists every problem."""


@dataclass(frozen=True, slots=True)
class BayesSettings:
    """The Bayesian methods (BAYES-NN, BAYES-BN): the prior on tau, and the largest class they are
    fitted for (they are the small-k methods: docs/methods-small-k.md)."""

    tau_prior: str = "halfnormal:1.0"
    max_k: int = 4


@dataclass(frozen=True, slots=True)
class PrimaryRule:
    """One rule of `defaults.primary`: `method` is primary for a class with at most `max_k`
    studies (any k when None) that has (True), has not (False) or may have (None) a 0 % or 100 %
    arm. The first rule that matches a class decides; the last rule must match every class."""

    method: str
    max_k: int | None = None
    extreme_arm: bool | None = None

    def matches(self, k: int, extreme_arm: bool) -> bool:
        return (self.max_k is None or k <= self.max_k) and (self.extreme_arm is None or self.extreme_arm == extreme_arm)


@dataclass(frozen=True, slots=True)
class Analysis:
    """One outcome in one population, pooled by regimen class."""

    id: str
    population: str
    outcome: str
    methods: tuple[str, ...]
    units: tuple[str, ...]
    level: float
    inverse_variance: IVSettings
    group_by: str = "regimen_class"
    # sensitivity switches (the primary analysis has them all off)
    exclude_derived: bool = False
    exclude_overlapping: bool = False
    diseases: tuple[str, ...] | None = None
    exclude: tuple[str, ...] = ()  # names from EXCLUSIONS
    variant: str = "primary"
    bayes: BayesSettings = BayesSettings()
    primary: tuple[PrimaryRule, ...] = (PrimaryRule("GLMM"),)
    # population.selection values that enter (None: every selection); e.g. (after_failure,) pools
    # failure cohorts only and lists prior-exposure cohorts with the reason
    selections: tuple[str, ...] | None = None

    def primary_for(self, k: int, extreme_arm: bool = False) -> str:
        """The primary method of a class with k studies (SINGLE for one study): the first rule that
        matches. Decided once per class, by the pipeline; every page reads that decision."""
        if k == 1:
            return SINGLE
        return next(r.method for r in self.primary if r.matches(k, extreme_arm))

    def fitted(self, method: str, k: int) -> bool:
        """Whether `method` is fitted for a class of k >= 2 studies (the Bayesian ones up to bayes.max_k)."""
        return k >= 2 and (not METHODS[method].bayesian or k <= self.bayes.max_k)


@dataclass(frozen=True, slots=True)
class Landmark:
    id: str
    population: str
    endpoint: str
    months: float
    level: float
    inverse_variance: IVSettings


@dataclass(frozen=True, slots=True)
class TimingStratum:
    id: str
    label: str
    members: tuple[str, ...]  # "study/subgroup" ids, as each paper split its cohort


@dataclass(frozen=True, slots=True)
class MedianAnalysis:
    """Median survival pooled across cohorts (MM, WM, and inverse variance from printed CIs)."""

    id: str
    label: str
    population: str
    endpoint: str
    cohorts: str  # one of MEDIAN_COHORTS
    level: float
    inverse_variance: IVSettings
    timing: tuple[TimingStratum, ...] = ()


@dataclass(frozen=True, slots=True)
class HazardRatioAnalysis:
    """Hazard ratios for one comparison, pooled by generic inverse variance where k >= 2."""

    id: str
    label: str
    population: str
    comparisons: tuple[str, ...]  # the comparison texts of the records that mean this
    level: float
    inverse_variance: IVSettings


@dataclass(frozen=True, slots=True)
class Comparison:
    id: str
    label: str
    study: str
    experimental: str
    control: str
    outcomes: tuple[str, ...]
    measures: tuple[str, ...]
    level: float


@dataclass(frozen=True, slots=True)
class Sensitivity:
    id: str
    label: str
    exclude_derived: bool = False
    exclude_overlapping: bool = False
    units: tuple[str, ...] | None = None
    diseases: tuple[str, ...] | None = None
    exclude: tuple[str, ...] = ()

    def apply(self, analysis: Analysis) -> Analysis:
        return replace(
            analysis,
            exclude=tuple(dict.fromkeys(analysis.exclude + self.exclude)),
            exclude_derived=self.exclude_derived or analysis.exclude_derived,
            exclude_overlapping=self.exclude_overlapping or analysis.exclude_overlapping,
            units=self.units if self.units is not None else analysis.units,
            diseases=self.diseases if self.diseases is not None else analysis.diseases,
            variant=self.id,
        )


@dataclass(frozen=True, slots=True)
class Plan:
    analyses: tuple[Analysis, ...]
    landmarks: tuple[Landmark, ...]
    comparisons: tuple[Comparison, ...]
    sensitivity: tuple[Sensitivity, ...]
    source: str = field(default="")
    medians: tuple[MedianAnalysis, ...] = ()
    hazard_ratios: tuple[HazardRatioAnalysis, ...] = ()


def default_path() -> Path:
    return Path(str(resources.files("metaanalysis") / "data" / "analyses.yaml"))


def load_plan(path: str | Path | None = None) -> Plan:
    """The plan an analyses file declares; AnalysisDeclarationError listing every problem, each as
    `file:line: field: problem`, when the file breaks its format (`analyses_format.py`)."""
    path = Path(path) if path is not None else default_path()
    parsed, problems = check_plan_file(path)
    if parsed is None:
        raise AnalysisDeclarationError("\n".join(_problem_line(p) for p in problems))
    return _build(parsed.data, str(path))


def _problem_line(p: Problem) -> str:
    where = f"{p.file}:{p.line}" if p.line is not None else p.file
    # The reader says "malformed YAML" of study records; this file's message has said "not valid YAML".
    message = re.sub(r"^malformed YAML: ", "not valid YAML: ", p.message)
    return f"{where}: {p.path}: {message}" if p.path else f"{where}: {message}"


def _build(raw: dict[str, Any], source: str) -> Plan:
    """The Plan of a file that passed its checks: every default filled in."""
    d = raw.get("defaults") or {}
    iv = IVSettings(**d.get("inverse_variance", {}))
    level = float(d.get("level", 0.95))
    methods = tuple(d.get("methods", DEFAULT_METHODS))
    units = tuple(d.get("units", UNITS))
    bayes = BayesSettings(**d.get("bayes", {}))
    primary = tuple(PrimaryRule(**r) for r in d.get("primary", [{"method": methods[0]}]))
    group_by = d.get("group_by", "regimen_class")

    def entries(section: str) -> list[dict[str, Any]]:
        return raw.get(section) or []

    def one_or_list(value: str | list[str]) -> tuple[str, ...]:
        return (value,) if isinstance(value, str) else tuple(value)

    analyses = tuple(
        Analysis(
            id=e["id"],
            population=e["population"],
            outcome=e["outcome"],
            methods=tuple(e.get("methods", methods)),
            units=tuple(e.get("units", units)),
            level=level,
            inverse_variance=iv,
            group_by=e.get("group_by", group_by),
            bayes=bayes,
            primary=primary,
            selections=one_or_list(e["selection"]) if "selection" in e else None,
        )
        for e in entries("analyses")
    )
    landmarks = tuple(
        Landmark(
            id=e["id"],
            population=e["population"],
            endpoint=e["endpoint"],
            months=float(e["months"]),
            level=level,
            inverse_variance=iv,
        )
        for e in entries("landmarks")
    )
    comparisons = tuple(
        Comparison(
            id=e["id"],
            label=e.get("label", e["id"]),
            study=e["study"],
            experimental=e["experimental"],
            control=e["control"],
            outcomes=tuple(e.get("outcomes", ())),
            measures=tuple(e.get("measures", ("OR", "RD"))),
            level=level,
        )
        for e in entries("comparisons")
    )
    sensitivity = tuple(
        Sensitivity(
            id=e["id"],
            label=e.get("label", e["id"]),
            exclude=tuple(e.get("exclude", ())),
            exclude_derived=e.get("exclude_derived", False),
            exclude_overlapping=e.get("exclude_overlapping", False),
            units=tuple(e["units"]) if "units" in e else None,
            diseases=tuple(e["diseases"]) if "diseases" in e else None,
        )
        for e in entries("sensitivity")
    )
    medians = tuple(
        MedianAnalysis(
            id=e["id"],
            label=e.get("label", e["id"]),
            population=e["population"],
            endpoint=e["endpoint"],
            cohorts=e["cohorts"],
            level=level,
            inverse_variance=iv,
            timing=tuple(
                TimingStratum(sid, t.get("label", sid), tuple(t["subgroups"])) for sid, t in e.get("timing", {}).items()
            ),
        )
        for e in entries("medians")
    )
    hazard_ratios = tuple(
        HazardRatioAnalysis(
            id=e["id"],
            label=e.get("label", e["id"]),
            population=e["population"],
            comparisons=tuple(e["comparisons"]),
            level=level,
            inverse_variance=iv,
        )
        for e in entries("hazard_ratios")
    )
    return Plan(
        analyses,
        landmarks,
        comparisons,
        sensitivity,
        source=source,
        medians=medians,
        hazard_ratios=hazard_ratios,
    )
