"""`metaanalysis run` end to end, in a temporary copy of the evidence base."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from metaanalysis import cli
from metaanalysis.engine.bayes import rma_bayes_effects
from metaanalysis.engine.bayes_binomial import rma_bayes_binomial
from metaanalysis.engine.effects import escalc
from metaanalysis.engine.glmm import rma_glmm
from metaanalysis.engine.rma import rma_effects
from metaanalysis.evidence.studies import load_studies
from metaanalysis.pipeline.run import run
from metaanalysis.review.analyses import load_plan

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "notebooks" / "example_new_study.yaml"

POOLED_COLUMNS = [
    "population",
    "outcome",
    "regimen_class",
    "method",
    "k",
    "n_total",
    "estimate",
    "ci_lb",
    "ci_ub",
    "pi_lb",
    "pi_ub",
    "tau2",
    "I2",
    "studies",
]
STUDY_LEVEL_COLUMNS = ["study", "arm", "population", "outcome", "regimen_class", "events", "n", "derived"]


def computed_tables(studies: Path) -> dict:
    """The run's tables for an evidence folder without drawing or writing anything: the checks
    and the computation `run` makes (for tests about what is pooled, where figures add nothing)."""
    from metaanalysis.evidence.validation import check_directory, errors
    from metaanalysis.pipeline.run import tables_of
    from metaanalysis.review.compute import compute_review

    parsed, problems = check_directory(studies)
    assert not errors(problems), errors(problems)
    return tables_of(compute_review([p.data for p in parsed], load_plan()))


# The complete run these tests read is the session's one built report (conftest.built_report),
# so they share its worker.
pytestmark = pytest.mark.xdist_group("report")


@pytest.fixture(scope="module")
def first_run(built_report, tmp_path_factory):
    """A copy of the evidence base and of one complete run of it (results/)."""
    results, _ = built_report
    base = tmp_path_factory.mktemp("living")
    shutil.copytree(results.parent / "extracted_studies", base / "extracted_studies")
    shutil.copytree(results, base / "results")
    return base, base / "extracted_studies", None


def test_run_writes_every_table_with_the_promised_columns(first_run):
    base, _, _ = first_run
    pooled = pd.read_csv(base / "results" / "pooled.csv")
    level = pd.read_csv(base / "results" / "study_level.csv")
    assert list(pooled.columns[[list(pooled.columns).index(c) for c in POOLED_COLUMNS]]) == POOLED_COLUMNS
    assert set(STUDY_LEVEL_COLUMNS) <= set(level.columns)
    for name in ("excluded.csv", "sensitivity.csv", "comparisons.csv", "landmarks.csv", "studies.csv", "changes.md"):
        assert (base / "results" / name).stat().st_size > 0, name
    # one row per population, outcome, regimen class and method
    assert not pooled.duplicated(["population", "outcome", "regimen_class", "method"]).any()


def test_every_analysis_with_a_class_has_a_forest_plot_in_png_300_dpi_and_svg(first_run):
    base, _, out = first_run
    plan = load_plan()
    level = pd.read_csv(base / "results" / "study_level.csv")
    shown = set(level["analysis"])
    assert shown, "no analysis had a single study to show"
    for analysis in plan.analyses:
        png = base / "results" / "figures" / f"{analysis.id}.png"
        if analysis.id in shown:
            assert png.exists() and png.with_suffix(".svg").exists(), analysis.id
            dpi = Image.open(png).info["dpi"]
            assert round(dpi[0]) == 300
    for comparison in plan.comparisons:
        for measure in comparison.measures:
            assert (base / "results" / "figures" / f"{comparison.id}_{measure}.png").exists()


def test_pooled_numbers_equal_the_engine_on_study_level_csv(first_run):
    """Re-fit every pooled row from results/study_level.csv with the engine directly."""
    base, _, _ = first_run
    pooled = pd.read_csv(base / "results" / "pooled.csv")
    level = pd.read_csv(base / "results" / "study_level.csv")
    plan = {a.id: a for a in load_plan().analyses}
    checked = 0
    for _, row in pooled[pooled["k"] >= 2].iterrows():
        rows = level[(level["analysis"] == row["analysis"]) & (level["regimen_class"] == row["regimen_class"])]
        assert len(rows) == row["k"] and rows["n"].sum() == row["n_total"]
        if row["method"] == "GLMM":
            res = rma_glmm(rows["events"].to_numpy(), rows["n"].to_numpy(), nAGQ=7)
        elif row["method"] == "BAYES-NN":
            es = escalc("PLO", events=rows["events"].to_numpy(), n=rows["n"].to_numpy(), add=None, to="only0")
            res = rma_bayes_effects(es, tau_prior=plan[row["analysis"]].bayes.tau_prior)
        elif row["method"] == "BAYES-BN":
            res = rma_bayes_binomial(
                rows["events"].to_numpy(),
                rows["n"].to_numpy(),
                tau_prior=plan[row["analysis"]].bayes.tau_prior,
                shortest=False,
            )
        else:
            iv = plan[row["analysis"]].inverse_variance
            es = escalc(row["method"], events=rows["events"].to_numpy(), n=rows["n"].to_numpy(), add=None, to="only0")
            res = rma_effects(es, method=iv.method, test=iv.test, level=0.95, pi_method=iv.pi_method)
        ci_lb, ci_ub, pi_lb, pi_ub = res.reporting_interval()
        np.testing.assert_allclose(
            [row["estimate"], row["ci_lb"], row["ci_ub"], row["pi_lb"], row["pi_ub"]],
            [res.estimate, ci_lb, ci_ub, pi_lb, pi_ub],
            rtol=1e-12,
        )
        checked += 1
    assert checked >= 3


def test_every_candidate_row_is_either_pooled_or_listed_with_a_reason(first_run):
    base, studies, _ = first_run
    frame = load_studies(studies)
    level = pd.read_csv(base / "results" / "study_level.csv")
    excluded = pd.read_csv(base / "results" / "excluded.csv")
    assert excluded["reason"].notna().all()
    for analysis in load_plan().analyses:
        candidates = frame[(frame["population"] == analysis.population) & (frame["outcome"] == analysis.outcome)]
        # arms combined into one cohort are listed in excluded.csv; their summed row is not a candidate
        used = ((level["analysis"] == analysis.id) & ~level["combined"]).sum() + (
            excluded["analysis"] == analysis.id
        ).sum()
        assert used == len(candidates), analysis.id


def test_superseded_and_percent_only_rows_are_never_pooled(first_run):
    base, _, _ = first_run
    level = pd.read_csv(base / "results" / "study_level.csv")
    excluded = pd.read_csv(base / "results" / "excluded.csv")
    assert "tongren_cart_after_bsab_2025" not in set(level["study"])
    assert (
        excluded.loc[excluded["study"] == "tongren_cart_after_bsab_2025", "reason"].str.startswith("superseded").all()
    )
    no_n = excluded[excluded["n"].isna()]
    assert len(no_n) and (no_n["reason"].str.contains("denominator|stratum|whole-cohort")).all()
    assert level["events"].notna().all() and level["n"].notna().all()


def test_a_new_study_is_picked_up_and_the_change_report_names_it(first_run, tmp_path):
    base, studies, first = first_run
    work = tmp_path / "copy"
    shutil.copytree(base, work)
    record = EXAMPLE.read_text(encoding="utf-8")
    (work / "extracted_studies" / "example_new_study.yaml").write_text(record, encoding="utf-8")
    second = run(work / "extracted_studies", work / "results", log=lambda *a: None)
    report = second["report"]
    assert report.studies_added == ("example_new_study",)
    moved = report.estimates
    bsab = moved[
        (moved["outcome"] == "ORR")
        & (moved["regimen_class"] == "bispecific_antibody")
        & (moved["population"] == "after_car_t")
    ]
    # every declared method moved; BAYES too, the class having at most defaults.bayes.max_k studies
    assert set(bsab["method"]) == {"GLMM", "PLO", "PFT", "BAYES-NN", "BAYES-BN"}
    assert (bsab["k_new"] == bsab["k_old"] + 1).all()
    text = (work / "results" / "changes.md").read_text(encoding="utf-8")
    assert "example_new_study" in text and "bispecific_antibody" in text
    # the report leads with the primary estimate that moved, as pooled.csv marks it before and after
    before, after = (pd.read_csv(d / "pooled.csv") for d in (base / "results", work / "results"))
    lines = report.text().splitlines()
    assert lines[0] == "Primary estimates that changed:"
    where = "after_car_t / ORR / bispecific_antibody: "
    line = next(line for line in lines[1:] if line.strip().startswith(where))
    for table in (before, after):
        mine = (table["analysis"] == "orr_after_cart") & (table["regimen_class"] == "bispecific_antibody")
        row = table[mine & table["primary"]].iloc[0]
        assert f"{row['method']} {row['estimate'] * 100:.1f}%" in line and f"k = {row['k']}" in line
    assert lines.index(line) < lines.index("Studies added: example_new_study")
    assert "example_new_study" in pd.read_csv(work / "results" / "study_level.csv")["study"].tolist()


def test_overlapping_cohorts_are_never_pooled_together(first_run, tmp_path):
    base, studies, _ = first_run
    work = tmp_path / "studies"
    shutil.copytree(studies, work)
    record = EXAMPLE.read_text(encoding="utf-8").replace(
        "unit_of_analysis: patients",
        'unit_of_analysis: patients\nrelations:\n  overlaps:\n    - {id: shumilov2025, reason: "test: shared centres"}',
    )
    (work / "example_new_study.yaml").write_text(record, encoding="utf-8")
    tables = computed_tables(work)
    level, excluded = tables["study_level.csv"], tables["excluded.csv"]
    orr = level[level["analysis"] == "orr_after_cart"]
    assert "shumilov2025" in set(orr["study"]) and "example_new_study" not in set(orr["study"])
    reason = excluded[(excluded["analysis"] == "orr_after_cart") & (excluded["study"] == "example_new_study")]["reason"]
    assert reason.iloc[0] == "overlaps with shumilov2025 (the larger cohort was kept)"
    sens = tables["sensitivity.csv"]
    no_overlap = sens[
        (sens["variant"] == "without_overlaps")
        & (sens["analysis"] == "orr_after_cart")
        & (sens["regimen_class"] == "bispecific_antibody")
    ]
    assert not no_overlap["studies"].str.contains("shumilov2025|example_new_study").any()


def test_run_refuses_a_broken_evidence_base_and_names_the_file(first_run, tmp_path, capsys):
    _, studies, _ = first_run
    work = tmp_path / "studies"
    shutil.copytree(studies, work)
    (work / "broken.yaml").write_text("id: broken\narms: [\n", encoding="utf-8")
    code = cli.main(["run", "--studies", str(work), "--out", str(tmp_path / "out"), "--skip-notebooks"])
    assert code == 1
    err = capsys.readouterr().err
    assert "broken.yaml" in err and "nothing was pooled" in err
    assert not (tmp_path / "out" / "pooled.csv").exists()


def test_subgroup_difference_is_reported_when_two_classes_are_pooled(first_run, tmp_path):
    """Two fictional chemotherapy cohorts make one more pooled class; Qbetween covers every pooled class."""
    from metaanalysis.engine.subgroups import subgroup_test

    _, studies, _ = first_run
    work = tmp_path / "studies"
    shutil.copytree(studies, work)
    template = EXAMPLE.read_text(encoding="utf-8")
    for sid, orr in (("fictional_chemo_a", 6), ("fictional_chemo_b", 9)):
        record = (
            template.replace("id: example_new_study", f"id: {sid}")
            .replace("regimen_class: bispecific_antibody", "regimen_class: chemotherapy")
            .replace("events: 20", f"events: {orr}")
            .replace("ORR 20/45", f"ORR {orr}/45")
            .replace("events: 12", "events: 3")
            .replace("CR 12/45", "CR 3/45")
            .replace("Fictional Walkthrough Centre", f"Fictional centre {sid}")
        )
        (work / f"{sid}.yaml").write_text(record, encoding="utf-8")
    tables = computed_tables(work)
    pooled, level = tables["pooled.csv"], tables["study_level.csv"]
    orr = pooled[(pooled["analysis"] == "orr_after_cart") & (pooled["method"] == "GLMM")]
    classes = sorted(set(orr.loc[orr["k"] >= 2, "regimen_class"]))
    assert {"bispecific_antibody", "chemotherapy"} <= set(classes)
    fits = {}
    for cls in classes:
        rows = level[(level["analysis"] == "orr_after_cart") & (level["regimen_class"] == cls)]
        fits[cls] = rma_glmm(rows["events"].to_numpy(), rows["n"].to_numpy(), nAGQ=7)
    q, df, p = subgroup_test(fits)
    assert df == len(classes) - 1
    np.testing.assert_allclose(orr["Qbetween"].astype(float), q, rtol=1e-12)
    np.testing.assert_allclose(orr["Qbetween_p"].astype(float), p, rtol=1e-12)
