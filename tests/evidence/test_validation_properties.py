"""Property tests: whatever a file holds, validation ends in a list of problems and the loader
either returns tables or raises StudyValidationError, never any other exception."""

from __future__ import annotations

import copy
import datetime
import tempfile
from pathlib import Path

import pandas as pd
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metaanalysis.evidence.studies import (
    StudyValidationError,
    load_records,
    load_studies,
    load_time_to_event,
    study_table,
)
from metaanalysis.evidence.validation import Problem, validate_directory, validate_text

BASE_TEXT = (Path(__file__).parents[1] / "fixtures" / "base_2024.yaml").read_text(encoding="utf-8")
BASE = yaml.safe_load(BASE_TEXT)
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.dates(min_value=datetime.date(1900, 1, 1), max_value=datetime.date(2100, 1, 1)),
    st.sampled_from(["", "2023-07", "<FILL:x>", "ORR", "CR", "median", "overall", "car_t", "percent", "yes"]),
)
keys = st.one_of(
    st.text(max_size=12),
    st.integers(),
    st.booleans(),
    st.sampled_from(["id", "events", "n", "percent", "source", "ci", "value", "derived", "kind"]),
)
values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4), max_leaves=12
)


def paths(node, prefix=()):
    """Every path into a nested dict/list."""
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from paths(v, prefix + (i,))


ALL_PATHS = [p for p in paths(BASE) if p]


@st.composite
def mutated_records(draw):
    record = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        path = draw(st.sampled_from(ALL_PATHS))
        parent = record
        try:
            for part in path[:-1]:
                parent = parent[part]
            action = draw(st.sampled_from(["replace", "delete", "add"]))
            if action == "replace":
                parent[path[-1]] = draw(values)
            elif action == "delete":
                del parent[path[-1]]
            elif isinstance(parent, dict):
                parent[draw(keys)] = draw(values)
        except (KeyError, IndexError, TypeError):
            pass  # an earlier mutation removed or retyped this path
    return record


def assert_loader_contract(directory: Path) -> None:
    problems = validate_directory(directory)
    assert isinstance(problems, list) and all(isinstance(p, Problem) for p in problems)
    for load in (load_studies, load_time_to_event, lambda d: study_table(load_records(d))):
        try:
            assert isinstance(load(directory), pd.DataFrame)
        except StudyValidationError as exc:
            assert exc.problems and any(p.severity == "error" for p in exc.problems)


def write_and_check(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "base_2024.yaml").write_bytes(content)
        assert_loader_contract(Path(tmp))


@SETTINGS
@given(values)
def test_any_yaml_value_gives_problems(value):
    problems = validate_text(yaml.safe_dump(value, allow_unicode=True), "base_2024.yaml")
    assert problems and all(isinstance(p, Problem) for p in problems)


@SETTINGS
@given(mutated_records())
def test_mutated_records_give_problems_or_tables(record):
    write_and_check(yaml.safe_dump(record, allow_unicode=True, sort_keys=False).encode("utf-8"))


@SETTINGS
@given(st.binary(max_size=300))
def test_random_bytes(content):
    write_and_check(content)


@SETTINGS
@given(st.text(alphabet=st.sampled_from(list(":-[]{}#&*!|>'\"%@`,? \n\tab01.~")), max_size=120))
def test_random_yaml_syntax(text):
    write_and_check(text.encode("utf-8"))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=0, max_value=len(BASE_TEXT)), st.integers(min_value=1, max_value=40))
def test_truncated_and_cut_files(start, length):
    write_and_check((BASE_TEXT[:start] + BASE_TEXT[start + length :]).encode("utf-8"))
