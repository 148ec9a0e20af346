"""Every check on study records; returns problems, never raises on bad input.

`validate_directory("extracted_studies")` parses each `*.yaml` file with a
loader that keeps line numbers, walks the declared format in `schema.py`
(unknown, missing and wrongly typed keys), then runs the checks that relate
fields to each other (counts against percentages, CR <= ORR, CIs, dates) and
across files (duplicate ids, unknown relations, overlapping cohorts).
Each finding is a `Problem(file, path, line, severity, message)` with a
field path such as `arms[0].binary.CR.events`; all of them are returned at
once so that a reviewer fixes a file in one pass.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Iterable

from metaanalysis.evidence import schema
from metaanalysis.evidence.reading import MAX_BYTES, read_yaml
from metaanalysis.evidence.schema import ListOf, MapOf, Record, Scalar
from metaanalysis.evidence.vocabulary import outcomes as load_outcomes
from metaanalysis.evidence.vocabulary import regimen_classes as load_regimen_classes
from metaanalysis.evidence.vocabulary import suggest, suggest_regimen_class

ERROR = "error"
WARNING = "warning"
# Floating-point slack only; the rounding tolerance itself comes from the printed digits.
EPS = 1e-9

PathT = tuple  # a field path: keys (str) and list indices (int)


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding. `path` is e.g. `arms[0].binary.CR.events` ("" for the whole file)."""

    file: str
    path: str
    line: int | None
    severity: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        field = f"{self.path}: " if self.path else ""
        return f"{where}: {self.severity}: {field}{self.message}"


@dataclass(slots=True)
class ParsedFile:
    """A study file as loaded: the data, and for each field path its line and its text as written."""

    file: str
    data: Any
    lines: dict[PathT, int]
    raw: dict[PathT, str]

    @property
    def stem(self) -> str:
        return Path(self.file).stem


