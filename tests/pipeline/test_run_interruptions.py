"""`metaanalysis run` killed at several points: the previous results stay byte-identical.

Each run starts in a subprocess whose `write_csv` / `save_forest` is wrapped (or whose notebook
sleeps) so that it stops at a known point, writes a marker file, and waits to be killed: the
timing is deterministic, no sleep-and-hope. After every kill the previous complete run must be
intact; the next run must then report the edit made since that run (never "No change").
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from metaanalysis.pipeline.run import run

ROOT = Path(__file__).resolve().parents[2]
PLAN = """\
defaults:
  level: 0.95
  methods: [PLO]
  units: [patients, treatment_courses]
  group_by: regimen_class
  inverse_variance: {method: REML, test: knha, pi_method: metafor}
analyses:
  - {id: orr_after_cart, population: after_car_t, outcome: ORR}
landmarks:
  - {id: pfs12_after_cart, population: after_car_t, endpoint: PFS, months: 12}
sensitivity:
  - {id: without_derived, label: "Without derived counts", exclude_derived: true}
"""
# Runs the CLI, stopping at $PAUSE_AT: after the 2nd CSV, after the 1st figure, or in a notebook.
DRIVER = """\
import os, sys, time
from pathlib import Path
import metaanalysis.pipeline.run as run_mod

def pause():
    Path(os.environ["PAUSE_MARKER"]).write_text("paused")
    time.sleep(300)

where = os.environ.get("PAUSE_AT")
if where == "csv":
    original, written = run_mod.write_csv, []
    def write_csv(frame, path, **kw):
        original(frame, path, **kw)
        written.append(path)
        if len(written) == 2:
            pause()
    run_mod.write_csv = write_csv
elif where == "figure":
    original_fig = run_mod.save_forest
    def save_forest(fig, base, **kw):
        out = original_fig(fig, base, **kw)
        pause()
        return out
    run_mod.save_forest = save_forest
from metaanalysis.cli import main
sys.exit(main(sys.argv[1:]))
"""
NOTEBOOK = """\
# %% tags=["parameters"]
STUDIES_DIR = "../extracted_studies"
RESULTS_DIR = "../results"

SCRATCH_DIR = None

# %%
import os, time
from pathlib import Path
scratch = Path(SCRATCH_DIR) / "copy"  # as the walkthrough keeps its small copy of the review
scratch.mkdir()
Path(os.environ["PAUSE_MARKER"]).write_text(str(scratch))
time.sleep(300)
"""


def tree_digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def living(tmp_path_factory):
    """A copy of the evidence base, a one-analysis plan, and one complete run in results/."""
    base = tmp_path_factory.mktemp("interrupt")
    shutil.copytree(ROOT / "extracted_studies", base / "extracted_studies")
    (base / "plan.yaml").write_text(PLAN, encoding="utf-8")
    (base / "driver.py").write_text(DRIVER, encoding="utf-8")
    (base / "slow_notebooks").mkdir()
    (base / "slow_notebooks" / "01_slow.py").write_text(NOTEBOOK, encoding="utf-8")
    run(base / "extracted_studies", base / "results", base / "plan.yaml", log=lambda *a: None)
    # The edit every interrupted run carries: one count of one study, seen by the next complete run.
    record = base / "extracted_studies" / "shumilov2025.yaml"
    text = record.read_text(encoding="utf-8")
    assert "        events: 40\n        n: 92\n        percent: 43\n" in text
    record.write_text(
        text.replace(
            "        events: 40\n        n: 92\n        percent: 43\n",
            "        events: 39\n        n: 92\n        percent: 42.4\n",
        ),
        encoding="utf-8",
    )
    return base


def start(base: Path, pause_at: str, marker: Path) -> subprocess.Popen:
    args = [
        sys.executable,
        str(base / "driver.py"),
        "run",
        "--studies",
        "extracted_studies",
        "--out",
        "results",
        "--analyses",
        "plan.yaml",
    ]
    args += ["--notebooks", "slow_notebooks"] if pause_at == "notebook" else ["--skip-notebooks"]
    env = dict(os.environ, PAUSE_AT=pause_at, PAUSE_MARKER=str(marker), MPLBACKEND="Agg")
    # Own process group: the kernel a notebook run starts is reaped with it at the end.
    return subprocess.Popen(
        args, cwd=base, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )


def wait_for(marker: Path, proc: subprocess.Popen, seconds: float = 240) -> None:
    deadline = time.monotonic() + seconds
    while not marker.exists():
        if proc.poll() is not None:
            raise AssertionError(f"run ended before the pause point: {proc.communicate()}")
        assert time.monotonic() < deadline, "the run never reached its pause point"
        time.sleep(0.05)


def staging_folders(base: Path) -> list[Path]:
    return sorted(base.glob(".results.staging-*"))


@pytest.mark.parametrize(
    "pause_at, sig",
    [
        ("csv", signal.SIGKILL),
        ("csv", signal.SIGINT),
        ("figure", signal.SIGKILL),
        ("figure", signal.SIGTERM),
        ("notebook", signal.SIGINT),
        ("notebook", signal.SIGTERM),
        ("notebook", signal.SIGKILL),
    ],
)
def test_a_killed_run_leaves_the_previous_results_byte_identical(living, tmp_path, pause_at, sig):
    before = tree_digest(living / "results")
    marker = tmp_path / "paused"
    proc = start(living, pause_at, marker)
    try:
        wait_for(marker, proc)
        assert staging_folders(living), "the run writes into a staging folder"
        if pause_at == "notebook":  # a notebook's scratch folder is inside it, never in the system's
            scratch = Path(marker.read_text(encoding="utf-8"))
            assert scratch.is_dir() and scratch.parent.parent in staging_folders(living), scratch
        if sig == signal.SIGINT:  # Ctrl-C: the terminal signals the whole process group
            os.killpg(proc.pid, sig)
        else:
            os.kill(proc.pid, sig)
        _, err = proc.communicate(timeout=120)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the group this test started (a notebook kernel)
        except ProcessLookupError:
            pass
    assert tree_digest(living / "results") == before
    if sig == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
        assert staging_folders(living)  # removed by the next run (see below)
    else:
        assert proc.returncode == (130 if sig == signal.SIGINT else 143)
        lines = [line for line in err.splitlines() if line.strip()]
        if pause_at == "notebook":  # the kernel (another process) may log its own shutdown
            lines = [line for line in lines if line.startswith(("Interrupted", "A notebook", "Run failed"))]
        assert len(lines) == 1 and lines[0].startswith("Interrupted"), err
        assert "still holds the complete run" in lines[0]
        assert not staging_folders(living)
        if pause_at == "notebook":
            assert not scratch.exists()


def test_the_next_complete_run_reports_the_edit_against_the_last_complete_run(living):
    first_manifest = (living / "results" / "manifest.json").read_text(encoding="utf-8")
    first_history = {p.name: p.read_bytes() for p in (living / "results" / "history").glob("*.md")}
    out = run(living / "extracted_studies", living / "results", living / "plan.yaml", log=lambda *a: None)
    report = out["report"]
    assert not report.first_run and not report.is_empty()
    assert not staging_folders(living)
    edited = dict(report.studies_edited)
    assert dict((f, (o, n)) for f, o, n in edited["shumilov2025"]) == {
        "arms[0].binary.ORR.events": ("40", "39"),
        "arms[0].binary.ORR.percent": ("43", "42.4"),
    }
    moved = report.estimates
    assert list(moved["regimen_class"]) == ["bispecific_antibody"]
    assert "finished" in first_manifest and report.previous in first_manifest
    text = (living / "results" / "changes.md").read_text(encoding="utf-8")
    assert "shumilov2025" in text and "`arms[0].binary.ORR.events`: 40 → 39" in text
    # The earlier history entry is carried byte for byte; the new one is listed first.
    history = sorted((living / "results" / "history").glob("*.md"))
    assert len(history) == len(first_history) + 1
    for name, content in first_history.items():
        assert (living / "results" / "history" / name).read_bytes() == content
    index = (living / "results" / "history.md").read_text(encoding="utf-8")
    newest, oldest = (p.read_text(encoding="utf-8") for p in (history[-1], history[0]))
    assert index.index(newest) < index.index(oldest)
