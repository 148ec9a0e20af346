"""Checks across files: duplicate ids, unknown relations, overlapping cohorts."""

from __future__ import annotations

from typing import Any

from metaanalysis.evidence.problems import ERROR, WARNING, ParsedFile, PathT, Problem, format_path
from metaanalysis.evidence.readers import _list, _map, _str, _year_month
from metaanalysis.evidence.vocabulary import suggest


def _cross_file(parsed: list[ParsedFile]) -> list[Problem]:
    problems: list[Problem] = []

    def line(p: ParsedFile, path: PathT) -> int | None:
        while path not in p.lines and path:
            path = path[:-1]
        return p.lines.get(path)

    def add(p: ParsedFile, path: PathT, severity: str, message: str) -> None:
        problems.append(Problem(p.file, format_path(path), line(p, path), severity, message))

    by_id: dict[str, ParsedFile] = {}
    for p in parsed:
        rid = _str(_map(p.data).get("id"))
        if rid is None:
            continue
        if rid in by_id:
            add(p, ("id",), ERROR, f"duplicate id '{rid}': also used by {by_id[rid].file}")
        else:
            by_id[rid] = p

    def relations(p: ParsedFile) -> tuple[list[tuple[PathT, Any]], list[tuple[PathT, Any]]]:
        rel = _map(_map(p.data).get("relations"))
        sup = [(("relations", "supersedes", i), x) for i, x in enumerate(_list(rel.get("supersedes")))]
        ovl = [
            (("relations", "overlaps", i, "id"), _map(x).get("id")) for i, x in enumerate(_list(rel.get("overlaps")))
        ]
        return sup, ovl

    related: set[frozenset] = set()
    supersedes: dict[str, set[str]] = {}
    for p in parsed:
        rid = _str(_map(p.data).get("id"))
        sup, ovl = relations(p)
        for path, other in sup + ovl:
            if not isinstance(other, str):
                continue
            if other not in by_id:
                near = suggest(other, by_id)
                add(p, path, ERROR, f"names unknown study id '{other}'" + (f"; did you mean '{near}'?" if near else ""))
            elif rid is not None:
                related.add(frozenset((rid, other)))
        if rid is not None:
            supersedes[rid] = {x for _, x in sup if isinstance(x, str)}
    # A supersedes cycle would leave every record in it superseded (nothing pooled).
    for rid in supersedes:
        stack, seen = list(supersedes[rid] - {rid}), set()  # self-reference is reported on its own
        while stack:
            cur = stack.pop()
            if cur == rid:
                add(
                    by_id[rid],
                    ("relations", "supersedes"),
                    ERROR,
                    f"supersedes cycle: '{rid}' is (indirectly) superseded by a record it supersedes",
                )
                break
            if cur not in seen:
                seen.add(cur)
                stack.extend(supersedes.get(cur, ()))

    # Same centre, overlapping enrolment, no declared relation: the same patients may be pooled twice.
    centres: dict[str, list[tuple[ParsedFile, int]]] = {}
    for p in by_id.values():
        for i, centre in enumerate(_list(_map(p.data).get("centres"))):
            name = _str(_map(centre).get("name"))
            if name:
                key = " ".join(name.casefold().split())
                if not any(q is p for q, _ in centres.get(key, [])):
                    centres.setdefault(key, []).append((p, i))
    reported: set[frozenset] = set()
    for members in centres.values():
        for a in range(len(members)):
            for b in range(a + 1, len(members)):
                (pa, _), (pb, ib) = members[a], members[b]
                ida, idb = _map(pa.data)["id"], _map(pb.data)["id"]
                pair = frozenset((ida, idb))
                if pair in related or pair in reported:
                    continue
                ea, eb = _map(_map(pa.data).get("enrolment")), _map(_map(pb.data).get("enrolment"))
                sa, fa, sb, fb = (
                    _year_month(ea.get("start")),
                    _year_month(ea.get("end")),
                    _year_month(eb.get("start")),
                    _year_month(eb.get("end")),
                )
                path = ("centres", ib, "name")
                reported.add(pair)
                if sa is None or fa is None or sb is None or fb is None:
                    add(
                        pb,
                        path,
                        WARNING,
                        f"shares a centre with '{ida}' ({pa.file}) and the enrolment dates "
                        "needed to rule out overlapping patients are missing; "
                        "declare relations.overlaps if they overlap",
                    )
                elif sa <= fb and sb <= fa:
                    add(
                        pb,
                        path,
                        ERROR,
                        f"shares a centre with '{ida}' ({pa.file}) and their enrolment windows "
                        "overlap: declare relations.supersedes or relations.overlaps (in either record)",
                    )
    return problems
