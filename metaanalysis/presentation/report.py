"""Execute the notebooks and export them as an HTML report.

Notebooks are stored as jupytext percent-format text (`notebooks/*.py`), so they
hold no outputs and diff as code; a cell tagged `parameters` holds their
defaults (paths), and we inject a cell after it with the run's values, the
papermill convention, so one notebook serves the real job and the tests.
"""
from __future__ import annotations

import html
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient
from nbconvert import HTMLExporter

KERNEL = "python3"
TIMEOUT_SECONDS = 600


class NotebookError(RuntimeError):
    """A notebook failed to execute; the message names the notebook and the cell."""


def read_notebook(path: Path) -> nbformat.NotebookNode:
    """A notebook from its text form (`.py`, percent format) or an `.ipynb`."""
    return jupytext.read(path)


def inject_parameters(nb: nbformat.NotebookNode, parameters: dict) -> nbformat.NotebookNode:
    source = "# Parameters injected by `metaanalysis run`\n" + "\n".join(
        f"{name} = {value!r}" for name, value in parameters.items())
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]})
    index = next((i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])), -1)
    nb.cells.insert(index + 1, cell)
    return nb


def execute_notebook(path: Path, parameters: dict, *, cwd: Path) -> nbformat.NotebookNode:
    nb = inject_parameters(read_notebook(path), parameters)
    client = NotebookClient(nb, kernel_name=KERNEL, timeout=TIMEOUT_SECONDS, allow_errors=False,
                            resources={"metadata": {"path": str(cwd)}})
    try:
        client.execute()
    except Exception as exc:
        raise NotebookError(f"{path.name}: {type(exc).__name__}: {exc}") from exc
    return nb


def write_report(notebooks: list[Path], out_dir: Path, parameters: dict, *, cwd: Path) -> list[Path]:
    """Execute every notebook, write `<name>.html` and an `index.html` linking them."""
    out_dir.mkdir(parents=True, exist_ok=True)
    exporter = HTMLExporter(template_name="lab")
    written = []
    for path in notebooks:
        nb = execute_notebook(path, parameters, cwd=cwd)
        body, _ = exporter.from_notebook_node(nb)
        target = out_dir / f"{path.stem}.html"
        target.write_text(body, encoding="utf-8")
        written.append(target)
    links = "".join(f"<li><a href='{html.escape(p.name)}'>{html.escape(p.stem.replace('_', ' '))}</a></li>"
                    for p in written)
    index = out_dir / "index.html"
    index.write_text(f"<!doctype html><meta charset='utf-8'><title>Meta-analysis report</title>"
                     f"<h1>Salvage after CAR-T or bispecific-antibody failure: report</h1><ol>{links}</ol>",
                     encoding="utf-8")
    return [*written, index]
