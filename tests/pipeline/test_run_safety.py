"""`metaanalysis run` and the other commands at the edges: bad folders, formulas, other working directories."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from metaanalysis import cli
from metaanalysis.pipeline import run as run_mod
from metaanalysis.pipeline.run import find_notebooks, run
from metaanalysis.pipeline.staging import OutputError, StagedOutput

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "notebooks" / "example_new_study.yaml"
PLAN = """\
defaults: {level: 0.95, methods: [PLO], units: [patients, treatment_courses], group_by: regimen_class,
           inverse_variance: {method: REML, test: knha, pi_method: metafor}}
analyses:
  - {id: orr_after_cart, population: after_car_t, outcome: ORR}
"""


@pytest.fixture()
def base(tmp_path):
    shutil.copytree(ROOT / "extracted_studies", tmp_path / "extracted_studies")
    (tmp_path / "plan.yaml").write_text(PLAN, encoding="utf-8")
    return tmp_path


def one_line_error(capsys) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1, err
    return err[0]


def test_a_skip_notebooks_run_never_leaves_an_older_report_looking_current(base):
    with StagedOutput(base / "results") as stage:  # a complete earlier run with its report
        (stage.path / "report").mkdir()
        (stage.path / "report" / "index.html").write_text("<h1>old report</h1>", encoding="utf-8")
        (stage.path / "report" / "02_response.html").write_text("old numbers", encoding="utf-8")
        (stage.path / "pooled.csv").write_text("a\n1\n", encoding="utf-8")
        stage.commit()
    run(base / "extracted_studies", base / "results", base / "plan.yaml", log=lambda *a: None)
    pages = sorted(p.name for p in (base / "results" / "report").iterdir())
    assert pages == ["index.html"]
    notice = (base / "results" / "report" / "index.html").read_text(encoding="utf-8")
    assert "No report for the run of" in notice and "--skip-notebooks" in notice
    history = (base / "results" / "history.md").read_text(encoding="utf-8")
    assert "notebooks not executed (--skip-notebooks)" in history


def test_formula_cells_are_neutralised_in_every_csv_and_numbers_stay_numbers(base):
    record = (
        EXAMPLE.read_text(encoding="utf-8")
        .replace(
            'title: "FICTIONAL cohort for the adding-a-study walkthrough (not a real study)"',
            'title: "=HYPERLINK(\\"http://example.invalid\\", \\"click\\")"',
        )
        .replace("name: Fictional Walkthrough Centre", 'name: "@SUM(A1:A9)"')
    )
    (base / "extracted_studies" / "example_new_study.yaml").write_text(record, encoding="utf-8")
    out = run(base / "extracted_studies", base / "results", base / "plan.yaml", log=lambda *a: None)
    studies = pd.read_csv(base / "results" / "studies.csv", dtype=str, keep_default_na=False)
    row = studies[studies["study"] == "example_new_study"].iloc[0]
    assert row["title"].startswith("'=HYPERLINK") and row["centres"] == "'@SUM(A1:A9)"
    for path in (base / "results").rglob("*.csv"):
        if not path.read_text(encoding="utf-8").strip():
            continue  # an empty table (this plan declares no comparisons)
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
        for value in table.to_numpy().ravel():
            assert not str(value).startswith(("=", "+", "@")) or value.lstrip("+").replace(".", "").isdigit(), path
    pooled = pd.read_csv(base / "results" / "pooled.csv")
    assert pd.api.types.is_float_dtype(pooled["estimate"])  # numbers are written as numbers
    assert out["tables"]["studies.csv"].loc[lambda t: t.study == "example_new_study", "title"].iloc[0].startswith("=")


def test_notebooks_are_found_from_another_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert find_notebooks(None, tmp_path / "extracted_studies") == run_mod.PROJECT_NOTEBOOKS
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "01_x.py").write_text("# %%\n", encoding="utf-8")
    assert find_notebooks(None, tmp_path / "elsewhere" / "extracted_studies") == Path("notebooks")


def test_no_notebooks_anywhere_is_a_clear_error_not_an_empty_report(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(run_mod, "PROJECT_NOTEBOOKS", tmp_path / "missing")
    with pytest.raises(OutputError, match="no notebooks .* --skip-notebooks"):
        find_notebooks(None, tmp_path / "extracted_studies")
    with pytest.raises(OutputError, match="typo"):
        find_notebooks("typo", tmp_path / "extracted_studies")


@pytest.mark.parametrize("case", ["out_is_a_file", "missing_analyses", "foreign_out", "missing_studies"])
def test_bad_folders_and_files_are_one_clear_line(base, capsys, case):
    args = [
        "run",
        "--studies",
        str(base / "extracted_studies"),
        "--analyses",
        str(base / "plan.yaml"),
        "--out",
        str(base / "results"),
        "--skip-notebooks",
    ]
    expected = {
        "out_is_a_file": "is a file, not a folder",
        "missing_analyses": "no such file",
        "foreign_out": "holds files no run wrote",
        "missing_studies": "does not validate",
    }[case]
    if case == "out_is_a_file":
        (base / "results").write_text("x", encoding="utf-8")
    elif case == "missing_analyses":
        args[args.index("--analyses") + 1] = str(base / "nope.yaml")
    elif case == "foreign_out":
        args[args.index("--out") + 1] = str(base)
    else:
        args[args.index("--studies") + 1] = str(base / "nope")
    assert cli.main(args) == 1
    err = capsys.readouterr().err.splitlines()
    assert expected in err[0] and "Traceback" not in "\n".join(err)
    if case == "out_is_a_file":
        assert (base / "results").read_text() == "x"


def test_an_unexpected_failure_is_one_line_and_keeps_the_previous_results(base, capsys, monkeypatch):
    assert (
        cli.main(
            [
                "run",
                "--studies",
                str(base / "extracted_studies"),
                "--analyses",
                str(base / "plan.yaml"),
                "--out",
                str(base / "results"),
                "--skip-notebooks",
            ]
        )
        == 0
    )
    before = (base / "results" / "manifest.json").read_bytes()
    capsys.readouterr()

    def broken(*a, **k):
        raise ZeroDivisionError("a fit divided by zero")

    monkeypatch.setattr(run_mod, "draw_figures", broken)  # fails while the staging folder is being written
    assert (
        cli.main(
            [
                "run",
                "--studies",
                str(base / "extracted_studies"),
                "--analyses",
                str(base / "plan.yaml"),
                "--out",
                str(base / "results"),
                "--skip-notebooks",
            ]
        )
        == 1
    )
    line = one_line_error(capsys)
    assert line.startswith("Run failed: ZeroDivisionError: a fit divided by zero;")
    assert "still holds the complete run finished" in line
    assert (base / "results" / "manifest.json").read_bytes() == before
    assert not list(base.glob(".results.staging-*"))


def test_a_300_character_study_id_is_one_clear_line(tmp_path, capsys):
    assert cli.main(["new-study", "a" * 300, "--directory", str(tmp_path)]) == 1
    assert "at most 80" in one_line_error(capsys)
    assert not list(tmp_path.iterdir())


def _earlier_results(target: Path) -> bytes:
    with StagedOutput(target) as stage:
        (stage.path / "pooled.csv").write_text("a\n1\n", encoding="utf-8")
        stage.commit()
    return (target / "manifest.json").read_bytes()


def _run_cli(base: Path) -> int:
    args = ["run", "--studies", str(base / "extracted_studies"), "--analyses", str(base / "plan.yaml")]
    return cli.main([*args, "--out", str(base / "results"), "--skip-notebooks"])


def test_a_signal_during_the_swap_says_the_new_results_were_committed(base, monkeypatch, capsys):
    import signal

    from metaanalysis.pipeline import staging

    before = _earlier_results(base / "results")
    real = staging._exchange

    def exchange(a, b):
        signal.raise_signal(signal.SIGTERM)  # held until the swap is done
        return real(a, b)

    monkeypatch.setattr(staging, "_exchange", exchange)
    assert _run_cli(base) == 143
    line = one_line_error(capsys)
    manifest = (base / "results" / "manifest.json").read_bytes()
    assert manifest != before and (base / "results" / "review.json").is_file()
    finished = json.loads(manifest)["finished"]
    assert line.startswith("Interrupted (SIGTERM) after the new results were committed:")
    assert f"holds the complete run finished {finished}" in line and "still holds" not in line
    assert not list(base.glob(".results.staging-*"))


def test_where_folders_cannot_be_swapped_the_previous_results_stay_and_the_new_are_named(base, monkeypatch, capsys):
    from metaanalysis.pipeline import staging

    before = _earlier_results(base / "results")
    monkeypatch.setattr(staging, "_exchange", lambda a, b: False)
    assert _run_cli(base) == 1
    line = one_line_error(capsys)
    (kept,) = base.glob("results.new-*")
    assert line.startswith("Results not replaced: this file system cannot swap two folders in one step")
    assert str(kept) in line and "remove results/ and rename that folder to results" in line
    assert (base / "results" / "manifest.json").read_bytes() == before
    assert (kept / "review.json").is_file() and staging.read_manifest(kept) is not None
    assert not list((base / "history").glob("*.json"))  # the history records only runs that landed
