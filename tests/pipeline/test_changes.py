"""The change report: studies added or removed, and every pooled estimate that moved."""

from __future__ import annotations

import pandas as pd

from metaanalysis.pipeline.changes import compare


def _pooled(rows):
    return pd.DataFrame(rows, columns=["population", "outcome", "regimen_class", "method", "estimate", "k", "studies"])


OLD = _pooled(
    [
        ("after_car_t", "ORR", "bispecific_antibody", "GLMM", 0.40, 2, "a;b"),
        ("after_car_t", "CR", "bispecific_antibody", "GLMM", 0.30, 2, "a;b"),
        ("after_car_t", "ORR", "chemotherapy", "GLMM", 0.20, 2, "c;d"),
    ]
)


def test_first_run_says_so():
    report = compare(None, OLD, None, {"a", "b"})
    assert report.first_run and "First run" in report.text()


def test_nothing_changed_is_said_plainly():
    report = compare(OLD, OLD.copy(), {"a", "b", "c", "d"}, {"a", "b", "c", "d"})
    assert report.is_empty() and report.text() == "No change against the previous results."


def test_added_study_moved_estimate_new_and_removed_rows_are_all_named():
    new = _pooled(
        [
            ("after_car_t", "ORR", "bispecific_antibody", "GLMM", 0.43, 3, "a;b;e"),
            ("after_car_t", "CR", "bispecific_antibody", "GLMM", 0.30, 2, "a;b"),
            ("after_car_t", "ORR", "radiotherapy", "GLMM", 0.45, 2, "e;f"),
        ]
    )
    report = compare(OLD, new, {"a", "b", "c", "d"}, {"a", "b", "e", "f"})
    assert report.studies_added == ("e", "f") and report.studies_removed == ("c", "d")
    changes = {(r.outcome, r.regimen_class): r.change for r in report.estimates.itertuples()}
    assert changes == {
        ("ORR", "bispecific_antibody"): "moved",
        ("ORR", "chemotherapy"): "removed",
        ("ORR", "radiotherapy"): "new",
    }
    text = report.text()
    assert "40.0% -> 43.0% (+3.00 points; k 2 -> 3)" in text
    assert "Studies added: e, f" in text and "Studies removed: c, d" in text


# -- every table, the evidence base, the history --------------------------------------------
import json  # noqa: E402

from metaanalysis.pipeline.changes import compare_runs  # noqa: E402
from metaanalysis.pipeline.history import (  # noqa: E402
    append_entry,
    evidence_snapshot,
    read_history,
    render_history,
)

POOLED_HEADER = (
    "analysis,variant,population,outcome,regimen_class,method,primary,k,n_total,estimate,ci_lb,ci_ub,tau2,I2,studies\n"
)


def write_run(folder, files: dict[str, str], records: list[dict]):
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    (folder / "evidence.json").write_text(json.dumps(evidence_snapshot(records)), encoding="utf-8")
    return folder


RECORD = {
    "id": "iacoboni2024",
    "arms": [
        {
            "id": "pola",
            "binary": {"ORR": {"events": 20, "n": 45}},
            "time_to_event": [{"endpoint": "PFS", "kind": "landmark", "percent": 36.2}],
        }
    ],
}


