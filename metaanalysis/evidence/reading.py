"""Read one YAML study file exactly as a person wrote it, with the line of every field.

PyYAML follows YAML 1.1, where `012` is 10 (octal), `0x12` and `1_8` are 18 and `1:10` is 70
(base 60); YAML 1.2 reads `012` as 12. A count in a study record must not depend on which rule a
reader follows, so numbers are read by one strict rule, plain decimal (as JSON writes them):

    integers  0, 12, -3                         floats  0.5, 45.50, 1e-3, 2.5E+2, .inf, .nan
    refused   012 08 0x12 0o17 0b11 1_8 1:10 +1 .5 5. (each named with file, line and field)

Quoted values are text, as always. Also refused, each with its line and field: integers beyond
2^53 (the largest whole number a float, and so the models, hold exactly), floats that overflow
to infinity or underflow to zero, terminal control characters (ESC ...) in text, and every
explicit tag (`!!int 010`, `!!float 1:30`, `!int` under a `%TAG` directive, `!!str`, `!` or a
custom `!foo`): a tag changes how the text after it is read (`!!int 010` is 8, `!!float 3_3` is
33), so a record says what it means without one. Characters that YAML does not allow anywhere
(NUL, raw ESC and the other C0/C1 controls, even in a comment) are named with line and column
before the parser sees them. Bounded before anything is built: the size of the text (MAX_BYTES)
and the nesting depth (MAX_DEPTH; checked on the parser's event stream, which needs no
recursion, so a 30,000-deep file is an error message and not a crash of the interpreter).
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

MAX_BYTES = 2_000_000  # the largest study record is ~25 kB
MAX_DEPTH = 64  # the record format nests ~8 levels
MAX_INT = 2**53

_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
INT_TAG, FLOAT_TAG, STR_TAG = "tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:str"

_STRICT_INT = re.compile(r"-?(?:0|[1-9][0-9]*)")
_STRICT_FLOAT = re.compile(
    r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)"
)
# What YAML 1.1 (PyYAML) or YAML 1.2 (core schema) would read as a number.
_YAML11_INT = re.compile(
    r"[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+"
    r"|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+"
)
_YAML11_FLOAT = re.compile(
    r"[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9_]+(?:[eE][-+][0-9]+)?"
    r"|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*"
)
_YAML12 = re.compile(r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+|[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
# What YAML allows in a stream at all (its "printable" set, as the parsers check it).
_NOT_YAML = re.compile("[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# YAML's line breaks, so that our line numbers are the parser's.
_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")
_CHARACTER_NAMES = {0x00: "NUL", 0x07: "BEL", 0x08: "backspace", 0x0B: "vertical tab", 0x0C: "form feed", 0x1B: "ESC"}
MAX_LISTED_LINES = 20  # lines with forbidden characters listed one by one; the rest are counted
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


class _Loader(_Base):
    """SafeLoader with plain-decimal numbers only (booleans, nulls and dates as before)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (INT_TAG, FLOAT_TAG)]
    for first, resolvers in _Base.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(INT_TAG, re.compile(rf"^(?:{_STRICT_INT.pattern})$"), list("-0123456789"))
_Loader.add_implicit_resolver(FLOAT_TAG, re.compile(rf"^(?:{_STRICT_FLOAT.pattern})$"), list("-+.0123456789"))


class ReadError(Exception):
    """A problem with the text at `line` (1-based) and field `path` (a tuple of keys and indices)."""

    def __init__(self, message: str, line: int | None, path: tuple = ()):
        super().__init__(message)
        self.message, self.line, self.path = message, line, tuple(path)


@dataclass(slots=True)
class YamlDocument:
    data: Any = None
    lines: dict[tuple, int] = field(default_factory=dict)  # field path -> line
    raw: dict[tuple, str] = field(default_factory=dict)  # field path -> the scalar as written


def read_yaml(text: str) -> tuple[YamlDocument | None, list[ReadError]]:
    """(the document, []) or (None, every problem found): fatal ones stop at the first."""
    if len(text) > MAX_BYTES:
        return None, [
            ReadError(
                f"the file is {len(text):,} characters long; a study record is at most "
                f"{MAX_BYTES:,} (is this the right file?)",
                None,
            )
        ]
    if forbidden := forbidden_characters(text):
        return None, forbidden
    try:
        tagged = _scan_events(text)
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                raise ReadError("the file is empty", None)
            doc = YamlDocument(lines={(): node.start_mark.line + 1})
            found: list[ReadError] = []
            doc.data = _build(node, (), _Context(loader, doc, set(), found, tagged))
        finally:
            loader.dispose()
    except ReadError as exc:
        return None, [exc]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        context = exc.context or ""
        if context and exc.context_mark is not None and exc.problem_mark is not None:
            context += f" (from line {exc.context_mark.line + 1})"
        what = ": ".join(p for p in (context, exc.problem) if p)
        return None, [ReadError(f"malformed YAML: {what}", mark.line + 1 if mark else None)]
    except yaml.YAMLError as exc:
        return None, [ReadError(f"malformed YAML: {exc}", None)]
    except RecursionError:
        return None, [ReadError("malformed YAML: nesting too deep", None)]
    except (ValueError, OverflowError) as exc:
        # PyYAML's constructors raise these for impossible values, e.g. the date 2023-02-30.
        return None, [ReadError(f"malformed YAML: unreadable value ({exc})", None)]
    return (None, found) if found else (doc, [])


