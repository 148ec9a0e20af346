"""Quotes of records read at a URL, checked against the text the search returned.

A record found through the systematic search (`citation.source_file: null`) has no file under
shared/ to check its quotes against (every quoted mapping counts: numbers' sources, risk-of-bias
support, selection and metadata sources); the search's text is kept in `review/excerpts/<id>.txt`
instead, and every quote of such a record, and every quote that names its own `source.url`,
must appear there word for word. Only runs of whitespace (line breaks, double spaces) are
normalised: a changed word, number or punctuation mark is an error.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from metaanalysis.evidence.reading import decode_utf8
from metaanalysis.evidence.validation import ERROR, ParsedFile, Problem, format_path

_LINES = re.compile(r"\r\n|[\r\n]")  # a text file's lines, as an editor counts them


def normalise(text: str) -> str:
    return " ".join(text.split())


def quotes(value: Any, path: tuple = ()) -> Iterable[tuple[tuple, str, bool]]:
    """(path of the quote, the quote, whether it names its own url) for every quoted mapping:
    a number's `source`, a risk-of-bias `support`, a `selection_source`, a `metadata_source`
    entry - any mapping with `where` and `quote`."""
    if isinstance(value, dict):
        if "where" in value and isinstance(value.get("quote"), str):
            yield path + ("quote",), value["quote"], isinstance(value.get("url"), str)
        for key, item in value.items():
            yield from quotes(item, path + (key,))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from quotes(item, path + (i,))


def quote_problems(parsed: list[ParsedFile], excerpts_dir: str | Path) -> list[Problem]:
    problems: list[Problem] = []
    for p in parsed:
        data = p.data if isinstance(p.data, dict) else {}
        citation = data["citation"] if isinstance(data.get("citation"), dict) else {}
        read_at_url = "source_file" in citation and citation["source_file"] is None
        to_check = [(path, q) for path, q, has_url in quotes(data) if read_at_url or has_url]
        if not to_check:
            continue
        excerpt = Path(excerpts_dir) / f"{p.stem}.txt"
        if not excerpt.is_file():
            path = ("citation", "source_file") if read_at_url else to_check[0][0]
            problems.append(
                Problem(
                    p.file,
                    format_path(path),
                    _line(p, path),
                    ERROR,
                    f"quotes read at a URL need the text they were read from in {excerpt}",
                )
            )
            continue
        try:
            decoded, not_utf8 = decode_utf8(excerpt.read_bytes(), _LINES)
        except OSError as exc:
            problems.append(Problem(str(excerpt), "", None, ERROR, f"cannot read the file: {exc.strerror}"))
            continue
        if decoded is None:  # its quotes cannot be checked until it is saved as UTF-8
            problems += [Problem(str(excerpt), "", e.line, ERROR, e.message) for e in not_utf8]
            continue
        text = normalise(decoded)
        for path, quote in to_check:
            if normalise(quote) not in text:
                problems.append(
                    Problem(
                        p.file,
                        format_path(path),
                        _line(p, path),
                        ERROR,
                        f"this quote is not in {excerpt} word for word (only whitespace may "
                        "differ): copy it from the excerpt",
                    )
                )
    return problems


def _line(p: ParsedFile, path: tuple) -> int | None:
    while path not in p.lines and path:
        path = path[:-1]
    return p.lines.get(path)


__all__ = ["quote_problems", "quotes", "normalise"]
