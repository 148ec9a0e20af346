"""Untrusted text: no formula runs when a reviewer opens our CSVs, no escape sequence reaches a terminal."""

from __future__ import annotations

import csv

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metaanalysis.presentation.safe_text import neutralise_csv, printable, spreadsheet_cell, write_csv

SETTINGS = settings(max_examples=200, deadline=None, derandomize=True)


@pytest.mark.parametrize("cell", ["=1+1", "+SUM(A1)", "-2+3", "@cmd", '=HYPERLINK("x")', "\t=1", " =1", "\r=1"])
def test_formula_cells_get_an_apostrophe(cell):
    assert spreadsheet_cell(cell) == "'" + cell


@SETTINGS
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_numbers_written_as_text_stay_numbers(x):
    for text in (repr(x), f"{x:+g}", f"{x:e}"):
        assert spreadsheet_cell(text) == text


@SETTINGS
@given(st.text())
def test_no_cell_starts_a_formula_after_neutralising(text):
    safe = spreadsheet_cell(text)
    assert safe == text or safe == "'" + text
    first = safe.lstrip(" ")[:1]
    if first in ("=", "+", "-", "@", "\t", "\r"):
        float(safe)  # only numbers may still start with + or -


def test_write_csv_leaves_numeric_columns_alone(tmp_path):
    frame = pd.DataFrame({"study": ["=cmd|' /C calc'!A0", "ok"], "estimate": [-0.5, 1.25], "label": ["-0.5", "-x"]})
    write_csv(frame, tmp_path / "t.csv")
    rows = list(csv.reader((tmp_path / "t.csv").open(encoding="utf-8")))
    assert rows == [["study", "estimate", "label"], ["'=cmd|' /C calc'!A0", "-0.5", "-0.5"], ["ok", "1.25", "'-x"]]
    assert pd.read_csv(tmp_path / "t.csv")["estimate"].tolist() == [-0.5, 1.25]


def test_a_csv_written_by_anyone_is_neutralised_and_an_innocent_one_untouched(tmp_path):
    bad, good = tmp_path / "bad.csv", tmp_path / "good.csv"
    bad.write_text('a,b\n"=1+1",-3\n', encoding="utf-8")
    good.write_text("a,b\nx,-3\n", encoding="utf-8")
    assert neutralise_csv(bad) and bad.read_text(encoding="utf-8") == "a,b\n'=1+1,-3\n"
    assert not neutralise_csv(good) and good.read_text(encoding="utf-8") == "a,b\nx,-3\n"


@pytest.mark.parametrize(
    "raw, shown",
    [
        ("\x1b[2J", "\\x1b[2J"),
        ("a\x07b", "a\\x07b"),
        ("\u202eevil", "\\u202eevil"),
        ("\x9b31m", "\\x9b31m"),
        ("tab\tand\nnewline", "tab\tand\nnewline"),
    ],
)
def test_printable_escapes_control_characters_only(raw, shown):
    assert printable(raw) == shown


@SETTINGS
@given(st.text())
def test_printable_output_holds_no_control_character(text):
    out = printable(text)
    assert not any((ord(c) < 32 and c not in "\t\n") or 0x7F <= ord(c) <= 0x9F for c in out)
