"""Published syntheses as data: `review/syntheses/<id>.yaml` (see review/README.md).

A published meta-analysis or systematic review is never pooled with our studies: it is a lead
(its primary studies are chased in the search log) and a yardstick (its pooled estimates are set
beside ours). Each file records the synthesis's citation, what it pooled (population, outcome,
regimen class in our vocabularies where one matches) and every pooled estimate it prints, each
with the words it was read from. The words must be verbatim in
`review/syntheses/excerpts/<id>.txt`, the text the search returned.

`load_syntheses(directory)` reads every file with the study-record parser (line numbers, no
duplicate keys, no aliases), checks it against `SYNTHESIS` and the rules below, and returns the
syntheses with every problem at once (`file:line: severity: field: message`).
`check_syntheses(syntheses, log)` adds the checks against the search log: every synthesis was
screened there (reason `review_article`). `synthesis_table` is one row per pooled estimate.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from metaanalysis.evidence.excerpts import normalise, quote_problems
from metaanalysis.evidence.readers import _int, _list, _map, _num, _str
from metaanalysis.evidence.schema import ID_PATTERN, PAIR, SOURCE, STUDY, ListOf, Record, Scalar, choice, text
from metaanalysis.evidence.search_log import SearchLog, normalise_url
from metaanalysis.evidence.validation import ERROR, ParsedFile, Problem, _Checker, parse_file, record_files
from metaanalysis.evidence.vocabulary import POPULATIONS, suggest
from metaanalysis.evidence.vocabulary import outcomes as load_outcomes
from metaanalysis.evidence.vocabulary import regimen_classes as load_regimen_classes

DESIGNS = ("meta_analysis", "systematic_review")
CITATION = STUDY.fields["citation"]
assert isinstance(CITATION, Record)
CITATION_KEYS = ("authors", "title", "journal", "year", "doi", "source_type", "label", "metadata_source")
COUNT = Record({"value": Scalar("integer", required=True, minimum=1), "source": SOURCE})
ESTIMATE = Record(
    {
        "outcome": text(True, doc="a name from metaanalysis/data/outcomes.yaml (ORR, CR, ...)"),
        "population": choice(*POPULATIONS, nullable=True, doc="default: pooled.population"),
        "regimen_class": text(nullable=True, vocabulary="regimen_classes", doc="default: pooled.regimen_class"),
        "subgroup": text(doc='the synthesis\'s own stratum, e.g. "monotherapy", as it names it'),
        "value": Scalar("number", required=True, minimum=0, maximum=100, doc="percent, as printed"),
        "ci": PAIR,
        "ci_level": Scalar("number", minimum=0.5, maximum=0.999, doc="default 0.95"),
        "k": Scalar("integer", nullable=True, minimum=1, doc="studies behind this estimate, where printed"),
        "n": Scalar("integer", nullable=True, minimum=1, doc="patients behind this estimate, where printed"),
        "source": SOURCE,
        "notes": text(),
    }
)
SYNTHESIS = Record(
    {
        "id": text(True, pattern=ID_PATTERN, doc="equal to the file name without .yaml"),
        # A study record's citation, read at its url (no source_file, no confidence).
        "citation": Record(
            {
                **{k: CITATION.fields[k] for k in CITATION_KEYS},
                "url": text(True),
            },
            required=True,
        ),
        "design": choice(*DESIGNS, required=True),
        "pooled": Record(
            {
                "population": choice(*POPULATIONS, required=True, nullable=True),
                "regimen_class": text(required=True, nullable=True, vocabulary="regimen_classes"),
                "outcomes": ListOf(text(), required=True, min_items=1),
                "studies": COUNT,
                "patients": COUNT,
                "note": text(doc="what the synthesis pooled where our vocabularies do not fit"),
            },
            required=True,
        ),
        "estimates": ListOf(ESTIMATE, required=True),
        "notes": text(),
    },
    required=True,
)


@dataclass(frozen=True, slots=True)
class Synthesis:
    id: str
    file: str
    data: dict[str, Any]
    line: int | None


def synthesis_files(directory: str | Path) -> list[Path]:
    return record_files(directory, "synthesis", ID_PATTERN, required=False)[0]


def load_syntheses(directory: str | Path) -> tuple[list[Synthesis], list[Problem]]:
    """Every synthesis file of `directory` (review/syntheses), each checked on its own and
    its quotes against `directory/excerpts/<id>.txt`."""
    d = Path(directory)
    if not d.is_dir():
        return [], []  # no syntheses recorded: nothing to check
    files, problems = record_files(d, "synthesis", ID_PATTERN, required=False)
    classes, outcomes = load_regimen_classes(), load_outcomes()
    found: list[Synthesis] = []
    parsed_files: list[ParsedFile] = []
    for f in files:
        parsed, parse_problems = parse_file(f)
        problems += parse_problems
        if parsed is None:
            continue
        checker = _Checker(parsed, classes, outcomes)
        checker.walk(parsed.data, SYNTHESIS, ())
        if isinstance(parsed.data, dict):
            _rules(checker, parsed, outcomes)
            found.append(Synthesis(parsed.stem, parsed.file, parsed.data, parsed.lines.get(())))
        problems += checker.problems
        parsed_files.append(parsed)
    problems += [_as_synthesis(p) for p in quote_problems(_read_at_url(parsed_files), d / "excerpts")]
    return found, problems


def _read_at_url(parsed: list[ParsedFile]) -> list[ParsedFile]:
    """Syntheses are always read at their url: present them to the quote check as such."""
    out = []
    for p in parsed:
        data = dict(p.data) if isinstance(p.data, dict) else {}
        data["citation"] = {**_map(data.get("citation")), "source_file": None}
        out.append(ParsedFile(p.file, data, p.lines, p.raw))
    return out


def _as_synthesis(problem: Problem) -> Problem:
    if problem.path == "citation.source_file":  # our stand-in above: name the real field
        return Problem(problem.file, "citation.url", problem.line, problem.severity, problem.message)
    return problem


def _rules(c: _Checker, parsed: ParsedFile, outcomes: dict) -> None:
    data = parsed.data
    if isinstance(data.get("id"), str) and data["id"] != parsed.stem:
        c.error(("id",), f"id '{data['id']}' does not match the file name '{parsed.stem}.yaml'")
    url = _str(_map(data.get("citation")).get("url"))
    if url is not None and not c.URL.fullmatch(url):
        c.error(("citation", "url"), f"'{url}' does not look like a URL (http://... or https://...)")
    c.citation_metadata(_map(data.get("citation")))
    pooled = _map(data.get("pooled"))
    for i, name in enumerate(_list(pooled.get("outcomes"))):
        _outcome(c, name, ("pooled", "outcomes", i), outcomes)
    pooled_n = {key: _int(_map(pooled.get(key)).get("value")) for key in ("studies", "patients")}
    for i, est in enumerate(_list(data.get("estimates"))):
        est = _map(est)
        path = ("estimates", i)
        if "outcome" in est:
            _outcome(c, est["outcome"], path + ("outcome",), outcomes)
        value, ci = _num(est.get("value")), _list(est.get("ci"))
        lo, hi = (_num(ci[0]), _num(ci[1])) if len(ci) == 2 else (None, None)
        if lo is not None and hi is not None:
            if lo > hi:
                c.error(path + ("ci",), f"CI lower bound {lo:g} is above its upper bound {hi:g}")
            elif value is not None and not lo <= value <= hi:
                c.error(path + ("value",), f"estimate {value:g} lies outside its CI [{lo:g}, {hi:g}]")
            if hi > 100:
                c.error(path + ("ci",), f"CI upper bound {hi:g} is above 100 (values are percent)")
        if "ci_level" in est and "ci" not in est:
            c.error(path + ("ci_level",), "ci_level without ci")
        for key, total in (("k", pooled_n["studies"]), ("n", pooled_n["patients"])):
            part = _int(est.get(key))
            if part is not None and total is not None and part > total:
                what = "studies" if key == "k" else "patients"
                c.error(path + (key,), f"{key} = {part} is more than the synthesis pooled ({total} {what})")
        # Every number is as printed: the value (and each CI bound) appears in its quote.
        quote = normalise(str(_map(est.get("source")).get("quote", "")))
        for where in ("value", ("ci", 0), ("ci", 1)):
            field = path + ((where,) if isinstance(where, str) else where)
            raw = parsed.raw.get(field)
            if raw and quote and raw not in quote:
                c.error(field, f"{raw} is not printed in this estimate's quote (copy the number as printed)")


def _outcome(c: _Checker, name: Any, path: tuple, outcomes: dict) -> None:
    if isinstance(name, str) and name not in outcomes:
        near = suggest(name, outcomes)
        c.error(
            path,
            f"unknown outcome '{name}'"
            + (f"; did you mean '{near}'?" if near else "")
            + " (outcome names are listed in metaanalysis/data/outcomes.yaml)",
        )


def check_syntheses(syntheses: list[Synthesis], log: SearchLog) -> list[Problem]:
    """Every synthesis was screened in the search log as a review article (its primary studies
    are chased from there), under the same URL."""
    screened = {normalise_url(e.url) for e in log.entries if e.url is not None and e.reason == "review_article"}
    problems = []
    for s in syntheses:
        url = _str(_map(s.data.get("citation")).get("url"))
        if url is not None and normalise_url(url) not in screened:
            problems.append(
                Problem(
                    s.file,
                    "citation.url",
                    None,
                    ERROR,
                    "no entry of review/search_log screens this URL as reason: review_article "
                    "(log the synthesis where it was found)",
                )
            )
    return problems


SYNTHESIS_COLUMNS = {
    "synthesis": "string",
    "citation": "string",
    "year": "Int64",
    "url": "string",
    "population": "string",
    "regimen_class": "string",
    "outcome": "string",
    "subgroup": "string",
    "estimate": "Float64",
    "ci_lb": "Float64",
    "ci_ub": "Float64",
    "ci_level": "Float64",
    "k": "Int64",
    "n": "Int64",
    "k_pooled": "Int64",
    "n_pooled": "Int64",
    "quote": "string",
    "note": "string",
}


def synthesis_table(syntheses: list[Synthesis]) -> pd.DataFrame:
    """One row per pooled estimate (estimates in percent, as printed; columns: SYNTHESIS_COLUMNS)."""
    rows = []
    for s in syntheses:
        citation, pooled = _map(s.data.get("citation")), _map(s.data.get("pooled"))
        authors = _list(citation.get("authors"))
        first = str(authors[0]).split()[0] if authors else ""
        name = citation.get("label") or (first if not first.lower().startswith("not") else citation.get("journal"))
        for est in _list(s.data.get("estimates")):
            est = _map(est)
            ci = _list(est.get("ci")) or [None, None]
            rows.append(
                {
                    "synthesis": s.id,
                    "citation": f"{name} {citation.get('year') or 'n.d.'}",
                    "year": citation.get("year"),
                    "url": citation.get("url"),
                    "population": est.get("population", pooled.get("population")),
                    "regimen_class": est.get("regimen_class", pooled.get("regimen_class")),
                    "outcome": est.get("outcome"),
                    "subgroup": est.get("subgroup"),
                    "estimate": est.get("value"),
                    "ci_lb": ci[0],
                    "ci_ub": ci[1],
                    "ci_level": est.get("ci_level", 0.95) if est.get("ci") else None,
                    "k": est.get("k"),
                    "n": est.get("n"),
                    "k_pooled": _map(pooled.get("studies")).get("value"),
                    "n_pooled": _map(pooled.get("patients")).get("value"),
                    "quote": _map(est.get("source")).get("quote"),
                    "note": est.get("notes") or pooled.get("note"),
                }
            )
    frame = pd.DataFrame(rows, columns=list(SYNTHESIS_COLUMNS))
    return frame.astype(SYNTHESIS_COLUMNS) if rows else frame.astype(SYNTHESIS_COLUMNS)


__all__ = [
    "SYNTHESIS",
    "Synthesis",
    "load_syntheses",
    "check_syntheses",
    "synthesis_table",
    "SYNTHESIS_COLUMNS",
]