def line_starts(text: str) -> list[int]:
    """The index at which each line of `text` starts (line breaks as YAML counts them)."""
    return [0] + [m.end() for m in _BREAK.finditer(text)]


_BOMS = {
    b"\xff\xfe\x00\x00": "UTF-32",
    b"\x00\x00\xfe\xff": "UTF-32",
    b"\xff\xfe": "UTF-16",
    b"\xfe\xff": "UTF-16",
}


def decode_utf8(data: bytes, breaks: re.Pattern[str] = _BREAK) -> tuple[str | None, list[ReadError]]:
    """The text of `data`, or (None, one error per line that is not UTF-8, with its columns).

    Lines are counted with `breaks` (YAML's line breaks by default) and columns in characters, as
    an editor shows them; a file that starts with a UTF-16 or UTF-32 byte-order mark is named so.
    """
    for bom, name in _BOMS.items():
        if data.startswith(bom):
            return None, [
                ReadError(
                    f"the file is {name} text (it starts with a {name} byte-order mark), not UTF-8: "
                    "save the file as UTF-8",
                    1,
                )
            ]
    try:
        return data.decode("utf-8"), []
    except UnicodeDecodeError:
        pass
    text = data.decode("utf-8", "surrogateescape")  # each byte that is not UTF-8 becomes U+DC80..U+DCFF
    starts = [0] + [m.end() for m in breaks.finditer(text)]
    by_line: dict[int, list[tuple[int, int]]] = {}
    for m in re.finditer("[\udc80-\udcff]", text):
        line = bisect.bisect_right(starts, m.start())
        by_line.setdefault(line, []).append((m.start() - starts[line - 1] + 1, ord(m.group()) - 0xDC00))
    out = []
    for line, found in list(by_line.items())[:MAX_LISTED_LINES]:
        shown = ", ".join(f"0x{b:02X} at column {col}" for col, b in found[:3]) + (", ..." if len(found) > 3 else "")
        plural = "s" if len(found) > 1 else ""
        out.append(ReadError(f"not UTF-8 text (byte{plural} {shown}): save the file as UTF-8", line))
    if len(by_line) > MAX_LISTED_LINES:
        rest = list(by_line)[MAX_LISTED_LINES:]
        out.append(
            ReadError(
                f"not UTF-8 text on {len(rest):,} more lines (lines {rest[0]} to {rest[-1]}): save the file as UTF-8",
                rest[0],
            )
        )
    return None, out


def forbidden_characters(text: str) -> list[ReadError]:
    """Characters YAML allows nowhere (not even in a comment), one error per line with the columns."""
    hits = list(_NOT_YAML.finditer(text))
    if not hits:
        return []
    starts = line_starts(text)
    by_line: dict[int, list[tuple[int, str]]] = {}
    for m in hits:
        line = bisect.bisect_right(starts, m.start())
        by_line.setdefault(line, []).append((m.start() - starts[line - 1] + 1, m.group()))
    out = []
    for line, found in list(by_line.items())[:MAX_LISTED_LINES]:
        names = sorted({_character_name(c) for _, c in found})
        columns = ", ".join(str(col) for col, _ in found[:5]) + (", ..." if len(found) > 5 else "")
        out.append(
            ReadError(
                f"contains {' and '.join(names)} (column{'s' if len(found) > 1 else ''} {columns}), "
                "which YAML does not allow anywhere in a file, not even in a comment: remove "
                f"{'them' if len(found) > 1 else 'it'}",
                line,
            )
        )
    if len(by_line) > MAX_LISTED_LINES:
        rest = list(by_line)[MAX_LISTED_LINES:]
        out.append(
            ReadError(
                f"{len(rest):,} more lines (lines {rest[0]} to {rest[-1]}) hold such characters (is this a text file?)",
                rest[0],
            )
        )
    return out


def _character_name(c: str) -> str:
    code = ord(c)
    if 0xD800 <= code <= 0xDFFF:
        return f"an unpaired surrogate U+{code:04X}"
    name = _CHARACTER_NAMES.get(code)
    return f"the control character U+{code:04X}" + (f" ({name})" if name else "")


_TOO_DEEP = f"nested more than {MAX_DEPTH} levels deep; a study record nests about 8 (is this the right file?)"


