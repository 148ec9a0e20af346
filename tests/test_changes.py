"""The change report: studies added or removed, and every pooled estimate that moved."""
from __future__ import annotations

import pandas as pd

from metaanalysis.living.changes import compare


def _pooled(rows):
    return pd.DataFrame(rows, columns=["population", "outcome", "regimen_class", "method", "estimate", "k", "studies"])


OLD = _pooled([("after_car_t", "ORR", "bispecific_antibody", "GLMM", 0.40, 2, "a;b"),
               ("after_car_t", "CR", "bispecific_antibody", "GLMM", 0.30, 2, "a;b"),
               ("after_car_t", "ORR", "chemotherapy", "GLMM", 0.20, 2, "c;d")])


def test_first_run_says_so():
    report = compare(None, OLD, None, {"a", "b"})
    assert report.first_run and "First run" in report.text()


def test_nothing_changed_is_said_plainly():
    report = compare(OLD, OLD.copy(), {"a", "b", "c", "d"}, {"a", "b", "c", "d"})
    assert report.is_empty() and report.text() == "No change against the previous results."


def test_added_study_moved_estimate_new_and_removed_rows_are_all_named():
    new = _pooled([("after_car_t", "ORR", "bispecific_antibody", "GLMM", 0.43, 3, "a;b;e"),
                   ("after_car_t", "CR", "bispecific_antibody", "GLMM", 0.30, 2, "a;b"),
                   ("after_car_t", "ORR", "radiotherapy", "GLMM", 0.45, 2, "e;f")])
    report = compare(OLD, new, {"a", "b", "c", "d"}, {"a", "b", "e", "f"})
    assert report.studies_added == ("e", "f") and report.studies_removed == ("c", "d")
    changes = {(r.outcome, r.regimen_class): r.change for r in report.estimates.itertuples()}
    assert changes == {("ORR", "bispecific_antibody"): "moved", ("ORR", "chemotherapy"): "removed",
                       ("ORR", "radiotherapy"): "new"}
    text = report.text()
    assert "40.0% -> 43.0% (+3.00 points; k 2 -> 3)" in text
    assert "Studies added: e, f" in text and "Studies removed: c, d" in text
