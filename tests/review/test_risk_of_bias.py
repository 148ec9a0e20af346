"""Risk of bias: the record block is validated like every other field (file, line, field); the rule
from item judgements to an overall judgement is pinned on constructed cases; every record of the
evidence base is assessed, and every support quote of a record read from shared/ is in that file.

Broken records are the valid fixture (tests/fixtures/base_2024.yaml, which carries a risk_of_bias
block) with one edit; expected lines come from the edited text (`line_of`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import BASE, check, edit, find, line_of, only

from metaanalysis.evidence.excerpts import normalise, quotes
from metaanalysis.evidence.schema import JBI_CASE_SERIES_ITEMS, ROBINS_I_DOMAINS
from metaanalysis.evidence.search_log import reviewed_record_problems
from metaanalysis.evidence.studies import load_records
from metaanalysis.evidence.validation import check_directory
from metaanalysis.review.risk_of_bias import (
    HIGH,
    ITEM_COLUMNS,
    LOW,
    SOME_CONCERNS,
    SUMMARY_COLUMNS,
    assess,
    jbi_overall,
    risk_of_bias_items,
    risk_of_bias_summary,
    robins_i_overall,
)

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"


# -- the block in a record ----------------------------------------------------------------
def test_a_missing_item_is_named(tmp_path):
    old = '    q7_clinical_information: {judgement: "unclear", support: not_reported}\n'
    text = edit(old, "")
    p = only(check(tmp_path, text), "risk_of_bias.items.q7_clinical_information", line_of(text, "  items:"))
    assert "required key 'q7_clinical_information' is missing" in p.message


def test_a_judgement_outside_the_scale_suggests_the_nearest(tmp_path):
    text = edit('q2_condition_measured: {judgement: "unclear"', 'q2_condition_measured: {judgement: "unclr"')
    p = only(check(tmp_path, text), "risk_of_bias.items.q2_condition_measured.judgement", line_of(text, '"unclr"'))
    assert "did you mean 'unclear'" in p.message


def test_an_unquoted_yes_is_explained(tmp_path):
    text = edit('q8_outcomes_reported: {judgement: "yes"', "q8_outcomes_reported: {judgement: yes")
    p = only(
        check(tmp_path, text), "risk_of_bias.items.q8_outcomes_reported.judgement", line_of(text, "judgement: yes")
    )
    assert "quote it" in p.message


def test_support_is_a_quote_or_not_reported(tmp_path):
    text = edit(
        'q3_valid_identification: {judgement: "unclear", support: not_reported}',
        'q3_valid_identification: {judgement: "unclear", support: silent}',
    )
    p = only(check(tmp_path, text), "risk_of_bias.items.q3_valid_identification.support", line_of(text, "silent"))
    assert "not_reported" in p.message
    text = edit('support: {where: "Table 1", quote: "median age 60 (30-80)"}', 'support: {where: "Table 1"}')
    only(check(tmp_path, text), "risk_of_bias.items.q6_demographics.support.quote", line_of(text, 'where: "Table 1"}}'))


def test_a_yes_needs_a_quote(tmp_path):
    old = 'q6_demographics: {judgement: "yes", support: {where: "Table 1", quote: "median age 60 (30-80)"}}'
    text = edit(old, 'q6_demographics: {judgement: "yes", support: not_reported}')
    p = only(check(tmp_path, text), "risk_of_bias.items.q6_demographics.support", line_of(text, "q6_demographics"))
    assert "needs a quote" in p.message
    old = (
        'classification_of_interventions: {judgement: "low", support: {where: "Table 1", quote: "glofitamab (n = 12)"}}'
    )
    text = edit(old, 'classification_of_interventions: {judgement: "low", support: not_reported}')
    only(
        check(tmp_path, text),
        "risk_of_bias.comparisons[0].domains.classification_of_interventions.support",
        line_of(text, "classification_of_interventions"),
    )


def test_a_record_with_a_hazard_ratio_assesses_the_comparison(tmp_path):
    start = BASE.index("  comparisons:\n")
    end = BASE.index("arms:\n")
    text = BASE[:start] + BASE[end:]
    p = only(check(tmp_path, text), "risk_of_bias.comparisons", line_of(text, "risk_of_bias:"))
    assert "arms[0].time_to_event[1] is a hazard ratio" in p.message and "ROBINS-I" in p.message


def test_a_missing_robins_i_domain_and_a_bad_date(tmp_path):
    text = edit('        missing_data: {judgement: "no_information", support: not_reported}\n', "")
    text = edit("  assessed: 2026-12-03", "  assessed: 2026-12", text)
    problems = check(tmp_path, text)
    assert {p.path for p in problems} == {"risk_of_bias.comparisons[0].domains.missing_data", "risk_of_bias.assessed"}
    assert find(problems, "risk_of_bias.assessed").line == line_of(text, "assessed: 2026-12")


def test_a_reviewed_evidence_base_requires_the_assessment(tmp_path):
    start = BASE.index("risk_of_bias:\n")
    end = BASE.index("arms:\n")
    text = BASE[:start] + BASE[end:]
    (tmp_path / "base_2024.yaml").write_text(text, encoding="utf-8")
    parsed, problems = check_directory(tmp_path)
    assert [p for p in problems if p.severity == "error"] == []  # a draft record validates without it
    found = reviewed_record_problems(parsed)
    assert [(p.path, p.line) for p in found] == [("risk_of_bias", line_of(text, "id: base_2024"))]


# -- the rule ----------------------------------------------------------------------------
def items(**given: str) -> dict[str, str]:
    """All ten items "yes", with the given ones changed (keys are the item numbers: q4="no")."""
    out = {k: "yes" for k in JBI_CASE_SERIES_ITEMS}
    for short, judgement in given.items():
        out[next(k for k in JBI_CASE_SERIES_ITEMS if k.split("_")[0] == short)] = judgement
    return out


@pytest.mark.parametrize(
    "given, level",
    [
        ({}, LOW),  # every item yes
        ({"q9": "unclear"}, LOW),  # one non-key item not yes
        ({"q9": "unclear", "q2": "no"}, SOME_CONCERNS),  # two non-key items
        ({"q4": "unclear"}, SOME_CONCERNS),  # a key item unclear
        ({"q5": "no"}, HIGH),  # a key item no
        ({"q8": "no"}, HIGH),
        # five of ten yes is not fewer than half: some concerns; four of ten is high
        ({"q2": "unclear", "q3": "unclear", "q4": "unclear", "q5": "unclear", "q9": "unclear"}, SOME_CONCERNS),
        ({"q2": "unclear", "q3": "unclear", "q4": "unclear", "q5": "unclear", "q9": "unclear", "q10": "no"}, HIGH),
        # not applicable items leave the counts: 3 yes of 6 applicable is half, not fewer
        (
            {
                "q2": "not_applicable",
                "q3": "not_applicable",
                "q6": "not_applicable",
                "q7": "not_applicable",
                "q4": "unclear",
                "q5": "unclear",
                "q9": "unclear",
            },
            SOME_CONCERNS,
        ),
    ],
)
def test_jbi_overall_on_constructed_cases(given, level):
    judgement = jbi_overall(items(**given))
    assert judgement.level == level and judgement.reasons


def test_jbi_reasons_name_the_items():
    assert jbi_overall(items(q5="no")).reasons == ("key item q5 (complete inclusion) answered no",)
    assert "q4 (consecutive inclusion) unclear" in jbi_overall(items(q4="unclear")).reasons
    assert (
        "only 4 of 10" in jbi_overall(items(q2="no", q3="no", q4="unclear", q5="unclear", q6="no", q9="no")).reasons[0]
    )


def test_jbi_needs_every_item():
    given = items()
    del given["q10_statistics"]
    with pytest.raises(ValueError, match="q10_statistics"):
        jbi_overall(given)


def domains(**given: str) -> dict[str, str]:
    out = {k: "low" for k in ROBINS_I_DOMAINS}
    out.update(given)
    return out


@pytest.mark.parametrize(
    "given, level",
    [
        ({}, "low"),
        ({"missing_data": "moderate"}, "moderate"),
        ({"confounding": "serious", "missing_data": "moderate"}, "serious"),
        ({"confounding": "critical", "missing_data": "serious"}, "critical"),
        ({"missing_data": "no_information"}, "no_information"),
        ({"missing_data": "no_information", "confounding": "serious"}, "serious"),
    ],
)
def test_robins_i_overall_is_the_most_severe_domain(given, level):
    assert robins_i_overall(domains(**given)).level == level


def test_robins_i_reasons_name_the_domains():
    assert robins_i_overall(domains(confounding="serious")).reasons == ("confounding: serious",)


def test_assess_a_record():
    import yaml

    risk = assess(yaml.safe_load(BASE))
    assert risk.study == "base_2024" and risk.tool == "jbi_case_series"
    # yes: q1, q6, q8 of 9 applicable (q10 not applicable): fewer than half
    assert risk.judgement.level == HIGH and "only 3 of 9" in risk.judgement.reasons[0]
    assert [(c.comparison, c.judgement.level) for c in risk.comparisons] == [
        ("glofitamab vs chemotherapy (OS hazard ratio)", "serious")
    ]
    assert assess({"id": "x"}) is None


# -- the real evidence base ------------------------------------------------------------------
def test_every_record_is_assessed_with_its_support():
    records = load_records(REPO / "extracted_studies")
    summary = risk_of_bias_summary(records)
    studies = summary[summary["comparison"].isna()]
    assert list(summary.columns) == list(SUMMARY_COLUMNS)
    assert set(studies["study"]) == {r["id"] for r in records}
    assert set(studies["overall"]) <= {LOW, SOME_CONCERNS, HIGH} and studies["reasons"].str.len().gt(0).all()
    table = risk_of_bias_items(records)
    assert list(table.columns) == list(ITEM_COLUMNS)
    assert len(table[table["comparison"].isna()]) == 10 * len(records)
    quoted = table["supported_by"] == "quote"
    assert table.loc[quoted, "quote"].notna().all() and table.loc[~quoted, "quote"].isna().all()
    # the within-study comparisons the records hold are assessed with ROBINS-I
    compared = set(summary.loc[summary["comparison"].notna(), "study"])
    assert {"wang2025_tongji", "xue2024_cd20cart", "descart_late2025", "tongren_salvage_after_cart_2026"} <= compared


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared/ (seeds, sources) sits beside the clone")
def test_every_new_quote_of_a_record_read_from_shared_is_in_that_file():
    """Records read from a file under shared/ (citation.source_file): their selection, metadata and
    risk-of-bias quotes without their own url are verbatim in that file (the quote test for records
    read at a URL is in test_search_log)."""
    checked = 0
    for path in sorted((REPO / "extracted_studies").glob("*.yaml")):
        import yaml

        record = yaml.safe_load(path.read_text(encoding="utf-8"))
        source_file = record["citation"].get("source_file")
        if not source_file:
            continue
        text = normalise((SHARED / source_file).read_text(encoding="utf-8"))
        for where, quote, has_url in quotes(record):
            new = where[0] in ("risk_of_bias", "citation") or where[:2] == ("population", "selection_source")
            if new and not has_url:
                checked += 1
                assert normalise(quote) in text, f"{path.name}: {'.'.join(map(str, where))}: {quote!r}"
    assert checked >= 30
