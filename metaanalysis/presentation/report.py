"""Export the executed notebooks as an HTML report with an index page."""
from __future__ import annotations

import html
from pathlib import Path

from nbconvert import HTMLExporter

from metaanalysis.presentation.notebooks import NotebookError, execute_notebook

__all__ = ["NotebookError", "write_report"]


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
