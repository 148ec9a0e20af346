"""The survival page as a reader sees it: studies cited, classes named, each cohort once."""

from __future__ import annotations

import io

import matplotlib
import pytest

from metaanalysis.evidence.vocabulary import regimen_labels
from metaanalysis.presentation.survival_figures import Readers, median_plot, readable_medians
from metaanalysis.review.result_io import load_review

pytestmark = pytest.mark.xdist_group("report")  # reads the one built report (conftest.built_report)


@pytest.fixture(scope="module")
def review(built_report):
    results, _ = built_report
    return load_review(results)


def _by_class(review):
    medians = review.medians
    return medians[medians["analysis"] == "os_median_after_cart_by_class"]


def test_a_class_of_one_cohort_is_one_row_and_no_class_id_is_shown(review):
    part = _by_class(review)
    singles = set(part.loc[part["kind"] == "single study", "group_label"])
    assert singles, "the evidence base has single-cohort classes (the case this test is about)"
    table = readable_medians(part, Readers.of(review)).data
    names = regimen_labels()
    for cls in singles:
        rows = table[table["Group"] == names[cls]]
        assert len(rows) == 1, (cls, rows)
        assert rows["Method"].iloc[0] == "one cohort (not pooled)"
    shown = set(table["Group"])
    assert not shown & set(names), shown & set(names)  # names, never ids
    assert not any("not pooled (k" in str(m) for m in table["Method"])


def test_the_median_plot_cites_studies_names_classes_and_prints_the_numbers(review):
    part = _by_class(review)
    readers = Readers.of(review)
    fig = median_plot(part, "Median OS by class", readers)
    buf = io.BytesIO()
    with matplotlib.rc_context({"svg.fonttype": "none"}):  # text as text, to be read here
        fig.savefig(buf, format="svg")
    svg = buf.getvalue().decode()
    assert "(k = 1) (k = 1)" not in svg and "not pooled (k" not in svg
    assert not any(f">{cls}<" in svg for cls in regimen_labels())
    study = part[part["kind"] == "study"].iloc[0]
    assert readers.cohort(study["cohort"]).split(" (")[0] in svg
    assert f"{study['median']:.1f}" in svg  # the printed median beside its line
