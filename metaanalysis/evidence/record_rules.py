"""Checks that relate fields of one record to each other: counts against percentages, CR <= ORR,
CIs, dates, strata, provenance."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from metaanalysis.evidence import schema
from metaanalysis.evidence.problems import EPS, PathT, format_path
from metaanalysis.evidence.readers import _describe, _int, _list, _map, _num, _str, _year_month, percent_matches
from metaanalysis.evidence.schema_walk import SchemaWalker


class RecordChecker(SchemaWalker):
    """The schema walk plus every rule within one record."""

    def record_rules(self) -> None:
        data = self.parsed.data
        if not isinstance(data, dict):
            return
        record_id = _str(data.get("id"))
        if record_id is not None and record_id != self.parsed.stem:
            self.error(("id",), f"id '{record_id}' does not match the file name '{self.parsed.stem}.yaml'")
        citation = _map(data.get("citation"))
        if citation.get("confidence") == "low":
            self.warn(("citation", "confidence"), "confidence: low (read the notes before using these numbers)")
        population = _map(data.get("population"))
        if "population" in data and "n" not in population:
            self.warn(("population",), "population.n is not given: the study size is unknown (shown, never imputed)")
        if data.get("unit_of_analysis") == "treatment_courses":
            self.warn(("unit_of_analysis",), "counts are treatment courses, not patients")
            if "patients" not in population:
                self.error(
                    ("population", "patients"),
                    "unit_of_analysis is treatment_courses: give "
                    "population.patients ({value, source}), the number of patients behind the courses",
                )
        enrolment = _map(data.get("enrolment"))
        start, end = _year_month(enrolment.get("start")), _year_month(enrolment.get("end"))
        if start and end and start > end:
            self.error(
                ("enrolment", "start"), f"enrolment start {enrolment['start']} is after its end {enrolment['end']}"
            )
        follow_up = _map(data.get("follow_up"))
        self.median_in_range(follow_up.get("median_months"), follow_up.get("range"), ("follow_up",), "median_months")
        study_n = _int(_map(population.get("n")).get("value"))
        histology = _map(population.get("histology"))
        read = [_int(_map(v).get("value")) for v in histology.values()]
        counts = [c for c in read if c is not None]
        if study_n is not None and len(counts) == len(read) and sum(counts) > study_n:
            self.error(
                ("population", "histology"),
                f"histology counts add up to {sum(counts)}, more than population.n = {study_n}",
            )
        patients = _int(_map(population.get("patients")).get("value"))
        if patients is not None and study_n is not None and patients > study_n:
            self.error(
                ("population", "patients", "value"),
                f"{patients} patients but only {study_n} treatment courses (population.n)",
            )
        self.baseline(data.get("baseline"), ("baseline",))
        relations = _map(data.get("relations"))
        for i, other in enumerate(_list(relations.get("supersedes"))):
            if other == record_id:
                self.error(("relations", "supersedes", i), "a record cannot supersede itself")
        for i, entry in enumerate(_list(relations.get("overlaps"))):
            if _map(entry).get("id") == record_id:
                self.error(("relations", "overlaps", i, "id"), "a record cannot overlap itself")
        self.arms(_list(data.get("arms")), study_n)
        self.provenance_and_strata(data)
        self.citation_metadata(citation)
        if "risk_of_bias" in data:
            self.risk_of_bias(_map(data.get("risk_of_bias")), data)

    # -- where authors, year and DOI were read (docs/study-records.md, "Citation metadata") --
    def citation_metadata(self, citation: dict) -> None:
        """Each of year, DOI and first author's surname must be printed in a metadata_source quote."""
        sources = [_map(s) for s in _list(citation.get("metadata_source"))]
        if not sources or not all(isinstance(s.get("quote"), str) for s in sources):
            return  # nothing to read, or an entry without its quote (the schema walk names it)
        printed = " ".join(str(s.get("quote", "")) for s in sources).casefold()
        path = ("citation", "metadata_source")
        year = _int(citation.get("year"))
        if year is not None and str(year) not in printed:
            self.error(path, f"citation.year {year} is not printed in any metadata_source quote")
        doi = _str(citation.get("doi"))
        if doi is not None and doi.casefold() not in printed:
            self.error(path, f"citation.doi {doi} is not printed in any metadata_source quote")
        authors = _list(citation.get("authors"))
        first = _str(authors[0]) if authors else None
        # A romanised name cannot be found in a quote printed in Chinese or Japanese script: the
        # surname is checked only where no quote is in those scripts.
        cjk = any("\u3000" <= ch <= "\u9fff" for ch in printed)
        if first is not None and not first.casefold().startswith("not named") and not cjk:
            surname = first.split()[0].casefold()
            if surname not in printed:
                self.error(
                    path,
                    f"the first author '{first}' is not printed in any metadata_source quote "
                    '(write authors: ["not named in the returned text"] and give citation.label)',
                )

    @staticmethod
    def groups(data: dict) -> Iterable[tuple[PathT, dict]]:
        """(path, mapping) of every arm and every subgroup of a record."""
        for i, arm in enumerate(_list(data.get("arms"))):
            arm = _map(arm)
            yield ("arms", i), arm
            for j, sub in enumerate(_list(arm.get("subgroups"))):
                yield ("arms", i, "subgroups", j), _map(sub)

    # -- risk of bias (docs/risk-of-bias.md) -----------------------------------------------
    def risk_of_bias(self, rob: dict, data: dict) -> None:
        """A judgement and its support agree; a record holding a comparison assesses it."""
        judged: list[tuple[tuple[Any, ...], dict]] = [
            (("risk_of_bias", "items", k), _map(v)) for k, v in _map(rob.get("items")).items()
        ]
        for i, comp in enumerate(_list(rob.get("comparisons"))):
            domains = _map(_map(comp).get("domains"))
            judged += [(("risk_of_bias", "comparisons", i, "domains", k), _map(v)) for k, v in domains.items()]
        for path, entry in judged:
            judgement, support = entry.get("judgement"), entry.get("support")
            if support == schema.NOT_REPORTED and judgement in ("yes", "low"):
                self.error(
                    path + ("support",),
                    f"judgement '{judgement}' needs a quote that supports it (the source is silent: "
                    "judge unclear, or no_information for a ROBINS-I domain)",
                )
        compared = [
            path + ("time_to_event", k)
            for path, group in self.groups(data)
            for k, e in enumerate(_list(group.get("time_to_event")))
            if _map(e).get("kind") == "hazard_ratio"
        ]
        if compared and not _list(rob.get("comparisons")):
            self.error(
                ("risk_of_bias", "comparisons"),
                f"the record holds a comparison ({format_path(compared[0])} is a hazard ratio): "
                "assess it with ROBINS-I under risk_of_bias.comparisons",
            )

    # -- provenance, response timing and strata (the fields added for the systematic search) --
    def provenance_and_strata(self, data: dict) -> None:
        citation = _map(data.get("citation"))
        if "source_file" in citation and citation["source_file"] is None and citation.get("url") is None:
            self.error(
                ("citation", "source_file"),
                "give citation.url (where the record was read) or "
                "citation.source_file (the file under shared/): a record needs one of them",
            )
        for path, value in self.urls(data, ()):
            if isinstance(value, str) and not self.URL.fullmatch(value):
                self.error(path, f"{_describe(value)} does not look like a URL (http://... or https://...)")
        for i, arm in enumerate(_list(data.get("arms"))):
            arm = _map(arm)
            self.timing(_map(arm.get("binary")), ("arms", i, "binary"))
            for j, sub in enumerate(_list(arm.get("subgroups"))):
                sub = _map(sub)
                path = ("arms", i, "subgroups", j)
                self.timing(_map(sub.get("binary")), path + ("binary",))
                if sub.get("stratified_by") == "regimen":
                    for key in ("regimen", "regimen_class"):
                        if key not in sub:
                            self.error(
                                path + (key,),
                                f"a stratum with stratified_by: regimen needs '{key}' "
                                "(it is pooled as a cohort of that class)",
                            )
                elif "regimen_class" in sub:
                    self.error(
                        path + ("regimen_class",),
                        "regimen_class belongs to a stratum defined by regimen: "
                        "add stratified_by: regimen, or remove regimen_class (a patient-characteristic "
                        "stratum is never pooled as a regimen cohort)",
                    )

    # A URL as a reader would open it: http(s), a host, no spaces.
    URL = re.compile(r"https?://[A-Za-z0-9.-]*[A-Za-z0-9](?::\d+)?(?:[/?#]\S*)?")

    @classmethod
    def urls(cls, value: Any, path: PathT) -> Iterable[tuple[PathT, Any]]:
        """(path, value) of citation.url and of every source.url in a record."""
        if isinstance(value, dict):
            for key, item in value.items():
                if key == "url" and (path[-1:] == ("citation",) or "quote" in value):
                    yield path + (key,), item
                else:
                    yield from cls.urls(item, path + (key,))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                yield from cls.urls(item, path + (i,))

    def timing(self, binary: dict, path: PathT) -> None:
        """timepoint_days goes with assessment: fixed_timepoint, and only with it."""
        for name, entry in binary.items():
            if not isinstance(entry, dict):
                continue
            fixed = entry.get("assessment") == "fixed_timepoint"
            if fixed and "timepoint_days" not in entry:
                self.error(
                    path + (name, "assessment"),
                    "assessment: fixed_timepoint needs timepoint_days (e.g. 30 for a day-30 response)",
                )
            if not fixed and "timepoint_days" in entry:
                self.error(
                    path + (name, "timepoint_days"),
                    "timepoint_days applies only to assessment: "
                    f"fixed_timepoint (assessment here: {entry.get('assessment', 'not_stated')})",
                )

    def arms(self, arms: list, study_n: int | None) -> None:
        seen: dict[str, int] = {}
        sizes = []
        for i, arm in enumerate(arms):
            if not isinstance(arm, dict):
                continue
            path = ("arms", i)
            arm_id = _str(arm.get("id"))
            if arm_id is not None:
                if arm_id in seen:
                    self.error(path + ("id",), f"arm id '{arm_id}' is used twice (also arms[{seen[arm_id]}])")
                seen.setdefault(arm_id, i)
            arm_n = _int(_map(arm.get("n")).get("value"))
            if arm.get("role", "treatment") != "overall":
                sizes.append((arm_id or f"arms[{i}]", arm_n))
            if study_n is not None and arm_n is not None and arm_n > study_n:
                self.error(path + ("n", "value"), f"arm n = {arm_n} is more than the study's population.n = {study_n}")
            self.group(arm, path, arm_n, "arm")
            sub_seen: dict[str, int] = {}
            for j, sub in enumerate(_list(arm.get("subgroups"))):
                if not isinstance(sub, dict):
                    continue
                sub_path = path + ("subgroups", j)
                sub_id = _str(sub.get("id"))
                if sub_id is not None:
                    if sub_id in sub_seen:
                        self.error(sub_path + ("id",), f"subgroup id '{sub_id}' is used twice in this arm")
                    sub_seen.setdefault(sub_id, j)
                sub_n = _int(_map(sub.get("n")).get("value"))
                if sub_n is not None and arm_n is not None and sub_n > arm_n:
                    self.error(sub_path + ("n", "value"), f"subgroup n = {sub_n} is more than its arm's n = {arm_n}")
                self.group(sub, sub_path, sub_n if sub_n is not None else arm_n, "subgroup")
        known = [n for _, n in sizes if n is not None]
        if study_n is not None and len(known) > 1 and sum(known) > study_n:
            parts = " + ".join(f"{name} {n}" for name, n in sizes if n is not None)
            self.error(
                ("arms",),
                f"treatment arm sizes add up to {sum(known)} ({parts}), more than the study's population.n = {study_n}",
            )

    def group(self, group: dict, path: PathT, group_n: int | None, what: str) -> None:
        binary = _map(group.get("binary"))
        for name, entry in binary.items():
            if isinstance(entry, dict):
                self.binary(entry, path + ("binary", name), group_n, what)
        self.responses(binary, path + ("binary",))
        for k, entry in enumerate(_list(group.get("time_to_event"))):
            if isinstance(entry, dict):
                self.time_to_event(entry, path + ("time_to_event", k))
        self.baseline(group.get("baseline"), path + ("baseline",))

    def counts(self, entry: dict, path: PathT, pooled: bool) -> None:
        """events/n/percent of a binary outcome or a baseline proportion."""
        events, n, percent = _int(entry.get("events")), _int(entry.get("n")), _num(entry.get("percent"))
        derived_from = _map(entry.get("derived")).get("from")
        if "events" in entry and "n" not in entry and "percent" not in entry:
            self.error(path + ("n",), "events without n: give the denominator")
        if "n" in entry and "events" not in entry and "percent" not in entry:
            self.error(path + ("events",), "n without events or percent")
        if pooled and "percent" in entry and "n" not in entry:
            # A count printed with its percentage but no denominator ("8 patients (42%)") stays as printed.
            self.warn(path + ("percent",), "percentage without a denominator: shown, never pooled")
        if pooled and "percent" in entry and "n" in entry and "events" not in entry:
            self.warn(
                path + ("events",),
                "percentage and n without a count: not pooled until the count is "
                "derived (derived: {from: percent, rule: ...})",
            )
        if events is not None and n is not None and events > n:
            self.error(path + ("events",), f"events = {events} is more than n = {n}")
            return
        if derived_from == "percent" and (percent is None or n is None):
            self.error(path + ("derived", "from"), "derived from a percentage, but percent or n is missing")
        if events is not None and n is not None and n > 0 and percent is not None:
            raw = self.parsed.raw.get(tuple(path) + ("percent",))
            if not percent_matches(events, n, percent, raw):
                exact = 100.0 * events / n
                if derived_from == "percent":
                    self.error(
                        path + ("events",),
                        f"derived count {events} is inconsistent with the percentage "
                        f"it came from: {_fmt_num(percent, raw)}% of {n} = {percent * n / 100:.2f}",
                    )
                else:
                    self.error(
                        path + ("percent",),
                        f"printed {_fmt_num(percent, raw)}% does not match "
                        f"events/n = {events}/{n} = {exact:.2f}% under rounding or truncation",
                    )

    def binary(self, entry: dict, path: PathT, group_n: int | None, what: str) -> None:
        self.counts(entry, path, pooled=True)
        n = _int(entry.get("n"))
        if n is not None and group_n is not None and n > group_n:
            self.error(path + ("n",), f"n = {n} is more than the {what}'s n = {group_n}")

    def responses(self, binary: dict, path: PathT) -> None:
        """CR <= ORR, CR + PR == ORR and graded <= any-grade toxicity within one arm or subgroup."""

        def counts(name):
            entry = _map(binary.get(name))
            return _int(entry.get("events")), _int(entry.get("n")), _num(entry.get("percent"))

        cr, pr, orr = counts("CR"), counts("PR"), counts("ORR")
        if cr[0] is not None and orr[0] is not None and cr[1] is not None and cr[1] == orr[1]:
            if cr[0] > orr[0]:
                self.error(path + ("CR", "events"), f"CR events ({cr[0]}) exceed ORR events ({orr[0]})")
        else:
            p_cr, p_orr = _proportion(cr), _proportion(orr)
            if p_cr is not None and p_orr is not None and p_cr > p_orr + 0.005:
                self.error(path + ("CR",), f"CR ({100 * p_cr:.1f}%) is more than ORR ({100 * p_orr:.1f}%)")
        if (
            None not in (cr[0], pr[0], orr[0])
            and cr[1] is not None
            and cr[1] == pr[1] == orr[1]
            and cr[0] + pr[0] != orr[0]
        ):
            self.error(path + ("ORR", "events"), f"CR + PR = {cr[0]} + {pr[0]} = {cr[0] + pr[0]} but ORR = {orr[0]}")
        # A graded toxicity is a subset of the same toxicity at any grade (CRS_grade3plus <= CRS_any).
        for name in binary:
            if isinstance(name, str) and "_grade" in name and not name.endswith("_any"):
                whole = name.split("_grade")[0] + "_any"
                part, total = counts(name), counts(whole)
                if (
                    part[0] is not None
                    and total[0] is not None
                    and part[1] is not None
                    and part[1] == total[1]
                    and part[0] > total[0]
                ):
                    self.error(path + (name, "events"), f"{name} events ({part[0]}) exceed {whole} events ({total[0]})")

    def time_to_event(self, entry: dict, path: PathT) -> None:
        kind = entry.get("kind")
        if not isinstance(kind, str) or kind not in schema.TTE_KIND_KEYS:
            return
        specific = set().union(*schema.TTE_KIND_KEYS.values())
        for key in entry:
            if key in specific and key not in schema.TTE_KIND_KEYS[kind]:
                owners = [k for k, keys in schema.TTE_KIND_KEYS.items() if key in keys]
                self.error(path + (key,), f"'{key}' does not apply to kind: {kind} (only to {', '.join(owners)})")
        value = _num(entry.get("value"))
        if kind == "median":
            if entry.get("not_reached") is True and "value" in entry:
                self.error(path + ("value",), "a median cannot have a value and not_reached: true")
            if "value" not in entry and entry.get("not_reached") is not True:
                self.error(path + ("value",), "a median needs value (months) or not_reached: true")
            self.median_in_range(entry.get("value"), entry.get("range"), path, "value")
        elif kind == "landmark":
            for key in ("months", "percent"):
                if key not in entry:
                    self.error(path + (key,), f"a landmark needs '{key}'")
            value = _num(entry.get("percent"))
        elif kind == "hazard_ratio":
            if "value" not in entry:
                self.error(path + ("value",), "a hazard ratio needs 'value'")
            if value is not None and value <= 0:
                self.error(path + ("value",), f"a hazard ratio must be positive, got {value:g}")
        if "ci_level" in entry and "ci" not in entry:
            self.error(path + ("ci_level",), "ci_level given without ci")
        ci = entry.get("ci")
        if isinstance(ci, list) and len(ci) == 2:
            lo, hi = _num(ci[0]), _num(ci[1])
            if kind == "hazard_ratio":
                for i, bound in enumerate((lo, hi)):
                    if bound is not None and bound <= 0:
                        self.error(path + ("ci", i), f"a ratio's CI bound must be positive, got {bound:g}")
            if lo is not None and hi is not None and lo > hi:
                self.error(path + ("ci",), f"lower bound {lo:g} is above upper bound {hi:g}")
            elif value is not None and ((lo is not None and value < lo - EPS) or (hi is not None and value > hi + EPS)):
                self.error(
                    path + ("ci",),
                    f"the CI [{_fmt_bound(lo)}, {_fmt_bound(hi)}] does not contain its estimate {value:g}",
                )

    def median_in_range(self, median: Any, rng: Any, path: PathT, median_key: str) -> None:
        if not (isinstance(rng, list) and len(rng) == 2):
            return
        lo, hi, m = _num(rng[0]), _num(rng[1]), _num(median)
        if lo is not None and hi is not None and lo > hi:
            self.error(path + ("range",), f"range lower end {lo:g} is above its upper end {hi:g}")
        elif m is not None and lo is not None and hi is not None and not lo - EPS <= m <= hi + EPS:
            self.error(path + (median_key,), f"median {m:g} lies outside its range [{lo:g}, {hi:g}]")

    def baseline(self, baseline: Any, path: PathT) -> None:
        for name, entry in _map(baseline).items():
            if not isinstance(entry, dict):
                continue
            shapes = [
                ("median" in entry or "range" in entry),
                ("events" in entry or "n" in entry or "percent" in entry),
                ("value" in entry),
            ]
            if sum(shapes) != 1:
                self.error(path + (name,), "give exactly one of {median, range}, {events, n, percent} or {value}")
            self.median_in_range(entry.get("median"), entry.get("range"), path + (name,), "median")
            self.counts(entry, path + (name,), pooled=False)


def _proportion(c: tuple) -> float | None:
    events, n, percent = c
    if events is not None and n:
        return events / n
    return percent / 100 if percent is not None else None


def _fmt_num(x: float, raw: str | None) -> str:
    return raw.strip() if raw else f"{x:g}"


def _fmt_bound(x: float | None) -> str:
    return "null" if x is None else f"{x:g}"
