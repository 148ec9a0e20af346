"""The study-record format, declared in one place (see docs/study-records.md).

Every key a study file may hold, its type, whether it is required and which
values it allows. `validation.py` walks this tree; nothing else needs to
know the shape of a record. Rules that relate several fields (CR <= ORR,
percentages against counts, overlapping cohorts) are checks in
`validation.py`, not here.

Node types:
- `Scalar(kind)`: kind is "text", "integer", "number", "boolean", "year_month"
  (text "YYYY-MM"), "date" (YYYY-MM-DD), "p_value" (a number in [0, 1] or text such as
  "<0.001") or "support" (a quote {where, quote, url} or the text "not_reported").
- `Record(fields)`: a mapping with exactly these keys (others are errors).
- `ListOf(item)`: a list; `length` fixes its size (e.g. 2 for ranges).
- `MapOf(value)`: a mapping with free keys (baseline names, outcome names);
  `key_pattern` or `key_vocabulary` constrains the keys.
`vocabulary` / `key_vocabulary` name a list read at run time from
metaanalysis/data ("regimen_classes" or "outcomes").
"""

from __future__ import annotations

from dataclasses import dataclass

ID_PATTERN = r"[a-z0-9_]+"
SNAKE_CASE = r"[a-z][a-z0-9_]*"
# Template placeholders look like "<FILL:name>"; one left in a record is an error.
PLACEHOLDER_PREFIX = "<FILL"


@dataclass(frozen=True)
class Scalar:
    kind: str
    required: bool = False
    nullable: bool = False
    choices: tuple[str, ...] | None = None
    pattern: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    vocabulary: str | None = None
    doc: str = ""


@dataclass(frozen=True)
class Record:
    fields: dict[str, Spec]
    required: bool = False
    nullable: bool = False
    doc: str = ""


@dataclass(frozen=True)
class ListOf:
    item: Spec
    required: bool = False
    nullable: bool = False
    min_items: int = 0
    length: int | None = None
    doc: str = ""


@dataclass(frozen=True)
class MapOf:
    value: Spec
    required: bool = False
    nullable: bool = False
    key_pattern: str | None = None
    key_vocabulary: str | None = None
    doc: str = ""


Spec = Scalar | Record | ListOf | MapOf


def text(required: bool = False, **kw) -> Scalar:
    return Scalar("text", required=required, **kw)


def choice(*values: str, required: bool = False, **kw) -> Scalar:
    return Scalar("text", required=required, choices=values, **kw)


# -- building blocks ------------------------------------------------------------
SOURCE = Record(
    {
        "where": text(True, doc='section, table or figure: "Table 2", "Fig. 3B", "abstract, Results"'),
        "quote": text(True, doc="the words the number was read from, verbatim"),
        "url": text(doc="where the quote was read, when not the citation's url (e.g. a second report)"),
    },
    required=True,
    doc="where a number was read",
)

DERIVED_FROM = ("percent", "difference", "sum", "table", "other")
DERIVED = Record(
    {
        "from": choice(*DERIVED_FROM, required=True),
        "rule": text(True, doc="how the number was computed, e.g. 'round(43 % x 92) = 39.56 -> 40'"),
    },
    doc="present only when the number was computed rather than printed",
)

COUNT = Record(
    {
        "value": Scalar("integer", required=True, minimum=0),
        "source": SOURCE,
        "derived": DERIVED,
    },
    doc="{value, source}: a count of patients (or courses)",
)

PAIR = ListOf(Scalar("number"), length=2, doc="[lo, hi]")
# A CI bound may be null: "not reached" / not estimable, as printed.
CI = ListOf(Scalar("number", nullable=True), length=2, doc="[lo, hi]; a bound may be null (not reached)")

PERCENT = Scalar("number", minimum=0, maximum=100, doc="as printed, in percent")

