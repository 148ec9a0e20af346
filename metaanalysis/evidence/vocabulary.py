"""Controlled vocabularies: regimen classes and binary outcome names.

Both live in `metaanalysis/data/*.yaml` and are read at call time (through
`importlib.resources`, so they work from an installed wheel too): the person
extracting papers adds a class or an outcome by adding one entry there, and no
code changes. `suggest` turns a misspelling into "did you mean ...".
"""

from __future__ import annotations

import copy
import difflib
import functools
from collections.abc import Iterable
from importlib import resources
from typing import Any

import yaml

# The populations an analysis pools (data/analyses.yaml) and a published synthesis is filed under:
# whose prior therapy had failed before the salvage studied. A record's own population is built
# from population.prior_failure (studies.population_label).
POPULATIONS = ("after_car_t", "after_bispecific")


def _load(name: str) -> dict[str, dict[str, Any]]:
    text = resources.files("metaanalysis").joinpath("data", name).read_text(encoding="utf-8")
    # The file is read on every call (so an appended entry counts at once); parsing is cached per content.
    return copy.deepcopy(_parse(name, text))


@functools.lru_cache(maxsize=8)
def _parse(name: str, text: str) -> dict[str, dict[str, Any]]:
    data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    # These files ship with the package; a broken one is a programming error, not bad study input.
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, dict) for k, v in data.items()):
        raise ValueError(f"metaanalysis/data/{name} must map each name to a mapping of its properties")
    return data


def regimen_classes() -> dict[str, dict[str, Any]]:
    """Regimen class key -> {label, covers, aliases}, from data/regimen_classes.yaml."""
    return _load("regimen_classes.yaml")


def outcomes() -> dict[str, dict[str, Any]]:
    """Binary outcome name -> {kind, label}, from data/outcomes.yaml."""
    return _load("outcomes.yaml")


def suggest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate nearest to `word` (case-insensitive first, then difflib), or None."""
    candidates = list(candidates)
    folded = {c.casefold(): c for c in candidates}
    if word.casefold() in folded:
        return folded[word.casefold()]
    close = difflib.get_close_matches(word.casefold(), list(folded), n=1, cutoff=0.6)
    return folded[close[0]] if close else None


def suggest_regimen_class(word: str, classes: dict[str, dict[str, Any]]) -> str | None:
    """Nearest regimen class: a class whose aliases or covered regimens name `word`, else the nearest key."""
    needle = word.casefold().strip()
    for key, entry in classes.items():
        names = [*(entry.get("aliases") or []), *(entry.get("covers") or []), entry.get("label") or ""]
        if any(isinstance(n, str) and n.casefold() == needle for n in names):
            return key
    return suggest(word, classes)


def regimen_labels() -> dict[str, str]:
    """Regimen class key -> the label plots and tables print."""
    return {key: entry.get("label") or key for key, entry in regimen_classes().items()}


def outcome_labels() -> dict[str, str]:
    """Outcome name -> the label plots and tables print."""
    return {key: entry.get("label") or key for key, entry in outcomes().items()}


__all__ = [
    "POPULATIONS",
    "regimen_classes",
    "outcomes",
    "suggest",
    "suggest_regimen_class",
    "regimen_labels",
    "outcome_labels",
]
