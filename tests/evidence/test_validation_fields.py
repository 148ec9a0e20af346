"""Rules for the record fields of the systematic search: response timing, regimen strata, URLs.

Same method as test_validation.py: the valid fixture with one edit, the expected line found in
the edited text.
"""

from __future__ import annotations

from helpers import check, edit, find, line_of, only

ORR = (
    "      ORR:\n        events: 6\n        n: 12\n        percent: 50.0\n"
    '        source: {where: "Table 2", quote: "ORR 6/12 (50.0%)"}\n'
)
CHEMO_ARM_END = '        source: {where: "Table 2", quote: "ORR 2/8 (25%)"}\n'


def with_orr(extra: str) -> str:
    return edit(ORR, ORR + extra)


def with_stratum(lines: str) -> str:
    """A subgroup of 3 patients in the chemotherapy arm, with the given extra keys."""
    stratum = (
        '    subgroups:\n      - id: sub\n        label: "a stratum"\n'
        + lines
        + '        n: {value: 3, source: {where: "Table 1", quote: "3 patients"}}\n'
    )
    return edit(CHEMO_ARM_END, CHEMO_ARM_END + stratum)


# -- response timing -------------------------------------------------------------------
def test_fixed_timepoint_needs_timepoint_days(tmp_path):
    text = with_orr("        assessment: fixed_timepoint\n")
    p = only(check(tmp_path, text), "arms[0].binary.ORR.assessment", line_of(text, "assessment: fixed_timepoint"))
    assert "timepoint_days" in p.message


def test_fixed_timepoint_with_days_is_clean(tmp_path):
    assert check(tmp_path, with_orr("        assessment: fixed_timepoint\n        timepoint_days: 30\n")) == []


def test_timepoint_days_only_with_fixed_timepoint(tmp_path):
    text = with_orr("        assessment: best\n        timepoint_days: 30\n")
    p = only(check(tmp_path, text), "arms[0].binary.ORR.timepoint_days", line_of(text, "timepoint_days: 30"))
    assert "fixed_timepoint" in p.message and "best" in p.message
    text = with_orr("        timepoint_days: 30\n")  # no assessment: not_stated
    p = only(check(tmp_path, text), "arms[0].binary.ORR.timepoint_days", line_of(text, "timepoint_days: 30"))
    assert "not_stated" in p.message


def test_unknown_assessment_suggests_nearest(tmp_path):
    text = with_orr("        assessment: bset\n")
    p = only(check(tmp_path, text), "arms[0].binary.ORR.assessment", line_of(text, "assessment: bset"))
    assert "did you mean 'best'" in p.message


# -- strata ----------------------------------------------------------------------------
def test_regimen_stratum_needs_regimen_and_class(tmp_path):
    text = with_stratum("        stratified_by: regimen\n")
    problems = check(tmp_path, text)
    assert len(problems) == 2, "\n".join(map(str, problems))
    for key in ("regimen", "regimen_class"):
        p = find(problems, f"arms[1].subgroups[0].{key}")
        assert p.line == line_of(text, "- id: sub") and "stratified_by: regimen" in p.message


def test_complete_regimen_stratum_is_clean(tmp_path):
    text = with_stratum(
        "        stratified_by: regimen\n        regimen: glofitamab\n        regimen_class: bispecific_antibody\n"
    )
    assert check(tmp_path, text) == []


def test_patient_characteristic_stratum_has_no_regimen_class(tmp_path):
    for keys in ("", "        stratified_by: patient_characteristic\n"):
        text = with_stratum(keys + "        regimen_class: bispecific_antibody\n")
        p = only(
            check(tmp_path, text),
            "arms[1].subgroups[0].regimen_class",
            line_of(text, "regimen_class: bispecific_antibody", nth=-1),
        )  # the arm above has one too
        assert "stratified_by: regimen" in p.message


# -- where the record was read ------------------------------------------------------------
def test_record_needs_url_or_source_file(tmp_path):
    text = edit("  source_file: seeds/none.txt", "  source_file: null")
    p = only(check(tmp_path, text), "citation.source_file", line_of(text, "source_file: null"))
    assert "citation.url" in p.message
    text = edit("  source_file: seeds/none.txt", '  source_file: null\n  url: "https://example.org/paper"')
    assert check(tmp_path, text) == []


def test_urls_look_like_urls_every_one_reported(tmp_path):
    text = edit("  source_file: seeds/none.txt", "  source_file: seeds/none.txt\n  url: doi.org/10.1/x")
    text = edit('quote: "ORR 2/8 (25%)"}', 'quote: "ORR 2/8 (25%)", url: "https://exa mple.org"}', text)
    problems = check(tmp_path, text)
    assert len(problems) == 2, "\n".join(map(str, problems))
    assert "does not look like a URL" in find(problems, "citation.url").message
    assert find(problems, "citation.url").line == line_of(text, "url: doi.org")
    assert find(problems, "arms[1].binary.ORR.source.url").line == line_of(text, "exa mple")


