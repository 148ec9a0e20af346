"""Export the executed notebooks as an HTML report with an index page."""
from __future__ import annotations

import html
from pathlib import Path

from metaanalysis.presentation.notebooks import NotebookError, execute_notebooks

__all__ = ["NotebookError", "write_report"]


def write_report(notebooks: list[Path], out_dir: Path, parameters: dict, *, cwd: Path) -> list[Path]:
    """Execute every notebook, write `<name>.html` and an `index.html` linking them."""
    from nbconvert import HTMLExporter   # imported here: 2 s that `run --skip-notebooks` need not pay

    out_dir.mkdir(parents=True, exist_ok=True)
    exporter = HTMLExporter(template_name="lab")
    written = []
    executed = execute_notebooks(notebooks, parameters, cwd=cwd)   # in parallel kernels
    for path, nb in zip(notebooks, executed):
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