_NODE_KIND = {yaml.ScalarEvent: yaml.ScalarNode, yaml.SequenceStartEvent: yaml.SequenceNode}


def _node_key(kind: type, mark: Any) -> tuple:
    return (kind, mark.index, mark.line, mark.column)


def _scan_events(text: str) -> dict[tuple, str]:
    """Check the nesting depth on the event stream; return the explicit tags, by node position.

    A node's tag is resolved by the time it is composed, so whether it was written out can only
    be seen here: an event's `tag` is None unless the text gave one.
    """
    depth = 0
    tagged: dict[tuple, str] = {}
    try:
        for event in yaml.parse(text, Loader=_Loader):
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:
                    raise ReadError(_TOO_DEEP, event.start_mark.line + 1 if event.start_mark else None)
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
            tag = getattr(event, "tag", None)  # scalars and collection starts; None unless written
            if tag is not None:
                kind = _NODE_KIND.get(type(event), yaml.MappingNode)
                tagged[_node_key(kind, event.start_mark)] = tag
    except yaml.MarkedYAMLError as exc:
        # The libyaml in PyYAML 6.0.4's wheels (not 6.0.1-6.0.3's) stops flow nesting itself ("exceeded
        # maximum nesting depth") while it scans ahead for a simple key, before the parser has
        # handed us the 65th level; older wheels and the pure-Python scanner do not. Both readings
        # of a too-deep file get the same message, at the line the scanner stopped on.
        if "nesting depth" not in (exc.problem or ""):
            raise
        mark = exc.problem_mark or exc.context_mark
        raise ReadError(_TOO_DEEP, mark.line + 1 if mark else None) from None
    return tagged


@dataclass(slots=True)
class _Context:
    loader: Any
    doc: YamlDocument
    seen: set[int]
    found: list[ReadError]
    tagged: dict[tuple, str]  # explicit tags by node position (_node_key)


def _shown_tag(tag: str) -> str:
    for prefix, short in (("tag:yaml.org,2002:", "!!"), ("!", "!")):
        if tag.startswith(prefix):
            return short + tag[len(prefix) :]
    return f"!<{tag}>"


def _tag_problem(node: yaml.Node, path: tuple, ctx: _Context) -> bool:
    """Record an error (and return True) when `node` was written with an explicit tag."""
    tag = ctx.tagged.get(_node_key(type(node), node.start_mark))
    if tag is None:
        return False
    if isinstance(node, yaml.ScalarNode):
        what = f"the YAML tag {_shown_tag(tag)} (before {_shorten(node.value)!r}) is not allowed"
        fix = "remove it: write numbers in plain decimal digits, text in quotes"
    else:
        what = f"the YAML tag {_shown_tag(tag)} is not allowed"
        fix = "remove it: write the list or mapping without a tag"
    ctx.found.append(
        ReadError(
            f"{what}: a tag changes how a value is read (!!int 010 is 8, !!float 1:30 is 90); {fix}",
            node.start_mark.line + 1,
            path,
        )
    )
    return True


def _build(node: yaml.Node, path: tuple, ctx: _Context) -> Any:
    loader, doc, seen, found = ctx.loader, ctx.doc, ctx.seen, ctx.found
    if id(node) in seen:
        # An alias: the same node reached twice. Refused so that a record reads the same to a human
        # as to the tool (and a recursive alias cannot loop). The node's own mark is the anchor's.
        raise ReadError(
            "YAML anchors/aliases (&name, *name) are not supported: write the value out "
            f"(it repeats the value at line {node.start_mark.line + 1})",
            doc.lines.get(path),
            path,
        )
    seen.add(id(node))
    tagged = _tag_problem(node, path, ctx)
    if isinstance(node, yaml.ScalarNode):
        doc.raw[path] = node.value
        return node.value if tagged else _scalar(node, path, loader, found)
    if isinstance(node, yaml.SequenceNode):
        out_list = []
        for i, item in enumerate(node.value):
            # An alias item has no mark of its own: fall back on the list's line.
            doc.lines[path + (i,)] = (item.start_mark.line if id(item) not in seen else node.start_mark.line) + 1
            out_list.append(_build(item, path + (i,), ctx))
        return out_list
    out: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key_line = key_node.start_mark.line + 1
        if not isinstance(key_node, yaml.ScalarNode):
            raise ReadError("a mapping key must be a plain name", key_line, path)
        key = key_node.value if _tag_problem(key_node, path, ctx) else _scalar(key_node, path, loader, found)
        if key in out:
            raise ReadError(
                f"key {key!r} appears twice (lines {doc.lines[path + (key,)]} and {key_line}); "
                "the second would silently replace the first",
                key_line,
                path + (key,),
            )
        doc.lines[path + (key,)] = key_line
        out[key] = _build(value_node, path + (key,), ctx)
    return out


