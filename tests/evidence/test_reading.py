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
from metaanalysis.evidence.reading import MAX_BYTES, MAX_DEPTH, MAX_INT, MAX_LISTED_LINES, read_yaml
from metaanalysis.evidence.validation import check_directory, parse_file, parse_text, validate_text

FIXTURE = Path(__file__).parents[1] / "fixtures" / "base_2024.yaml"
BASE_TEXT = FIXTURE.read_text(encoding="utf-8")
EVENTS_LINE = "        events: 6\n"  # arms[0].binary.ORR.events
EVENTS_LINE_NO = BASE_TEXT[: BASE_TEXT.index(EVENTS_LINE)].count("\n") + 1  # counted in the fixture's text
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
    assert problem.severity == "error" and problem.line == EVENTS_LINE_NO and problem.file == "base_2024.yaml"
    assert f"'{spelling}' is not a plain decimal number" in problem.message


def test_the_message_says_what_each_reader_would_make_of_it():
    [problem] = events_problems("012")
    assert "YAML 1.1 reads it as 10, YAML 1.2 as 12; write 12" in problem.message


def test_every_misspelt_number_in_a_file_is_listed_at_once():
    text = with_events("012").replace("        n: 12\n", "        n: 0x0c\n", 1)
    problems = validate_text(text, "base_2024.yaml")
    assert [(p.line, p.path) for p in problems] == [
        (EVENTS_LINE_NO, "arms[0].binary.ORR.events"),
        (EVENTS_LINE_NO + 1, "arms[0].binary.ORR.n"),
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
    assert f"base_2024.yaml:{EVENTS_LINE_NO}: error: arms[0].binary.ORR.events:" in out and "too large" in out


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


# -- explicit tags -----------------------------------------------------------------------
# What PyYAML's SafeLoader makes of each (the reading the tag would smuggle past the plain-decimal
# rule), and the tag as the message must show it.
TAGGED = [
    ("!!int 010", 8, "!!int"),
    ("!!float 1:30", 90.0, "!!float"),
    ("!!float 3_3", 33.0, "!!float"),
    ("!!int 0x3", 3, "!!int"),
    ("!!int 0b11", 3, "!!int"),
    ("!!int 6", 6, "!!int"),
    ("!!str 6", "6", "!!str"),
    ("!!binary Ng==", b"6", "!!binary"),
    ("!<tag:yaml.org,2002:int> 010", 8, "!!int"),
    ("! 6", 6, "!"),  # the YAML spec makes it the text "6"; PyYAML the number
    ("!foo 6", None, "!foo"),
    ("!!python/object:os.system 6", None, "!!python/object:os.system"),
]


@pytest.mark.parametrize("spelling, safe_loader_reads, shown", TAGGED)
def test_every_explicit_tag_is_refused_with_file_line_and_field(spelling, safe_loader_reads, shown):
    if safe_loader_reads is None:
        with pytest.raises(yaml.YAMLError):
            yaml.load(f"x: {spelling}", Loader=yaml.SafeLoader)
    else:
        assert yaml.load(f"x: {spelling}", Loader=yaml.SafeLoader)["x"] == safe_loader_reads
    [problem] = events_problems(spelling)
    assert problem.severity == "error" and problem.line == EVENTS_LINE_NO and problem.file == "base_2024.yaml"
    assert f"the YAML tag {shown} " in problem.message and "is not allowed" in problem.message


def test_a_tag_directive_does_not_get_a_number_through():
    text = "%TAG ! tag:yaml.org,2002:\n---\n" + with_events("!int 010")
    assert yaml.load(text, Loader=yaml.SafeLoader)["arms"][0]["binary"]["ORR"]["events"] == 8
    problems = validate_text(text, "base_2024.yaml")
    assert [(p.line, p.path) for p in problems] == [(EVENTS_LINE_NO + 2, "arms[0].binary.ORR.events")]
    assert "the YAML tag !!int" in problems[0].message


@pytest.mark.parametrize(
    "text, line, path, shown",
    [
        ("a: 1\nb: !!set {x, y}\n", 2, ("b",), "!!set"),
        ("a:\n  - !!omap [k: 1]\n", 2, ("a", 0), "!!omap"),
        ("a: !!seq [1]\n", 1, ("a",), "!!seq"),
        ("a:\n  !!map {k: 1}\n", 2, ("a",), "!!map"),
        ("a: 1\n!!str b: 2\n", 2, (), "!!str"),  # on a key: named at the mapping that holds it
    ],
)
def test_tags_on_lists_mappings_and_keys_are_refused(text, line, path, shown):
    doc, found = read_yaml(text)
    assert doc is None and [(e.line, e.path) for e in found] == [(line, path)]
    assert f"the YAML tag {shown} is not allowed" in found[0].message or f"the YAML tag {shown} (" in found[0].message


def test_every_tag_in_a_file_is_listed_at_once(tmp_path, capsys):
    text = with_events("!!int 010").replace("        n: 12\n", "        n: !!float 1:30\n", 1)
    (tmp_path / "base_2024.yaml").write_text(text, encoding="utf-8")
    assert cli.main(["validate", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"base_2024.yaml:{EVENTS_LINE_NO}: error: arms[0].binary.ORR.events: the YAML tag !!int" in out
    assert f"base_2024.yaml:{EVENTS_LINE_NO + 1}: error: arms[0].binary.ORR.n: the YAML tag !!float" in out


# -- characters YAML allows nowhere --------------------------------------------------------
def line_and_column(text: str, index: int) -> tuple[int, int]:
    before = text[:index]
    return before.count("\n") + 1, index - (before.rfind("\n") + 1) + 1


@pytest.mark.parametrize(
    "char, name", [("\x00", "U+0000 (NUL)"), ("\x1b", "U+001B (ESC)"), ("\x7f", "U+007F"), ("\x9b", "U+009B")]
)
@pytest.mark.parametrize(
    "where",
    [
        "title: Study title # a comment @\n",
        "title: Study @ title\n",
        "title: 'Study @ title'\n",
        "title: |\n  Study\n  a@b\n",
        "@title: x\n",
        "title: x\n@\n",
    ],
)
def test_a_forbidden_character_anywhere_is_named_with_its_line_and_column(char, name, where):
    text = "id: x\n" + where.replace("@", char)
    _, problems = parse_text(text, "x.yaml")
    [problem] = problems
    assert (problem.line, problem.file) == (line_and_column(text, text.index(char))[0], "x.yaml")
    assert f"{name} (column {line_and_column(text, text.index(char))[1]})" in problem.message
    assert "not even in a comment" in problem.message


def test_every_line_with_a_forbidden_character_is_listed(tmp_path):
    text = "id: x\n# \x00\ntitle: a\x1bb\nnotes: c\x00d\x1be\n"
    (tmp_path / "x.yaml").write_bytes(text.encode("utf-8"))
    _, problems = parse_file(tmp_path / "x.yaml")
    assert [p.line for p in problems] == [2, 3, 4]
    assert "U+0000 (NUL) and the control character U+001B (ESC) (columns 9, 11)" in problems[2].message


def test_a_binary_file_gets_a_bounded_list(tmp_path):
    text = "".join(f"k{i}: \x01\n" for i in range(500))
    _, problems = parse_text(text, "x.yaml")
    assert len(problems) == MAX_LISTED_LINES + 1 and [p.line for p in problems[:3]] == [1, 2, 3]
    assert f"{500 - MAX_LISTED_LINES} more lines (lines {MAX_LISTED_LINES + 1} to 500)" in problems[-1].message


# -- not UTF-8 ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "data, line, column, byte",
    [
        (b"id: x\ntitle: caf\xe9\n", 2, len("title: caf") + 1, "0xE9"),  # Latin-1
        ("id: x\ntitle: \u2713 ".encode() + b"\xff\n", 2, len("title: \u2713 ") + 1, "0xFF"),  # columns in characters
        (b"\xff\nid: x\n", 1, 1, "0xFF"),
        (b"id: x\n# \x80 stray\n", 2, 3, "0x80"),
    ],
)
def test_invalid_utf8_is_named_by_line_and_column(tmp_path, data, line, column, byte):
    (tmp_path / "x.yaml").write_bytes(data)
    parsed, [problem] = parse_file(tmp_path / "x.yaml")
    assert parsed is None and problem.line == line
    assert f"{byte} at column {column}" in problem.message and "save the file as UTF-8" in problem.message


@pytest.mark.parametrize("encoding, name", [("utf-16", "UTF-16"), ("utf-32", "UTF-32")])
def test_a_utf16_file_is_named_as_such(tmp_path, encoding, name):
    (tmp_path / "x.yaml").write_bytes("id: x\n".encode(encoding))  # Python writes the byte-order mark
    _, [problem] = parse_file(tmp_path / "x.yaml")
    assert f"the file is {name} text" in problem.message and "save the file as UTF-8" in problem.message


def test_a_utf8_byte_order_mark_is_read(tmp_path):
    (tmp_path / "x.yaml").write_bytes(b"\xef\xbb\xbfid: x\n")
    parsed, problems = parse_file(tmp_path / "x.yaml")
    assert problems == [] and parsed.data == {"id": "x"}


# -- file names -------------------------------------------------------------------------------
# name -> (severity or None, words of the message, whether the file is read as a record)
NAMES = [
    ("chong2022_pembro.yaml ", "error", "begins or ends with white space", False),
    ("chong2022_pembro.yaml\t", "error", "begins or ends with white space", False),
    ("chong2022_pembro.YAML", "error", "ends in '.YAML'", False),
    ("chong2022_pembro.Yaml", "error", "ends in '.Yaml'", False),
    ("chong2022_pembro.yml", "error", "ends in '.yml'", False),
    ("chong2022_pembro.yaml.txt", "error", "has more after '.yaml'", False),
    ("chong2022_pembro.yaml\u200b", "error", "has more after '.yaml'", False),  # zero-width space
    ("chong2022 pembro.yaml", "error", "is not <id>.yaml", True),
    (" chong2022_pembro.yaml", "error", "is not <id>.yaml", True),
    ("Chong2022_pembro.yaml", "error", "is not <id>.yaml", True),
    ("chong2022-pembro.yaml", "error", "is not <id>.yaml", True),
    ("chong2022_pembro.yaml.bak", "warning", "a backup or editor copy", False),
    ("chong2022_pembro.yaml~", "warning", "a backup or editor copy", False),
    ("chong2022_pembro.yaml.orig", "warning", "a backup or editor copy", False),
    ("#chong2022_pembro.yaml#", "warning", "a backup or editor copy", False),
    (".chong2022_pembro.yaml.swp", "warning", "a hidden file", False),
    (".chong2022_pembro.yaml", "warning", "a hidden file", False),
    ("._chong2022_pembro.yaml", "warning", "a hidden file", False),  # macOS resource fork
    ("notes.md", "warning", "not a study record", False),
    ("chong2022_pembro.json", "warning", "not a study record", False),
    (".DS_Store", None, "", False),
    (".gitkeep", None, "", False),
    ("chong2022_pembro.yaml", None, "", True),
]


@pytest.mark.parametrize("name, severity, words, read", NAMES)
def test_every_file_name_that_is_not_id_yaml_is_reported(tmp_path, name, severity, words, read):
    studies = tmp_path / "studies"
    studies.mkdir()
    (studies / "base_2024.yaml").write_text(BASE_TEXT, encoding="utf-8")
    (studies / name).write_text(BASE_TEXT.replace("id: base_2024", "id: chong2022_pembro", 1), encoding="utf-8")
    parsed, problems = check_directory(studies)
    about = [p for p in problems if Path(p.file).name == name and p.path == ""]
    assert [p.severity for p in about] == ([severity] if severity else [])
    if severity:
        assert words in about[0].message and repr(name) in about[0].message
    assert sorted(Path(p.file).name for p in parsed) == sorted(["base_2024.yaml"] + ([name] if read else []))


def test_a_trailing_space_fails_validate_instead_of_going_unread(tmp_path, capsys):
    (tmp_path / "base_2024.yaml ").write_text(BASE_TEXT, encoding="utf-8")
    assert cli.main(["validate", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "'base_2024.yaml ' begins or ends with white space: not read" in out
    assert "no study files (*.yaml) in this directory" in out and "0 study file(s) read" in out


def test_yaml_like_names_in_a_subfolder_are_named(tmp_path):
    (tmp_path / "base_2024.yaml").write_text(BASE_TEXT, encoding="utf-8")
    (tmp_path / "old").mkdir()
    for name in ("a.yaml", "b.YAML", "c.yml", "d.yaml "):
        (tmp_path / "old" / name).write_text("id: x\n", encoding="utf-8")
    _, problems = check_directory(tmp_path)
    nested = sorted(Path(p.file).name for p in problems if "in a subfolder" in p.message)
    assert nested == ["a.yaml", "b.YAML", "c.yml", "d.yaml "]


# -- the search log and the syntheses: the same reader, the same folder rules -----------------
def test_the_search_log_gets_the_same_protections(tmp_path):
    from helpers import SESSION, evidence

    from metaanalysis.evidence.search_log import load_search_log

    tagged = SESSION.replace("date: 2026-01-02\n", "date: !!timestamp 2026-01-02\n", 1)
    assert tagged != SESSION
    studies = evidence(tmp_path, tagged)
    log_dir = studies.parent / "review" / "search_log"
    (log_dir / "2026-01-03-more.yaml ").write_text(SESSION, encoding="utf-8")
    (log_dir / "2026-01-04-nul.yaml").write_bytes(b"session: x\n# \x00\n")
    (log_dir / "2026-01-05-latin.yaml").write_bytes(b"session: caf\xe9\n")
    _, problems = load_search_log(log_dir)
    by_file = {Path(p.file).name: p for p in problems if p.severity == "error"}
    tag_line = tagged[: tagged.index("date: !!timestamp")].count("\n") + 1
    assert by_file["2026-01-02-test.yaml"].line == tag_line and by_file["2026-01-02-test.yaml"].path == "date"
    assert "the YAML tag !!timestamp" in by_file["2026-01-02-test.yaml"].message
    assert "white space: not read" in by_file["2026-01-03-more.yaml "].message
    assert by_file["2026-01-04-nul.yaml"].line == 2 and "NUL" in by_file["2026-01-04-nul.yaml"].message
    assert (
        by_file["2026-01-05-latin.yaml"].line == 1 and "0xE9 at column 13" in by_file["2026-01-05-latin.yaml"].message
    )


def test_the_syntheses_get_the_same_protections(tmp_path):
    from metaanalysis.evidence.syntheses import load_syntheses

    d = tmp_path / "syntheses"
    (d / "excerpts").mkdir(parents=True)
    (d / "excerpts" / "notes.txt").write_text("not a record\n", encoding="utf-8")  # a subfolder: quiet
    (d / "roe2025_meta.yaml ").write_text("id: roe2025_meta\n", encoding="utf-8")
    (d / "doe2025_meta.yaml").write_text("id: doe2025_meta\ndesign: !!str meta_analysis\n", encoding="utf-8")
    (d / "outside.yaml").symlink_to(FIXTURE)
    _, problems = load_syntheses(d)
    by_file = {Path(p.file).name: p for p in problems if p.path in ("", "design")}
    assert "white space: not read" in by_file["roe2025_meta.yaml "].message
    assert by_file["doe2025_meta.yaml"].line == 2 and "the YAML tag !!str" in by_file["doe2025_meta.yaml"].message
    assert "outside the syntheses folder" in by_file["outside.yaml"].message
    assert "notes.txt" not in " ".join(p.file for p in problems)
