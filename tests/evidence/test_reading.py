"""Study files are read exactly as written: number spellings, huge integers, depth, size, links."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from metaanalysis import cli
from metaanalysis.evidence.reading import MAX_BYTES, MAX_DEPTH, MAX_INT, read_yaml
from metaanalysis.evidence.validation import check_directory, parse_text, validate_text

FIXTURE = Path(__file__).parents[1] / "fixtures" / "base_2024.yaml"
BASE_TEXT = FIXTURE.read_text(encoding="utf-8")
EVENTS_LINE = "        events: 6\n"  # arms[0].binary.ORR.events (its n on the next line)
LINE = BASE_TEXT.splitlines().index(EVENTS_LINE.rstrip("\n")) + 1  # found in the fixture, not assumed
SETTINGS = settings(max_examples=150, deadline=None, derandomize=True)


def with_events(spelling: str) -> str:
    assert EVENTS_LINE in BASE_TEXT
    return BASE_TEXT.replace(EVENTS_LINE, f"        events: {spelling}\n", 1)


def events_problems(spelling: str):
    return [p for p in validate_text(with_events(spelling), "base_2024.yaml") if p.path == "arms[0].binary.ORR.events"]


# -- spellings ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "spelling, yaml11",
    [
        ("012", 10),
        ("051", 41),
        ("0x12", 18),
        ("1_8", 18),
        ("1:10", 70),
        ("+6", 6),
        ("0o6", None),
        ("06", 6),
        ("0b110", 6),
    ],
)
def test_yaml11_and_yaml12_spellings_are_refused_with_file_line_and_field(spelling, yaml11):
    assert yaml.load(f"x: {spelling}", Loader=yaml.SafeLoader)["x"] == (yaml11 if yaml11 is not None else spelling)
    [problem] = events_problems(spelling)
    assert problem.severity == "error" and problem.line == LINE and problem.file == "base_2024.yaml"
    assert f"'{spelling}' is not a plain decimal number" in problem.message


def test_the_message_says_what_each_reader_would_make_of_it():
    [problem] = events_problems("012")
    assert "YAML 1.1 reads it as 10, YAML 1.2 as 12; write 12" in problem.message


def test_every_misspelt_number_in_a_file_is_listed_at_once():
    text = with_events("012").replace("        n: 12\n", "        n: 0x0c\n", 1)
    problems = validate_text(text, "base_2024.yaml")
    assert [(p.line, p.path) for p in problems] == [
        (LINE, "arms[0].binary.ORR.events"),
        (LINE + 1, "arms[0].binary.ORR.n"),
    ]


def test_quoted_spellings_are_text_and_the_schema_says_so():
    [problem] = events_problems("'012'")
    assert "expected a whole number" in problem.message and "'012'" in problem.message


decimal = st.integers(min_value=0, max_value=MAX_INT)


@SETTINGS
@given(decimal)
def test_plain_decimal_integers_are_read_exactly(n):
    doc, found = read_yaml(f"n: {n}\nm: -{n}\n")
    assert found == [] and doc.data == {"n": n, "m": -n}
    assert type(doc.data["n"]) is int


@SETTINGS
@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e300, max_value=1e300))
def test_floats_written_by_repr_are_read_exactly(x):
    doc, found = read_yaml(f"x: {x!r}\n")
    assert found == [] and doc.data["x"] == x


@st.composite
def misspelt(draw):
    n = draw(st.integers(min_value=1, max_value=10**6))
    form = draw(
        st.sampled_from(
            [
                "zeros",
                "underscore",
                "plus",
                "hex",
                "octal12",
                "octal11",
                "binary",
                "base60",
                "leading_dot",
                "trailing_dot",
            ]
        )
    )
    digits = str(n)
    if form == "zeros":
        return "0" * draw(st.integers(1, 3)) + digits
    if form == "underscore":
        i = draw(st.integers(1, len(digits))) if len(digits) > 1 else 1
        return digits[:i] + "_" + digits[i:] if i < len(digits) else digits + "_0"
    if form == "plus":
        return "+" + digits
    if form == "hex":
        return hex(n)
    if form == "octal12":
        return "0o" + format(n, "o")
    if form == "octal11":
        return "0" + format(n, "o")
    if form == "binary":
        return bin(n)
    if form == "base60":
        return f"{draw(st.integers(1, 99))}:{draw(st.integers(0, 59)):02d}"
    if form == "leading_dot":
        return "." + digits
    return digits + "."


@SETTINGS
@given(misspelt())
def test_no_other_spelling_of_a_number_is_ever_read_as_one(spelling):
    doc, found = read_yaml(f"a:\n  events: {spelling}\n")
    assert doc is None and len(found) == 1, spelling
    assert found[0].line == 2 and found[0].path == ("a", "events")
    assert "is not a plain decimal number" in found[0].message


# -- huge integers, overflowing floats -------------------------------------------------
@SETTINGS
@given(st.integers(min_value=MAX_INT + 1, max_value=10**4000), st.booleans())
def test_integers_beyond_2_53_are_an_error_not_an_overflow(n, negative):
    doc, found = read_yaml(f"n: {'-' if negative else ''}{n}\n")
    assert doc is None and "too large" in found[0].message and found[0].line == 1


def test_more_digits_than_python_converts_is_the_same_error():
    doc, found = read_yaml("n: 1" + "0" * 6000 + "\n")  # int() refuses > 4300 digits
    assert doc is None and "too large" in found[0].message and "(6001 characters)" in found[0].message


@pytest.mark.parametrize(
    "value, message",
    [("1e400", "overflows to infinity"), ("-1e400", "overflows to infinity"), ("1e-400", "underflows to 0")],
)
def test_floats_that_cannot_be_held_are_errors(value, message):
    doc, found = read_yaml(f"x: {value}\n")
    assert doc is None and message in found[0].message


@pytest.mark.parametrize("command", ["validate", "summary"])
@pytest.mark.parametrize("n", [10**20, 10**400])
def test_validate_and_summary_report_huge_counts_in_one_line(tmp_path, capsys, command, n):
    (tmp_path / "base_2024.yaml").write_text(with_events(str(n)), encoding="utf-8")
    assert cli.main([command, str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"base_2024.yaml:{LINE}: error: arms[0].binary.ORR.events:" in out and "too large" in out


# -- depth and size ---------------------------------------------------------------------
@SETTINGS
@given(st.integers(min_value=MAX_DEPTH + 1, max_value=40_000), st.sampled_from(["flow_list", "flow_map", "block"]))
def test_deep_nesting_is_an_error_at_any_depth(depth, style):
    text = {
        "flow_list": "x: " + "[" * depth + "]" * depth,
        "flow_map": "x: " + "{a: " * depth + "1" + "}" * depth,
        "block": "x:\n" + "- " * depth + "1\n",
    }[style]
    doc, found = read_yaml(text)
    assert doc is None and f"nested more than {MAX_DEPTH} levels deep" in found[0].message


def test_30000_levels_do_not_crash_the_interpreter(tmp_path):
    # In a subprocess: a crash (segmentation fault) must show up as a failed test, not kill pytest.
    (tmp_path / "deep.yaml").write_text("id: deep\narms: " + "[" * 30000 + "]" * 30000 + "\n", encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "metaanalysis", "validate", str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 1, proc.stderr
    assert "deep.yaml:2: error: nested more than 64 levels deep" in proc.stdout


def test_the_record_format_stays_well_inside_the_depth_bound():
    doc, found = read_yaml(BASE_TEXT)

    def depth(v):
        if not isinstance(v, (dict, list)):
            return 0
        return 1 + max(map(depth, v.values() if isinstance(v, dict) else v), default=0)

    assert found == [] and depth(doc.data) <= MAX_DEPTH // 4


def test_a_huge_file_is_refused_before_it_is_read(tmp_path):
    big = tmp_path / "big.yaml"
    with open(big, "wb") as handle:
        handle.truncate(50 * 1024 * 1024)  # 50 MB (sparse: costs no disk)
    parsed, problems = check_directory(tmp_path)
    assert parsed == [] and "big.yaml" in problems[0].file
    assert f"a study record is at most {MAX_BYTES:,}" in problems[0].message


# -- control characters ------------------------------------------------------------------
@pytest.mark.parametrize("escape", ["\\e[2J", "\\e]0;pwned\\a", "\\x9b31m", "\\u202e"])
def test_control_characters_in_text_are_errors(escape):
    _, problems = parse_text(f'title: "Study {escape} title"\n', "x.yaml")
    assert problems and "control character" in problems[0].message and problems[0].path == "title"


def test_validate_prints_no_control_character_from_a_file_name(tmp_path, capsys):
    (tmp_path / "bad\x1b[2J.yml").write_text("id: x\n", encoding="utf-8")
    cli.main(["validate", str(tmp_path)])
    out = capsys.readouterr().out
    assert "\x1b" not in out and "bad\\x1b[2J.yml" in out


# -- links -------------------------------------------------------------------------------
@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symbolic links")
def test_dangling_and_outside_symlinks_are_named_and_never_read(tmp_path):
    studies = tmp_path / "studies"
    studies.mkdir()
    (studies / "base_2024.yaml").write_text(BASE_TEXT, encoding="utf-8")
    secret = tmp_path / "secret.yaml"
    secret.write_text("id: secret\npassword: hunter2\n", encoding="utf-8")
    (studies / "outside.yaml").symlink_to(secret)
    (studies / "dangling.yaml").symlink_to(tmp_path / "gone.yaml")
    (studies / "inside.yaml").symlink_to(studies / "base_2024.yaml")  # inside the folder: read
    parsed, problems = check_directory(studies)
    by_file = {Path(p.file).name: p.message for p in problems if p.severity == "error"}
    assert "outside the studies folder" in by_file["outside.yaml"]
    assert "target is missing" in by_file["dangling.yaml"]
    assert "hunter2" not in " ".join(str(p) for p in problems)
    assert sorted(Path(p.file).name for p in parsed) == ["base_2024.yaml", "inside.yaml"]


def test_a_linked_subfolder_is_not_searched(tmp_path):
    studies = tmp_path / "studies"
    studies.mkdir()
    (studies / "base_2024.yaml").write_text(BASE_TEXT, encoding="utf-8")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "x.yaml").write_text("id: x\n", encoding="utf-8")
    (studies / "link").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (studies / "parked").mkdir()
    (studies / "parked" / "old.yaml").write_text("id: old\n", encoding="utf-8")
    _, problems = check_directory(studies)
    named = [Path(p.file).name for p in problems]
    assert "old.yaml" in named and "x.yaml" not in named