def test_plausible_urls_pass(tmp_path):
    for url in (
        "http://47.251.13.51:8081/39786390",
        "https://kjim.org/journal/view.php?number=1&viewtype=x",
        "https://pmc.ncbi.nlm.nih.gov/articles/PMC9827150",
    ):
        text = edit("  source_file: seeds/none.txt", f'  source_file: seeds/none.txt\n  url: "{url}"')
        assert check(tmp_path, text) == [], url


# -- population.selection (required, with its quote) --------------------------------------
SELECTION = (
    "  selection: after_failure\n"
    '  selection_source: {where: "Methods", quote: "patients whose lymphoma progressed after CAR-T"}\n'
)


def test_selection_is_required_with_no_default(tmp_path):
    text = edit(SELECTION, "")
    problems = check(tmp_path, text)
    assert {(p.path, p.line) for p in problems} == {
        ("population.selection", line_of(text, "population:")),
        ("population.selection_source", line_of(text, "population:")),
    }
    assert all("required key" in p.message for p in problems)
    assert all(p.file.endswith("base_2024.yaml") for p in problems)


def test_selection_values_and_its_source(tmp_path):
    text = edit("  selection: after_failure\n", "  selection: failed\n")
    p = only(check(tmp_path, text), "population.selection", line_of(text, "selection: failed"))
    assert "after_failure" in p.message and "prior_exposure" in p.message
    text = edit('{where: "Methods", quote: "patients whose lymphoma progressed after CAR-T"}\n', '{where: "Methods"}\n')
    only(check(tmp_path, text), "population.selection_source.quote", line_of(text, "selection_source:"))


# -- citation metadata and label ----------------------------------------------------------
def test_metadata_must_print_year_doi_and_first_author(tmp_path):
    meta = '    - {where: "title page", quote: "Doe J, Roe R. A synthetic study. J Tests 2024"}\n'
    text = edit("  year: 2024\n", "  year: 2023\n")
    p = only(check(tmp_path, text), "citation.metadata_source", line_of(text, "metadata_source:"))
    assert "citation.year 2023" in p.message
    text = edit("  doi: null\n", "  doi: 10.1000/xyz\n")
    p = only(check(tmp_path, text), "citation.metadata_source", line_of(text, "metadata_source:"))
    assert "10.1000/xyz" in p.message
    text = edit("  authors: [Doe J, Roe R]\n", "  authors: [Poe J, Roe R]\n")
    p = only(check(tmp_path, text), "citation.metadata_source", line_of(text, "metadata_source:"))
    assert "Poe J" in p.message and "citation.label" in p.message
    # a source printing no author: the placeholder and a label are clean
    text = edit(
        "  authors: [Doe J, Roe R]\n", '  authors: ["not named in the returned text"]\n  label: "Test cohort"\n'
    )
    assert (
        check(tmp_path, edit(meta, '    - {where: "title page", quote: "A synthetic study. J Tests 2024"}\n', text))
        == []
    )
    # a quote in Chinese script cannot show a romanised name: only year and DOI are checked
    chinese = '    - {where: "citation line", quote: "多伊,罗伊..一项研究[J].测试杂志,2024"}\n'
    assert check(tmp_path, edit(meta, chinese)) == []


def test_metadata_source_entries_are_sources(tmp_path):
    meta = '    - {where: "title page", quote: "Doe J, Roe R. A synthetic study. J Tests 2024"}\n'
    text = edit(meta, '    - {where: "title page"}\n')
    only(check(tmp_path, text), "citation.metadata_source[0].quote", line_of(text, '- {where: "title page"}'))
    text = edit(meta, '    - {where: "p", quote: "Doe 2024", url: "example.org/x"}\n')
    p = only(check(tmp_path, text), "citation.metadata_source[0].url", line_of(text, "example.org/x"))
    assert "does not look like a URL" in p.message


# -- a stratum's own unit and disease ---------------------------------------------------------
def test_a_stratum_may_state_its_unit_and_disease(tmp_path):
    assert check(tmp_path, with_stratum("        unit_of_analysis: patients\n        disease: B-NHL\n")) == []
    text = with_stratum("        disease: NHL\n")
    p = only(check(tmp_path, text), "arms[1].subgroups[0].disease", line_of(text, "disease: NHL"))
    assert "B-NHL" in p.message