def two_runs(tmp_path):
    old = write_run(
        tmp_path / "old",
        {
            "pooled.csv": POOLED_HEADER
            + "orr,primary,after_car_t,ORR,bsab,GLMM,True,2,100,0.40,0.30,0.50,0.1,20.0,a;b\n"
            + "orr,primary,after_car_t,ORR,bsab,PLO,False,2,100,0.41,0.30,0.52,0.2,25.0,a;b\n",
            "landmarks.csv": "landmark,population,endpoint,months,regimen_class,kind,study,percent\n"
            "pfs12,after_car_t,PFS,12.0,pola,study,iacoboni2024,36.2\n",
            "excluded.csv": "study,arm,population,outcome,regimen_class,events,n,percent,reason,analysis,variant\n"
            "x,all,after_car_t,ORR,mixed,,,22.6,whole-cohort row,orr,primary\n",
            "survival.csv": "endpoint,regimen_class,median,ci_lb\nOS,bsab,8.1,6.0\n",
        },
        [RECORD],
    )
    edited = json.loads(json.dumps(RECORD))
    edited["arms"][0]["binary"]["ORR"]["events"] = 21
    edited["arms"][0]["time_to_event"][0]["percent"] = 16.2
    new = write_run(
        tmp_path / "new",
        {
            "pooled.csv": POOLED_HEADER
            + "orr,primary,after_car_t,ORR,bsab,GLMM,True,3,145,0.43,0.35,0.51,0.05,10.0,a;b;c\n"
            + "orr,primary,after_car_t,ORR,bsab,PLO,False,2,100,0.41,0.30,0.52,0.2,25.0,a;b\n",
            "landmarks.csv": "landmark,population,endpoint,months,regimen_class,kind,study,percent\n"
            "pfs12,after_car_t,PFS,12.0,pola,study,iacoboni2024,16.2\n",
            "excluded.csv": "study,arm,population,outcome,regimen_class,events,n,percent,reason,analysis,variant\n",
            "survival.csv": "endpoint,regimen_class,median,ci_lb\nOS,bsab,9.4,6.0\nPFS,bsab,3.1,2.0\n",
            "comparisons.csv": "comparison,study,outcome,measure,estimate\nc,s,ORR,OR,2.5\n",
        },
        [edited, {"id": "newstudy2026", "arms": []}],
    )
    # the primary row is the one each run's pooled.csv marks (the change report decides nothing)
    return compare_runs(old, new, previous="2026-11-01T10:00:00+00:00")


def test_every_table_is_compared_including_ones_the_report_does_not_know(tmp_path):
    report = two_runs(tmp_path)
    tables = {t.name: t for t in report.tables}
    assert tables["landmarks.csv"].edited == (
        (("pfs12", "pola", "study", "iacoboni2024"), (("percent", "36.2", "16.2"),)),
    )
    assert tables["excluded.csv"].removed == (("orr", "primary", "x", "all", "mixed", "ORR"),)
    survival = tables["survival.csv"]  # key from its leading text columns
    assert survival.key == ("endpoint", "regimen_class")
    assert survival.added == (("PFS", "bsab"),) and survival.edited[0][1] == (("median", "8.1", "9.4"),)
    assert tables["comparisons.csv"].note.startswith("new table")
    assert not tables["pooled.csv"].is_empty()


def test_a_landmark_edit_is_never_no_change(tmp_path):
    report = two_runs(tmp_path)
    assert not report.is_empty()
    assert "edited pfs12 / pola / study / iacoboni2024: percent 36.2 → 16.2" in report.markdown()


def test_an_edited_count_names_the_study_and_the_field(tmp_path):
    report = two_runs(tmp_path)
    assert report.studies_added == ("newstudy2026",)
    fields = dict(report.studies_edited)["iacoboni2024"]
    assert ("arms[0].binary.ORR.events", "20", "21") in fields
    assert ("arms[0].time_to_event[0].percent", "36.2", "16.2") in fields
    assert "Study edited: iacoboni2024: arms[0].binary.ORR.events 20 -> 21" in report.text()


def test_the_entry_gives_old_and_new_estimate_ci_k_tau2_i2_with_the_primary_method_marked(tmp_path):
    text = two_runs(tmp_path).markdown()
    row = next(line for line in text.splitlines() if line.startswith("| after_car_t / ORR / bsab | GLMM"))
    assert "GLMM ★" in row
    assert "40.0% (30.0% to 50.0%); k = 2; τ² = 0.1; I² = 20.0%" in row
    assert "43.0% (35.0% to 51.0%); k = 3; τ² = 0.05; I² = 10.0%" in row
    assert "| PLO" not in text  # unchanged estimates are counted, not listed
    assert "1 pooled estimate(s) unchanged." in text
    assert "Compared with the complete run finished 2026-11-01T10:00:00+00:00." in text


def _body(finished: str, evidence: str) -> dict:
    return {
        "schema": "metaanalysis-history/1",
        "finished": finished,
        "toolkit_version": "0",
        "evidence_sha256": evidence * 64,
        "analyses_sha256": "0" * 64,
        "studies": 1,
        "primary": [],
        "survival_medians": [],
    }


