"""The systematic search as a reviewer keeps it: `review/search_log/*.yaml` (see review/README.md).

`load_search_log(directory)` reads every session file with the study-record parser (line numbers,
no duplicate keys, no aliases), checks it against `SESSION` below and the rules that relate its
fields, and returns the screened entries in one list with every problem at once
(`file:line: severity: field: message`, like the study records). `check_search_log` adds the
checks against the evidence base: an included entry names a study file that exists, and every
study file is included by some entry. `prisma_counts` turns the log into the PRISMA 2020 numbers.

Duplicates: an entry marked `decision: duplicate` is a duplicate record. So is a record whose URL
was already screened in another session (a living review finds old records again): of the
entries sharing a URL the one kept is the included one, else the furthest-assessed, else the
earliest; the others are counted as duplicates removed before screening, whatever they say.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from metaanalysis.evidence.schema import ID_PATTERN, ListOf, Record, Scalar, choice, text
from metaanalysis.evidence.schema_walk import _iso_date
from metaanalysis.evidence.validation import (
    ERROR,
    ParsedFile,
    Problem,
    _Checker,
    parse_file,
    record_files,
)
from metaanalysis.evidence.vocabulary import suggest

STAGES = ("screening", "eligibility")
DECISIONS = ("include", "exclude", "duplicate")
METHODS = ("database", "other")
# review/README.md explains each reason to the reviewer.
REASONS = {
    "wrong_population": "Wrong population",
    "wrong_intervention": "Wrong intervention",
    "no_outcome": "No eligible outcome",
    "no_denominator": "No denominator",
    "duplicate_report": "Another report of an included cohort",
    "review_article": "Review, meta-analysis or commentary",
    "case_report": "Case report (< 3 patients)",
    "not_retrievable": "Numbers not retrievable",
    "other": "Other",
}
SESSION = Record(
    {
        "session": text(True, doc="the file name without .yaml: <YYYY-MM-DD>-<topic>"),
        "date": Scalar("date", required=True),
        "searched": text(True, doc="where the search was run"),
        "method": choice(*METHODS, required=True),
        "queries": ListOf(
            Record(
                {
                    "id": text(True, pattern=ID_PATTERN),
                    "text": text(True),
                    "date": Scalar("date", required=True),
                    "hits_examined": Scalar("integer", required=True, minimum=0),
                    "notes": text(),
                }
            ),
            required=True,
        ),
        "screened": ListOf(
            Record(
                {
                    "id": text(True, pattern=ID_PATTERN),
                    "citation": text(True),
                    "url": text(nullable=True),
                    "found_by": ListOf(text(), required=True, min_items=1),
                    "stage": choice(*STAGES, required=True),
                    "decision": choice(*DECISIONS, required=True),
                    "reason": choice(*REASONS, nullable=True),
                    "detail": text(nullable=True),
                    "study_id": text(nullable=True, pattern=ID_PATTERN),
                }
            ),
            required=True,
        ),
        "notes": text(),
    },
    required=True,
)

SESSION_NAME = re.compile(r"(\d{4}-\d{2}-\d{2})-[a-z0-9][a-z0-9_-]*")


@dataclass(frozen=True, slots=True)
class Screened:
    """One screened record of one session."""

    session: str
    date: date | None
    method: str
    id: str
    citation: str
    url: str | None
    stage: str
    decision: str
    reason: str | None
    study_id: str | None
    file: str
    index: int  # position in the session's `screened` list
    line: int | None
    study_id_line: int | None


@dataclass(frozen=True, slots=True)
class SearchLog:
    sessions: tuple[str, ...]  # in date, then name, order
    entries: tuple[Screened, ...]  # every entry of every session that parsed
    queries: int  # queries run (database sessions)


def normalise_url(url: str) -> str:
    """The same page however it was written down: scheme, "www.", case of the host, trailing "/"."""
    rest = re.sub(r"^https?://", "", url.strip())
    host, _, path = rest.partition("/")
    host = host.lower().removeprefix("www.")
    return f"{host}/{path}".rstrip("/")


def _session_rules(c: _Checker, data: dict, stem: str) -> None:
    name = data.get("session")
    if isinstance(name, str) and name != stem:
        c.error(("session",), f"session '{name}' does not match the file name '{stem}.yaml'")
    m = SESSION_NAME.fullmatch(stem)
    if not m:
        c.error(("session",), f"the file name '{stem}.yaml' is not <YYYY-MM-DD>-<topic>.yaml")
    elif (day := _iso_date(data.get("date"))) is not None and m.group(1) != day.isoformat():
        c.error(("date",), f"date {day} differs from the date in the session name ({m.group(1)})")
    queries = [q for q in data.get("queries") or [] if isinstance(q, dict)]
    query_ids: dict[str, int] = {}
    for i, q in enumerate(queries):
        if isinstance(q.get("id"), str):
            if q["id"] in query_ids:
                c.error(
                    ("queries", i, "id"), f"query id '{q['id']}' is used twice (also queries[{query_ids[q['id']]}])"
                )
            query_ids.setdefault(q["id"], i)
    database = data.get("method") == "database"
    if database and "queries" in data and not queries:
        c.error(("queries",), "method: database needs the queries that were run")
    seen_ids: dict[str, int] = {}
    seen_urls: dict[str, int] = {}
    for i, e in enumerate(data.get("screened") or []):
        if not isinstance(e, dict):
            continue
        path = ("screened", i)
        if isinstance(e.get("id"), str):
            if e["id"] in seen_ids:
                c.error(path + ("id",), f"entry id '{e['id']}' is used twice (also screened[{seen_ids[e['id']]}])")
            seen_ids.setdefault(e["id"], i)
        url = e.get("url")
        if isinstance(url, str):
            if not c.URL.fullmatch(url):
                c.error(path + ("url",), f"'{url}' does not look like a URL (http://... or https://...)")
            key = normalise_url(url)
            if key in seen_urls and e.get("decision") != "duplicate":
                c.error(
                    path + ("url",),
                    f"the same URL as screened[{seen_urls[key]}]: screen a record once and "
                    "list every query that found it in found_by",
                )
            seen_urls.setdefault(key, i)
        if database:
            for j, q in enumerate(e.get("found_by") or []):
                if isinstance(q, str) and q not in query_ids:
                    near = suggest(q, query_ids)
                    c.error(
                        path + ("found_by", j),
                        f"'{q}' is not a query of this session" + (f"; did you mean '{near}'?" if near else ""),
                    )
        decision, reason, study = e.get("decision"), e.get("reason"), e.get("study_id")
        if decision == "include":
            if reason is not None:
                c.error(path + ("reason",), "an included record has no exclusion reason (reason: null)")
            if study is None:
                c.error(path + ("study_id",), "an included record names its study file (study_id)")
            if e.get("stage") == "screening":
                c.error(path + ("stage",), "an included report was read in full: stage: eligibility")
        elif decision == "exclude":
            if reason is None:
                c.error(path + ("reason",), f"an exclusion needs a reason ({', '.join(REASONS)})")
            elif reason == "duplicate_report" and study is None:
                c.error(path + ("study_id",), "reason duplicate_report: name the included study it reports (study_id)")
            elif reason == "other" and not e.get("detail"):
                c.error(path + ("detail",), "reason other: say what in detail")
        elif decision == "duplicate" and reason is not None:
            c.error(
                path + ("reason",),
                "a duplicate record has no exclusion reason (reason: null); "
                "a second report of an included cohort is decision: exclude, reason: duplicate_report",
            )


def load_search_log(directory: str | Path) -> tuple[SearchLog, list[Problem]]:
    """Every session of `directory` (review/search_log), checked on its own."""
    d = Path(directory)
    if not d.is_dir():
        return SearchLog((), (), 0), [Problem(str(d), "", None, ERROR, "no such directory")]
    # The file names themselves (<YYYY-MM-DD>-<topic>) are checked with the session's fields.
    files, problems = record_files(d, "session", None, required=False)
    sessions: list[tuple[tuple, ParsedFile]] = []
    for f in files:
        parsed, parse_problems = parse_file(f)
        problems += parse_problems
        if parsed is None:
            continue
        checker = _Checker(parsed, {}, {})
        checker.walk(parsed.data, SESSION, ())
        if isinstance(parsed.data, dict):
            _session_rules(checker, parsed.data, parsed.stem)
        problems += checker.problems
        data = parsed.data if isinstance(parsed.data, dict) else {}
        sessions.append(((_iso_date(data.get("date")) or date.min, parsed.stem), parsed))
    sessions.sort(key=lambda s: s[0])
    entries, n_queries = [], 0
    for (day, stem), parsed in sessions:
        data = parsed.data if isinstance(parsed.data, dict) else {}
        method = str(data["method"]) if isinstance(data.get("method"), str) else ""
        if method == "database":
            n_queries += len([q for q in data.get("queries") or [] if isinstance(q, dict)])
        for i, e in enumerate(data.get("screened") or []):
            if not isinstance(e, dict):
                continue
            url = e.get("url") if isinstance(e.get("url"), str) else None
            entries.append(
                Screened(
                    stem,
                    day if day != date.min else None,
                    method,
                    str(e.get("id")),
                    str(e.get("citation")),
                    url,
                    str(e.get("stage")),
                    str(e.get("decision")),
                    e.get("reason") if isinstance(e.get("reason"), str) else None,
                    e.get("study_id") if isinstance(e.get("study_id"), str) else None,
                    parsed.file,
                    i,
                    parsed.lines.get(("screened", i)),
                    parsed.lines.get(("screened", i, "study_id")),
                )
            )
    if not sessions:
        problems.append(Problem(str(d), "", None, ERROR, "no search sessions (*.yaml) in this directory"))
    return SearchLog(tuple(s for (_, s), _ in sessions), tuple(entries), n_queries), problems


def check_search_log(log: SearchLog, study_ids: Iterable[str], studies_dir: str | Path) -> list[Problem]:
    """The log against the evidence base: included ids exist, every study is included."""
    known = set(study_ids)
    problems = []
    for e in log.entries:
        if e.study_id is not None and e.study_id not in known:
            near = suggest(e.study_id, known)
            problems.append(
                Problem(
                    e.file,
                    f"screened[{e.index}].study_id",
                    e.study_id_line or e.line,
                    ERROR,
                    f"names no study file: {studies_dir}/{e.study_id}.yaml does not exist"
                    + (f"; did you mean '{near}'?" if near else ""),
                )
            )
    # One report included as two studies: its patients would be counted twice.
    first_include: dict[str, Screened] = {}
    for e in log.entries:
        if e.decision == "include" and e.url is not None and e.study_id is not None:
            other = first_include.setdefault(normalise_url(e.url), e)
            if other.study_id != e.study_id:
                problems.append(
                    Problem(
                        e.file,
                        f"screened[{e.index}].study_id",
                        e.study_id_line or e.line,
                        ERROR,
                        f"this URL is already included as study '{other.study_id}' ({other.file}, "
                        f"{other.id}): one report, one study record (merge the two records, or "
                        "exclude this entry as duplicate)",
                    )
                )
    included = {e.study_id for e in log.entries if e.decision == "include"}
    for study in sorted(known - included):
        problems.append(
            Problem(
                str(Path(studies_dir) / f"{study}.yaml"),
                "",
                None,
                ERROR,
                "no entry of review/search_log includes this study (decision: include, "
                f"study_id: {study}): log the search that found it",
            )
        )
    return problems


def duplicates(log: SearchLog) -> set[int]:
    """Indexes (into log.entries) of the records counted as duplicates removed before screening."""
    dup = {i for i, e in enumerate(log.entries) if e.decision == "duplicate"}
    by_url: dict[str, list[int]] = {}
    for i, e in enumerate(log.entries):
        if e.url is not None:
            by_url.setdefault(normalise_url(e.url), []).append(i)
    for members in by_url.values():
        live = [i for i in members if i not in dup]
        if len(live) > 1:
            keep = min(
                live, key=lambda i: (log.entries[i].decision != "include", log.entries[i].stage != "eligibility", i)
            )
            dup |= set(live) - {keep}
    return dup


def review_beside(studies_dir: str | Path) -> Path:
    """review/ beside the studies folder (a relative path stays relative, for readable messages)."""
    path = Path(studies_dir)
    return (path.parent if path.name else path.resolve().parent) / "review"


# What a record of a reviewed evidence base must hold beyond the format of one file: a draft
# record validates without them, a record the review includes does not.
REVIEWED_KEYS = {
    ("risk_of_bias",): "risk_of_bias is missing: assess the record (docs/risk-of-bias.md)",
    ("citation", "metadata_source"): "citation.metadata_source is missing: quote where authors and "
    "year were read (the record's own text, or a second returned source logged in review/search_log)",
}


def reviewed_record_problems(parsed: list[ParsedFile]) -> list[Problem]:
    problems = []
    for p in parsed:
        data = p.data if isinstance(p.data, dict) else {}
        for path, message in REVIEWED_KEYS.items():
            holder: Any = data
            for key in path[:-1]:
                holder = holder.get(key) if isinstance(holder, dict) else None
            if isinstance(holder, dict) and path[-1] not in holder:
                line = p.lines.get(path[:-1]) if len(path) > 1 else p.lines.get(("id",))
                problems.append(Problem(p.file, ".".join(path), line, ERROR, message))
    return problems


@dataclass(frozen=True, slots=True)
class PrismaCounts:
    """The boxes of the PRISMA 2020 flow diagram (Page et al., BMJ 2021;372:n71, Fig. 1)."""

    sessions: int
    queries: int
    identified_databases: int
    identified_other: int
    duplicates_removed: int
    screened: int
    excluded_screening: int
    sought: int
    not_retrieved: int
    assessed: int
    excluded_eligibility: dict[str, int]  # reason -> reports
    reports_included: int
    studies_included: int

    def rows(self) -> list[dict[str, Any]]:
        """One row per box (and per exclusion reason): stage, box, reason, n."""
        out: list[tuple[str, str, str | None, int]] = [
            ("identification", "sessions", None, self.sessions),
            ("identification", "queries", None, self.queries),
            ("identification", "records_identified_databases", None, self.identified_databases),
            ("identification", "records_identified_other_methods", None, self.identified_other),
            ("identification", "duplicates_removed", None, self.duplicates_removed),
            ("screening", "records_screened", None, self.screened),
            ("screening", "records_excluded", None, self.excluded_screening),
            ("screening", "reports_sought", None, self.sought),
            ("screening", "reports_not_retrieved", None, self.not_retrieved),
            ("screening", "reports_assessed", None, self.assessed),
        ]
        out += [("screening", "reports_excluded", r, n) for r, n in self.excluded_eligibility.items()]
        out += [
            ("included", "studies_included", None, self.studies_included),
            ("included", "reports_included", None, self.reports_included),
        ]
        return [dict(stage=s, box=b, reason=r, n=n) for s, b, r, n in out]


def prisma_counts(log: SearchLog) -> PrismaCounts:
    dup = duplicates(log)
    kept = [e for i, e in enumerate(log.entries) if i not in dup]
    excluded_screening = sum(e.decision == "exclude" and e.stage == "screening" for e in kept)
    at_eligibility = [e for e in kept if e.stage == "eligibility" and e.decision == "exclude"]
    not_retrieved = sum(e.reason == "not_retrievable" for e in at_eligibility)
    reasons: dict[str, int] = {}
    for e in at_eligibility:
        if e.reason is not None and e.reason != "not_retrievable":
            reasons[e.reason] = reasons.get(e.reason, 0) + 1
    order = list(REASONS)
    reasons = dict(sorted(reasons.items(), key=lambda kv: (-kv[1], order.index(kv[0]) if kv[0] in order else 99)))
    included = [e for e in kept if e.decision == "include"]
    screened = len(kept)
    sought = screened - excluded_screening
    return PrismaCounts(
        sessions=len(log.sessions),
        queries=log.queries,
        identified_databases=sum(e.method == "database" for e in log.entries),
        identified_other=sum(e.method != "database" for e in log.entries),
        duplicates_removed=len(dup),
        screened=screened,
        excluded_screening=excluded_screening,
        sought=sought,
        not_retrieved=not_retrieved,
        assessed=sought - not_retrieved,
        excluded_eligibility=reasons,
        reports_included=len(included),
        studies_included=len({e.study_id for e in included}),
    )


__all__ = [
    "SESSION",
    "REASONS",
    "STAGES",
    "DECISIONS",
    "Screened",
    "SearchLog",
    "PrismaCounts",
    "load_search_log",
    "check_search_log",
    "reviewed_record_problems",
    "review_beside",
    "duplicates",
    "prisma_counts",
    "normalise_url",
]
