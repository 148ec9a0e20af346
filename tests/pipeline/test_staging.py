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


def test_without_an_atomic_exchange_the_previous_results_are_never_touched(tmp_path, monkeypatch):
    target = tmp_path / "results"
    complete_run(target, {"pooled.csv": "a\n1\n"})
    before = digest(target)
    monkeypatch.setattr(staging, "_exchange", lambda a, b: False)
    with pytest.raises(staging.SwapUnavailable, match="cannot swap two folders in one step") as caught:
        complete_run(target, {"pooled.csv": "a\n2\n"})
    assert digest(target) == before
    (kept,) = tmp_path.glob("results.new-*")
    assert str(kept) in str(caught.value) and "was left exactly as it was" in str(caught.value)
    # the complete new run, with its manifest, ready to be renamed by hand
    assert (kept / "pooled.csv").read_text() == "a\n2\n"
    manifest = read_manifest(kept)
    assert manifest is not None and altered_files(kept, manifest) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([".results.lock", kept.name, "results"])
    # a second such run keeps the first set-aside folder and names its own
    with pytest.raises(staging.SwapUnavailable):
        complete_run(target, {"pooled.csv": "a\n3\n"})
    assert len(list(tmp_path.glob("results.new-*"))) == 2 and (kept / "pooled.csv").read_text() == "a\n2\n"
    # where nothing is there to replace, one rename is one step: the run lands
    complete_run(tmp_path / "fresh", {"pooled.csv": "a\n4\n"})
    assert (tmp_path / "fresh" / "pooled.csv").read_text() == "a\n4\n"


def test_a_half_done_two_rename_swap_of_an_earlier_version_is_repaired(tmp_path):
    target = tmp_path / "results"
    complete_run(target, {"pooled.csv": "a\n2\n"})
    # what a kill between `results -> .results.previous-*` and `staging -> results` left:
    os.rename(target, tmp_path / ".results.previous-1-x")
    (tmp_path / ".results.staging-1-x").mkdir()
    with pytest.raises(RuntimeError):
        with StagedOutput(target):
            raise RuntimeError("stop after recovery")
    assert (target / "pooled.csv").read_text() == "a\n2\n" and read_manifest(target) is not None
    assert sorted(p.name for p in tmp_path.iterdir()) == [".results.lock", "results"]


def test_a_signal_during_the_swap_is_delivered_after_it(tmp_path, monkeypatch):
    """SIGTERM sent from another thread while the folders are exchanged: the swap completes, the
    program's own handler then runs once, and both handlers are back as they were."""
    import signal
    import subprocess
    import threading
    import time

    target = tmp_path / "results"
    complete_run(target, {"pooled.csv": "a\n1\n"})
    real = staging._exchange
    seen: list[str] = []

    # Another thread is alive (as matplotlib's or a kernel client's are), started before the swap
    # with signals unblocked: the kernel may hand it a process signal, which blocking the signal in
    # the swapping thread alone would not hold back.
    stop = threading.Event()
    other = threading.Thread(target=lambda: [time.sleep(0.001) for _ in iter(stop.is_set, True)])

    def exchange_with_a_signal(a, b):
        subprocess.run(["kill", "-TERM", str(os.getpid())], check=True)
        signal.raise_signal(signal.SIGINT)  # and a Ctrl-C in this very thread
        until = time.monotonic() + 0.3
        while time.monotonic() < until:  # bytecodes run: a Python handler would run now
            pass
        seen.append("swapping")
        return real(a, b)

    class Stop(BaseException):
        pass

    def handler(signum, frame):
        seen.append(signal.Signals(signum).name)
        raise Stop

    monkeypatch.setattr(staging, "_exchange", exchange_with_a_signal)
    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    other.start()
    try:
        with pytest.raises(Stop):
            complete_run(target, {"pooled.csv": "a\n2\n"})
        assert {s: signal.getsignal(s) for s in old} == {s: handler for s in old}
    finally:
        stop.set()
        other.join()
        for s, h in old.items():
            signal.signal(s, h)
    assert seen[0] == "swapping" and seen[1] in ("SIGTERM", "SIGINT")
    assert (target / "pooled.csv").read_text() == "a\n2\n" and altered_files(target, read_manifest(target)) == []
    assert not list(tmp_path.glob(".results.staging-*"))


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
