"""`metaanalysis run`: validate, compute the review once, write it, draw it, report what changed.

Outputs (under --out, default `results/`), replaced whole or not at all (see `staging.py`):
  review.json       the computed review: every estimate, the primary method of each class, survival,
                    comparisons and diagnostics (docs/review-result.md); every page reads it
  pooled.csv        one row per population, outcome, regimen class and method (primary variant);
                    `primary` marks the row to read first, decided once by the analyses file's rule
  sensitivity.csv   the same for every sensitivity variant and method
  study_level.csv   every study row that entered a pooled row
  excluded.csv      every candidate row that did not, with the reason
  comparisons.csv   two-arm comparisons within a study (OR, RD)
  landmarks.csv     landmark survival rates, pooled (cloglog scale) where a CI or the cohort size allows it
  survival_medians.csv, survival_hazard_ratios.csv   medians and HRs pooled across cohorts
  studies.csv       the evidence base, one row per study
  summary_of_findings.csv, .docx   every primary estimate with its GRADE certainty and footnotes
  syntheses.csv     the published syntheses' pooled estimates, set beside ours (never pooled)
  prisma.csv        the PRISMA 2020 counts of the search log (when review/ sits beside the studies)
  evidence.json     every field of every study record (what the next run compares with)
  figures/          one forest plot per analysis (PNG at 300 dpi, SVG, PDF), survival plots, prisma.png/.svg
  report/           the executed notebooks as HTML, and the index with the summary of findings
  changes.md        what changed against the last complete run (also printed)
  history/, history.md   a copy of the tracked history (see `history.py`), newest first
  manifest.json     written last: the run is complete; every file with its SHA-256

Outside it, the tracked history (`history/` beside the studies folder, or `history_dir`) gains
one entry after the swap when the evidence or the analyses file changed.

Every table and figure is a view of the one `Review` that `review.compute.compute_review` returns;
the notebooks read `review.json` from the staging folder, so the pages show this run's numbers
even if a study file is edited while they execute. Signals and exit codes are the command's
business (`cli/run.py`); this module raises.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from metaanalysis import __version__
from metaanalysis.evidence.review_folder import check_review, review_beside
from metaanalysis.evidence.studies import StudyValidationError
from metaanalysis.evidence.validation import check_directory, errors
from metaanalysis.pipeline.changes import ChangeReport, compare_runs, compare_with_entry
from metaanalysis.pipeline.history import (
    History,
    HistoryEntry,
    append_entry,
    default_history_dir,
    entry_body,
    history_frame,
    needs_entry,
    next_stem,
    read_history,
    render_history,
    write_evidence,
)
from metaanalysis.pipeline.staging import (
    ManifestCheck,
    OutputError,
    StagedOutput,
    altered_files,
    check_manifest,
    read_manifest,
)
from metaanalysis.presentation.figures import analysis_forest, comparison_forests
from metaanalysis.presentation.findings import findings_frame, findings_tables
from metaanalysis.presentation.findings_docx import write_docx
from metaanalysis.presentation.forest import save_forest
from metaanalysis.presentation.history_plot import save_history_plot
from metaanalysis.presentation.labels import arm_labels, citation_labels
from metaanalysis.presentation.prisma import counts_table, save_prisma_figure
from metaanalysis.presentation.report import sealed, write_report
from metaanalysis.presentation.safe_text import neutralise_csv, write_csv
from metaanalysis.presentation.summary import facts, index_page
from metaanalysis.presentation.survival_figures import draw_survival
from metaanalysis.review.analyses import default_path, load_plan
from metaanalysis.review.compute import compute_review, review_inputs
from metaanalysis.review.result import Review
from metaanalysis.review.result_io import write_review

PROJECT_NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"  # beside the package in a clone
SCRATCH = ".scratch"  # in the staging folder, for the notebooks (see `_report`); never in results/


def run(
    studies_dir: Path,
    out_dir: Path,
    plan_path: Path | None = None,
    *,
    notebooks_dir: Path | None = None,
    history_dir: Path | None = None,
    log=print,
) -> dict:
    """Validate, compute the review, write, draw and report into a staging folder, then replace
    `out_dir` in one step; then add an entry to the tracked history (`history_dir`, default
    `history/` beside the studies folder) if the evidence or the analyses file changed."""
    history_dir = Path(history_dir) if history_dir is not None else default_history_dir(studies_dir)
    _check_history_dir(history_dir)  # before anything: the entry is written after the results are replaced
    parsed, problems = check_directory(studies_dir)
    review_dir = review_beside(studies_dir)
    search_log, review_problems = check_review(review_dir, studies_dir, parsed) if review_dir.is_dir() else (None, [])
    problems = problems + review_problems
    if errors(problems):
        raise StudyValidationError(problems)
    warnings = [p for p in problems if p not in errors(problems)]
    log(
        f"Validated {len(parsed)} study records: 0 errors, {len(warnings)} warnings "
        f"(`metaanalysis validate {studies_dir}` lists them)."
    )
    records = [p.data for p in parsed]
    plan = load_plan(plan_path)
    plan_bytes = Path(plan_path if plan_path is not None else default_path()).read_bytes()
    started = datetime.now(UTC)
    review = compute_review(
        records,
        plan,
        search_log=search_log,
        now=started,
        **(review_inputs(review_dir) if review_dir.is_dir() else {}),
    )
    target = Path(out_dir)
    with StagedOutput(target) as stage:
        found = check_manifest(stage.target)
        previous = found.manifest
        history = read_history(history_dir)
        notes = _notes_on_previous(stage, found, target, history)
        intact = previous is not None and not found.damaged_entries and not altered_files(stage.target, previous)
        reuse = stage.target / "figures" if intact else None
        tables, figures = write_results(review, stage.path, reuse_from=reuse)
        write_evidence(stage.path, records)

        def body_now() -> dict:
            return entry_body(
                finished=datetime.now(UTC),
                records=records,
                plan_bytes=plan_bytes,
                pooled=tables["pooled.csv"],
                medians=tables["survival_medians.csv"],
                toolkit_version=__version__,
            )

        report = _compare(stage, previous, history, body_now(), notes)
        entry = _history_entry(started, len(records), notebooks_dir is not None, report)
        (stage.path / "changes.md").write_text(entry, encoding="utf-8")
        # The entry is stamped when every number is written, before the notebooks only show them:
        # the report's index embeds the history figure, so the figure must exist first, and the
        # entry it plots is this very entry (one timestamp in both).
        body = body_now()
        stem = next_stem(history_dir, body["finished"])
        pending = HistoryEntry(stem, history_dir / f"{stem}.json", body) if needs_entry(history, body) else None
        render_history(stage.path, history, pending, entry)
        figures += save_history_plot(
            history_frame([e.body for e in history.entries] + ([body] if pending else [])),
            stage.path / "figures",
            reuse_from=reuse,
        )
        html = _report(review, stage.path, notebooks_dir, started)
        for csv_path in stage.path.rglob("*.csv"):  # whoever wrote it: no spreadsheet formulas
            neutralise_csv(csv_path)
        stage.commit(
            {
                "started": started.isoformat(timespec="seconds"),
                "toolkit_version": __version__,
                "studies": len(records),
                "notebooks_executed": notebooks_dir is not None,
            }
        )
    # The history gains its entry only now that the results are in place, so a failed run records
    # nothing. Should the process die between the swap and this write, results/ shows an entry the
    # history lacks; the next run finds the hashes differ from the newest entry and appends it then.
    added = None
    if pending is not None:
        try:
            added = append_entry(history_dir, body, entry)
        except OSError as exc:
            log(f"Warning: the history entry could not be written ({exc}); the next run adds it.")
    figures, html = _moved(figures, stage.path, target), _moved(html, stage.path, target)
    log(
        f"Pooled {len(plan.analyses)} analyses x methods into {len(tables['pooled.csv'])} rows; "
        f"{len(figures)} figure files; {len(html)} report pages; results in {target}/ (complete run)"
    )
    log(report.text())
    log(
        f"History: added {added.json_path} and {added.md_path.name}."
        if added is not None
        else f"History: {history_dir}/ unchanged (same evidence and analyses file as its newest entry)."
        if pending is None
        else f"History: {history_dir}/ unchanged (its entry could not be written)."
    )
    return dict(tables=tables, figures=figures, report=report, html=html, review=review, history=added)


def _check_history_dir(folder: Path) -> None:
    """OutputError now, rather than a history that cannot be written after the results were replaced."""
    existing = next((p for p in (folder, *folder.absolute().parents) if p.exists()), None)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"--history {folder} is a file, not a folder")
    if existing is None or not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"the history folder {folder} cannot be written ({existing} is not a writable folder)")


def _compare(stage: StagedOutput, previous: dict | None, history: History, body: dict, notes: list[str]):
    """Against the previous complete run; when results/ holds none that can be trusted, against the
    newest intact history entry; a first run only when there is neither."""
    if previous is not None:
        return compare_runs(stage.target, stage.path, previous=previous.get("finished", ""), notes=tuple(notes))
    if history.newest is not None:
        return compare_with_entry(history.newest, body, stage.path, notes=tuple(notes))
    report: ChangeReport = compare_runs(None, stage.path, notes=tuple(notes))
    if history.folder.is_dir() and any(history.folder.glob("*.json")):  # entries, none of them intact
        report = replace(
            report,
            nothing_to_compare=f"Nothing to compare with: no previous complete results, and no entry of "
            f"{history.folder}/ is intact (see below).",
        )
    return report


def _notes_on_previous(stage: StagedOutput, found: ManifestCheck, target: Path, history: History) -> list[str]:
    notes = []
    previous, newest = found.manifest, history.newest
    basis = f"the newest intact history entry, {newest.stem}" if newest is not None else ""
    if previous is None and found.problem:
        notes.append(
            f"{target}/manifest.json {found.problem}: "
            + (f"compared with {basis}." if basis else f"not compared ({history.folder}/ holds no intact entry).")
        )
    elif previous is None and basis:
        notes.append(f"{target}/ holds no previous run: compared with {basis}.")
    for damaged in found.damaged_entries[:3]:
        notes.append(f"Note: {target}/manifest.json: {damaged}; not checked (a damaged manifest entry).")
    if previous is not None and (altered := altered_files(stage.target, previous)):
        notes.append(
            f"Note: {len(altered)} file(s) of the previous results were changed by hand after that "
            f"run ({', '.join(altered[:3])}{', ...' if len(altered) > 3 else ''}); compared as found."
        )
    if stage.removed_extra:
        notes.append(
            f"Note: files no run wrote were in {target}/ and are not kept: "
            + ", ".join(stage.removed_extra[:5])
            + (", ..." if len(stage.removed_extra) > 5 else "")
        )
    notes += [f"Note: {p}" for p in history.problems]
    return notes


def _moved(paths: list, staging: Path, target: Path) -> list[Path]:
    """Paths written in the staging folder, as they are named now that it is `target`."""
    return [target / Path(p).relative_to(staging) if Path(p).is_relative_to(staging) else Path(p) for p in paths]


def tables_of(review: Review) -> dict:
    """Every CSV table of a run, each a view of the review."""
    tables = {
        "pooled.csv": review.pooled_table(),
        "sensitivity.csv": review.sensitivity_table(),
        "study_level.csv": review.study_level_table(),
        "excluded.csv": review.excluded_table(),
        "comparisons.csv": review.comparisons_table(),
        "landmarks.csv": review.landmarks,
        "survival_medians.csv": review.medians,
        "survival_hazard_ratios.csv": review.hazard_ratios,
        "studies.csv": review.studies,
        "summary_of_findings.csv": findings_frame(findings_tables(review)),
    }
    if review.syntheses is not None:
        tables["syntheses.csv"] = review.syntheses
    if review.prisma is not None:
        tables["prisma.csv"] = counts_table(review.prisma)
    return tables


def write_results(review: Review, out_dir: Path, *, reuse_from: Path | None = None) -> tuple[dict, list[Path]]:
    """review.json, every table and every figure, written into `out_dir` (the staging folder).
    `reuse_from`: the figures folder of the previous complete run, when no file of it was
    changed after that run: a figure whose drawing is unchanged is copied from it."""
    out_dir = Path(out_dir)
    figures_dir = out_dir / "figures"
    figures_dir.mkdir(parents=True, exist_ok=True)
    write_review(review, out_dir)
    tables = tables_of(review)
    for name, table in tables.items():
        write_csv(table, out_dir / name)
    write_docx(findings_tables(review), facts(review), out_dir / "summary_of_findings.docx", computed=review.computed)
    return tables, draw_figures(review, figures_dir, reuse_from=reuse_from)


def draw_figures(review: Review, figures_dir: Path, *, reuse_from: Path | None = None) -> list[Path]:
    """Every figure of the run, drawn from the review (nothing is fitted here)."""
    citations, arms = citation_labels(list(review.records)), arm_labels(list(review.records))
    figures: list[Path] = []
    for result in review.analyses:
        fig = analysis_forest(result, citations, arms)
        if fig is not None:
            figures += save_forest(fig, figures_dir / result.id, reuse_from=reuse_from)
    for comp in review.comparisons:
        for measure, fig in comparison_forests(comp, citations, arms).items():
            figures += save_forest(fig, figures_dir / f"{comp.id}_{measure}", reuse_from=reuse_from)
    figures += draw_survival(review, figures_dir, reuse_from=reuse_from)
    if review.prisma is not None:
        figures += save_prisma_figure(review.prisma, figures_dir)
    return figures


def _history_entry(started: datetime, n_studies: int, notebooks: bool, report) -> str:
    head = (
        f"## Run of {started:%Y-%m-%d %H:%M:%S} UTC\n\n"
        f"Toolkit {__version__}; {n_studies} study records; "
        + ("notebooks executed" if notebooks else "notebooks not executed (--skip-notebooks): no HTML report")
        + ".\n\n"
    )
    return head + report.markdown()


def _report(review: Review, out_dir: Path, notebooks_dir: Path | None, started: datetime) -> list[Path]:
    if notebooks_dir is None:
        # Never leave an older report looking current: the folder holds only this notice.
        (out_dir / "report").mkdir(exist_ok=True)
        (out_dir / "report" / "index.html").write_text(
            sealed(
                "<!doctype html><meta charset='utf-8'><title>No report for this run</title>"
                f"<h1>No report for the run of {started:%Y-%m-%d %H:%M} UTC</h1>"
                "<p>That run used <code>--skip-notebooks</code>: the tables and figures beside this folder are "
                "current; no notebook was executed. Run <code>metaanalysis run</code> without it to build the "
                "report.</p>"
            ),
            encoding="utf-8",
        )
        return []
    notebooks = sorted(Path(notebooks_dir).glob("*.py"))
    # A notebook's scratch files (the walkthrough's small copy of the review) go inside the staging
    # folder, never the system's temporary folder: whatever stops the run, they go with it (a
    # killed run's staging folder is removed by the next run). Removed before the manifest.
    scratch = Path(out_dir) / SCRATCH
    scratch.mkdir()
    try:
        return write_report(
            notebooks,
            out_dir / "report",
            {"RESULTS_DIR": str(Path(out_dir).resolve()), "SCRATCH_DIR": str(scratch.resolve())},
            cwd=Path(notebooks_dir).resolve(),
            index_html=lambda pages: index_page(review, pages),
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def find_notebooks(given: str | None, studies_dir: Path) -> Path:
    """The notebooks folder: as given, else `notebooks/` in the working directory, beside the studies
    folder, or beside the package (a clone); OutputError naming where it looked when none has any."""
    if given is not None:
        candidates = [Path(given)]
    else:
        candidates = [Path("notebooks"), Path(studies_dir).absolute().parent / "notebooks", PROJECT_NOTEBOOKS]
    for folder in candidates:
        if folder.is_dir() and any(folder.glob("*.py")):
            return folder
    where = ", ".join(dict.fromkeys(str(c) for c in candidates))
    raise OutputError(
        f"no notebooks (*.py) found in {where}: pass --notebooks DIR, or --skip-notebooks to pool and plot only"
    )


def describe_previous(target: Path) -> str:
    manifest = read_manifest(target)
    if manifest is None:
        return f"{target}/ was not changed"
    return f"{target}/ still holds the complete run finished {manifest.get('finished', '?')}"


__all__ = ["run", "write_results", "tables_of", "draw_figures", "find_notebooks", "describe_previous"]
