"""The format of the analyses file (`data/analyses.yaml`), declared as the study records' is.

`check_plan_file(path)` reads the file with the study records' reader (duplicate keys, explicit
tags, YAML 1.1 number spellings, text that is not UTF-8 and control characters, each named by
line), walks `PLAN_FILE` below with their schema walker (unknown keys, wrong types, unknown
names), then checks what relates fields to each other (ids, the primary rules, the level). It
returns the parsed file and every problem at once, each with its file, line and field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from metaanalysis.engine.bayes_priors import parse_tau_prior
from metaanalysis.engine.estimators import ESTIMATORS
from metaanalysis.engine.methods import METHODS, PROPORTION_METHODS
from metaanalysis.engine.rma import PI_METHODS, TESTS
from metaanalysis.evidence.problems import ERROR, ParsedFile, PathT, Problem, format_path, parse_file
from metaanalysis.evidence.readers import _int, _list, _map, _num, _str
from metaanalysis.evidence.schema import (
    DISEASES,
    ENDPOINTS,
    ID_PATTERN,
    SELECTIONS,
    UNITS,
    ListOf,
    MapOf,
    Record,
    Scalar,
    Spec,
    choice,
    text,
)
from metaanalysis.evidence.schema_walk import SchemaWalker
from metaanalysis.evidence.vocabulary import POPULATIONS, suggest
from metaanalysis.evidence.vocabulary import outcomes as load_outcomes
from metaanalysis.evidence.vocabulary import regimen_classes as load_regimen_classes

# whole: the whole cohort failing the prior therapy (arm role "overall", no subgroup);
# by_class: treatment arms by regimen class; by_timing: the declared `timing` strata.
MEDIAN_COHORTS = ("whole", "by_class", "by_timing")
# Rows a sensitivity variant may leave out by name (`exclude: [...]`); pooling.ROW_EXCLUSIONS says how.
EXCLUSIONS = ("prior_exposure", "low_confidence", "congress_abstracts")
MEASURES = ("OR", "RR", "RD")
# The column classes are formed by: the pooled tables name it regimen_class whatever it is.
GROUPINGS = ("regimen_class",)
DEFAULT_METHODS = ("GLMM", "PLO", "PFT")
SECTIONS = ("analyses", "landmarks", "comparisons", "sensitivity", "medians", "hazard_ratios")
# An id names figure files (results/figures/<id>.png, <comparison id>_OR.svg, survival_<id>.pdf):
# letters, digits, _ . - only, no '..', no '.' at the end (Windows drops it), starting with a
# letter or digit (no hidden file, no option-like '-x'); unique ignoring case (macOS and Windows
# file names are), so that no figure leaves the results folder or overwrites another.
ENTRY_ID = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.-]*[A-Za-z0-9_-])?")
MAX_ID = 100  # a file name holds 255 bytes; "survival_" and ".png" come on top
# The variant name of the analyses themselves (Analysis.variant), so no sensitivity id.
PRIMARY_VARIANT = "primary"


@dataclass(frozen=True)
class OneOrList(ListOf):
    """A list, or its one item written alone (`selection: after_failure`)."""


def names(*values: str, min_items: int = 1) -> ListOf:
    return ListOf(choice(*values), min_items=min_items)


IV_SETTINGS = Record(
    {"method": choice(*ESTIMATORS), "test": choice(*TESTS), "pi_method": choice(*PI_METHODS)},
    doc="tau^2 estimator, CI and prediction interval of the inverse-variance models",
)
PRIMARY_RULE = Record(
    {
        "method": choice(*PROPORTION_METHODS, required=True),
        "max_k": Scalar("integer", nullable=True, minimum=2, doc="classes of at most max_k studies; null: any"),
        "extreme_arm": Scalar("boolean", nullable=True, doc="classes with (true) or without (false) a 0/100 % arm"),
    }
)
DEFAULTS = Record(
    {
        "level": Scalar("number", doc="confidence level, strictly between 0 and 1"),
        "methods": names(*PROPORTION_METHODS),
        "primary": ListOf(PRIMARY_RULE, min_items=1),
        "bayes": Record({"tau_prior": text(), "max_k": Scalar("integer", minimum=2)}),
        "units": names(*UNITS),
        "group_by": choice(*GROUPINGS),
        "inverse_variance": IV_SETTINGS,
    },
    nullable=True,
)
POPULATION = choice(*POPULATIONS, required=True)
ANALYSIS = Record(
    {
        "id": text(True),
        "population": POPULATION,
        "outcome": text(True, vocabulary="outcomes"),
        "methods": names(*PROPORTION_METHODS),
        "units": names(*UNITS),
        "group_by": choice(*GROUPINGS),
        "selection": OneOrList(choice(*SELECTIONS), min_items=1),
    }
)
LANDMARK = Record(
    {
        "id": text(True),
        "population": POPULATION,
        "endpoint": choice(*ENDPOINTS, required=True),
        "months": Scalar("number", required=True),
    }
)
COMPARISON = Record(
    {
        "id": text(True),
        "label": text(),
        "study": text(True, pattern=ID_PATTERN),
        "experimental": text(True, pattern=ID_PATTERN),
        "control": text(True, pattern=ID_PATTERN),
        "outcomes": ListOf(text(vocabulary="outcomes"), min_items=1),
        "measures": names(*MEASURES),
    }
)
SENSITIVITY = Record(
    {
        "id": text(True),
        "label": text(),
        "exclude_derived": Scalar("boolean"),
        "exclude_overlapping": Scalar("boolean"),
        "units": names(*UNITS),
        "diseases": names(*DISEASES),
        "exclude": names(*EXCLUSIONS, min_items=0),
    }
)
MEDIAN = Record(
    {
        "id": text(True),
        "label": text(),
        "population": POPULATION,
        "endpoint": choice(*ENDPOINTS, required=True),
        "cohorts": choice(*MEDIAN_COHORTS, required=True),
        "timing": MapOf(Record({"label": text(), "subgroups": ListOf(text(), required=True, min_items=1)})),
    }
)
HAZARD_RATIO = Record(
    {
        "id": text(True),
        "label": text(),
        "population": POPULATION,
        "comparisons": ListOf(text(), required=True, min_items=1),
    }
)
# An empty section (`landmarks:` with nothing under it) declares none, as before.
PLAN_FILE = Record(
    {
        "defaults": DEFAULTS,
        "analyses": ListOf(ANALYSIS, nullable=True),
        "landmarks": ListOf(LANDMARK, nullable=True),
        "comparisons": ListOf(COMPARISON, nullable=True),
        "sensitivity": ListOf(SENSITIVITY, nullable=True),
        "medians": ListOf(MEDIAN, nullable=True),
        "hazard_ratios": ListOf(HAZARD_RATIO, nullable=True),
    }
)


class PlanChecker(SchemaWalker):
    """The study records' schema walker, with lists of names checked as one field (the message
    lists every unknown name) and the rules that relate the fields of an analyses file."""

    def sequence(self, value: Any, spec: ListOf, path: PathT) -> None:
        if isinstance(spec, OneOrList) and isinstance(value, str):
            value = [value]
        item: Spec = spec.item
        if isinstance(value, list) and isinstance(item, Scalar) and item.choices:
            self.check_names(value, item.choices, path)
            spec = replace(spec, item=replace(item, choices=None))  # the rest: types, emptiness
        super().sequence(value, spec, path)

    def check_names(self, value: list, known: tuple[str, ...], path: PathT) -> None:
        unknown = [x for x in value if isinstance(x, str) and x.strip() and x not in known]
        if unknown:
            near = suggest(unknown[0], known)
            self.error_at(
                path,
                value.index(unknown[0]),
                f"unknown {unknown} (known: {', '.join(known)})" + (f"; did you mean '{near}'?" if near else ""),
            )
        twice = sorted({x for x in value if isinstance(x, str) and value.count(x) > 1})
        if twice:
            self.error_at(path, value.index(twice[0]), f"lists {', '.join(twice)} more than once")

    def error_at(self, path: PathT, index: int, message: str) -> None:
        """An error of the list at `path`, on the line of its item `index`."""
        line = self.parsed.lines.get(tuple(path) + (index,)) or self.line(path)
        self.problems.append(Problem(self.parsed.file, format_path(path), line, ERROR, message))

    # -- rules across fields ---------------------------------------------------------
    def plan_rules(self) -> None:
        data = _map(self.parsed.data)
        defaults = _map(data.get("defaults"))
        level = _num(defaults.get("level"))
        if level is not None and not 0 < level < 1:
            self.error(
                ("defaults", "level"),
                f"{defaults['level']} is not a confidence level: give a number strictly between 0 and 1 "
                "(0.95 for 95 % intervals)",
            )
        self.primary_rules(defaults)
        self.analysis_methods(defaults, _list(data.get("analyses")))
        self.entry_ids(data)
        for i, e in enumerate(_list(data.get("landmarks"))):
            months = _num(_map(e).get("months"))
            if months is not None and months <= 0:
                self.error(("landmarks", i, "months"), f"{months:g} months: a landmark lies after the start (> 0)")
        for i, e in enumerate(_list(data.get("medians"))):
            self.median_timing(i, _map(e))

    def primary_rules(self, defaults: dict) -> None:
        methods = defaults.get("methods", list(DEFAULT_METHODS))
        bayes = _map(defaults.get("bayes"))
        bayes_max_k = _int(bayes.get("max_k", 4))
        if isinstance(prior := bayes.get("tau_prior"), str):
            try:
                parse_tau_prior(prior)
            except ValueError as exc:
                self.error(("defaults", "bayes", "tau_prior"), str(exc))
        rules = _list(defaults.get("primary"))
        for i, rule in enumerate(rules):
            rule = _map(rule)
            method, max_k = rule.get("method"), rule.get("max_k")
            if not isinstance(method, str) or method not in METHODS or not isinstance(methods, list):
                continue  # unknown or missing: the walk has said so
            if max_k is not None and _int(max_k) is None:
                continue  # not a whole number: the walk has said so
            if method not in methods:
                self.error(("defaults", "primary", i, "method"), f"{method!r} is not among defaults.methods")
            elif METHODS[method].bayesian and bayes_max_k is not None and (max_k is None or max_k > bayes_max_k):
                self.error(
                    ("defaults", "primary", i, "max_k"),
                    f"{method} is fitted for k <= bayes.max_k = {bayes_max_k} only; a rule making it primary "
                    "needs max_k within that",
                )
        if rules and any(_map(rules[-1]).get(k) is not None for k in ("max_k", "extreme_arm")):
            self.error(
                ("defaults", "primary", len(rules) - 1),
                "the last rule must have no condition (it decides every other class)",
            )

    def analysis_methods(self, defaults: dict, analyses: list) -> None:
        """An analysis with its own methods fits every method a primary rule may choose: a class
        whose primary method was not fitted would have no primary estimate."""
        methods = defaults.get("methods", list(DEFAULT_METHODS))
        rules = defaults.get("primary", [{"method": methods[0] if _list(methods) else None}])
        chosen = {m for r in _list(rules) if (m := _str(_map(r).get("method"))) in METHODS}
        for i, e in enumerate(analyses):
            own = _map(e).get("methods")
            if isinstance(own, list) and (missing := sorted(chosen - set(own))):
                self.error(
                    ("analyses", i, "methods"),
                    f"leaves out {', '.join(missing)}, which defaults.primary makes primary for some classes: "
                    "add it (or change defaults.primary)",
                )

    def entry_ids(self, data: dict) -> None:
        seen: dict[str, PathT] = {}
        for section in SECTIONS:
            for i, e in enumerate(_list(data.get(section))):
                entry_id, path = _str(_map(e).get("id")), (section, i, "id")
                if entry_id is None or not entry_id.strip():
                    continue  # missing, empty or not text: the walk has said so
                if problem := id_problem(entry_id):
                    self.error(path, problem)
                elif section == "sensitivity" and entry_id == PRIMARY_VARIANT:
                    self.error(path, f"'{PRIMARY_VARIANT}' names the analyses themselves: choose another id")
                first = seen.setdefault(entry_id.casefold(), path)
                if first != path:
                    self.error(
                        path,
                        f"duplicate id {entry_id!r} (first at line {self.line(first)}, {format_path(first[:2])}; "
                        "ids name figure files, and case does not tell them apart everywhere)",
                    )

    def median_timing(self, i: int, median: dict) -> None:
        timing = median.get("timing")
        for stratum, entry in _map(timing).items():
            members = _list(_map(entry).get("subgroups"))
            for j, member in enumerate(members):
                if isinstance(member, str) and member.count("/") != 1:
                    self.error(
                        ("medians", i, "timing", stratum, "subgroups", j),
                        f"{member!r} is not a 'study/subgroup' id (e.g. iacoboni2024/progression_lt_2mo)",
                    )
        cohorts = median.get("cohorts")
        if cohorts in MEDIAN_COHORTS and (cohorts == "by_timing") != bool(_map(timing)):
            self.error(("medians", i, "timing"), "required with cohorts: by_timing, and only then")


def id_problem(entry_id: str) -> str | None:
    """Why `entry_id` cannot name an entry (and its figure files), or None."""
    if len(entry_id) > MAX_ID:
        return f"the id is {len(entry_id)} characters long; at most {MAX_ID}"
    if ENTRY_ID.fullmatch(entry_id) and ".." not in entry_id:
        return None
    return (
        f"{entry_id!r} is not a safe id: ids name files, so use letters, digits, _ . and - only, "
        "starting with a letter or digit, without '..' or a '.' at the end (e.g. orr_after_cart)"
    )


def check_plan_file(path: str | Path) -> tuple[ParsedFile | None, list[Problem]]:
    """The parsed analyses file and every problem in it (errors only), in the order of the file."""
    parsed, problems = parse_file(path)
    if parsed is None:
        return None, problems
    checker = PlanChecker(parsed, load_regimen_classes(), load_outcomes())
    checker.walk(parsed.data, PLAN_FILE, ())
    checker.plan_rules()
    found = sorted((p for p in checker.problems if p.severity == ERROR), key=lambda p: p.line or 0)
    return (None if found else parsed), found


__all__ = ["PLAN_FILE", "check_plan_file", "id_problem", "MEDIAN_COHORTS", "EXCLUSIONS", "GROUPINGS"]