def _scalar(node: yaml.ScalarNode, path: tuple, loader: Any, found: list[ReadError]) -> Any:
    line = node.start_mark.line + 1
    if node.tag == "tag:yaml.org,2002:merge":
        raise ReadError("merge keys (<<) are not supported: write the keys out", line, path)
    text = node.value
    if not node.style and node.tag == STR_TAG and (problem := spelling_problem(text)):  # plain: "" (libyaml) or None
        found.append(ReadError(problem, line, path))
        return text
    # Length first: int() of a 5,000-digit literal is itself refused by Python.
    if node.tag == INT_TAG and (len(text.lstrip("-")) > 16 or abs(int(text)) > MAX_INT):
        found.append(
            ReadError(
                f"{_shorten(text)} is too large: whole numbers up to {MAX_INT:,} (2^53) are held "
                "exactly; check the value",
                line,
                path,
            )
        )
        return text
    try:
        value = loader.construct_object(node, deep=True)
    except (ValueError, OverflowError) as exc:
        # PyYAML's constructors raise these for impossible values, e.g. the date 2023-02-30.
        raise ReadError(f"unreadable value {text!r} ({exc})", line, path) from None
    if isinstance(value, float) and node.tag == FLOAT_TAG and _STRICT_FLOAT.fullmatch(text) and "." != text[:1]:
        mantissa = re.split("[eE]", text)[0].strip("-+0.")
        if value in (float("inf"), float("-inf")) and "inf" not in text.lower():
            found.append(
                ReadError(f"{_shorten(text)} is too large to be a number (it overflows to infinity)", line, path)
            )
        elif value == 0.0 and mantissa:
            found.append(ReadError(f"{_shorten(text)} is too small to be a number (it underflows to 0)", line, path))
    if isinstance(value, str) and (bad := _CONTROL.search(value)):
        found.append(
            ReadError(
                f"contains the control character U+{ord(bad.group()):04X} (terminal escape "
                "sequences and invisible direction marks are not allowed): remove it",
                line,
                path,
            )
        )
    return value


def spelling_problem(text: str) -> str | None:
    """Why a plain scalar that some YAML reader takes for a number is refused (None: it is text)."""
    if not (_YAML11_INT.fullmatch(text) or _YAML11_FLOAT.fullmatch(text) or _YAML12.fullmatch(text)):
        return None
    v11, v12 = _yaml11_value(text), _yaml12_value(text)
    if v11 is not None and v12 is not None and v11 != v12:
        readings = [f"YAML 1.1 reads it as {v11}, YAML 1.2 as {v12}"]
    else:
        shown = v11 if v11 is not None else v12
        version = "" if v11 is not None and v12 is not None else (" 1.1" if v11 is not None else " 1.2")
        readings = [f"YAML{version} reads it as {shown}"] if shown is not None else []
    plain = _plain_decimal(text)
    fix = f"write {plain}" if plain is not None else "write the number in plain decimal digits"
    why = (": " + ", ".join(readings)) if readings else ""
    return f"{text!r} is not a plain decimal number{why}; {fix} (or quote it, '{text}', if it is text)"


def _yaml11_value(text: str) -> int | float | None:
    try:
        value = yaml.load(text, Loader=yaml.SafeLoader)
    except (yaml.YAMLError, ValueError):
        return None
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _yaml12_value(text: str) -> int | float | None:
    sign = -1 if text.startswith("-") else 1
    body = text.lstrip("+-")
    try:
        if re.fullmatch(r"0o[0-7]+", text):
            return int(text[2:], 8)
        if re.fullmatch(r"0x[0-9a-fA-F]+", text):
            return int(text[2:], 16)
        if re.fullmatch(r"[0-9]+", body):
            return sign * int(body)
        if _YAML12.fullmatch(text):
            return float(text)
    except ValueError:
        return None
    return None


def _plain_decimal(text: str) -> str | None:
    """The plain-decimal spelling of the same digits (012 -> 12, +1 -> 1, .5 -> 0.5), if that is meant."""
    sign = "-" if text.startswith("-") else ""
    body = text.lstrip("+-").replace("_", "")
    if re.fullmatch(r"[0-9]+", body):
        return sign + str(int(body))
    if re.fullmatch(r"[0-9]*\.[0-9]*", body) and body != ".":
        whole, frac = body.split(".")
        return sign + str(int(whole or "0")) + ("." + frac if frac else "")
    return None


def _shorten(text: str) -> str:
    return text if len(text) <= 24 else f"{text[:10]}...{text[-6:]} ({len(text)} characters)"


__all__ = [
    "read_yaml",
    "ReadError",
    "YamlDocument",
    "spelling_problem",
    "forbidden_characters",
    "decode_utf8",
    "line_starts",
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_INT",
]
