"""`metaanalysis pool-csv` against hostile input: a scripted table, each row one file (or option)
that once gave a traceback, a crash or a vague message, with the exit code and the one line it
must now print. No row may print a traceback or an internal exception's class name.

The rows run in-process through `cli.main` (a subprocess each would take minutes); a few run
through the real console as well, where an uncaught exception would show as a traceback.
Also here: k = 1 as metafor reports it, and the Freeman-Tukey caution.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from statistics import NormalDist

import pytest

from metaanalysis import cli

GEN = ["--measure", "GEN"]
PLO = ["--measure", "PLO"]
TWO = "study,yi,vi\nA,1,0.1\nB,2,0.2\n"
LONG = 200_000  # above the csv module's field limit (131,072)

# (id, file bytes, options, exit code, regular expression the one stderr line must match)
HOSTILE = [
    # -- the file: size of a field, encoding, characters -------------------------------------------
    ("200k-name", f"study,events,n\n{'x' * LONG},3,10\n".encode(), PLO, 2, r"line 2: .*field longer than .*131,072"),
    ("200k-digits", f"study,events,n\nA,{'1' * LONG},10\n".encode(), PLO, 2, r"line 2: .*field longer than"),
    ("200k-digits-yi", f"study,yi,vi\nA,{'1' * LONG},0.1\n".encode(), GEN, 2, r"line 2: .*field longer than"),
    ("100k-digit-count", f"study,events,n\nA,3,{'1' * 100_000}\n".encode(), PLO, 2, r"line 2 .*column 'n'.*2\^53"),
    ("100k-digit-yi", f"study,yi,vi\nA,{'1' * 100_000}.5,0.1\n".encode(), GEN, 2, r"line 2 .*column 'yi'.*overflows"),
    (
        "utf16-bom",
        "study,yi,vi\nA,1,0.1\n".encode("utf-16"),
        GEN,
        2,
        r"line 1: the file is UTF-16.*save the file as UTF-8",
    ),
    ("utf32-bom", "study,yi,vi\nA,1,0.1\n".encode("utf-32"), GEN, 2, r"UTF-32.*save the file as UTF-8"),
    ("utf16-no-bom", "study,yi,vi\nA,1,0.1\n".encode("utf-16-le"), GEN, 2, r"line 1, column 2.*NUL.*UTF-16.*UTF-8"),
    (
        "stray-0xff",
        b"study,yi,vi\nA,1,0.1\nB\xff,2,0.2\n",
        GEN,
        2,
        r"line 3: not UTF-8 .*0xFF at column 2.*save the file as UTF-8",
    ),
    ("latin1", b"study,yi,vi\nM\xfcller,1,0.1\nB,2,0.2\n", GEN, 2, r"line 2: .*0xFC at column 2.*UTF-8"),
    ("binary", bytes(range(256)) * 4, GEN, 2, r"not UTF-8.*save the file as UTF-8"),
    ("nul-in-name", b"study,yi,vi\nA\x00,1,0.1\nB,2,0.2\n", GEN, 2, r"line 2, column 2 .*NUL"),
    ("empty", b"", GEN, 2, r"empty file"),
    ("only-newlines", b"\n\n\n", GEN, 2, r"empty file"),
    ("semicolons", b"study;yi;vi\nA;1;0.1\n", GEN, 2, r"line 1 \(header\): missing column 'study'"),
    (
        "unclosed-quote",
        b'study,yi,vi\n"A,1,0.1\nB,2,0.2\n',
        GEN,
        2,
        r"line 2 \(data row 1\): 1 fields, the header has 3",
    ),
    ("extra-field", b"study,yi,vi\nA,1,0.1,9\n", GEN, 2, r"line 2 \(data row 1\): 4 fields"),
    ("duplicate-header", b"study,yi,yi,vi\nA,1,1,0.1\n", GEN, 2, r"line 1 \(header\): column\(s\) 'yi' appear more"),
    # -- numbers -----------------------------------------------------------------------------------
    ("yi-1e308", b"study,yi,vi\nA,1e308,0.1\nB,0.2,0.1\n", GEN, 2, r"line 2, column 'yi': 1e\+308 is beyond"),
    ("yi-minus-1e308", b"study,yi,vi\nA,0.2,0.1\nB,-1e308,0.1\n", GEN, 2, r"line 3, column 'yi': -1e\+308 is beyond"),
    (
        "yi-1e308-bayes",
        b"study,yi,vi\nA,1e308,0.1\nB,0.2,0.1\n",
        [*GEN, "--method", "BAYES-NN", "--tau-prior", "halfnormal:1"],
        2,
        r"line 2, column 'yi'",
    ),
    ("yi-1e80", b"study,yi,vi\nA,1e80,1e150\nB,0.2,0.1\n", GEN, 2, r"line 2, column 'yi': 1e\+80 is beyond"),
    ("yi-1e70-over-se", b"study,yi,vi\nA,1e70,1e-100\nB,0.2,0.1\n", GEN, 2, r"line 2, column 'yi'.*standard errors"),
    ("yi-underflow", b"study,yi,vi\nA,1e-400,0.1\nB,0.2,0.1\n", GEN, 2, r"line 2 .*column 'yi'.*underflows to 0"),
    ("vi-underflow", b"study,yi,vi\nA,1,1e-400\nB,0.2,0.1\n", GEN, 2, r"line 2 .*column 'vi'.*underflows to 0"),
    ("vi-5e-324", b"study,yi,vi\nA,1,5e-324\nB,0.2,0.1\n", GEN, 2, r"line 2, column 'vi'"),
    ("yi-nan", b"study,yi,vi\nA,nan,0.1\nB,0.2,0.1\n", GEN, 2, r"line 2 .*column 'yi': 'nan' is not a number"),
    ("yi-underscore", b"study,yi,vi\nA,1_0,0.1\nB,0.2,0.1\n", GEN, 2, r"line 2 .*column 'yi': '1_0'"),
    ("count-2^53+1", f"study,events,n\nA,1,{2**53 + 1}\n".encode(), PLO, 2, r"line 2 .*column 'n'.*2\^53"),
    ("events-over-n", b"study,events,n\nA,3,10\nB,12,10\n", PLO, 2, r"line 3 .*column 'events': 12 exceeds n = 10"),
    # -- the spread of yi beyond what the estimators can iterate on: one line, exit 1 --------------
    (
        "spread-1e40-reml",
        b"study,yi,vi\nA,-1e40,1\nB,1e40,1\nC,3e39,1\n",
        [*GEN, "--method", "REML"],
        1,
        r"could not be fitted: REML: Fisher scoring did not converge.*rescale yi and vi",
    ),
    (
        "spread-bayes",
        b"study,yi,vi\nA,-1e60,1\nB,1e60,1\nC,0,1\n",
        [*GEN, "--method", "BAYES-NN", "--tau-prior", "halfnormal:1"],
        1,
        r"could not be fitted: the posterior of tau cannot be computed in double precision",
    ),
    # -- options -----------------------------------------------------------------------------------
    (
        "prior-1e200",
        TWO.encode(),
        [*GEN, "--method", "BAYES-NN", "--tau-prior", "halfnormal:1e200"],
        2,
        r"--tau-prior halfnormal:1e200: the scale must lie between",
    ),
    (
        "prior-1e-200",
        TWO.encode(),
        [*GEN, "--method", "BAYES-NN", "--tau-prior", "halfnormal:1e-200"],
        2,
        r"the scale must lie between",
    ),
    (
        "prior-nan",
        TWO.encode(),
        [*GEN, "--method", "BAYES-NN", "--tau-prior", "halfnormal:nan"],
        2,
        r"positive finite number",
    ),
    (
        "prior-inf",
        TWO.encode(),
        [*GEN, "--method", "BAYES-NN", "--tau-prior", "halfnormal:inf"],
        2,
        r"positive finite number",
    ),
    (
        "prior-no-scale",
        TWO.encode(),
        [*GEN, "--method", "BAYES-NN", "--tau-prior", "halfnormal:"],
        2,
        r"is not a number",
    ),
    (
        "prior-two-colons",
        TWO.encode(),
        [*GEN, "--method", "BAYES-NN", "--tau-prior", "halfnormal:1:2"],
        2,
        r"is not a number",
    ),
    (
        "prior-1e10-wide",
        TWO.encode(),
        [*GEN, "--method", "BAYES-NN", "--tau-prior", "halfnormal:1e10"],
        1,
        r"could not be fitted: .*prior scale far wider",
    ),
    ("level-1.5", TWO.encode(), [*GEN, "--level", "1.5"], 2, r"--level 1.5: .*between 0 and 1"),
    ("level-nan", TWO.encode(), [*GEN, "--level", "nan"], 2, r"--level nan"),
    ("level-inf", TWO.encode(), [*GEN, "--level", "inf"], 2, r"--level inf"),
    ("level-95", TWO.encode(), [*GEN, "--level", "95"], 2, r"--level 95.0: .*0.95"),
    ("level-rounds-to-1", TWO.encode(), [*GEN, "--level", "0.99999999999999999999"], 2, r"--level 1.0"),
    ("level-text", TWO.encode(), [*GEN, "--level", "high"], 2, r"argument --level: invalid float value"),
    (
        "method-bayes",
        TWO.encode(),
        [*GEN, "--method", "BAYES"],
        2,
        r"BAYES names no model: use BAYES-NN .* or BAYES-BN",
    ),
    (
        "method-lowercase",
        TWO.encode(),
        [*GEN, "--method", "reml"],
        2,
        r"'reml' is not a method \(did you mean REML\?\)",
    ),
    ("method-measure-name", TWO.encode(), [*GEN, "--method", "PLO"], 2, r"'PLO' is not a method; choose from"),
    (
        "bn-on-gen",
        TWO.encode(),
        [*GEN, "--method", "BAYES-BN"],
        2,
        r"BAYES-BN fits the binomial-normal model on events/n",
    ),
    (
        "glmm-on-pft",
        b"study,events,n\nA,3,10\n",
        ["--measure", "PFT", "--method", "GLMM"],
        2,
        r"GLMM fits the logit \(PLO\) model",
    ),
    ("no-measure", TWO.encode(), [], 2, r"the following arguments are required: --measure"),
    ("group-missing", TWO.encode(), [*GEN, "--group", "g"], 2, r"line 1 \(header\): missing column 'g'"),
    (
        "group-nan",
        b"study,yi,vi,g\nA,1,0.1,nan\nB,2,0.2,x\n",
        [*GEN, "--group", "g"],
        2,
        r"line 2 \(data row 1\), column 'g': 'nan' reads as a missing value",
    ),
    (
        "bn-too-many",
        b"study,events,n\n" + "".join(f"s{i},{i % 7},{10 + i % 5}\n" for i in range(5000)).encode(),
        [*PLO, "--method", "BAYES-BN"],
        2,
        r"BAYES-BN is computed for up to 200 studies.*5,000.*BAYES-NN",
    ),
    # -- models that cannot be fitted --------------------------------------------------------------
    ("glmm-all-zero", b"study,events,n\nA,0,10\nB,0,12\n", [*PLO, "--method", "GLMM"], 2, r"every study has no events"),
    (
        "glmm-separated",
        b"study,events,n\nA,0,5\nB,5,5\n",
        [*PLO, "--method", "GLMM", "--ci", "z"],
        1,
        r"could not be fitted",
    ),
    (
        "knha-identical",
        b"study,yi,vi\nA,1,0.1\nB,1,0.1\n",
        [*GEN, "--ci", "knha"],
        2,
        r"--ci knha\) is undefined .* use --ci knha_adhoc or --ci z",
    ),
    (
        "mh-no-events",
        b"study,ai,n1i,ci,n2i\nA,0,10,0,10\nB,0,10,0,10\n",
        ["--measure", "OR", "--method", "MH"],
        2,
        r"Mantel-Haenszel odds ratio is not estimable",
    ),
]
# Names of internal exception classes must not reach the user.
INTERNAL = re.compile(r"Traceback|\b\w+(Error|Exception)\b|File \"")


def _write(tmp_path, data: bytes):
    path = tmp_path / "t.csv"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("case, data, options, code, pattern", HOSTILE, ids=[row[0] for row in HOSTILE])
def test_hostile_input_gets_one_clear_line(capsys, tmp_path, case, data, options, code, pattern):
    path = _write(tmp_path, data)
    try:
        got = cli.main(["pool-csv", str(path), *options])
    except SystemExit as exc:  # argparse's usage errors
        got = exc.code
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert got == code, err
    assert out == "" and len(lines) == 1, err
    assert lines[0].startswith("metaanalysis pool-csv: ")
    assert re.search(pattern, lines[0]), lines[0]
    assert not INTERNAL.search(err), err


def test_the_table_covers_every_input_the_audit_named():
    named = {"200k-name", "200k-digits", "yi-1e308", "yi-minus-1e308", "prior-1e200", "utf16-bom", "stray-0xff"}
    assert named <= {row[0] for row in HOSTILE}


CONSOLE_ROWS = ["200k-name", "200k-digits", "yi-1e308", "prior-1e200", "utf16-bom", "stray-0xff", "method-bayes"]


@pytest.mark.parametrize("case", CONSOLE_ROWS)
def test_the_console_prints_no_traceback(tmp_path, case):
    _, data, options, code, pattern = next(row for row in HOSTILE if row[0] == case)
    path = _write(tmp_path, data)
    proc = subprocess.run(
        [sys.executable, "-m", "metaanalysis.cli", "pool-csv", str(path), *options],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == code and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and re.search(pattern, proc.stderr), proc.stderr
    assert not INTERNAL.search(proc.stderr), proc.stderr


def test_a_study_name_with_terminal_escapes_is_shown_escaped(capsys, tmp_path):
    path = _write(tmp_path, b"study,yi,vi\n\x1b[2J,1,0.1\n\x1b[2J,2,0.2\n")
    assert cli.main(["pool-csv", str(path), *GEN]) == 0
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\\x1b[2J" in err


# -- k = 1 as metafor reports it ----------------------------------------------------------------------
# metafor's R/rma.uni.r (3.8): with k = 1 the test is set to "z" ("Setting argument test=\"z\" since
# k=1"), tau^2 is set to 0 ("if (k == 1L) ... tau2 <- 0"), and when k equals the number of
# coefficients the heterogeneity test is "QE <- 0; QEp <- 1; I2 <- 0; H2 <- 1"; predict() with
# tau^2 = 0 gives a prediction interval equal to the confidence interval. (No k = 1 case is in
# ../shared/reference/.) The expected numbers below are the study's own yi +- z_0.975 sqrt(vi).
@pytest.mark.parametrize("method", ["REML", "DL", "FE", "PM"])
@pytest.mark.parametrize("ci", ["z", "knha"])
def test_one_study_reports_what_metafor_reports(capsys, tmp_path, method, ci):
    path = _write(tmp_path, b"study,yi,vi\nA,0.4,0.04\n")
    assert cli.main(["pool-csv", str(path), *GEN, "--method", method, "--ci", ci]) == 0
    got = json.loads(capsys.readouterr().out)
    z = NormalDist().inv_cdf(0.975)
    assert got["b"] == pytest.approx(0.4, rel=1e-12) and got["se"] == pytest.approx(0.2, rel=1e-12)
    assert got["ci_lb"] == pytest.approx(0.4 - z * 0.2, rel=1e-12) and got["ci_ub"] == pytest.approx(0.4 + z * 0.2)
    assert (got["tau2"], got["QE"], got["QEp"], got["I2"], got["H2"]) == (0.0, 0.0, 1.0, 0.0, 1.0)
    assert (got["pi_lb"], got["pi_ub"]) == (got["ci_lb"], got["ci_ub"]) and got["test"] == "z"
    assert any(n.startswith("k = 1: as metafor's rma() does") for n in got["notes"])
    assert got["se_tau2"] is None and got["tau2_ci_lb"] is None  # metafor has no CI for tau^2 from one study


def test_one_proportion_back_transforms_its_prediction_interval_too(capsys, tmp_path):
    path = _write(tmp_path, b"study,events,n\nA,4,20\n")
    assert cli.main(["pool-csv", str(path), *PLO, "--method", "REML"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["bt_pred"] == pytest.approx(0.2, rel=1e-12)
    assert (got["bt_pi_lb"], got["bt_pi_ub"]) == (got["bt_ci_lb"], got["bt_ci_ub"])


def test_a_group_with_one_study_reports_as_metafor_too(capsys, tmp_path):
    path = _write(tmp_path, b"study,yi,vi,g\nA,0.4,0.04,x\nB,0.1,0.05,y\nC,0.3,0.02,y\n")
    assert cli.main(["pool-csv", str(path), *GEN, "--group", "g", "--ci", "z"]) == 0
    x = json.loads(capsys.readouterr().out)["subgroups"]["x"]
    assert x["k"] == 1 and (x["tau2"], x["QE"], x["I2"]) == (0.0, 0.0, 0.0) and x["pi_lb"] == x["ci_lb"]


# -- Freeman-Tukey -------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["REML", "BAYES-NN"])
def test_freeman_tukey_output_carries_the_caution(capsys, tmp_path, method):
    path = _write(tmp_path, b"study,events,n\nA,1,10\nB,30,200\nC,5,12\n")
    assert cli.main(["pool-csv", str(path), "--measure", "PFT", "--method", method]) == 0
    notes = json.loads(capsys.readouterr().out)["notes"]
    assert any("Schwarzer et al. 2019, Res Synth Methods 10:476" in n for n in notes)


def test_other_measures_carry_no_freeman_tukey_caution(capsys, tmp_path):
    path = _write(tmp_path, b"study,events,n\nA,1,10\nB,30,200\nC,5,12\n")
    assert cli.main(["pool-csv", str(path), *PLO]) == 0
    assert not any("Freeman-Tukey" in n for n in json.loads(capsys.readouterr().out)["notes"])
