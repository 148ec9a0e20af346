"""The declared analyses (`data/analyses.yaml`): what `metaanalysis run` pools.

A declaration error names the file, the entry and the field, and every problem
is reported at once, like the study-record validator.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from metaanalysis.engine.methods import METHODS, PROPORTION_METHODS, SINGLE, IVSettings
from metaanalysis.evidence.schema import SELECTIONS
from metaanalysis.evidence.vocabulary import POPULATIONS

UNITS = ("patients", "treatment_courses")
# whole: the whole cohort failing the prior therapy (arm role "overall", no subgroup);
# by_class: treatment arms by regimen class; by_timing: the declared `timing` strata.
MEDIAN_COHORTS = ("whole", "by_class", "by_timing")
# Rows a sensitivity variant may leave out by name (`exclude: [...]`); pooling.ROW_EXCLUSIONS says how.
EXCLUSIONS = ("prior_exposure", "low_confidence", "congress_abstracts")


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
    path = Path(path) if path is not None else default_path()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise AnalysisDeclarationError(f"{path}: not valid YAML: {exc}") from None
    problems: list[str] = []
    if not isinstance(raw, dict):
        raise AnalysisDeclarationError(f"{path}: top level must be a mapping")
    unknown = set(raw) - {"defaults", "analyses", "landmarks", "comparisons", "sensitivity", "medians", "hazard_ratios"}
    problems += [f"{path}: unknown top-level key {k!r}" for k in sorted(unknown)]

    d = raw.get("defaults") or {}
    iv = IVSettings(**{k: v for k, v in (d.get("inverse_variance") or {}).items()})
    level = float(d.get("level", 0.95))
    methods = tuple(d.get("methods", ("GLMM", "PLO", "PFT")))
    units = tuple(d.get("units", UNITS))
    try:
        bayes = BayesSettings(**(d.get("bayes") or {}))
    except TypeError as exc:
        problems.append(f"{path}: defaults.bayes: {exc} (allowed: tau_prior, max_k)")
        bayes = BayesSettings()
    primary = []
    for i, r in enumerate(d.get("primary") or [{"method": methods[0] if methods else "GLMM"}]):
        try:
            rule = PrimaryRule(**r)
        except TypeError as exc:
            problems.append(f"{path}: defaults.primary[{i}]: {exc} (allowed: method, max_k, extreme_arm)")
            continue
        if rule.method not in methods:
            problems.append(f"{path}: defaults.primary[{i}].method: {rule.method!r} is not among defaults.methods")
        elif METHODS[rule.method].bayesian and (rule.max_k is None or rule.max_k > bayes.max_k):
            problems.append(
                f"{path}: defaults.primary[{i}].max_k: {rule.method} is fitted for k <= bayes.max_k = {bayes.max_k} "
                "only; a rule making it primary needs max_k within that"
            )
        primary.append(rule)
    if primary and (primary[-1].max_k is not None or primary[-1].extreme_arm is not None):
        problems.append(
            f"{path}: defaults.primary: the last rule must have no condition (it decides every other class)"
        )
    try:
        from metaanalysis.engine.bayes_priors import parse_tau_prior

        parse_tau_prior(bayes.tau_prior)
    except ValueError as exc:
        problems.append(f"{path}: defaults.bayes.tau_prior: {exc}")

    seen: set[str] = set()

    def entry_id(kind: str, i: int, e: Any) -> str | None:
        if not isinstance(e, dict) or "id" not in e:
            problems.append(f"{path}: {kind}[{i}]: needs a mapping with an 'id'")
            return None
        if e["id"] in seen:
            problems.append(f"{path}: {kind}[{i}].id: duplicate id {e['id']!r}")
        seen.add(e["id"])
        return e["id"]

    def check_keys(kind: str, i: int, e: dict, allowed: set[str]) -> None:
        for k in sorted(set(e) - allowed):
            problems.append(f"{path}: {kind}[{i}].{k}: unknown key (allowed: {', '.join(sorted(allowed))})")

    analyses = []
    for i, e in enumerate(raw.get("analyses") or []):
        if entry_id("analyses", i, e) is None:
            continue
        check_keys("analyses", i, e, {"id", "population", "outcome", "methods", "units", "group_by", "selection"})
        chosen = e.get("selection", [])
        chosen = [chosen] if isinstance(chosen, str) else list(chosen)
        bad = [x for x in chosen if x not in SELECTIONS]
        if bad:
            problems.append(f"{path}: analyses[{i}].selection: unknown {bad} (known: {', '.join(SELECTIONS)})")
        ms = tuple(e.get("methods", methods))
        bad = [m for m in ms if m not in PROPORTION_METHODS]
        if bad:
            problems.append(f"{path}: analyses[{i}].methods: unknown {bad} (known: {', '.join(PROPORTION_METHODS)})")
        if e.get("population") not in POPULATIONS:
            problems.append(f"{path}: analyses[{i}].population: {e.get('population')!r} is not one of {POPULATIONS}")
        if not e.get("outcome"):
            problems.append(f"{path}: analyses[{i}].outcome: missing")
        analyses.append(
            Analysis(
                id=e["id"],
                population=e.get("population"),
                outcome=e.get("outcome"),
                methods=ms,
                units=tuple(e.get("units", units)),
                level=level,
                inverse_variance=iv,
                group_by=e.get("group_by", d.get("group_by", "regimen_class")),
                bayes=bayes,
                primary=tuple(primary),
                selections=tuple(chosen) if "selection" in e else None,
            )
        )

    landmarks = []
    for i, e in enumerate(raw.get("landmarks") or []):
        if entry_id("landmarks", i, e) is None:
            continue
        check_keys("landmarks", i, e, {"id", "population", "endpoint", "months"})
        if e.get("population") not in POPULATIONS:
            problems.append(f"{path}: landmarks[{i}].population: {e.get('population')!r} is not one of {POPULATIONS}")
        landmarks.append(
            Landmark(
                id=e["id"],
                population=e.get("population"),
                endpoint=e.get("endpoint"),
                months=float(e.get("months", 0)),
                level=level,
                inverse_variance=iv,
            )
        )

    comparisons = []
    for i, e in enumerate(raw.get("comparisons") or []):
        if entry_id("comparisons", i, e) is None:
            continue
        check_keys("comparisons", i, e, {"id", "label", "study", "experimental", "control", "outcomes", "measures"})
        bad = [m for m in e.get("measures", []) if m not in ("OR", "RR", "RD")]
        if bad:
            problems.append(f"{path}: comparisons[{i}].measures: unknown {bad} (known: OR, RR, RD)")
        comparisons.append(
            Comparison(
                id=e["id"],
                label=e.get("label", e["id"]),
                study=e.get("study"),
                experimental=e.get("experimental"),
                control=e.get("control"),
                outcomes=tuple(e.get("outcomes", ())),
                measures=tuple(e.get("measures", ("OR", "RD"))),
                level=level,
            )
        )

    sensitivity = []
    for i, e in enumerate(raw.get("sensitivity") or []):
        if entry_id("sensitivity", i, e) is None:
            continue
        check_keys(
            "sensitivity",
            i,
            e,
            {"id", "label", "exclude_derived", "exclude_overlapping", "units", "diseases", "exclude"},
        )
        bad = [x for x in e.get("exclude", []) if x not in EXCLUSIONS]
        if bad:
            problems.append(f"{path}: sensitivity[{i}].exclude: unknown {bad} (known: {', '.join(EXCLUSIONS)})")
        sensitivity.append(
            Sensitivity(
                id=e["id"],
                label=e.get("label", e["id"]),
                exclude=tuple(x for x in e.get("exclude", []) if x in EXCLUSIONS),
                exclude_derived=bool(e.get("exclude_derived", False)),
                exclude_overlapping=bool(e.get("exclude_overlapping", False)),
                units=tuple(e["units"]) if "units" in e else None,
                diseases=tuple(e["diseases"]) if "diseases" in e else None,
            )
        )
    medians = []
    for i, e in enumerate(raw.get("medians") or []):
        if entry_id("medians", i, e) is None:
            continue
        check_keys("medians", i, e, {"id", "label", "population", "endpoint", "cohorts", "timing"})
        if e.get("population") not in POPULATIONS:
            problems.append(f"{path}: medians[{i}].population: {e.get('population')!r} is not one of {POPULATIONS}")
        if e.get("cohorts") not in MEDIAN_COHORTS:
            problems.append(f"{path}: medians[{i}].cohorts: {e.get('cohorts')!r} is not one of {MEDIAN_COHORTS}")
        timing = []
        for sid, t in (e.get("timing") or {}).items():
            members = tuple((t or {}).get("subgroups") or ())
            if not members or any(str(m).count("/") != 1 for m in members):
                problems.append(f"{path}: medians[{i}].timing.{sid}.subgroups: needs 'study/subgroup' ids")
            timing.append(TimingStratum(sid, (t or {}).get("label", sid), members))
        if (e.get("cohorts") == "by_timing") != bool(timing):
            problems.append(f"{path}: medians[{i}].timing: required with cohorts: by_timing, and only then")
        medians.append(
            MedianAnalysis(
                id=e["id"],
                label=e.get("label", e["id"]),
                population=e.get("population"),
                endpoint=e.get("endpoint"),
                cohorts=e.get("cohorts"),
                level=level,
                inverse_variance=iv,
                timing=tuple(timing),
            )
        )

    hazard_ratios = []
    for i, e in enumerate(raw.get("hazard_ratios") or []):
        if entry_id("hazard_ratios", i, e) is None:
            continue
        check_keys("hazard_ratios", i, e, {"id", "label", "population", "comparisons"})
        if e.get("population") not in POPULATIONS:
            problems.append(
                f"{path}: hazard_ratios[{i}].population: {e.get('population')!r} is not one of {POPULATIONS}"
            )
        if not e.get("comparisons"):
            problems.append(f"{path}: hazard_ratios[{i}].comparisons: missing")
        hazard_ratios.append(
            HazardRatioAnalysis(
                id=e["id"],
                label=e.get("label", e["id"]),
                population=e.get("population"),
                comparisons=tuple(e.get("comparisons") or ()),
                level=level,
                inverse_variance=iv,
            )
        )
    if problems:
        raise AnalysisDeclarationError("\n".join(problems))
    return Plan(
        tuple(analyses),
        tuple(landmarks),
        tuple(comparisons),
        tuple(sensitivity),
        source=str(path),
        medians=tuple(medians),
        hazard_ratios=tuple(hazard_ratios),
    )
