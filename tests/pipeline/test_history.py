"""The tracked history (`history/` beside the studies): appended only when an input changed, never
rewritten, and damage to results/ costs at most the comparison, never an entry.

Each test works on a temporary copy of the evidence base with a one-analysis plan; its history
folder is the copy's own (`<tmp>/history`, the default beside `<tmp>/extracted_studies`).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from metaanalysis import cli
from metaanalysis.pipeline import staging
from metaanalysis.pipeline.run import run
from metaanalysis.pipeline.staging import OutputError, StagedOutput

ROOT = Path(__file__).resolve().parents[2]
PLAN = """\
defaults: {level: 0.95, methods: [PLO], units: [patients, treatment_courses], group_by: regimen_class,
           inverse_variance: {method: REML, test: knha, pi_method: metafor}}
analyses:
  - {id: orr_after_cart, population: after_car_t, outcome: ORR}
"""
# shumilov2025's ORR count, edited between runs (the three counts that print as 43 %, 42 % and 45 %)
COUNTS = {40: "percent: 43\n", 39: "percent: 42.4\n", 41: "percent: 44.6\n"}


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def set_orr(base: Path, old: int, new: int) -> None:
    record = base / "extracted_studies" / "shumilov2025.yaml"
    text = record.read_text(encoding="utf-8")
    before = f"        events: {old}\n        n: 92\n        {COUNTS[old]}"
    assert before in text
    record.write_text(text.replace(before, f"        events: {new}\n        n: 92\n        {COUNTS[new]}"), "utf-8")


def go(base: Path, **kw) -> dict:
    lines: list[str] = []
    out = run(base / "extracted_studies", base / "results", base / "plan.yaml", log=lines.append, **kw)
    out["log"] = "\n".join(str(line) for line in lines)
    return out


def entries(base: Path) -> list[Path]:
    return sorted((base / "history").glob("*.json"))


def primary_bsab(pooled: pd.DataFrame) -> dict:
    """The primary ORR row of the bispecific-antibody class (the one whose count is edited) in pooled.csv."""
    (row,) = pooled[(pooled["regimen_class"] == "bispecific_antibody") & pooled["primary"]].to_dict("records")
    return row


def entry_bsab(path: Path) -> dict:
    """The same row in a history entry."""
    (row,) = [r for r in json.loads(path.read_text("utf-8"))["primary"] if r["regimen_class"] == "bispecific_antibody"]
    return row


def pct(x: float) -> str:
    return f"{x * 100:.1f}%"


@pytest.fixture(scope="module")
def living(tmp_path_factory):
    """Two runs, shumilov2025's ORR count edited between them: two history entries."""
    base = tmp_path_factory.mktemp("history")
    shutil.copytree(ROOT / "extracted_studies", base / "extracted_studies")
    (base / "plan.yaml").write_text(PLAN, encoding="utf-8")
    first = go(base)
    set_orr(base, 40, 39)
    second = go(base)
    return base, first, second


@pytest.fixture()
def work(living, tmp_path):
    """A fresh copy of the living folder (studies with the count at 39, results, history)."""
    base, _, _ = living
    copy = tmp_path / "work"
    shutil.copytree(base, copy)
    return copy


