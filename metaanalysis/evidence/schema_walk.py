"""The schema walk: every key, type and allowed value of a record against `schema.py`."""

from __future__ import annotations

import math
import re
from datetime import date, datetime
from typing import Any

from metaanalysis.evidence import schema
from metaanalysis.evidence.problems import ERROR, WARNING, ParsedFile, PathT, Problem, format_path
from metaanalysis.evidence.readers import _describe, _int, _num, _year_month
from metaanalysis.evidence.schema import ListOf, MapOf, Record, Scalar
from metaanalysis.evidence.vocabulary import suggest, suggest_regimen_class

# A judgement's support when it is a quote: the same keys as a number's source.
SUPPORT_QUOTE = Record(schema.SOURCE.fields)


def _iso_date(value: Any) -> date | None:
    """A date written YYYY-MM-DD (YAML may already have read it as a date)."""
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value) if isinstance(value, str) and len(value) == 10 else None
    except ValueError:
        return None


class SchemaWalker:
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
                self.error(
                    path, "is empty (null): give a value" + (" (required)" if spec.required else " or remove the key")
                )
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
                self.unknown_outcome(path + (key,), key)
                continue
            self.walk(item, spec.value, path + (key,))

    def unknown_outcome(self, path: PathT, name: str) -> None:
        near = suggest(name, self.outcomes)
        self.error(
            path,
            f"unknown outcome '{name}'"
            + (f"; did you mean '{near}'?" if near else "")
            + " (outcome names are listed in metaanalysis/data/outcomes.yaml)",
        )

    def scalar(self, value: Any, spec: Scalar, path: PathT) -> None:
        kind = spec.kind
        if kind == "text":
            self.text(value, spec, path)
        elif kind == "integer":
            if _int(value) is None:
                if isinstance(value, float) and math.isfinite(value) and value.is_integer():
                    self.error(path, f"expected a whole number, got {value} (write {int(value)})")
                else:
                    self.error(
                        path,
                        f"expected a whole number (integer), got {_describe(value)}" + self._bool_hint(value, path),
                    )
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
        elif kind == "date":
            if _iso_date(value) is None:
                self.error(path, f"expected a date YYYY-MM-DD such as 2026-12-03, got {_describe(value)}")
        elif kind == "support":
            if isinstance(value, dict):
                self.record(value, SUPPORT_QUOTE, path)
            elif value != schema.NOT_REPORTED:
                self.error(
                    path,
                    f"expected a quote {{where, quote}} or {schema.NOT_REPORTED} (the source is silent), "
                    f"got {_describe(value)}",
                )
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
            self.error(
                path,
                f"'{value}' is not one of: {', '.join(spec.choices)}" + (f"; did you mean '{near}'?" if near else ""),
            )
        if spec.pattern and not re.fullmatch(spec.pattern, value):
            self.error(path, f"'{value}' must be lowercase letters, digits and _ only")
        if spec.vocabulary == "regimen_classes" and value not in self.regimen_classes:
            near = suggest_regimen_class(value, self.regimen_classes)
            self.error(
                path,
                f"unknown regimen class '{value}'"
                + (f"; did you mean '{near}'?" if near else "")
                + " (classes are listed in metaanalysis/data/regimen_classes.yaml)",
            )
        if spec.vocabulary == "outcomes" and value not in self.outcomes:
            self.unknown_outcome(path, value)

    def bounds(self, value: float, spec: Scalar, path: PathT) -> None:
        if spec.minimum is not None and value < spec.minimum:
            self.error(
                path,
                f"{value} is below the minimum {spec.minimum:g}"
                + (" (counts are never negative)" if spec.kind == "integer" else ""),
            )
        if spec.maximum is not None and value > spec.maximum:
            self.error(path, f"{value} is above the maximum {spec.maximum:g}")

    # -- checks across fields of one record ---------------------------------------------
