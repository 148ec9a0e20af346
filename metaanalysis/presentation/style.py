"""The look of tables and pages: a journal table (rules above and below the header and at the
end, no vertical lines, no index column) through pandas' Styler, and the report's page CSS."""

from __future__ import annotations

import html

import pandas as pd
from pandas.io.formats.style import Styler

FONT = "-apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, 'DejaVu Sans', sans-serif"

TABLE_STYLES = [
    {
        "selector": "",
        "props": [
            ("border-collapse", "collapse"),
            ("font-family", FONT),
            ("font-size", "13px"),
            ("border-top", "2px solid #222"),
            ("border-bottom", "2px solid #222"),
            ("margin", "0.5em 0 1.2em 0"),
        ],
    },
    {
        "selector": "caption",
        "props": [
            ("caption-side", "top"),
            ("text-align", "left"),
            ("font-weight", "600"),
            ("padding", "0 0 6px 0"),
            ("color", "#222"),
        ],
    },
    {
        "selector": "thead th",
        "props": [
            ("border-bottom", "1px solid #222"),
            ("text-align", "left"),
            ("padding", "6px 10px"),
            ("font-weight", "600"),
            ("vertical-align", "bottom"),
        ],
    },
    {
        "selector": "td",
        "props": [("padding", "4px 10px"), ("text-align", "left"), ("vertical-align", "top"), ("border", "none")],
    },
    {"selector": "tbody tr:nth-child(even)", "props": [("background", "#f6f7f9")]},
]


def paper_table(frame: pd.DataFrame, *, caption: str | None = None, numeric: tuple[str, ...] = ()) -> Styler:
    """`frame` (already formatted as text) as a journal table: no index, rules, `numeric`
    columns right-aligned."""
    # Cells and headers hold record text (authors, arm labels, quotes): escaped, so that a
    # "<img onerror=...>" typed into a study file is shown as text on every page, never run.
    styler = (
        frame.style.hide(axis="index")
        .set_table_styles(TABLE_STYLES)
        .format(escape="html", na_rep="")
        .format_index(escape="html", axis=1)
    )
    if caption:
        styler = styler.set_caption(html.escape(caption))
    cols = [c for c in numeric if c in frame.columns]
    if cols:
        styler = styler.set_properties(subset=cols, **{"text-align": "right", "white-space": "nowrap"})
    # an estimate never breaks inside its interval
    intervals = [c for c in frame.columns if "CI" in str(c) or "interval" in str(c)]
    if intervals:
        styler = styler.set_properties(subset=intervals, **{"white-space": "nowrap"})
    return styler


def styled(frame: pd.DataFrame, **kw) -> str:
    """HTML of `paper_table(frame)`; estimates never break inside their interval."""
    return paper_table(frame, numeric=("k", "N"), **kw).to_html()


PAGE_CSS = f"""
body {{ margin: 0; background: #fafafa; color: #1d1d1f; font-family: {FONT}; line-height: 1.5; }}
main {{ max-width: 1180px; margin: 0 auto; padding: 28px 32px 60px; background: #fff;
       box-shadow: 0 0 0 1px #e5e5e5; }}
h1 {{ font-size: 26px; margin: 0 0 8px; line-height: 1.25; }}
h2 {{ font-size: 20px; margin: 32px 0 8px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }}
h3 {{ font-size: 16px; margin: 20px 0 4px; }}
p.lead {{ color: #444; font-size: 15px; }}
table.facts {{ border-collapse: collapse; margin: 12px 0; font-size: 14px; }}
table.facts th {{ text-align: left; font-weight: 600; padding: 2px 16px 2px 0; color: #444; }}
table.facts td {{ padding: 2px 0; }}
ol.pages li {{ margin: 4px 0; font-size: 15px; }}
ol.footnotes {{ font-size: 13px; color: #333; margin: 6px 0 18px; padding-left: 28px; }}
ol.footnotes li {{ margin: 1px 0; }}
a {{ color: #0b5cad; }}
"""

__all__ = ["paper_table", "styled", "PAGE_CSS", "TABLE_STYLES"]