# -- appending --------------------------------------------------------------------------------
def test_an_edited_study_appends_one_entry_holding_the_hashes_and_the_primary_estimates(living):
    base, first, second = living
    assert "First run" in first["report"].text() and first["history"] is not None
    assert second["history"] is not None and second["history"].json_path != first["history"].json_path
    paths = entries(base)
    assert [p.stem for p in paths] == [first["history"].stem, second["history"].stem]
    assert sorted(p.name for p in (base / "history").iterdir()) == sorted(
        [p.name for p in paths] + [p.with_suffix(".md").name for p in paths]
    )
    old, new = (json.loads(p.read_text(encoding="utf-8")) for p in paths)
    plan_sha = hashlib.sha256((base / "plan.yaml").read_bytes()).hexdigest()
    assert old["analyses_sha256"] == new["analyses_sha256"] == plan_sha
    assert old["evidence_sha256"] != new["evidence_sha256"]
    assert new["studies"] == len(list((base / "extracted_studies").glob("*.yaml")))
    # every primary row of the run's pooled.csv, as written there
    pooled = pd.read_csv(base / "results" / "pooled.csv")
    primary = pooled[pooled["primary"]]
    assert len(new["primary"]) == len(primary)
    mine, theirs = entry_bsab(paths[1]), primary_bsab(pooled)
    for field in ("analysis", "outcome", "method", "k", "n_total"):
        assert mine[field] == theirs[field], field
    for field in ("estimate", "ci_lb", "ci_ub"):
        assert mine[field] == pytest.approx(theirs[field], rel=1e-12), field
    # the entry's own sha256 is that of its canonical body
    body = {k: v for k, v in new.items() if k != "sha256"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert new["sha256"] == hashlib.sha256(canonical).hexdigest()
    # its .md is the change report the run wrote as changes.md
    md = paths[1].with_suffix(".md").read_text(encoding="utf-8")
    assert md == (base / "results" / "changes.md").read_text(encoding="utf-8")
    assert "`arms[0].binary.ORR.events`: 40 → 39" in md


def test_a_rerun_without_change_leaves_the_history_folder_byte_for_byte(work):
    before = tree(work / "history")
    out = go(work)
    assert out["history"] is None and "History: " in out["log"] and "unchanged" in out["log"]
    assert tree(work / "history") == before
    assert out["report"].is_empty()


def test_the_results_carry_a_rendered_copy_and_the_history_figure(living):
    base, _, _ = living
    copy = base / "results" / "history"
    assert tree(copy) == tree(base / "history")
    index = (base / "results" / "history.md").read_text(encoding="utf-8")
    newest, oldest = (p.with_suffix(".md").read_text(encoding="utf-8") for p in reversed(entries(base)))
    assert index.index(newest.strip()) < index.index(oldest.strip())
    for ext in ("png", "svg"):
        assert (base / "results" / "figures" / f"history.{ext}").stat().st_size > 0
    manifest = json.loads((base / "results" / "manifest.json").read_text(encoding="utf-8"))
    assert "figures/history.png" in manifest["files"] and "history.md" in manifest["files"]


def test_history_dir_and_the_cli_flag_put_the_history_elsewhere(work, tmp_path, capsys):
    set_orr(work, 39, 41)
    elsewhere = tmp_path / "elsewhere" / "history"
    args = ["run", "--studies", str(work / "extracted_studies"), "--analyses", str(work / "plan.yaml")]
    args += ["--out", str(work / "results"), "--skip-notebooks", "--history", str(elsewhere)]
    before = tree(work / "history")
    assert cli.main(args) == 0
    assert len(list(elsewhere.glob("*.json"))) == 1 and tree(work / "history") == before
    assert "First run" not in capsys.readouterr().out  # compared with the results, which are intact
    (tmp_path / "a_file").write_text("x", encoding="utf-8")
    args[-1] = str(tmp_path / "a_file")
    assert cli.main(args) == 1
    assert "is a file, not a folder" in capsys.readouterr().err
    assert (tmp_path / "a_file").read_text() == "x"


def test_the_figure_frame_has_one_label_per_analysis_and_class():
    from metaanalysis.pipeline.history import history_frame

    row = dict(population="after_bispecific", outcome="ORR", method="GLMM", k=2)
    row["regimen_class"] = "cart_after_bispecific"
    body = {
        "finished": "2026-01-02T00:00:00+00:00",
        "primary": [
            dict(row, analysis="orr_after_bispecific", estimate=0.5, ci_lb=0.4, ci_ub=0.6),
            dict(row, analysis="orr_after_bispecific_exposure", estimate=0.8, ci_lb=None, ci_ub=0.9),
        ],
        "survival_medians": [dict(analysis="os_median", group="all", method="MM", k=3, estimate=5.6)],
    }
    frame = history_frame([body])
    assert frame["label"].is_unique and len(frame) == 3
    assert list(frame["unit"]) == ["proportion", "proportion", "months"]
    assert frame["ci_lb"].isna().tolist() == [False, True, True]
    # labels a reader can read: the vocabulary's names; an id only where two panels would share a name
    from metaanalysis.evidence.vocabulary import outcome_labels, regimen_labels

    regimen = regimen_labels()["cart_after_bispecific"]
    plain = f"{outcome_labels()['ORR']}, after bispecific-antibody failure: {regimen}"
    assert list(frame["label"]) == [
        f"{plain} [orr_after_bispecific]",
        f"{plain} [orr_after_bispecific_exposure]",
        "Median OS: all cohorts",
    ]
    single = history_frame([dict(body, primary=body["primary"][:1])])
    assert single["label"].iloc[0] == plain


# -- damage to results/ -------------------------------------------------------------------------
def damage(manifest: Path, how: str) -> str:
    """Damage results/manifest.json; the words the run must use for it."""
    if how == "deleted":
        manifest.unlink()
        return "results/manifest.json is missing"
    if how == "truncated":
        manifest.write_bytes(manifest.read_bytes()[:40])
        return "results/manifest.json is not valid JSON (line"
    if how == "null":
        manifest.write_text("null\n", encoding="utf-8")
        return "results/manifest.json is JSON null"
    if how == "not_utf8":
        manifest.write_bytes(b"\xff\xfe" + manifest.read_bytes())
        return "results/manifest.json is not UTF-8"
    data = json.loads(manifest.read_text(encoding="utf-8"))
    data["complete"] = False
    manifest.write_text(json.dumps(data), encoding="utf-8")
    return 'results/manifest.json says "complete": false'


@pytest.mark.parametrize("how", ["deleted", "truncated", "null", "not_utf8", "incomplete"])
def test_a_damaged_manifest_costs_the_comparison_with_results_never_an_entry(work, how, monkeypatch):
    monkeypatch.chdir(work)  # relative paths, as a user types them
    newest = entries(work)[-1]
    was = entry_bsab(newest)
    before = tree(work / "history")
    said = damage(work / "results" / "manifest.json", how)
    set_orr(work, 39, 41)
    lines: list[str] = []
    out = run(Path("extracted_studies"), Path("results"), Path("plan.yaml"), log=lines.append)
    text = out["report"].text()
    assert "First run" not in text and "First run" not in "\n".join(map(str, lines))
    assert said in text
    assert f"compared with the newest intact history entry, {newest.stem}" in text
    # every earlier entry kept byte for byte, and this run's appended (the evidence changed)
    after = tree(work / "history")
    assert {k: after[k] for k in before} == before and len(after) == len(before) + 2
    # old -> new primary estimate, interval, method and k, old from the entry, new from pooled.csv
    now = primary_bsab(pd.read_csv(work / "results" / "pooled.csv"))
    line = next(line for line in text.splitlines() if "/ bispecific_antibody:" in line)
    assert (
        f"{was['method']} {pct(was['estimate'])} ({pct(was['ci_lb'])} to {pct(was['ci_ub'])}), k = {was['k']} -> "
        f"{now['method']} {pct(now['estimate'])} ({pct(now['ci_lb'])} to {pct(now['ci_ub'])}), k = {now['k']}"
    ) in line
    md = (work / "results" / "changes.md").read_text(encoding="utf-8")
    assert f"Compared with the history entry {newest.stem}" in md and said in md


def test_a_damaged_manifest_without_change_appends_nothing_and_says_no_change(work):
    before = tree(work / "history")
    said = damage(work / "results" / "manifest.json", "truncated")
    out = go(work)
    assert tree(work / "history") == before and out["history"] is None
    text = out["report"].text()
    assert text.startswith("No change against the history entry") and said in text


def test_a_fresh_clone_without_results_compares_with_the_history(work):
    shutil.rmtree(work / "results")
    set_orr(work, 39, 41)
    text = go(work)["report"].text()
    assert "First run" not in text
    assert f"holds no previous run: compared with the newest intact history entry, {entries(work)[-2].stem}" in text
    assert "Primary estimates that changed:" in text


def test_a_hand_edited_entry_and_stray_files_are_named_and_left_in_place(work):
    older, newest = entries(work)
    data = json.loads(newest.read_text(encoding="utf-8"))
    data["primary"][0]["estimate"] = 0.99  # edited by hand: its sha256 no longer matches
    newest.write_text(json.dumps(data, indent=1), encoding="utf-8")
    (work / "history" / "stray").mkdir()
    (work / "history" / "stray" / "notes.txt").write_text("mine", encoding="utf-8")
    (work / "history" / "notes.txt").write_text("mine too", encoding="utf-8")
    (work / "history" / f"{older.stem}_copy.json").write_bytes(b"\xff not utf-8")
    before = tree(work / "history")
    damage(work / "results" / "manifest.json", "null")  # so that the comparison falls back on the history
    text = go(work)["report"].text()
    assert f"history/{newest.name}: edited or damaged (sha256 does not match); not used for comparison" in text
    assert f"history/{older.stem}_copy.json: not UTF-8" in text
    assert "history/stray/: a folder" in text and "history/notes.txt: not a history entry" in text
    # compared with the entry before the edited one, whose evidence differs: this run is appended
    assert f"compared with the newest intact history entry, {older.stem}" in text
    after = tree(work / "history")
    assert {k: after[k] for k in before} == before  # nothing deleted or rewritten
    assert len(after) == len(before) + 2


def test_only_damaged_entries_are_never_announced_as_a_first_run(work):
    for path in entries(work):
        path.write_text(path.read_text(encoding="utf-8").replace('"studies"', '"Studies"'), encoding="utf-8")
    damage(work / "results" / "manifest.json", "deleted")
    text = go(work)["report"].text()
    assert "First run" not in text and text.startswith("Nothing to compare with")


# -- read-back of results/ files (issue 20) -----------------------------------------------------
def test_an_evidence_snapshot_of_the_wrong_shape_is_named_not_a_type_error(work):
    (work / "results" / "evidence.json").write_text('{"study": 5}', encoding="utf-8")
    text = go(work)["report"].text()
    assert 'evidence.json field "study" is a number, not an object of field: value' in text


@pytest.mark.parametrize("files", [["pooled.csv"], "pooled.csv"])
def test_a_manifest_whose_files_is_not_a_mapping_is_named(work, files):
    manifest = work / "results" / "manifest.json"
    data = json.loads(manifest.read_text(encoding="utf-8"))
    data["files"] = files
    manifest.write_text(json.dumps(data), encoding="utf-8")
    text = go(work)["report"].text()
    kind = "a list" if isinstance(files, list) else "a string"
    assert f'results/manifest.json field "files" is {kind}, not a mapping' in text and "First run" not in text


def test_a_manifest_naming_a_file_outside_results_never_makes_the_run_read_it(work, monkeypatch):
    manifest = work / "results" / "manifest.json"
    data = json.loads(manifest.read_text(encoding="utf-8"))
    outside = work / "secret.txt"
    outside.write_text("not a result", encoding="utf-8")
    for rel in ("../../../../etc/passwd", "../secret.txt", str(outside)):
        data["files"][rel] = "0" * 64
    manifest.write_text(json.dumps(data), encoding="utf-8")
    hashed: list[Path] = []
    original = staging.sha256
    monkeypatch.setattr(staging, "sha256", lambda path: hashed.append(Path(path)) or original(path))
    text = go(work)["report"].text()
    results = (work / "results").resolve()
    assert hashed and all(p.resolve().is_relative_to(results) or ".results.staging" in str(p) for p in hashed)
    assert 'files["../../../../etc/passwd"] names a path outside results/; not checked (a damaged manifest' in text
    assert "First run" not in text


@pytest.mark.parametrize("case", ["a_file", "foreign", "root"])
def test_a_refused_out_leaves_no_lock_file(tmp_path, case):
    if case == "a_file":
        target = tmp_path / "results"
        target.write_text("x", encoding="utf-8")
    elif case == "foreign":
        target = tmp_path / "mine"
        target.mkdir()
        (target / "notes.txt").write_text("mine", encoding="utf-8")
    else:
        target = Path("/")
        if (target / "..lock").exists():
            pytest.skip("/..lock exists already")
    before = sorted(p.name for p in target.absolute().parent.iterdir())
    with pytest.raises(OutputError):
        StagedOutput(target).__enter__()
    assert sorted(p.name for p in target.absolute().parent.iterdir()) == before


# -- the repository's own history --------------------------------------------------------------
def test_a_pipeline_run_on_a_copy_leaves_the_repositorys_history_unchanged(tmp_path):
    repository = ROOT / "history"
    before = tree(repository) if repository.is_dir() else None
    shutil.copytree(ROOT / "extracted_studies", tmp_path / "extracted_studies")
    (tmp_path / "plan.yaml").write_text(PLAN, encoding="utf-8")
    out = go(tmp_path)
    assert out["history"] is not None and out["history"].json_path.parent == tmp_path / "history"
    assert (tree(repository) if repository.is_dir() else None) == before
