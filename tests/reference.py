"""Load the metafor reference results (metafor 3.8-1, R 4.2.2; see shared/reference/README.md).

The reference folder sits beside the repository clone (`<repo>/../shared/reference`,
i.e. /work/shared/reference here and in CI); set METAANALYSIS_REFERENCE_DIR to
point elsewhere.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path

from metaanalysis.engine.effects import EffectSizes, escalc

# Relative tolerance against metafor, and an absolute floor for values that
# are 0 or within rounding of 0 (tau2 = 0, I2 = 0, a CI bound at 0, a pooled
# risk difference near 0), where a relative error is meaningless: two correct
# computations of "0" differ by ~1e-16, not by a fraction of themselves.
RTOL = 1e-6
ATOL = 1e-10


def reference_dir() -> Path:
    override = os.environ.get("METAANALYSIS_REFERENCE_DIR")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[1].parent / "shared" / "reference"


@lru_cache(maxsize=1)
def load_reference() -> list[dict]:
    path = reference_dir() / "metafor_reference.json"
    if not path.is_file():
        raise FileNotFoundError(f"metafor reference not found at {path}; set METAANALYSIS_REFERENCE_DIR")
    with path.open() as fh:
        return json.load(fh)


@lru_cache(maxsize=1)
def load_cases() -> list[dict]:
    """The inputs metafor_reference.R was run on (cases.json: carries `log_scale`, not copied into the results)."""
    with (reference_dir() / "cases.json").open() as fh:
        return json.load(fh)


def is_log_scale(name: str) -> bool:
    """Whether the R script back-transformed a generic case with exp."""
    return bool(next(c for c in load_cases() if c["name"] == name).get("log_scale"))


def case(name: str) -> dict:
    for c in load_reference():
        if c["name"] == name:
            return c
    raise KeyError(name)


def effect_sizes(c: dict, measure: str) -> EffectSizes:
    """escalc() with metafor's defaults on a reference case's data."""
    d = c["data"]
    if c["kind"] == "prop":
        return escalc(measure, events=d["events"], n=d["n"], studies=d["study"])
    if c["kind"] == "2x2":
        return escalc(measure, ai=d["ai"], n1i=d["n1i"], ci=d["ci"], n2i=d["n2i"], studies=d["study"])
    return escalc("GEN", yi=d["yi"], vi=d["vi"], studies=d["study"])


def close(ours: float, expected: float) -> bool:
    return abs(ours - expected) <= max(RTOL * abs(expected), ATOL)
