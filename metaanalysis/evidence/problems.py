"""Problems found in study files, and how a file is read into one (YAML with line numbers)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from metaanalysis.evidence.reading import MAX_BYTES, decode_utf8, read_yaml

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
        if size > MAX_BYTES:  # refused before reading: a stray 50 MB file costs nothing
            return None, [
                Problem(
                    file,
                    "",
                    None,
                    ERROR,
                    f"the file is {size:,} bytes; a study record is at most {MAX_BYTES:,} (is this the right file?)",
                )
            ]
        data = Path(path).read_bytes()
    except OSError as exc:
        return None, [Problem(file, "", None, ERROR, f"cannot read the file: {exc.strerror}")]
    text, found = decode_utf8(data)
    if text is None:
        return None, [Problem(file, "", e.line, ERROR, e.message) for e in found]
    return parse_text(text, file)


def errors(problems: Iterable[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity == ERROR]
