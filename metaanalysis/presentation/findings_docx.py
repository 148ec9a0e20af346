"""The summary of findings as a Word document a guideline panel can paste from (python-docx).

The same `FindingsTable`s as the index page and the CSV: a heading per table, the table in
landscape A4, its lettered footnotes below it, and the dating facts (run date, last search) at
the top. The document's core properties carry the run time, not the time of writing, so that a
reader can tell which run it came from.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from metaanalysis.presentation.findings import FindingsTable, letter

TITLE = "Summary of findings"
SUBJECT = "Salvage therapy after CAR-T or bispecific-antibody failure in large B-cell lymphoma"


def write_docx(
    tables: Iterable[FindingsTable], facts: Iterable[tuple[str, str]], path: Path, *, computed: str | None = None
) -> Path:
    """Write `path` (.docx) and return it."""
    # python-docx is imported here: only the run's writer needs it, the notebooks and pages do not
    from docx import Document
    from docx.enum.section import WD_ORIENT
    from docx.shared import Cm, Pt

    doc = Document()
    section = doc.sections[0]
    section.orientation = WD_ORIENT.LANDSCAPE
    section.page_width, section.page_height = Cm(29.7), Cm(21.0)
    for side in ("left_margin", "right_margin", "top_margin", "bottom_margin"):
        setattr(section, side, Cm(1.5))
    doc.styles["Normal"].font.size = Pt(9)

    props = doc.core_properties
    props.title, props.subject, props.author = TITLE, SUBJECT, "metaanalysis"
    if computed:
        when = datetime.fromisoformat(computed)
        props.created = props.modified = when.replace(tzinfo=None)

    doc.add_heading(f"{TITLE}: {SUBJECT}", level=1)
    for label, value in facts:
        doc.add_paragraph(f"{label}: {value}")
    for t in tables:
        doc.add_heading(t.title, level=2)
        grid = doc.add_table(rows=1, cols=len(t.table.columns))
        grid.style = "Table Grid"
        for cell, name in zip(grid.rows[0].cells, t.table.columns, strict=True):
            cell.text = str(name)
            for run in cell.paragraphs[0].runs:
                run.bold = True
        for row in t.table.itertuples(index=False):
            for cell, value in zip(grid.add_row().cells, row, strict=True):
                cell.text = str(value)
        for i, text in enumerate(t.footnotes):
            doc.add_paragraph(f"{letter(i)}. {text}").paragraph_format.space_after = Pt(0)
    path = Path(path)
    doc.save(str(path))
    return path


__all__ = ["write_docx"]
