"""Export the executed notebooks as an HTML report with an index page.

The pages are meant to be shared with readers who never see the code: code cells and the
parameter cells (which hold local paths) are hidden, the narrative, tables and figures stay.
"""

from __future__ import annotations

import base64
import html
import re
import time
from pathlib import Path

from metaanalysis.presentation.notebooks import NotebookError, execute_notebooks

__all__ = ["NotebookError", "write_report", "export_html", "page_title", "sealed", "CONTENT_SECURITY_POLICY"]

HIDDEN_TAGS = ("parameters", "injected-parameters")

# No script of any origin, and nothing fetched from the network: figures are data: URIs and the
# styles are inline. A payload in record text that escaped our escaping still cannot run.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; font-src data:; base-uri 'none'; form-action 'none'"
)
_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script\s*>", re.IGNORECASE | re.DOTALL)
_HEAD = re.compile(r"<head\b[^>]*>", re.IGNORECASE)


def sealed(page: str) -> str:
    """`page` without any script and with a Content-Security-Policy that forbids scripts and network
    requests. nbconvert's lab template loads require.js, MathJax and mermaid from a CDN, which fails
    offline; the pages need none of them (no math, no diagrams, and widgets are live only in
    JupyterLab). A page without a <head> gets one."""
    meta = f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">'
    page = _SCRIPT.sub("", page)
    head = _HEAD.search(page)
    if head is not None:
        return page[: head.end()] + meta + page[head.end() :]
    doctype = re.match(r"\s*<!doctype[^>]*>", page, re.IGNORECASE)
    at = doctype.end() if doctype else 0
    return page[:at] + f"<head>{meta}</head>" + page[at:]


def _exporter():
    # imported here: nbconvert costs about 2 s that `run --skip-notebooks` need not pay
    from nbconvert import HTMLExporter
    from traitlets.config import Config

    config = Config()
    config.TagRemovePreprocessor.remove_cell_tags = set(HIDDEN_TAGS)
    config.TagRemovePreprocessor.enabled = True
    exporter = HTMLExporter(
        config=config, template_name="lab", exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True
    )
    return exporter


def _strip_stderr(nb) -> list[str]:
    """Remove stderr streams (library warnings carry local file paths); return their text."""
    removed = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        kept = []
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                removed.append(out.get("text", ""))
            else:
                kept.append(out)
        cell["outputs"] = kept
    return removed


def page_title(nb, fallback: str) -> str:
    """The first markdown heading of the notebook."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return fallback


def export_html(nb, target: Path, *, log=print) -> Path:
    for text in _strip_stderr(nb):
        log(f"  {target.stem}: warning output left out of the page: {text.strip()[:300]}")
    body, _ = _exporter().from_notebook_node(nb, resources={"metadata": {"name": page_title(nb, target.stem)}})
    target.write_text(sealed(body), encoding="utf-8")
    return target


def write_report(
    notebooks: list[Path], out_dir: Path, parameters: dict, *, cwd: Path, log=print, index_html=None
) -> list[Path]:
    """Execute every notebook, write `<name>.html` and an `index.html` linking them.

    `index_html(pages)` builds the index from [(file name, title)]; by default the summary of
    findings (`presentation.summary`) of the review in `parameters["RESULTS_DIR"]`.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    written, titles = [], []
    log(f"Executing {len(notebooks)} notebooks in parallel kernels ...")
    start = time.perf_counter()
    executed = execute_notebooks(
        notebooks,
        parameters,
        cwd=cwd,
        on_done=lambda p: log(f"  {p.name}: executed ({time.perf_counter() - start:.0f} s)"),
    )
    for path, nb in zip(notebooks, executed, strict=True):
        target = export_html(nb, out_dir / f"{path.stem}.html", log=log)
        log(f"  {path.name} -> {target.name}")
        written.append(target)
        titles.append((target.name, page_title(nb, path.stem.replace("_", " "))))
    for i, target in enumerate(written):
        previous, following = titles[i - 1] if i else None, titles[i + 1] if i + 1 < len(titles) else None
        target.write_text(with_navigation(target.read_text(encoding="utf-8"), previous, following), encoding="utf-8")
    if index_html is None:
        from metaanalysis.presentation.summary import index_page
        from metaanalysis.review.result_io import load_review

        index_text = index_page(load_review(parameters["RESULTS_DIR"]), titles)
    else:
        index_text = index_html(titles)
    results = Path(parameters["RESULTS_DIR"]) if "RESULTS_DIR" in parameters else None
    if results is not None and (results / "changes.md").is_file():
        figure = results / "figures" / "history.svg"
        index_text = with_changes(
            index_text,
            (results / "changes.md").read_text(encoding="utf-8"),
            history_figure=figure if figure.is_file() else None,
        )
    index = out_dir / "index.html"
    index.write_text(sealed(index_text), encoding="utf-8")
    return [*written, index]