# Response read as best response over follow-up, or at one fixed time (e.g. day 30 after
# CAR-T); a paper that does not say is "not_stated". Absent means not_stated.
ASSESSMENTS = ("best", "fixed_timepoint", "not_stated")
BINARY = Record(
    {
        "events": Scalar("integer", minimum=0),
        "n": Scalar("integer", minimum=1),
        "percent": PERCENT,
        "source": SOURCE,
        "derived": DERIVED,
        "assessment": choice(
            *ASSESSMENTS, doc="response outcomes: best response or at a fixed time; default not_stated"
        ),
        "timepoint_days": Scalar("integer", minimum=1, doc="with assessment: fixed_timepoint, e.g. 30"),
        "notes": text(),
    },
    doc="one binary outcome: events/n and/or the printed percent",
)

ENDPOINTS = ("OS", "PFS", "EFS", "DOR", "PFS2", "OS2", "GRFS")
TTE_KINDS = ("median", "landmark", "hazard_ratio")
TIME_TO_EVENT = Record(
    {
        "endpoint": choice(*ENDPOINTS, required=True),
        "kind": choice(*TTE_KINDS, required=True),
        "source": SOURCE,
        "start": text(doc='what the clock starts at, e.g. "CAR-T infusion"'),
        "value": Scalar("number", doc="months for a median; the ratio for a hazard ratio"),
        "not_reached": Scalar("boolean", doc="median not reached"),
        "months": Scalar("number", minimum=0, doc="landmark time"),
        "percent": PERCENT,
        "ci": CI,
        "ci_level": Scalar("number", minimum=0.5, maximum=0.999, doc="default 0.95"),
        "range": PAIR,
        "p": Scalar("p_value"),
        "comparison": text(doc='for a hazard ratio, e.g. "late vs early relapse"'),
        "model": choice("univariable", "multivariable"),
        "derived": DERIVED,
        "notes": text(),
    }
)
# Keys that only make sense for one kind (the others are always allowed).
TTE_KIND_KEYS = {
    "median": {"value", "not_reached", "ci", "ci_level", "range"},
    "landmark": {"months", "percent", "ci", "ci_level"},
    "hazard_ratio": {"value", "ci", "ci_level", "p", "comparison", "model"},
}

BASELINE_VALUE = Record(
    {
        "median": Scalar("number"),
        "range": PAIR,
        "events": Scalar("integer", minimum=0),
        "n": Scalar("integer", minimum=1),
        "percent": PERCENT,
        "value": Scalar("number"),
        "source": SOURCE,
        "derived": DERIVED,
        "notes": text(),
    },
    doc="one of {median, range}, {events, n, percent} or {value}, each with source",
)
BASELINE = MapOf(BASELINE_VALUE, key_pattern=SNAKE_CASE)

DISEASES = ("LBCL", "DLBCL", "B-NHL")
UNITS = ("patients", "treatment_courses")

# A stratum defined by the regimen patients received inside a mixed arm is a regimen cohort
# (poolable in its class); one defined by a patient characteristic is not.
STRATIFIED_BY = ("patient_characteristic", "regimen")
SUBGROUP = Record(
    {
        "id": text(True, pattern=ID_PATTERN),
        "label": text(True),
        "definition": text(),
        "stratified_by": choice(*STRATIFIED_BY, doc="default patient_characteristic"),
        "regimen": text(doc="with stratified_by: regimen"),
        "regimen_class": text(vocabulary="regimen_classes", doc="with stratified_by: regimen"),
        "n": COUNT,
        # Where a stratum differs from its record (or the reviewer has checked and marks it): the
        # unit its counts are in and its disease mix; absent means the record's own values.
        "unit_of_analysis": choice(*UNITS, doc="default: the record's unit_of_analysis"),
        "disease": choice(*DISEASES, doc="default: the record's population.disease"),
        "binary": MapOf(BINARY, key_vocabulary="outcomes"),
        "time_to_event": ListOf(TIME_TO_EVENT),
        "baseline": BASELINE,
        "notes": text(),
    }
)

