"""`results/review.json`: the computed review, written once by the pipeline and read by every page.

The file is plain JSON (UTF-8, no NaN or Infinity literals), documented in docs/review-result.md:

    {"format": "metaanalysis-review", "schema_version": 1, "toolkit_version": "0.1.0",
     "review": {"__type__": "Review", "analyses": [...], ...}}

Every result object is a JSON object with `__type__` naming its class and one key per field
(`MetaResult` carries metafor's field names: b, se, ci_lb, ..., tau2, I2, QE). Tables are
`{"__frame__": {"columns": [...], "dtypes": [...], "data": [[...], ...]}}`, arrays
`{"__ndarray__": [...], "dtype": "float64"}`, non-finite floats `{"__float__": "nan"}`, dates
`{"__date__": "2026-12-03"}`. Lists inside result objects are read back as tuples (the objects
are frozen); inside study records they stay lists, as the records were written.

`load_review()` refuses a file of another format or schema version with a message saying what
to do (run `metaanalysis run` again), never a traceback.
"""

from __future__ import annotations

import dataclasses
import json
import math
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from metaanalysis.engine import bayes_result, diagnostics, methods, resampling, results
from metaanalysis.evidence import search_log
from metaanalysis.review import analyses, comparisons, result

FORMAT = "metaanalysis-review"
SCHEMA_VERSION = 1
FILE_NAME = "review.json"


class ReviewFileError(ValueError):
    """results/review.json is missing, damaged or of another schema; the message says what to do."""


def _classes() -> dict[str, type]:
    found = {}
    for module in (results, bayes_result, diagnostics, resampling, methods, search_log, analyses, comparisons, result):
        for name in dir(module):
            obj = getattr(module, name)
            if isinstance(obj, type) and dataclasses.is_dataclass(obj) and obj.__module__ == module.__name__:
                found[obj.__name__] = obj
    return found


CLASSES = _classes()


# -- encoding -----------------------------------------------------------------------------------
def _encode(value: Any) -> Any:
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else {"__float__": repr(v)}
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (datetime, date, pd.Timestamp)):
        return {"__date__": value.isoformat()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        name = type(value).__name__
        if CLASSES.get(name) is not type(value):
            raise TypeError(f"review.json cannot hold {type(value).__module__}.{name}: add it to result_io.CLASSES")
        out = {"__type__": name}
        for f in dataclasses.fields(value):
            out[f.name] = _encode(getattr(value, f.name))
        return out
    if isinstance(value, pd.DataFrame):
        return {
            "__frame__": {
                "columns": [str(c) for c in value.columns],
                "dtypes": [str(t) for t in value.dtypes],
                "data": [[_encode(v) for v in row] for row in value.itertuples(index=False, name=None)],
            }
        }
    if isinstance(value, np.ndarray):
        return {
            "__ndarray__": [_encode(v) for v in value.ravel().tolist()],
            "dtype": str(value.dtype),
            "shape": list(value.shape),
        }
    if isinstance(value, dict):
        bad = [k for k in value if not isinstance(k, str)]
        if bad:
            raise TypeError(f"review.json keys must be text; got {bad[:3]}")
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    raise TypeError(f"review.json cannot hold a {type(value).__name__}")


# -- decoding -----------------------------------------------------------------------------------
def _decode(value: Any, in_object: bool) -> Any:
    """`in_object`: inside a result object's field (lists become tuples) or not (lists stay lists)."""
    if isinstance(value, list):
        items = [_decode(v, in_object) for v in value]
        return tuple(items) if in_object else items
    if not isinstance(value, dict):
        return value
    if "__type__" in value:
        cls = CLASSES.get(value["__type__"])
        if cls is None:
            raise ReviewFileError(f"unknown object type {value['__type__']!r}")
        fields = {f.name for f in dataclasses.fields(cls) if f.init}
        return cls(**{k: _decode(v, True) for k, v in value.items() if k in fields})
    if "__float__" in value:
        return float(value["__float__"])
    if "__date__" in value:
        text = value["__date__"]
        return datetime.fromisoformat(text) if "T" in text else date.fromisoformat(text)
    if "__ndarray__" in value:
        data = [_decode(v, False) for v in value["__ndarray__"]]
        return np.asarray(data, dtype=value["dtype"]).reshape(value["shape"])
    if "__frame__" in value:
        return _frame(value["__frame__"])
    return {k: _decode(v, False) for k, v in value.items()}


def _frame(spec: dict) -> pd.DataFrame:
    data = [[_decode(v, False) for v in row] for row in spec["data"]]
    frame = pd.DataFrame(data, columns=spec["columns"]) if data else pd.DataFrame(columns=spec["columns"])
    for col, dtype in zip(spec["columns"], spec["dtypes"], strict=True):
        if str(frame[col].dtype) == dtype:
            continue
        try:
            frame[col] = frame[col].astype(dtype)
        except (TypeError, ValueError):
            pass  # e.g. an int column read back with a missing value: kept as read, never coerced
    return frame


# -- files --------------------------------------------------------------------------------------
def write_review(review: result.Review, folder: str | Path) -> Path:
    path = Path(folder) / FILE_NAME
    doc = {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "toolkit_version": review.toolkit_version,
        "review": _encode(review),
    }
    path.write_text(
        json.dumps(doc, ensure_ascii=False, allow_nan=False, separators=(",", ":")) + "\n", encoding="utf-8"
    )
    return path


def load_review(folder: str | Path) -> result.Review:
    """The review a run wrote into `folder` (a results folder, or the file itself)."""
    path = Path(folder)
    path = path if path.suffix == ".json" else path / FILE_NAME
    again = "run `metaanalysis run` (or `python3 make.py run`) to compute the review again"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReviewFileError(f"{path}: no computed review here; {again}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReviewFileError(f"{path}: damaged ({exc}); {again}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ReviewFileError(f"{path}: not a metaanalysis review file; {again}")
    if doc.get("schema_version") != SCHEMA_VERSION:
        raise ReviewFileError(
            f"{path}: written with schema version {doc.get('schema_version')!r} (toolkit "
            f"{doc.get('toolkit_version')!r}); this toolkit reads version {SCHEMA_VERSION}: {again}"
        )
    try:
        review = _decode(doc["review"], False)
    except (KeyError, TypeError, ValueError) as exc:
        raise ReviewFileError(f"{path}: damaged ({type(exc).__name__}: {exc}); {again}") from None
    if not isinstance(review, result.Review):
        raise ReviewFileError(f"{path}: holds no review; {again}")
    return review


__all__ = ["write_review", "load_review", "ReviewFileError", "FILE_NAME", "SCHEMA_VERSION", "FORMAT"]
