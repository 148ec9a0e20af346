"""The results folder is replaced whole (manifest written last) or not at all."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from metaanalysis.pipeline import staging
from metaanalysis.pipeline.staging import OutputError, StagedOutput, altered_files, read_manifest


def digest(folder):
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def complete_run(target, files: dict[str, str]):
    with StagedOutput(target) as stage:
        for name, text in files.items():
            (stage.path / name).parent.mkdir(parents=True, exist_ok=True)
            (stage.path / name).write_text(text, encoding="utf-8")
        return stage.commit({"started": "test"})


def test_commit_replaces_the_folder_and_the_manifest_lists_every_file(tmp_path):
    target = tmp_path / "results"
    complete_run(target, {"pooled.csv": "a\n1\n", "figures/old_fit.png": "png"})
    manifest = complete_run(target, {"pooled.csv": "a\n2\n", "figures/new_fit.png": "png"})
    # a figure the new run did not draw (its fit failed) is not left over from the older run
    assert sorted(p.name for p in (target / "figures").iterdir()) == ["new_fit.png"]
    assert (target / "pooled.csv").read_text() == "a\n2\n"
    assert set(manifest["files"]) == {"pooled.csv", "figures/new_fit.png"}
    assert read_manifest(target)["files"] == manifest["files"] and altered_files(target, manifest) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == [".results.lock", "results"]


@pytest.mark.parametrize("failure", [RuntimeError("a fit failed"), KeyboardInterrupt()])
def test_a_failure_before_commit_leaves_the_previous_results_byte_identical(tmp_path, failure):
    target = tmp_path / "results"
    complete_run(target, {"pooled.csv": "a\n1\n", "report/index.html": "<p>old</p>"})
    before = digest(target)
    with pytest.raises(type(failure)):
        with StagedOutput(target) as stage:
            (stage.path / "pooled.csv").write_text("", encoding="utf-8")  # half-written
            raise failure
    assert digest(target) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [".results.lock", "results"]


def test_a_killed_runs_staging_folder_is_removed_by_the_next_run(tmp_path):
    target = tmp_path / "results"
    complete_run(target, {"pooled.csv": "a\n1\n"})
    left = tmp_path / ".results.staging-999-abc"  # what SIGKILL leaves
    (left / "figures").mkdir(parents=True)
    (left / "pooled.csv").write_text("", encoding="utf-8")
    complete_run(target, {"pooled.csv": "a\n2\n"})
    assert not left.exists()


def test_without_an_atomic_exchange_two_renames_are_repaired_after_a_kill(tmp_path, monkeypatch):
    monkeypatch.setattr(staging, "_exchange", lambda a, b: False)
    target = tmp_path / "results"
    complete_run(target, {"pooled.csv": "a\n1\n"})
    complete_run(target, {"pooled.csv": "a\n2\n"})
    assert (target / "pooled.csv").read_text() == "a\n2\n"
    # killed between `results -> .results.previous-*` and `staging -> results`:
    os.rename(target, tmp_path / ".results.previous-1-x")
    (tmp_path / ".results.staging-1-x").mkdir()
    with pytest.raises(RuntimeError):
        with StagedOutput(target):
            raise RuntimeError("stop after recovery")
    assert (target / "pooled.csv").read_text() == "a\n2\n" and read_manifest(target) is not None
    assert sorted(p.name for p in tmp_path.iterdir()) == [".results.lock", "results"]


def test_out_pointing_at_a_file_is_one_clear_error(tmp_path):
    target = tmp_path / "results.csv"
    target.write_text("x", encoding="utf-8")
    with pytest.raises(OutputError, match="is a file, not a folder"):
        StagedOutput(target).__enter__()
    assert target.read_text() == "x"


def test_a_folder_holding_other_files_is_never_replaced(tmp_path):
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(OutputError, match="holds files no run wrote"):
        complete_run(tmp_path, {"pooled.csv": ""})
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_files_added_by_hand_to_a_results_folder_are_named(tmp_path):
    target = tmp_path / "results"
    complete_run(target, {"pooled.csv": "a\n1\n"})
    (target / "screenshot.png").write_text("x", encoding="utf-8")
    (target / "pooled.csv").write_text("a\n3\n", encoding="utf-8")
    manifest = read_manifest(target)
    assert altered_files(target, manifest) == ["pooled.csv"]
    with StagedOutput(target) as stage:
        assert stage.removed_extra == ["screenshot.png"]


def test_two_runs_into_one_folder_at_once_are_refused(tmp_path):
    target = tmp_path / "results"
    with StagedOutput(target):
        with pytest.raises(OutputError, match="another `metaanalysis run`"):
            StagedOutput(target).__enter__()


def test_read_only_output_folders_are_one_clear_error(tmp_path, monkeypatch):
    target = tmp_path / "results"
    complete_run(target, {"pooled.csv": "a\n1\n"})
    # (the tests may run as root, for whom permission bits do not apply: os.access is the check)
    monkeypatch.setattr(staging.os, "access", lambda path, mode: str(path) != str(target))
    with pytest.raises(OutputError, match="read-only"):
        complete_run(target, {"pooled.csv": ""})
    monkeypatch.setattr(staging.os, "access", lambda path, mode: str(path) != str(tmp_path))
    with pytest.raises(OutputError, match="not writable"):
        complete_run(target, {"pooled.csv": ""})
    assert (target / "pooled.csv").read_text() == "a\n1\n"


def test_a_missing_output_folder_is_created(tmp_path):
    target = tmp_path / "new" / "deeper" / "results"
    complete_run(target, {"pooled.csv": "a\n1\n"})
    assert json.loads((target / "manifest.json").read_text())["complete"] is True
