"""Every notebook executes from a clean checkout; notebooks stay thin clients of the library."""

from __future__ import annotations

import ast
from pathlib import Path

import jupytext
import jupytext.config
import nbformat
import pytest

from metaanalysis.presentation.notebooks import inject_parameters, read_notebook

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.py"))
# Statistics belong to the library; a notebook importing these would be doing its own.
FORBIDDEN_IMPORTS = {"scipy", "statsmodels", "pymare", "numpy"}


def test_there_are_notebooks_for_every_topic():
    names = {p.stem for p in NOTEBOOKS}
    for topic in ("evidence", "response", "safety", "survival", "sensitivity", "adding_a_study", "explore"):
        assert any(topic in n for n in names), topic


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_as_text_with_one_parameters_cell(path):
    assert path.read_text(encoding="utf-8").splitlines()[0] == "# ---", "jupytext percent header"
    nb = read_notebook(path)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert sum("parameters" in c.metadata.get("tags", []) for c in code) == 1


def test_paired_ipynb_files_stay_out_of_git():
    # JupyterLab writes outputs to the paired .ipynb; the repository must never take them.
    assert "notebooks/*.ipynb" in (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    config = (ROOT / "notebooks" / "jupytext.toml").read_text(encoding="utf-8")
    assert 'formats = "ipynb,py:percent"' in config


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_holds_no_statistics_of_its_own(path):
    nb = read_notebook(path)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        tree = ast.parse(cell.source)
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not {n.split(".")[0] for n in names} & FORBIDDEN_IMPORTS, (path.name, names)


# What only the pipeline does: read and validate the evidence, pool, fit, compute the review.
FORBIDDEN_CALLS = {
    "load_records", "load_studies", "check_directory", "validate_directory", "outcome_table",
    "escalc", "rma", "rma_effects", "rma_glmm", "rma_bayes", "rma_bayes_effects", "rma_bayes_binomial",
    "rma_mh", "rma_mods", "fit_proportion", "pool_analysis", "select_rows", "compute_review",
    "subgroup_test", "permutest", "gosh", "leave1out", "influence", "egger_test", "cumulative",
    "survival_tables", "pool_medians", "pool_landmarks", "pool_hazard_ratios", "compare_arms", "run",
}  # fmt: skip
PAGES = [p for p in NOTEBOOKS if p.stem[:2] in ("02", "03", "04", "05")]


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.stem)
def test_result_pages_only_load_the_review_and_present_it(path):
    """02-05 read results/review.json and call presentation functions: no call (or import) of
    anything that reads the evidence, pools or fits."""
    found = set()
    for cell in read_notebook(path).cells:
        if cell.cell_type != "code":
            continue
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.Call):
                f = node.func
                found.add(f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else "")
            elif isinstance(node, ast.ImportFrom):
                found |= {a.name for a in node.names}
                assert not (node.module or "").startswith(("metaanalysis.review.", "metaanalysis.engine.")) or (
                    node.module == "metaanalysis.review.result_io"
                ), (path.name, node.module)
    assert not found & FORBIDDEN_CALLS, (path.name, sorted(found & FORBIDDEN_CALLS))
    assert "open_review" in found, "the page loads the review the run computed"


def test_the_page_check_finds_a_fitting_call(tmp_path):
    fake = tmp_path / "02_fake.py"
    fake.write_text(NOTEBOOKS[1].read_text(encoding="utf-8") + "\n# %%\nrma([0.1], [0.2])\n", encoding="utf-8")
    with pytest.raises(AssertionError, match="rma"):
        test_result_pages_only_load_the_review_and_present_it(fake)


def test_parameters_are_injected_after_the_parameters_cell():
    nb = read_notebook(NOTEBOOKS[0])
    index = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    injected = inject_parameters(nb, {"STUDIES_DIR": "/x"})
    assert injected.cells[index + 1].source.endswith("STUDIES_DIR = '/x'")


