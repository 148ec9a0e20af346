"""Shared test settings.

Property-based tests run derandomized (a fixed seed derived from each test) so
that CI and a developer see the same examples; set HYPOTHESIS_PROFILE=explore
for fresh random examples when hunting bugs locally.
"""

import os
import shutil
from pathlib import Path

import pytest
from hypothesis import settings

settings.register_profile("repeatable", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

ROOT = Path(__file__).resolve().parents[1]


def _tracked_history() -> dict[str, bytes] | None:
    folder = ROOT / "history"
    if not folder.is_dir():
        return None
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="session", autouse=True)
def repository_history_untouched():
    """The repository's tracked history/ is the review's record: a test runs the pipeline on a
    copy (whose history is beside the copy) or passes a temporary history_dir, never writes here."""
    before = _tracked_history()
    yield
    assert _tracked_history() == before, f"a test wrote into {ROOT / 'history'}"


@pytest.fixture(scope="session")
def built_report(tmp_path_factory):
    """`metaanalysis run` with its notebooks on a copy of the evidence base, built once per session:
    (results directory, report pages). The notebooks show the figures the run saved."""
    from metaanalysis.pipeline.run import run

    base = tmp_path_factory.mktemp("report")
    studies = base / "extracted_studies"
    shutil.copytree(ROOT / "extracted_studies", studies)
    shutil.copytree(ROOT / "review", base / "review")  # the search log: the PRISMA diagram on page 01
    work = base / "notebooks"
    work.mkdir()
    for f in [*(ROOT / "notebooks").glob("*.py"), *(ROOT / "notebooks").glob("*.yaml")]:
        shutil.copy(f, work / f.name)  # the notebooks and the files they read
    scratch = base / "tmp"  # TMPDIR of the kernels: test_notebooks checks nothing is left in it
    scratch.mkdir()
    saved = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = str(scratch)
    try:
        out = run(studies, base / "results", notebooks_dir=work, log=lambda *a: None)
    finally:
        if saved is None:
            del os.environ["TMPDIR"]
        else:
            os.environ["TMPDIR"] = saved
    return base / "results", out["html"]


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """Keep the tests of one `xdist_group` on one worker, so that an expensive session fixture
    (the built report) is built once. pytest-xdist 3.8 renames grouped tests to `nodeid@group`
    (which its scheduler reads) by setting `item._nodeid`, but pytest 9 keeps the id in
    `item._id`, so `--dist loadgroup` sent grouped tests to any worker. The same renaming is
    done here where xdist's did not take."""
    if not getattr(config.option, "loadgroup", False):
        return
    for item in items:
        marks = item.iter_markers("xdist_group")
        names = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default")) for m in marks})
        if not names or item.nodeid.endswith("@" + "_".join(names)):
            continue
        grouped = f"{item.nodeid}@{'_'.join(names)}"
        if hasattr(item, "_id"):  # pytest >= 9
            from _pytest.nodeid import coerce_node_id

            item._id = coerce_node_id(grouped)
        else:
            item._nodeid = grouped


@pytest.fixture(scope="session")
def browser():
    """Debian's headless Chromium: skipped where it is missing, a failure on CI (CI=true)."""
    from helpers import CHROMIUM

    if not Path(CHROMIUM).exists():
        message = (
            f"{CHROMIUM} not found: `apt-get install chromium` (python3 make.py test does it as root) or set CHROMIUM"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM
