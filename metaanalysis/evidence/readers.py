"""Small readers that tolerate wrong types (the schema walk reports those), and percentages against counts."""

from __future__ import annotations

import math
import re
from datetime import date, datetime
from typing import Any

from metaanalysis.evidence.problems import EPS


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
