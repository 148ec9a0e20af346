"""Text from study records is untrusted: make it safe for a terminal and for a spreadsheet.

printable(text)         control characters (ESC sequences, bidi overrides) shown as \\x1b, \\u202e
spreadsheet_cell(cell)  a cell starting with = + - @ (a formula to Excel/LibreOffice) gets a
                        leading apostrophe; numbers such as -0.5 or +1e-3 stay numbers
write_csv(frame, path)  DataFrame.to_csv with every text cell and header made safe
neutralise_csv(path)    the same for a CSV written by anyone else (rewritten only if needed)
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pandas is imported only where a frame is written (validate stays light)
    import pandas as pd

# C0 controls except tab and newline, DEL, C1 controls, and the Unicode bidi controls that
# make text read differently from how it is stored.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|[+-]?(?:inf|nan)", re.ASCII | re.IGNORECASE)


def printable(text: object) -> str:
    """`text` with every control character written as a visible escape."""

    def escape(m: re.Match) -> str:
        code = ord(m.group())
        return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"

    return _CONTROL.sub(escape, str(text))


def spreadsheet_cell(cell: object) -> object:
    """A text cell that a spreadsheet would run as a formula, prefixed with an apostrophe."""
    if not isinstance(cell, str) or not cell:
        return cell
    first = cell.lstrip(" ")[:1]
    if (cell[0] in _FORMULA_START or first in _FORMULA_START) and not _NUMBER.fullmatch(cell.strip()):
        return "'" + cell
    return cell


def safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text cells and column names are spreadsheet-safe (numeric columns untouched)."""
    import pandas as pd

    out = frame.copy()
    for col in out.columns:
        if not (pd.api.types.is_numeric_dtype(out[col]) or pd.api.types.is_bool_dtype(out[col])):
            out[col] = out[col].map(spreadsheet_cell, na_action="ignore")
    out.columns = [spreadsheet_cell(c) if isinstance(c, str) else c for c in out.columns]
    return out


def write_csv(frame: pd.DataFrame, path: Path, **kwargs) -> None:
    """`frame.to_csv(path, index=False)` with formula-looking text neutralised."""
    kwargs.setdefault("index", False)
    safe_frame(frame).to_csv(path, lineterminator="\n", encoding="utf-8", **kwargs)


def neutralise_csv(path: Path) -> bool:
    """Rewrite a CSV file whose cells would run as formulas; True if it was changed."""
    text = Path(path).read_text(encoding="utf-8-sig")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    safe = [[spreadsheet_cell(c) for c in row] for row in rows]
    if safe == rows:
        return False
    buffer = io.StringIO(newline="")
    csv.writer(buffer, lineterminator="\n").writerows(safe)
    Path(path).write_text(buffer.getvalue(), encoding="utf-8")
    return True


__all__ = ["printable", "spreadsheet_cell", "safe_frame", "write_csv", "neutralise_csv"]