@pytest.mark.xdist_group("report")  # the one built report (conftest.built_report)
def test_every_notebook_executes_and_is_exported_as_html(built_report):
    results, pages = built_report
    assert [p.name for p in pages] == [f"{p.stem}.html" for p in NOTEBOOKS] + ["index.html"]
    for page in pages[:-1]:
        text = page.read_text(encoding="utf-8")
        assert "Traceback" not in text and len(text) > 10_000, page.name
        # figures are images, never the text repr of a figure the kernel could not draw
        assert "&lt;Figure size" not in text and "<Figure size" not in text, page.name
        # a page to be shared: no code, no injected local paths, no library warnings
        assert str(results.parent) not in text, page.name
        assert "Parameters injected" not in text and "import " not in text, page.name
    # the evidence page shows the PRISMA flow drawn from the search log
    assert (results / "report" / "01_evidence_overview.html").read_text(encoding="utf-8").count("<img") >= 1
    for name in ("02_response.html", "03_safety.html"):
        assert (results / "report" / name).read_text(encoding="utf-8").count("<img") >= 2, name
    # the walkthrough shows the change report naming the added study
    walkthrough = next(p for p in pages if "adding_a_study" in p.name).read_text(encoding="utf-8")
    assert "Studies added: example_new_study" in walkthrough
    # the kernels' temporary folder (TMPDIR, set by the fixture): notebook 06 leaves no copy there
    assert not list((results.parent / "tmp").rglob("extracted_studies")), "a notebook left records in TMPDIR"
    # every page links back to the index and on to the next page, before its content
    for i, page in enumerate(pages[:-1]):
        text = page.read_text(encoding="utf-8")
        body = text[text.index("<body") :]
        nav = body[: body.index("</nav>")]
        assert "href='index.html'" in nav, page.name
        if i + 1 < len(pages) - 1:
            assert f"href='{pages[i + 1].name}'" in nav, page.name
        if i:
            assert f"href='{pages[i - 1].name}'" in nav, page.name
    index = pages[-1].read_text(encoding="utf-8")
    # the index opens with the run's change report (results/changes.md), before the summary
    assert "What changed in this update" in index
    assert index.index("What changed in this update") < index.index("Summary of findings")
    assert "First run" in index  # this fixture's run had no previous results
    assert "Summary of findings" in index and all(f"href='{p.name}'" in index for p in pages[:-1])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_saving_from_jupyterlab_leaves_the_text_notebook_unchanged(path):
    # JupyterLab saves through jupytext with notebooks/jupytext.toml (it must sit inside the
    # folder `make.py lab` serves, or JupyterLab never sees it); the text must come back identical.
    config = jupytext.config.load_jupytext_configuration_file(str(ROOT / "notebooks" / "jupytext.toml"))
    nb = jupytext.read(path)
    nb.cells[-1].outputs = (
        [nbformat.v4.new_output("stream", name="stdout", text="an output\n")]
        if nb.cells[-1].cell_type == "code"
        else []
    )
    assert jupytext.writes(nb, fmt="py:percent", config=config) == path.read_text(encoding="utf-8")


def test_jupyterlab_opens_the_text_notebooks_as_notebooks(tmp_path):
    """make.py lab installs the project's settings where JupyterLab reads application overrides,
    naming a viewer the installed Jupytext extension registers and a setting JupyterLab's
    document manager declares; settings already there are kept."""
    import importlib.util
    import json
    import sys

    from jupyterlab.commands import get_app_dir

    spec = importlib.util.spec_from_file_location("make", ROOT / "make.py")
    make = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make)
    env = tmp_path / "env"
    settings = env / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    settings.parent.mkdir(parents=True)
    settings.write_text(json.dumps({"@jupyterlab/apputils-extension:themes": {"theme": "JupyterLab Dark"}}))
    written = make.install_lab_settings(env)
    assert written == settings
    got = json.loads(settings.read_text(encoding="utf-8"))
    assert got["@jupyterlab/apputils-extension:themes"] == {"theme": "JupyterLab Dark"}
    viewer = got["@jupyterlab/docmanager-extension:plugin"]["defaultViewers"]["python"]
    assert viewer == "Jupytext Notebook"
    # where JupyterLab looks, in the environment the project runs it from
    lab = Path(get_app_dir())
    assert lab == Path(sys.prefix) / "share" / "jupyter" / "lab"
    schema = json.loads((lab / "schemas" / "@jupyterlab" / "docmanager-extension" / "plugin.json").read_text())
    assert "defaultViewers" in schema["properties"]
    extension = Path(sys.prefix) / "share" / "jupyter" / "labextensions" / "jupyterlab-jupytext" / "static"
    assert any(viewer in f.read_text(encoding="utf-8", errors="replace") for f in extension.glob("*.js"))