def format_path(path: Iterable[Any]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


# -- parsing -----------------------------------------------------------------
# The reading itself (strict decimal numbers, size and depth bounds, lines of every field) is in
# `reading.py`; here its findings become Problems.
def parse_text(text: str, file: str = "<string>") -> tuple[ParsedFile | None, list[Problem]]:
    """Parse one YAML document; on failure return (None, [every problem with its line])."""
    doc, found = read_yaml(text)
    if doc is None:
        return None, [Problem(file, format_path(e.path), e.line, ERROR, e.message) for e in found]
    return ParsedFile(file, doc.data, doc.lines, doc.raw), []


def parse_file(path: str | Path) -> tuple[ParsedFile | None, list[Problem]]:
    file = str(path)
    try:
        size = Path(path).stat().st_size
        if size > MAX_BYTES:      # refused before reading: a stray 50 MB file costs nothing
            return None, [Problem(file, "", None, ERROR, f"the file is {size:,} bytes; a study record is at most "
                                  f"{MAX_BYTES:,} (is this the right file?)")]
        text = Path(path).read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, [Problem(file, "", None, ERROR, f"not UTF-8 text (byte {exc.start}): save the file as UTF-8")]
    except OSError as exc:
        return None, [Problem(file, "", None, ERROR, f"cannot read the file: {exc.strerror}")]
    return parse_text(text, file)


# -- small readers that tolerate wrong types (the schema walk reports those) ----------
def _num(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    return float(x) if math.isfinite(x) else None


def _int(x: Any) -> int | None:
    return x if isinstance(x, int) and not isinstance(x, bool) else None


def _map(x: Any) -> dict:
    return x if isinstance(x, dict) else {}


def _list(x: Any) -> list:
    return x if isinstance(x, list) else []


def _str(x: Any) -> str | None:
    return x if isinstance(x, str) else None


def _year_month(x: Any) -> tuple[int, int] | None:
    if isinstance(x, str) and re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", x):
        return int(x[:4]), int(x[5:])
    return None


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int):
        return f"an integer ({value})"
    if isinstance(value, float):
        return f"a number ({value})"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"text {shown!r}"
    if isinstance(value, (date, datetime)):
        return f"a date ({value.isoformat()})"
    if isinstance(value, bytes):
        return "binary data"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


def printed_decimals(printed: float, raw: str | None) -> int:
    """Decimals as printed: from the text in the file ("45.50" -> 2), else from the number."""
    text = (raw or "").strip()
    m = re.fullmatch(r"[+-]?\d+(?:\.(\d*))?", text)
    if m:
        return len(m.group(1) or "")
    shown = repr(float(printed))
    return 0 if float(printed).is_integer() or "e" in shown else len(shown.split(".")[1])


def percent_matches(events: int, n: int, printed: float, raw: str | None = None) -> bool:
    """Whether `printed` percent is events/n as a paper prints it.

    Accepts rounding (|100 events/n - printed| <= half a unit of the last printed digit) and
    truncation (printed <= 100 events/n < printed + one unit), each plus EPS.
    """
    unit = 10.0 ** -printed_decimals(printed, raw)
    exact = 100.0 * events / n
    return abs(exact - printed) <= unit / 2 + EPS or 0 <= exact - printed < unit + EPS


# -- the checker ---------------------------------------------------------------
class _Checker:
    def __init__(self, parsed: ParsedFile, regimen_classes: dict, outcomes: dict):
        self.parsed = parsed
        self.regimen_classes = regimen_classes
        self.outcomes = outcomes
        self.problems: list[Problem] = []

    def line(self, path: PathT) -> int | None:
        path = tuple(path)
        while path not in self.parsed.lines and path:
            path = path[:-1]
        return self.parsed.lines.get(path)

    def add(self, severity: str, path: PathT, message: str) -> None:
        self.problems.append(Problem(self.parsed.file, format_path(path), self.line(path), severity, message))

    def error(self, path: PathT, message: str) -> None:
        self.add(ERROR, path, message)

    def warn(self, path: PathT, message: str) -> None:
        self.add(WARNING, path, message)

    # -- schema walk -----------------------------------------------------------
    def walk(self, value: Any, spec: schema.Spec, path: PathT) -> None:
        if isinstance(value, str) and value.startswith(schema.PLACEHOLDER_PREFIX):
            self.error(path, f"template placeholder {value} was not filled in")
            return
        if value is None:
            if not spec.nullable:
                self.error(path, "is empty (null): give a value" + (" (required)" if spec.required else
                                                                      " or remove the key"))
            return
        if isinstance(spec, Scalar):
            self.scalar(value, spec, path)
        elif isinstance(spec, Record):
            self.record(value, spec, path)
        elif isinstance(spec, ListOf):
            self.sequence(value, spec, path)
        else:
            self.mapping(value, spec, path)

    def record(self, value: Any, spec: Record, path: PathT) -> None:
        if not isinstance(value, dict):
            self.error(path, f"expected a mapping of keys ({', '.join(spec.fields)}), got {_describe(value)}")
            return
        for key, item in value.items():
            if not isinstance(key, str):
                self.error(path + (key,), f"key {key!r} must be a name, got {_describe(key)}")
                continue
            if key not in spec.fields:
                near = suggest(key, spec.fields)
                hint = f"; did you mean '{near}'?" if near else f"; allowed: {', '.join(spec.fields)}"
                self.error(path + (key,), f"unknown key '{key}'{hint}")
                continue
            self.walk(item, spec.fields[key], path + (key,))
        for name, sub in spec.fields.items():
            if sub.required and name not in value:
                self.error(path + (name,), f"required key '{name}' is missing")

    def sequence(self, value: Any, spec: ListOf, path: PathT) -> None:
        if not isinstance(value, list):
            self.error(path, f"expected a list, got {_describe(value)}")
            return
        if spec.length is not None and len(value) != spec.length:
            self.error(path, f"expected a list of exactly {spec.length} items ([lo, hi]), got {len(value)}")
        elif len(value) < spec.min_items:
            self.error(path, f"expected at least {spec.min_items} item(s), got none")
        for i, item in enumerate(value):
            self.walk(item, spec.item, path + (i,))

    def mapping(self, value: Any, spec: MapOf, path: PathT) -> None:
        if not isinstance(value, dict):
            self.error(path, f"expected a mapping, got {_describe(value)}")
            return
        for key, item in value.items():
            if not isinstance(key, str):
                self.error(path + (key,), f"key {key!r} must be a name, got {_describe(key)}")
                continue
            if spec.key_pattern and not re.fullmatch(spec.key_pattern, key):
                self.error(path + (key,), f"name '{key}' must be snake_case ({spec.key_pattern})")
            if spec.key_vocabulary == "outcomes" and key not in self.outcomes:
                near = suggest(key, self.outcomes)
                self.error(path + (key,), f"unknown outcome '{key}'"
                           + (f"; did you mean '{near}'?" if near else "")
                           + " (outcome names are listed in metaanalysis/data/outcomes.yaml)")
                continue
            self.walk(item, spec.value, path + (key,))

    def scalar(self, value: Any, spec: Scalar, path: PathT) -> None:
        kind = spec.kind
        if kind == "text":
            self.text(value, spec, path)
        elif kind == "integer":
            if _int(value) is None:
                if isinstance(value, float) and math.isfinite(value) and value.is_integer():
                    self.error(path, f"expected a whole number, got {value} (write {int(value)})")
                else:
                    self.error(path, f"expected a whole number (integer), got {_describe(value)}"
                               + self._bool_hint(value, path))
                return
            self.bounds(value, spec, path)
        elif kind == "number":
            if _num(value) is None:
                self.error(path, f"expected a number, got {_describe(value)}" + self._bool_hint(value, path))
                return
            self.bounds(value, spec, path)
        elif kind == "boolean":
            if not isinstance(value, bool):
                self.error(path, f"expected true or false, got {_describe(value)}")
        elif kind == "year_month":
            if _year_month(value) is None:
                hint = " (write only year and month)" if isinstance(value, (date, datetime)) else ""
                self.error(path, f"expected a year and month YYYY-MM such as 2023-07, got {_describe(value)}{hint}")
        elif kind == "p_value":
            if isinstance(value, str):
                if not re.fullmatch(r"\s*(<|>|<=|>=|≤|≥)\s*(0?\.\d+|1|0)\s*", value):
                    self.error(path, f"expected a p-value (a number or text such as '<0.001'), got {_describe(value)}")
            elif _num(value) is None or not 0 <= value <= 1:
                self.error(path, f"expected a p-value between 0 and 1, got {_describe(value)}")

    def _bool_hint(self, value: Any, path: PathT) -> str:
        raw = self.parsed.raw.get(tuple(path), "")
        if isinstance(value, bool) and raw.lower() not in ("true", "false"):
            return f" (YAML reads {raw} as a boolean: quote it)"
        return ""

    def text(self, value: Any, spec: Scalar, path: PathT) -> None:
        if not isinstance(value, str):
            self.error(path, f"expected text, got {_describe(value)}" + self._bool_hint(value, path))
            return
        if not value.strip():
            self.error(path, "is empty text")
            return
        if spec.choices and value not in spec.choices:
            near = suggest(value, spec.choices)
            self.error(path, f"'{value}' is not one of: {', '.join(spec.choices)}"
                       + (f"; did you mean '{near}'?" if near else ""))
        if spec.pattern and not re.fullmatch(spec.pattern, value):
            self.error(path, f"'{value}' must be lowercase letters, digits and _ only")
        if spec.vocabulary == "regimen_classes" and value not in self.regimen_classes:
            near = suggest_regimen_class(value, self.regimen_classes)
            self.error(path, f"unknown regimen class '{value}'"
                       + (f"; did you mean '{near}'?" if near else "")
                       + " (classes are listed in metaanalysis/data/regimen_classes.yaml)")

    def bounds(self, value: float, spec: Scalar, path: PathT) -> None:
        if spec.minimum is not None and value < spec.minimum:
            self.error(path, f"{value} is below the minimum {spec.minimum:g}"
                       + (" (counts are never negative)" if spec.kind == "integer" else ""))
        if spec.maximum is not None and value > spec.maximum:
            self.error(path, f"{value} is above the maximum {spec.maximum:g}")

    # -- checks across fields of one record ---------------------------------------------
    def record_rules(self) -> None:
        data = self.parsed.data
        if not isinstance(data, dict):
            return
        record_id = _str(data.get("id"))
        if record_id is not None and record_id != self.parsed.stem:
            self.error(("id",), f"id '{record_id}' does not match the file name '{self.parsed.stem}.yaml'")
        citation = _map(data.get("citation"))
        if citation.get("confidence") == "low":
            self.warn(("citation", "confidence"), "confidence: low (read the notes before using these numbers)")
        population = _map(data.get("population"))
        if "population" in data and "n" not in population:
            self.warn(("population",), "population.n is not given: the study size is unknown (shown, never imputed)")
        if data.get("unit_of_analysis") == "treatment_courses":
            self.warn(("unit_of_analysis",), "counts are treatment courses, not patients")
            if "patients" not in population:
                self.error(("population", "patients"), "unit_of_analysis is treatment_courses: give "
                           "population.patients ({value, source}), the number of patients behind the courses")
        enrolment = _map(data.get("enrolment"))
        start, end = _year_month(enrolment.get("start")), _year_month(enrolment.get("end"))
        if start and end and start > end:
            self.error(("enrolment", "start"), f"enrolment start {enrolment['start']} is after its end {enrolment['end']}")
        follow_up = _map(data.get("follow_up"))
        self.median_in_range(follow_up.get("median_months"), follow_up.get("range"), ("follow_up",), "median_months")
        study_n = _int(_map(population.get("n")).get("value"))
        histology = _map(population.get("histology"))
        counts = [_int(_map(v).get("value")) for v in histology.values()]
        if study_n is not None and all(c is not None for c in counts) and sum(counts) > study_n:
            self.error(("population", "histology"), f"histology counts add up to {sum(counts)}, more than "
                       f"population.n = {study_n}")
        patients = _int(_map(population.get("patients")).get("value"))
        if patients is not None and study_n is not None and patients > study_n:
            self.error(("population", "patients", "value"), f"{patients} patients but only {study_n} "
                       "treatment courses (population.n)")
        self.baseline(data.get("baseline"), ("baseline",))
        relations = _map(data.get("relations"))
        for i, other in enumerate(_list(relations.get("supersedes"))):
            if other == record_id:
                self.error(("relations", "supersedes", i), "a record cannot supersede itself")
        for i, entry in enumerate(_list(relations.get("overlaps"))):
            if _map(entry).get("id") == record_id:
                self.error(("relations", "overlaps", i, "id"), "a record cannot overlap itself")
        self.arms(_list(data.get("arms")), study_n)
        self.provenance_and_strata(data)

    # -- provenance, response timing and strata (the fields added for the systematic search) --
    def provenance_and_strata(self, data: dict) -> None:
        citation = _map(data.get("citation"))
        if "source_file" in citation and citation["source_file"] is None and citation.get("url") is None:
            self.error(("citation", "source_file"), "give citation.url (where the record was read) or "
                       "citation.source_file (the file under shared/): a record needs one of them")
        for path, value in self.urls(data, ()):
            if isinstance(value, str) and not self.URL.fullmatch(value):
                self.error(path, f"{_describe(value)} does not look like a URL (http://... or https://...)")
        for i, arm in enumerate(_list(data.get("arms"))):
            arm = _map(arm)
            self.timing(_map(arm.get("binary")), ("arms", i, "binary"))
            for j, sub in enumerate(_list(arm.get("subgroups"))):
                sub = _map(sub)
                path = ("arms", i, "subgroups", j)
                self.timing(_map(sub.get("binary")), path + ("binary",))
                if sub.get("stratified_by") == "regimen":
                    for key in ("regimen", "regimen_class"):
                        if key not in sub:
                            self.error(path + (key,), f"a stratum with stratified_by: regimen needs '{key}' "
                                       "(it is pooled as a cohort of that class)")
                elif "regimen_class" in sub:
                    self.error(path + ("regimen_class",), "regimen_class belongs to a stratum defined by regimen: "
                               "add stratified_by: regimen, or remove regimen_class (a patient-characteristic "
                               "stratum is never pooled as a regimen cohort)")

    # A URL as a reader would open it: http(s), a host, no spaces.
    URL = re.compile(r"https?://[A-Za-z0-9.-]*[A-Za-z0-9](?::\d+)?(?:[/?#]\S*)?")

    @classmethod
    def urls(cls, value: Any, path: PathT) -> Iterable[tuple[PathT, Any]]:
        """(path, value) of citation.url and of every source.url in a record."""
        if isinstance(value, dict):
            for key, item in value.items():
                if key == "url" and path[-1:] in (("citation",), ("source",)):
                    yield path + (key,), item
                else:
                    yield from cls.urls(item, path + (key,))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                yield from cls.urls(item, path + (i,))

    def timing(self, binary: dict, path: PathT) -> None:
        """timepoint_days goes with assessment: fixed_timepoint, and only with it."""
        for name, entry in binary.items():
            if not isinstance(entry, dict):
                continue
            fixed = entry.get("assessment") == "fixed_timepoint"
            if fixed and "timepoint_days" not in entry:
                self.error(path + (name, "assessment"), "assessment: fixed_timepoint needs timepoint_days "
                           "(e.g. 30 for a day-30 response)")
            if not fixed and "timepoint_days" in entry:
                self.error(path + (name, "timepoint_days"), "timepoint_days applies only to assessment: "
                           f"fixed_timepoint (assessment here: {entry.get('assessment', 'not_stated')})")

    def arms(self, arms: list, study_n: int | None) -> None:
        seen: dict[str, int] = {}
        sizes = []
        for i, arm in enumerate(arms):
            if not isinstance(arm, dict):
                continue
            path = ("arms", i)
            arm_id = _str(arm.get("id"))
            if arm_id is not None:
                if arm_id in seen:
                    self.error(path + ("id",), f"arm id '{arm_id}' is used twice (also arms[{seen[arm_id]}])")
                seen.setdefault(arm_id, i)
            arm_n = _int(_map(arm.get("n")).get("value"))
            if arm.get("role", "treatment") != "overall":
                sizes.append((arm_id or f"arms[{i}]", arm_n))
            if study_n is not None and arm_n is not None and arm_n > study_n:
                self.error(path + ("n", "value"), f"arm n = {arm_n} is more than the study's population.n = {study_n}")
            self.group(arm, path, arm_n, "arm")
            sub_seen: dict[str, int] = {}
            for j, sub in enumerate(_list(arm.get("subgroups"))):
                if not isinstance(sub, dict):
                    continue
                sub_path = path + ("subgroups", j)
                sub_id = _str(sub.get("id"))
                if sub_id is not None:
                    if sub_id in sub_seen:
                        self.error(sub_path + ("id",), f"subgroup id '{sub_id}' is used twice in this arm")
                    sub_seen.setdefault(sub_id, j)
                sub_n = _int(_map(sub.get("n")).get("value"))
                if sub_n is not None and arm_n is not None and sub_n > arm_n:
                    self.error(sub_path + ("n", "value"), f"subgroup n = {sub_n} is more than its arm's n = {arm_n}")
                self.group(sub, sub_path, sub_n if sub_n is not None else arm_n, "subgroup")
        known = [n for _, n in sizes if n is not None]
        if study_n is not None and len(known) > 1 and sum(known) > study_n:
            parts = " + ".join(f"{name} {n}" for name, n in sizes if n is not None)
            self.error(("arms",), f"treatment arm sizes add up to {sum(known)} ({parts}), more than the "
                       f"study's population.n = {study_n}")

    def group(self, group: dict, path: PathT, group_n: int | None, what: str) -> None:
        binary = _map(group.get("binary"))
        for name, entry in binary.items():
            if isinstance(entry, dict):
                self.binary(entry, path + ("binary", name), group_n, what)
        self.responses(binary, path + ("binary",))
        for k, entry in enumerate(_list(group.get("time_to_event"))):
            if isinstance(entry, dict):
                self.time_to_event(entry, path + ("time_to_event", k))
        self.baseline(group.get("baseline"), path + ("baseline",))

    def counts(self, entry: dict, path: PathT, pooled: bool) -> None:
        """events/n/percent of a binary outcome or a baseline proportion."""
        events, n, percent = _int(entry.get("events")), _int(entry.get("n")), _num(entry.get("percent"))
        derived_from = _map(entry.get("derived")).get("from")
        if "events" in entry and "n" not in entry and "percent" not in entry:
            self.error(path + ("n",), "events without n: give the denominator")
        if "n" in entry and "events" not in entry and "percent" not in entry:
            self.error(path + ("events",), "n without events or percent")
        if pooled and "percent" in entry and "n" not in entry:
            # A count printed with its percentage but no denominator ("8 patients (42%)") stays as printed.
            self.warn(path + ("percent",), "percentage without a denominator: shown, never pooled")
        if pooled and "percent" in entry and "n" in entry and "events" not in entry:
            self.warn(path + ("events",), "percentage and n without a count: not pooled until the count is "
                      "derived (derived: {from: percent, rule: ...})")
        if events is not None and n is not None and events > n:
            self.error(path + ("events",), f"events = {events} is more than n = {n}")
            return
        if derived_from == "percent" and (percent is None or n is None):
            self.error(path + ("derived", "from"), "derived from a percentage, but percent or n is missing")
        if events is not None and n is not None and n > 0 and percent is not None:
            raw = self.parsed.raw.get(tuple(path) + ("percent",))
            if not percent_matches(events, n, percent, raw):
                exact = 100.0 * events / n
                if derived_from == "percent":
                    self.error(path + ("events",), f"derived count {events} is inconsistent with the percentage "
                               f"it came from: {_fmt_num(percent, raw)}% of {n} = {percent * n / 100:.2f}")
                else:
                    self.error(path + ("percent",), f"printed {_fmt_num(percent, raw)}% does not match "
                               f"events/n = {events}/{n} = {exact:.2f}% under rounding or truncation")

    def binary(self, entry: dict, path: PathT, group_n: int | None, what: str) -> None:
        self.counts(entry, path, pooled=True)
        n = _int(entry.get("n"))
        if n is not None and group_n is not None and n > group_n:
            self.error(path + ("n",), f"n = {n} is more than the {what}'s n = {group_n}")

    def responses(self, binary: dict, path: PathT) -> None:
        """CR <= ORR, CR + PR == ORR and graded <= any-grade toxicity within one arm or subgroup."""
        def counts(name):
            entry = _map(binary.get(name))
            return _int(entry.get("events")), _int(entry.get("n")), _num(entry.get("percent"))

        cr, pr, orr = counts("CR"), counts("PR"), counts("ORR")
        if cr[0] is not None and orr[0] is not None and cr[1] is not None and cr[1] == orr[1]:
            if cr[0] > orr[0]:
                self.error(path + ("CR", "events"), f"CR events ({cr[0]}) exceed ORR events ({orr[0]})")
        else:
            p_cr, p_orr = _proportion(cr), _proportion(orr)
            if p_cr is not None and p_orr is not None and p_cr > p_orr + 0.005:
                self.error(path + ("CR",), f"CR ({100 * p_cr:.1f}%) is more than ORR ({100 * p_orr:.1f}%)")
        if (None not in (cr[0], pr[0], orr[0]) and cr[1] is not None and cr[1] == pr[1] == orr[1]
                and cr[0] + pr[0] != orr[0]):
            self.error(path + ("ORR", "events"), f"CR + PR = {cr[0]} + {pr[0]} = {cr[0] + pr[0]} but ORR = {orr[0]}")
        # A graded toxicity is a subset of the same toxicity at any grade (CRS_grade3plus <= CRS_any).
        for name in binary:
            if isinstance(name, str) and "_grade" in name and not name.endswith("_any"):
                whole = name.split("_grade")[0] + "_any"
                part, total = counts(name), counts(whole)
                if (part[0] is not None and total[0] is not None and part[1] is not None and part[1] == total[1]
                        and part[0] > total[0]):
                    self.error(path + (name, "events"), f"{name} events ({part[0]}) exceed {whole} events ({total[0]})")

    def time_to_event(self, entry: dict, path: PathT) -> None:
        kind = entry.get("kind")
        if not isinstance(kind, str) or kind not in schema.TTE_KIND_KEYS:
            return
        specific = set().union(*schema.TTE_KIND_KEYS.values())
        for key in entry:
            if key in specific and key not in schema.TTE_KIND_KEYS[kind]:
                owners = [k for k, keys in schema.TTE_KIND_KEYS.items() if key in keys]
                self.error(path + (key,), f"'{key}' does not apply to kind: {kind} (only to {', '.join(owners)})")
        value = _num(entry.get("value"))
        if kind == "median":
            if entry.get("not_reached") is True and "value" in entry:
                self.error(path + ("value",), "a median cannot have a value and not_reached: true")
            if "value" not in entry and entry.get("not_reached") is not True:
                self.error(path + ("value",), "a median needs value (months) or not_reached: true")
            self.median_in_range(entry.get("value"), entry.get("range"), path, "value")
        elif kind == "landmark":
            for key in ("months", "percent"):
                if key not in entry:
                    self.error(path + (key,), f"a landmark needs '{key}'")
            value = _num(entry.get("percent"))
        elif kind == "hazard_ratio":
            if "value" not in entry:
                self.error(path + ("value",), "a hazard ratio needs 'value'")
            if value is not None and value <= 0:
                self.error(path + ("value",), f"a hazard ratio must be positive, got {value:g}")
        if "ci_level" in entry and "ci" not in entry:
            self.error(path + ("ci_level",), "ci_level given without ci")
        ci = entry.get("ci")
        if isinstance(ci, list) and len(ci) == 2:
            lo, hi = _num(ci[0]), _num(ci[1])
            if kind == "hazard_ratio":
                for i, bound in enumerate((lo, hi)):
                    if bound is not None and bound <= 0:
                        self.error(path + ("ci", i), f"a ratio's CI bound must be positive, got {bound:g}")
            if lo is not None and hi is not None and lo > hi:
                self.error(path + ("ci",), f"lower bound {lo:g} is above upper bound {hi:g}")
            elif value is not None and ((lo is not None and value < lo - EPS) or (hi is not None and value > hi + EPS)):
                self.error(path + ("ci",), f"the CI [{_fmt_bound(lo)}, {_fmt_bound(hi)}] does not contain "
                           f"its estimate {value:g}")

    def median_in_range(self, median: Any, rng: Any, path: PathT, median_key: str) -> None:
        if not (isinstance(rng, list) and len(rng) == 2):
            return
        lo, hi, m = _num(rng[0]), _num(rng[1]), _num(median)
        if lo is not None and hi is not None and lo > hi:
            self.error(path + ("range",), f"range lower end {lo:g} is above its upper end {hi:g}")
        elif m is not None and lo is not None and hi is not None and not lo - EPS <= m <= hi + EPS:
            self.error(path + (median_key,), f"median {m:g} lies outside its range [{lo:g}, {hi:g}]")

    def baseline(self, baseline: Any, path: PathT) -> None:
        for name, entry in _map(baseline).items():
            if not isinstance(entry, dict):
                continue
            shapes = [("median" in entry or "range" in entry), ("events" in entry or "n" in entry or
                                                                "percent" in entry), ("value" in entry)]
            if sum(shapes) != 1:
                self.error(path + (name,), "give exactly one of {median, range}, {events, n, percent} or {value}")
            self.median_in_range(entry.get("median"), entry.get("range"), path + (name,), "median")
            self.counts(entry, path + (name,), pooled=False)


def _proportion(c: tuple) -> float | None:
    events, n, percent = c
    if events is not None and n:
        return events / n
    return percent / 100 if percent is not None else None


def _fmt_num(x: float, raw: str | None) -> str:
    return raw.strip() if raw else f"{x:g}"


def _fmt_bound(x: float | None) -> str:
    return "null" if x is None else f"{x:g}"


# -- checks across files ----------------------------------------------------------
def _cross_file(parsed: list[ParsedFile]) -> list[Problem]:
    problems: list[Problem] = []

    def line(p: ParsedFile, path: PathT) -> int | None:
        while path not in p.lines and path:
            path = path[:-1]
        return p.lines.get(path)

    def add(p: ParsedFile, path: PathT, severity: str, message: str) -> None:
        problems.append(Problem(p.file, format_path(path), line(p, path), severity, message))

    by_id: dict[str, ParsedFile] = {}
    for p in parsed:
        rid = _str(_map(p.data).get("id"))
        if rid is None:
            continue
        if rid in by_id:
            add(p, ("id",), ERROR, f"duplicate id '{rid}': also used by {by_id[rid].file}")
        else:
            by_id[rid] = p

    def relations(p: ParsedFile) -> tuple[list[tuple[PathT, Any]], list[tuple[PathT, Any]]]:
        rel = _map(_map(p.data).get("relations"))
        sup = [(("relations", "supersedes", i), x) for i, x in enumerate(_list(rel.get("supersedes")))]
        ovl = [(("relations", "overlaps", i, "id"), _map(x).get("id")) for i, x in enumerate(_list(rel.get("overlaps")))]
        return sup, ovl

    related: set[frozenset] = set()
    supersedes: dict[str, set[str]] = {}
    for p in parsed:
        rid = _str(_map(p.data).get("id"))
        sup, ovl = relations(p)
        for path, other in sup + ovl:
            if not isinstance(other, str):
                continue
            if other not in by_id:
                near = suggest(other, by_id)
                add(p, path, ERROR, f"names unknown study id '{other}'" + (f"; did you mean '{near}'?" if near else ""))
            elif rid is not None:
                related.add(frozenset((rid, other)))
        if rid is not None:
            supersedes[rid] = {x for _, x in sup if isinstance(x, str)}
    # A supersedes cycle would leave every record in it superseded (nothing pooled).
    for rid in supersedes:
        stack, seen = list(supersedes[rid] - {rid}), set()     # self-reference is reported on its own
        while stack:
            cur = stack.pop()
            if cur == rid:
                add(by_id[rid], ("relations", "supersedes"), ERROR, f"supersedes cycle: '{rid}' is (indirectly) "
                    "superseded by a record it supersedes")
                break
            if cur not in seen:
                seen.add(cur)
                stack.extend(supersedes.get(cur, ()))

    # Same centre, overlapping enrolment, no declared relation: the same patients may be pooled twice.
    centres: dict[str, list[tuple[ParsedFile, int]]] = {}
    for p in by_id.values():
        for i, centre in enumerate(_list(_map(p.data).get("centres"))):
            name = _str(_map(centre).get("name"))
            if name:
                key = " ".join(name.casefold().split())
                if not any(q is p for q, _ in centres.get(key, [])):
                    centres.setdefault(key, []).append((p, i))
    reported: set[frozenset] = set()
    for members in centres.values():
        for a in range(len(members)):
            for b in range(a + 1, len(members)):
                (pa, _), (pb, ib) = members[a], members[b]
                ida, idb = _map(pa.data)["id"], _map(pb.data)["id"]
                pair = frozenset((ida, idb))
                if pair in related or pair in reported:
                    continue
                ea, eb = _map(_map(pa.data).get("enrolment")), _map(_map(pb.data).get("enrolment"))
                sa, fa, sb, fb = (_year_month(ea.get("start")), _year_month(ea.get("end")),
                                  _year_month(eb.get("start")), _year_month(eb.get("end")))
                path = ("centres", ib, "name")
                reported.add(pair)
                if None in (sa, fa, sb, fb):
                    add(pb, path, WARNING, f"shares a centre with '{ida}' ({pa.file}) and the enrolment dates "
                        "needed to rule out overlapping patients are missing; declare relations.overlaps if they overlap")
                elif sa <= fb and sb <= fa:
                    add(pb, path, ERROR, f"shares a centre with '{ida}' ({pa.file}) and their enrolment windows "
                        "overlap: declare relations.supersedes or relations.overlaps (in either record)")
    return problems


# -- entry points ----------------------------------------------------------------
def check_files(files: Iterable[str | Path], *, regimen_classes: dict | None = None,
                outcomes: dict | None = None) -> tuple[list[ParsedFile], list[Problem]]:
    """Parse and check the given files; return the parsed records and every problem."""
    regimen_classes = load_regimen_classes() if regimen_classes is None else regimen_classes
    outcomes = load_outcomes() if outcomes is None else outcomes
    parsed_files: list[ParsedFile] = []
    problems: list[Problem] = []
    for f in files:
        parsed, parse_problems = parse_file(f)
        problems += parse_problems
        if parsed is None:
            continue
        checker = _Checker(parsed, regimen_classes, outcomes)
        checker.walk(parsed.data, schema.STUDY, ())
        checker.record_rules()
        problems += checker.problems
        parsed_files.append(parsed)
    problems += _cross_file(parsed_files)
    order = {str(f): i for i, f in enumerate(files)} if isinstance(files, list) else {}
    problems.sort(key=lambda p: (order.get(p.file, 0), p.file, p.line or 0))
    return parsed_files, problems


def study_files(directory: str | Path) -> tuple[list[Path], list[Problem]]:
    """The `*.yaml` files of a directory (sorted), and problems with the directory itself."""
    d = Path(directory)
    if not d.is_dir():
        return [], [Problem(str(d), "", None, ERROR, "no such directory")]
    files, problems = [], []
    inside = d.resolve()
    for p in sorted(d.iterdir()):
        if p.suffix != ".yaml":
            continue
        # Never read outside the studies folder, never skip a file without saying so.
        if p.is_symlink() and not p.exists():
            problems.append(Problem(str(p), "", None, ERROR, "a symbolic link to nothing (its target is missing): "
                                    "not read"))
        elif p.is_symlink() and not p.resolve().is_relative_to(inside):
            problems.append(Problem(str(p), "", None, ERROR, "a symbolic link to a file outside the studies "
                                    "folder: not read (copy the record into the folder)"))
        elif not p.is_file():
            problems.append(Problem(str(p), "", None, ERROR, "not a regular file: not read"))
        else:
            files.append(p)
    problems += [Problem(str(p), "", None, ERROR, "study files must end in .yaml (this one is not read)")
                 for p in sorted(d.iterdir()) if p.suffix.lower() in (".yml", ".yaml") and p.suffix != ".yaml"]
    # Nothing is silently skipped: study files parked in a subfolder are named.
    # (os.walk does not follow symbolic links: a link to / is not searched.)
    nested = sorted(Path(root) / f for root, _, names in os.walk(d) if Path(root) != d
                    for f in names if f.endswith(".yaml"))
    problems += [Problem(str(p), "", None, WARNING, "in a subfolder: not read as a study record") for p in nested]
    if not files:
        problems.append(Problem(str(d), "", None, ERROR, "no study files (*.yaml) in this directory"))
    return files, problems


def check_directory(directory: str | Path = "extracted_studies", *, regimen_classes: dict | None = None,
                    outcomes: dict | None = None) -> tuple[list[ParsedFile], list[Problem]]:
    """Parse and check every study file of `directory`: (parsed records, every problem)."""
    files, problems = study_files(directory)
    parsed, file_problems = check_files(files, regimen_classes=regimen_classes, outcomes=outcomes)
    return parsed, problems + file_problems


def validate_directory(directory: str | Path = "extracted_studies", *, regimen_classes: dict | None = None,
                       outcomes: dict | None = None) -> list[Problem]:
    """Every problem in every study file of `directory` (errors and warnings)."""
    return check_directory(directory, regimen_classes=regimen_classes, outcomes=outcomes)[1]


def validate_text(text: str, file: str = "<string>.yaml", *, regimen_classes: dict | None = None,
                  outcomes: dict | None = None) -> list[Problem]:
    """Problems of one record given as text (the id is checked against `file`'s name).

    Checks that need the other records (duplicate ids, relations, shared centres) are left to
    `validate_directory`.
    """
    parsed, problems = parse_text(text, file)
    if parsed is None:
        return problems
    checker = _Checker(parsed, load_regimen_classes() if regimen_classes is None else regimen_classes,
                       load_outcomes() if outcomes is None else outcomes)
    checker.walk(parsed.data, schema.STUDY, ())
    checker.record_rules()
    return sorted(checker.problems, key=lambda p: p.line or 0)


def errors(problems: Iterable[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity == ERROR]


__all__ = ["Problem", "ParsedFile", "ERROR", "WARNING", "parse_text", "parse_file", "check_files",
           "check_directory", "validate_directory", "validate_text", "study_files", "errors",
           "percent_matches", "printed_decimals", "format_path"]