def test_history_entries_are_never_rewritten_and_listed_newest_first(tmp_path):
    folder, results = tmp_path / "history", tmp_path / "results"
    old_entry = append_entry(folder, _body("2026-11-01T00:00:00+00:00", "a"), "## Run one\n")
    before = old_entry.json_path.read_bytes()
    # same second twice: a new pair of files, never the old one
    second = append_entry(folder, _body("2026-11-01T00:00:00+00:00", "b"), "## Run two\n")
    append_entry(folder, _body("2026-11-02T00:00:00+00:00", "c"), "## Run three\n")
    assert second.stem != old_entry.stem and old_entry.json_path.read_bytes() == before
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) == []  # no temporary file left
    history = read_history(folder)
    assert [e.body["evidence_sha256"][0] for e in history.entries] == ["a", "b", "c"] and not history.problems
    render_history(results, history)
    index = (results / "history.md").read_text(encoding="utf-8")
    assert index.index("Run three") < index.index("Run two") < index.index("Run one")
    assert "3 update(s)" in index
    assert (results / "history" / old_entry.json_path.name).read_bytes() == before


# -- the report leads with the primary estimates ---------------------------------------------
def _primary_table(rows):
    cols = ["analysis", "population", "outcome", "regimen_class", "method", "primary", "estimate", "ci_lb", "ci_ub"]
    cols += ["k", "tau2", "I2", "studies"]
    return pd.DataFrame(rows, columns=cols)


def test_a_switch_of_primary_method_leads_the_report_with_both_methods_and_the_reason():
    from metaanalysis.pipeline.changes import primary_moves

    cr = ("cr_after_cart", "after_car_t", "CR", "bispecific_antibody")
    old = _primary_table(
        [
            (*cr, "GLMM", False, 0.308, 0.25, 0.37, 4, 0.0, 0.0, "a;b;c;d"),
            (*cr, "BAYES-NN", True, 0.306, 0.167, 0.440, 4, 0.1, None, "a;b;c;d"),
            ("orr_after_cart", "after_car_t", "ORR", "chemotherapy", "GLMM", True, 0.2, 0.1, 0.3, 6, 0, 0, "x"),
        ]
    )
    new = _primary_table(
        [
            (*cr, "GLMM", True, 0.311, 0.255, 0.373, 5, 0.0, 0.0, "a;b;c;d;e"),
            ("orr_after_cart", "after_car_t", "ORR", "chemotherapy", "GLMM", True, 0.2, 0.1, 0.3, 6, 0, 0, "x"),
        ]
    )
    moves = primary_moves(old, new)
    assert len(moves) == 1 and moves[0].switched  # the unchanged chemotherapy row is not listed
    report = compare(old, new, {"a", "b", "c", "d"}, {"a", "b", "c", "d", "e"}, primary_moves=moves)
    lines = report.text().splitlines()
    assert lines[0] == "Primary estimates that changed:"
    first = lines[1]
    assert "after_car_t / CR / bispecific_antibody" in first
    assert "BAYES-NN 30.6% (16.7% to 44.0%), k = 4 -> GLMM 31.1% (25.5% to 37.3%), k = 5" in first
    assert "switched from BAYES-NN to GLMM because k went from 4 to 5" in first
    assert lines[2] == "Studies added: e"
    md = report.markdown()
    assert md.index("### Primary estimates that changed") < md.index("### Studies")


def test_a_moved_primary_estimate_without_switch_is_listed_without_a_reason():
    from metaanalysis.pipeline.changes import primary_moves

    row = ("orr_after_cart", "after_car_t", "ORR", "chemotherapy", "GLMM", True)
    moves = primary_moves(
        _primary_table([(*row, 0.20, 0.1, 0.3, 6, 0, 0, "x")]), _primary_table([(*row, 0.25, 0.15, 0.35, 7, 0, 0, "x")])
    )
    assert [m.describe() for m in moves] == [
        "after_car_t / ORR / chemotherapy: GLMM 20.0% (10.0% to 30.0%), k = 6 -> GLMM 25.0% (15.0% to 35.0%), k = 7"
    ]


def test_a_cell_change_repeated_in_many_rows_is_said_once():
    from metaanalysis.pipeline.changes import ChangeReport, TableDiff

    edited = tuple(
        (("orr_after_cart", cls, m), (("Qbetween", "15.56", "16.02"), ("estimate", str(i), str(i + 1))))
        for i, (cls, m) in enumerate([("a", "GLMM"), ("a", "PLO"), ("b", "GLMM"), ("b", "PLO")])
    )
    diff = TableDiff("pooled.csv", ("analysis", "regimen_class", "method"), edited=edited)
    md = ChangeReport(False, (), (), pd.DataFrame(), tables=(diff,)).markdown()
    assert md.count("Qbetween") == 1 and "`Qbetween` 15.56 → 16.02 in 4 rows" in md
    assert md.count("estimate 0 → 1") == 1 and md.count("edited orr_after_cart") == 4