ROLES = ("treatment", "overall")
ARM = Record(
    {
        "id": text(True, pattern=ID_PATTERN),
        "label": text(True),
        "role": choice(*ROLES, doc="default treatment; overall = whole-cohort numbers, never pooled as a regimen"),
        "regimen": text(True),
        "regimen_class": text(True, vocabulary="regimen_classes"),
        # Optional: a paper may print a class's percentage without its size; no size is invented.
        "n": COUNT,
        "binary": MapOf(BINARY, key_vocabulary="outcomes"),
        "time_to_event": ListOf(TIME_TO_EVENT),
        "baseline": BASELINE,
        "subgroups": ListOf(SUBGROUP),
        "notes": text(),
    }
)

# -- risk of bias (docs/risk-of-bias.md) -------------------------------------------------
# JBI Critical Appraisal Checklist for Case Series (Munn et al. 2020): ten items, named here by
# what each asks about. ROBINS-I (Sterne et al. 2016): seven domains, for a comparison inside a study.
JBI_CASE_SERIES_ITEMS = (
    "q1_inclusion_criteria",
    "q2_condition_measured",
    "q3_valid_identification",
    "q4_consecutive_inclusion",
    "q5_complete_inclusion",
    "q6_demographics",
    "q7_clinical_information",
    "q8_outcomes_reported",
    "q9_site_demographics",
    "q10_statistics",
)
JBI_JUDGEMENTS = ("yes", "no", "unclear", "not_applicable")
ROBINS_I_DOMAINS = (
    "confounding",
    "selection_of_participants",
    "classification_of_interventions",
    "deviations_from_intended_interventions",
    "missing_data",
    "measurement_of_outcomes",
    "selection_of_reported_result",
)
ROBINS_I_JUDGEMENTS = ("low", "moderate", "serious", "critical", "no_information")
NOT_REPORTED = "not_reported"
# `support` is a quote ({where, quote, url}) or the text "not_reported" (the source is silent);
# record_rules checks which of the two it is.
SUPPORT = Scalar("support", required=True, doc='{where, quote, url} or "not_reported"')


def _judged(judgements: tuple[str, ...]) -> Record:
    return Record({"judgement": choice(*judgements, required=True), "support": SUPPORT, "notes": text()}, required=True)


RISK_OF_BIAS = Record(
    {
        "tool": choice("jbi_case_series", required=True),
        "assessed": Scalar("date", required=True, doc="YYYY-MM-DD"),
        "items": Record({k: _judged(JBI_JUDGEMENTS) for k in JBI_CASE_SERIES_ITEMS}, required=True),
        "comparisons": ListOf(
            Record(
                {
                    "comparison": text(True, doc='e.g. "CTI2 vs other salvage"'),
                    "tool": choice("robins_i", required=True),
                    "domains": Record({k: _judged(ROBINS_I_JUDGEMENTS) for k in ROBINS_I_DOMAINS}, required=True),
                    "notes": text(),
                }
            )
        ),
        "notes": text(),
    },
    doc="record-level risk of bias: every judgement carries its support",
)

SOURCE_TYPES = ("full_text", "abstract", "congress_abstract", "news_report", "summary", "preprint")
# after_failure: the prior therapy failed and then this regimen was given (the question asked).
# prior_exposure: a trial subgroup of patients who had the prior therapy at some point.
SELECTIONS = ("after_failure", "prior_exposure")
CONFIDENCE = ("high", "moderate", "low")
PRIOR_FAILURE = ("car_t", "bispecific")