def history_figure_html(svg: Path) -> str:
    """The history figure inline, as a data URI: the pages' Content-Security-Policy admits images
    only that way, so a link to ../figures would be blocked and the figure would not show."""
    data = base64.b64encode(Path(svg).read_bytes()).decode("ascii")
    return (
        "<figure class='history'><img src='data:image/svg+xml;base64," + data + "' alt='Each primary "
        "estimate with its interval at every update of the review, one panel per estimate' "
        "style='max-width:100%'><figcaption>How each primary estimate moved over the updates of the "
        "review, from the tracked history (also saved as figures/history.svg and .png).</figcaption></figure>"
    )


def changes_section(markdown: str, *, history_figure: Path | None = None) -> str:
    """The run's change report (changes.md, written by the pipeline; nothing is compared here) as
    the index's first section, with the history figure when the run drew one and a link to the
    full history. Markdown rendered with every HTML tag in it escaped: record text in a change
    report is shown, never run."""
    import mistune

    render = mistune.create_markdown(escape=True, plugins=["table"])
    body = str(render(markdown))
    return (
        "<section class='changes'><h2>What changed in this update</h2>"
        f"{body}{history_figure_html(history_figure) if history_figure is not None else ''}"
        "<p><a href='../history.md'>The full history of every update</a></p></section>"
    )


def with_changes(index: str, markdown: str, *, history_figure: Path | None = None) -> str:
    """`index` with the change report before its first section heading."""
    at = index.find("<h2")
    if at < 0:
        raise ValueError("an index page without a section heading")
    return index[:at] + changes_section(markdown, history_figure=history_figure) + index[at:]


NAV_STYLE = (
    "nav.report-pages{font:14px system-ui,sans-serif;padding:8px 16px;border-bottom:1px solid #ddd;"
    "background:#fafafa;display:flex;gap:24px}nav.report-pages a{color:#0b5394}"
    "@media print{nav.report-pages{display:none}}"
)


def navigation(previous: tuple[str, str] | None, following: tuple[str, str] | None) -> str:
    """The bar at the top of every page: back to the index, to the previous and the next page."""
    links = ["<a href='index.html'>&#8592; Report index (summary of findings)</a>"]
    if previous is not None:
        links.append(f"<a href='{html.escape(previous[0])}'>&#8249; Previous: {html.escape(previous[1])}</a>")
    if following is not None:
        links.append(f"<a href='{html.escape(following[0])}'>Next: {html.escape(following[1])} &#8250;</a>")
    return f"<style>{NAV_STYLE}</style><nav class='report-pages' aria-label='Report pages'>{''.join(links)}</nav>"


def with_navigation(page: str, previous: tuple[str, str] | None, following: tuple[str, str] | None) -> str:
    """`page` with the navigation bar as the first thing in its body."""
    match = re.search(r"<body[^>]*>", page)
    if match is None:
        raise ValueError("an exported page without a <body> tag")
    return page[: match.end()] + navigation(previous, following) + page[match.end() :]


def simple_index(pages: list[tuple[str, str]]) -> str:
    links = "".join(f"<li><a href='{html.escape(name)}'>{html.escape(title)}</a></li>" for name, title in pages)
    return (
        f"<!doctype html><meta charset='utf-8'><title>Meta-analysis report</title>"
        f"<h1>Salvage after CAR-T or bispecific-antibody failure: report</h1><ol>{links}</ol>"
    )
