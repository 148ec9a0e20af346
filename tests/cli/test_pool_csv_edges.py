"""`pool-csv` at the edges: number spellings, counts beyond 2^53, variances double precision cannot
weight, exp overflow, messages that name real options, I^2 within [0, 100], duplicate names."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metaanalysis import cli
from metaanalysis.cli.pool_csv import MAX_COUNT, InputError, read_table

SETTINGS = settings(max_examples=100, deadline=None, derandomize=True)
DIGIT_ZEROS = {"full-width": 0xFF10, "Arabic-Indic": 0x0660, "extended Arabic-Indic": 0x06F0, "Devanagari": 0x0966}


def run_cli(capsys, tmp_path, text: str, *args: str):
    path = tmp_path / "t.csv"
    path.write_text(text, encoding="utf-8")
    code = cli.main(["pool-csv", str(path), *args])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else None), err.strip().splitlines()


def read(tmp_path, text: str, measure: str = "PLO"):
    path = tmp_path / "t.csv"
    path.write_text(text, encoding="utf-8")
    return read_table(path, measure, None)


# -- spellings ---------------------------------------------------------------------------
@SETTINGS
@given(st.integers(min_value=1, max_value=MAX_COUNT))
def test_counts_in_plain_digits_are_read_exactly(tmp_path_factory, n):
    table = read(tmp_path_factory.mktemp("c"), f"study,events,n\nA,0,{n}\nB,1,{n}\n")
    assert table.columns["n"] == [n, n] and all(type(x) is int for x in table.columns["n"])


@SETTINGS
@given(st.integers(min_value=10, max_value=10**6), st.sampled_from(["underscore", *DIGIT_ZEROS, "exponent"]))
def test_other_spellings_of_a_count_are_refused_with_line_and_column(tmp_path_factory, n, form):
    digits = str(n)
    if form == "underscore":
        spelt = digits[0] + "_" + digits[1:]
    elif form == "exponent":
        spelt = f"{n}e0"
    else:
        spelt = "".join(chr(DIGIT_ZEROS[form] + int(d)) for d in digits)
    assert int(spelt.replace("e0", "")) == n if form != "exponent" else True  # what float() would accept
    with pytest.raises(InputError, match=r"line 3 \(data row 2\), column 'n'"):
        read(tmp_path_factory.mktemp("s"), f"study,events,n\nA,1,20\nB,1,{spelt}\n")


@pytest.mark.parametrize("value", ["1_0", "nan", "inf", "-infinity", "0x10", "１０", "١٠", " 1 0"])
def test_yi_and_vi_spellings_that_float_would_take_are_refused(tmp_path, value):
    with pytest.raises(InputError, match="column 'yi'"):
        read(tmp_path, f"study,yi,vi\nA,0.1,0.01\nB,{value},0.02\n", "GEN")


@pytest.mark.parametrize(
    "value, expected", [("-0.5", -0.5), ("+1e-3", 0.001), (".5", 0.5), ("2.", 2.0), ("1E+2", 100.0)]
)
def test_ordinary_decimal_spellings_are_read(tmp_path, value, expected):
    assert read(tmp_path, f"study,yi,vi\nA,{value},0.01\nB,0,0.02\n", "GEN").columns["yi"][0] == expected


@pytest.mark.parametrize("value", ["1e30", str(MAX_COUNT + 1), "1" + "0" * 400])
def test_counts_that_cannot_be_held_exactly_are_refused(tmp_path, value):
    with pytest.raises(InputError, match="column 'n'"):
        read(tmp_path, f"study,events,n\nA,1,{value}\nB,1,20\n")


# -- numbers double precision cannot hold ------------------------------------------------
@pytest.mark.parametrize("vi", ["5e-324", "1e-200", "1e308"])
def test_variances_outside_what_can_be_weighted_are_one_line_exit_2(capsys, tmp_path, vi):
    code, out, err = run_cli(capsys, tmp_path, f"study,yi,vi\na,0.1,{vi}\nb,0.2,0.04\nc,0.3,0.05\n", "--measure", "GEN")
    assert code == 2 and out is None and len(err) == 1 and "line 2, column 'vi'" in err[0]


def test_one_study_outweighing_all_others_by_1e10_is_refused(capsys, tmp_path):
    # vi = 1e-16 beside 1: the typical within-study variance cancels to noise in double precision
    # (I^2 jumps from 76.5 % to 62 % or 99 % between 1e-14 and 1e-18); refused rather than reported.
    code, _, err = run_cli(capsys, tmp_path, "study,yi,vi\na,0.1,1e-16\nb,2.0,1\nc,-1.5,1\n", "--measure", "GEN")
    assert code == 2 and "study 'a'" in err[0] and "weight" in err[0]
    code, _, err = run_cli(
        capsys, tmp_path, f"study,events,n\na,{MAX_COUNT // 2},{MAX_COUNT}\nb,5,20\nc,10,30\n", "--measure", "PLO"
    )
    assert code == 2 and "the variance from its counts" in err[0]


def test_exp_overflow_is_null_with_a_note_never_inf(capsys, tmp_path):
    code, out, err = run_cli(
        capsys, tmp_path, "study,yi,vi\na,800,0.04\nb,810,0.04\nc,805,0.05\n", "--measure", "GEN", "--transform", "exp"
    )
    assert code == 0 and err == []
    assert out["bt_pred"] is None and out["bt_ci_ub"] is None and math.isfinite(out["b"])
    assert any("exceeds the largest double" in n for n in out["notes"])


def test_exp_of_a_large_but_finite_estimate_is_kept(capsys, tmp_path):
    code, out, _ = run_cli(
        capsys, tmp_path, "study,yi,vi\na,700,0.04\nb,701,0.04\n", "--measure", "GEN", "--transform", "exp", "--ci", "z"
    )
    assert code == 0 and out["bt_pred"] == pytest.approx(math.exp(out["b"]), rel=1e-12)


def test_json_never_holds_inf_or_nan_in_a_subprocess(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("study,yi,vi,g\na,800,0.04,x\nb,810,0.04,x\nc,805,0.05,y\nd,806,0.05,y\n", encoding="utf-8")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "metaanalysis",
            "pool-csv",
            str(path),
            "--measure",
            "GEN",
            "--transform",
            "exp",
            "--group",
            "g",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    json.loads(proc.stdout, parse_constant=lambda c: pytest.fail(f"{c} in the JSON"))
    assert "Warning" not in proc.stderr


# -- messages and bounds --------------------------------------------------------------------
def test_identical_estimates_suggest_only_ci_choices_that_exist(capsys, tmp_path):
    table = "study,yi,vi\na,0.5,0.04\nb,0.5,0.04\nc,0.5,0.05\n"
    code, _, err = run_cli(capsys, tmp_path, table, "--measure", "GEN")
    assert code == 2 and "use --ci knha_adhoc or --ci z" in err[0] and "test=" not in err[0]
    choices = next(
        a for a in cli.build_parser()._subparsers._group_actions[0].choices["pool-csv"]._actions if a.dest == "ci"
    ).choices
    assert {"knha_adhoc", "z"} <= set(choices)
    code, out, _ = run_cli(capsys, tmp_path, table, "--measure", "GEN", "--ci", "knha_adhoc")
    assert code == 0 and out["b"] == pytest.approx(0.5) and out["test"] == "knha_adhoc"


@SETTINGS
@given(st.lists(st.tuples(st.floats(-50, 50), st.floats(1e-6, 1e3)), min_size=2, max_size=8))
def test_i2_and_its_bounds_are_percentages(tmp_path_factory, rows):
    path = tmp_path_factory.mktemp("i2") / "t.csv"
    path.write_text("study,yi,vi\n" + "".join(f"s{i},{y!r},{v!r}\n" for i, (y, v) in enumerate(rows)))
    from metaanalysis.cli.pool_csv import finite_output, pool
    from metaanalysis.engine.estimators import ConvergenceError

    try:
        table = read_table(path, "GEN", None)
        out = finite_output(pool(table, measure="GEN", method="DL", test="z", level=0.95))
    except (InputError, ValueError, ArithmeticError, ConvergenceError):
        return  # refused inputs are covered above
    for key in ("I2", "I2_ci_lb", "I2_ci_ub"):
        if out[key] is not None:
            assert 0.0 <= out[key] <= 100.0, (key, out[key])


def test_duplicate_study_names_are_warned_on_stderr_and_in_notes(capsys, tmp_path):
    code, out, err = run_cli(capsys, tmp_path, "study,events,n\na,10,20\na,5,20\nc,10,30\n", "--measure", "PLO")
    assert code == 0 and len(err) == 1 and "warning" in err[0] and "'a' appears on lines 2, 3" in err[0]
    assert any("'a' appears on lines 2, 3" in n for n in out["notes"])