STUDY = Record(
    {
        "id": text(True, pattern=ID_PATTERN, doc="equal to the file name without .yaml"),
        "citation": Record(
            {
                "authors": ListOf(text(), required=True, min_items=1),
                "title": text(True),
                "journal": text(True, nullable=True),
                "year": Scalar(
                    "integer",
                    required=True,
                    nullable=True,
                    minimum=1990,
                    maximum=2100,
                    doc="null only when the source prints no year",
                ),
                "doi": text(True, nullable=True),
                "source_type": choice(*SOURCE_TYPES, required=True),
                "source_file": text(
                    True,
                    nullable=True,
                    doc="path under shared/, e.g. seeds/004_....txt; null for a record read at citation.url",
                ),
                "url": text(nullable=True),
                "confidence": choice(*CONFIDENCE, doc="default high"),
                "label": text(
                    doc="a short name for a source that prints neither a first author nor a cohort name, "
                    'e.g. "ZUMA-1 retreatment"'
                ),
                # Where authors, year and DOI were read: the record's own text (its excerpt or
                # source_file) or a second returned source logged in review/search_log (give its url).
                "metadata_source": ListOf(Record(SOURCE.fields), min_items=1),
            },
            required=True,
        ),
        "centres": ListOf(
            Record(
                {
                    "name": text(True),
                    "country": text(True, nullable=True),
                    "n_sites": Scalar("integer", minimum=1, doc="where the paper gives only a count of sites"),
                }
            ),
            required=True,
            min_items=1,
        ),
        "design": Record(
            {
                "type": choice("retrospective", "prospective", required=True),
                "setting": choice("single_centre", "multi_centre", "registry", "trial_subgroup", required=True),
            },
            required=True,
        ),
        "enrolment": Record(
            {
                "start": Scalar("year_month", required=True),
                "end": Scalar("year_month", required=True),
                "source": SOURCE,
            }
        ),
        "population": Record(
            {
                "prior_failure": ListOf(choice(*PRIOR_FAILURE), required=True, min_items=1),
                "selection": choice(
                    *SELECTIONS,
                    required=True,
                    doc="after_failure (the prior therapy failed, then this regimen) or prior_exposure "
                    "(had the prior therapy at some time, not necessarily failed just before); no default",
                ),
                "selection_source": Record(
                    SOURCE.fields, required=True, doc="the words that say how the patients were selected"
                ),
                "disease": choice(*DISEASES, required=True),
                "histology": MapOf(COUNT),
                "description": text(True),
                # Optional: a source may not say how many patients it studied. Such a record is
                # kept (its numbers are shown) with a warning; nothing is ever imputed for it.
                "n": Record(COUNT.fields, doc=COUNT.doc),
                "patients": Record(
                    COUNT.fields, doc="with treatment_courses: the number of patients behind the courses"
                ),
            },
            required=True,
        ),
        "unit_of_analysis": choice(*UNITS, required=True),
        "relations": Record(
            {
                "supersedes": ListOf(text(pattern=ID_PATTERN)),
                "overlaps": ListOf(
                    Record(
                        {
                            "id": text(True, pattern=ID_PATTERN),
                            "reason": text(True),
                        }
                    )
                ),
            }
        ),
        "follow_up": Record(
            {
                "median_months": Scalar("number", minimum=0),
                "range": PAIR,
                "source": SOURCE,
            }
        ),
        "arms": ListOf(ARM, required=True, min_items=1),
        "baseline": BASELINE,
        # Optional in one file (a draft record validates without it); every record of a reviewed
        # evidence base must have it (search_log.check_review).
        "risk_of_bias": RISK_OF_BIAS,
        "notes": text(),
    },
    required=True,
)

__all__ = [
    "Scalar",
    "Record",
    "ListOf",
    "MapOf",
    "Spec",
    "STUDY",
    "ARM",
    "SUBGROUP",
    "BINARY",
    "TIME_TO_EVENT",
    "BASELINE_VALUE",
    "SOURCE",
    "DERIVED",
    "COUNT",
    "TTE_KIND_KEYS",
    "ID_PATTERN",
    "PLACEHOLDER_PREFIX",
    "ENDPOINTS",
    "TTE_KINDS",
    "ROLES",
    "PRIOR_FAILURE",
    "DISEASES",
    "UNITS",
    "SOURCE_TYPES",
    "CONFIDENCE",
    "DERIVED_FROM",
    "ASSESSMENTS",
    "STRATIFIED_BY",
    "SELECTIONS",
    "RISK_OF_BIAS",
    "JBI_CASE_SERIES_ITEMS",
    "JBI_JUDGEMENTS",
    "ROBINS_I_DOMAINS",
    "ROBINS_I_JUDGEMENTS",
    "NOT_REPORTED",
]
