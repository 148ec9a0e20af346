"""`metaanalysis run`: validate, pool every declared analysis, draw, report what changed.

Outputs (under --out, default `results/`), replaced whole or not at all (see `staging.py`):
  pooled.csv        one row per population, outcome, regimen class and method (primary variant)
  sensitivity.csv   the same for every sensitivity variant and method
  study_level.csv   every study row that entered a pooled row
  excluded.csv      every candidate row that did not, with the reason
  comparisons.csv   two-arm comparisons within a study (OR, RD)
  landmarks.csv     landmark survival rates, pooled (cloglog scale) where a CI or the cohort size allows it
  survival_medians.csv, survival_hazard_ratios.csv   medians and HRs pooled across cohorts (survival.py)
  studies.csv       the evidence base, one row per study
  prisma.csv        the PRISMA 2020 counts of the search log (when review/ sits beside the studies)
  evidence.json     every field of every study record (what the next run compares with)
  figures/          one forest plot per analysis (PNG at 300 dpi, SVG, PDF), prisma.png/.svg
  report/           the executed notebooks as HTML
  changes.md        what changed against the last complete run (also printed)
  history/, history.md   one entry per complete run, newest first (see `history.py`)
  manifest.json     written last: the run is complete; every file with its SHA-256

Everything is written into a staging folder beside `results/`; tables and figures are written
into the `out_dir` that `_write_results` receives, so a new table needs no special handling:
its rows are compared with the previous run's and its cells made spreadsheet-safe.
"""

from __future__ import annotations

import os
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on CI
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from metaanalysis import __version__  # noqa: E402
from metaanalysis.evidence.search_log import check_review, prisma_counts, review_beside  # noqa: E402
from metaanalysis.evidence.studies import StudyValidationError, outcome_table, study_table  # noqa: E402
from metaanalysis.evidence.validation import check_directory, errors  # noqa: E402
from metaanalysis.pipeline.changes import compare_runs  # noqa: E402
from metaanalysis.pipeline.history import add_entry, carry_history, write_evidence  # noqa: E402
from metaanalysis.pipeline.staging import OutputError, StagedOutput, altered_files, read_manifest  # noqa: E402
from metaanalysis.presentation.figures import analysis_forest, comparison_forests  # noqa: E402
from metaanalysis.presentation.forest import save_forest  # noqa: E402
from metaanalysis.presentation.labels import arm_labels, citation_labels  # noqa: E402
from metaanalysis.presentation.prisma import save_prisma  # noqa: E402
from metaanalysis.presentation.report import NotebookError, write_report  # noqa: E402
from metaanalysis.presentation.safe_text import neutralise_csv, printable, write_csv  # noqa: E402
from metaanalysis.review import analyses as analyses_mod  # noqa: E402
from metaanalysis.review.comparisons import compare_arms  # noqa: E402
from metaanalysis.review.landmarks import pool_landmarks  # noqa: E402
from metaanalysis.review.pooling import excluded_rows, pool, pooled_rows, pooled_table, study_level_rows  # noqa: E402
from metaanalysis.review.survival import survival_frame, write_survival  # noqa: E402

PROJECT_NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"  # beside the package in a clone


class RunInterrupted(BaseException):
    """SIGTERM (or SIGINT) arrived: like KeyboardInterrupt, not an error of the run itself."""


def run(
    studies_dir: Path, out_dir: Path, plan_path: Path | None = None, *, notebooks_dir: Path | None = None, log=print
) -> dict:
    """Validate, pool, draw and report into a staging folder, then replace `out_dir` in one step."""
    parsed, problems = check_directory(studies_dir)
    review = review_beside(studies_dir)
    log_, review_problems = check_review(review, studies_dir, parsed) if review.is_dir() else (None, [])
    problems = problems + review_problems
    if errors(problems):
        raise StudyValidationError(problems)
    warnings = [p for p in problems if p not in errors(problems)]
    log(
        f"Validated {len(parsed)} study records: 0 errors, {len(warnings)} warnings "
        f"(`metaanalysis validate {studies_dir}` lists them)."
    )
    records = [p.data for p in parsed]
    plan = analyses_mod.load_plan(plan_path)
    target = Path(out_dir)
    started = datetime.now(UTC)
    with StagedOutput(target) as stage:
        previous = read_manifest(stage.target)
        notes = []
        if previous is None and stage.target.is_dir() and any(stage.target.iterdir()):
            notes.append(
                f"Note: {target}/ has no manifest.json (written by an older version or by hand): not compared."
            )
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
        out = _write_results(records, plan, stage.path, log, search_log=log_)
        write_evidence(stage.path, records)
        primary = frozenset((a.id, a.primary_method) for a in plan.analyses)
        report = compare_runs(
            stage.target if previous else None,
            stage.path,
            primary=primary,
            previous=previous.get("finished", "") if previous else "",
            notes=tuple(notes),
        )
        entry = _history_entry(started, len(records), notebooks_dir is not None, report)
        carry_history(stage.target if previous else None, stage.path)
        add_entry(stage.path, started, entry)
        (stage.path / "changes.md").write_text(entry, encoding="utf-8")
        html = _report(stage.path, studies_dir, notebooks_dir, started)
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
    figures, html = _moved(out["figures"], stage.path, target), _moved(html, stage.path, target)
    log(
        f"Pooled {len(plan.analyses)} analyses x methods into {len(out['tables']['pooled.csv'])} rows; "
        f"{len(figures)} figure files; {len(html)} report pages; results in {target}/ (complete run)"
    )
    log(report.text())
    return dict(tables=out["tables"], figures=figures, report=report, html=html)


def _moved(paths: list, staging: Path, target: Path) -> list[Path]:
    """Paths written in the staging folder, as they are named now that it is `target`."""
    return [target / Path(p).relative_to(staging) if Path(p).is_relative_to(staging) else Path(p) for p in paths]


def _write_results(records: list[dict], plan, out_dir: Path, log=print, search_log=None) -> dict:
    """Every table and figure, written into `out_dir` (the staging folder)."""
    frame = outcome_table(records)
    (out_dir / "figures").mkdir(parents=True, exist_ok=True)

    pooled, level_rows, excluded, figures = [], [], [], []
    for analysis in plan.analyses:
        fits = {method: pool(frame, analysis, method) for method in analysis.methods}
        for pa in fits.values():
            pooled += pooled_rows(pa)
        pa = fits[analysis.primary_method]
        level_rows.append(study_level_rows(pa))
        excluded.append(excluded_rows(pa))
        # the Bayesian estimate is drawn beside the primary one for the classes it covers (small k)
        bayes = fits.get("BAYES") if analysis.primary_method != "BAYES" else None
        beside = {c: f.result for c, f in bayes.classes.items() if f.pooled} if bayes else None
        label = f"Bayesian model (primary, k ≤ {analysis.bayes.max_k})" if bayes and analysis.bayes.primary else None
        fig = analysis_forest(pa, citation_labels(records), arm_labels(records), beside=beside, beside_label=label)
        if fig is not None:
            figures += save_forest(fig, out_dir / "figures" / analysis.id)
            plt.close(fig)
    sensitivity = pooled_table(frame, [v.apply(a) for a in plan.analyses for v in plan.sensitivity])

    comparisons = [compare_arms(frame, c) for c in plan.comparisons]
    for comp in comparisons:
        for measure, fig in comparison_forests(comp, citation_labels(records), arm_labels(records)).items():
            figures += save_forest(fig, out_dir / "figures" / f"{comp.id}_{measure}")
            plt.close(fig)
    landmarks = pool_landmarks(survival_frame(records), plan.landmarks)
    figures += write_survival(records, plan, out_dir)
    if search_log is not None:
        figures += save_prisma(prisma_counts(search_log), out_dir)[:2]  # and prisma.csv

    tables = {
        "pooled.csv": pd.DataFrame(pooled),
        "sensitivity.csv": sensitivity,
        "study_level.csv": pd.concat(level_rows, ignore_index=True) if level_rows else pd.DataFrame(),
        "excluded.csv": pd.concat(excluded, ignore_index=True) if excluded else pd.DataFrame(),
        "comparisons.csv": pd.concat([c.table for c in comparisons], ignore_index=True)
        if comparisons
        else pd.DataFrame(),
        "landmarks.csv": landmarks,
        "studies.csv": study_table(records),
    }
    for name, table in tables.items():
        write_csv(table, out_dir / name)
    return dict(tables=tables, figures=figures)


def _history_entry(started: datetime, n_studies: int, notebooks: bool, report) -> str:
    head = (
        f"## Run of {started:%Y-%m-%d %H:%M:%S} UTC\n\n"
        f"Toolkit {__version__}; {n_studies} study records; "
        + ("notebooks executed" if notebooks else "notebooks not executed (--skip-notebooks): no HTML report")
        + ".\n\n"
    )
    return head + report.markdown()


def _report(out_dir: Path, studies_dir: Path, notebooks_dir: Path | None, started: datetime) -> list[Path]:
    if notebooks_dir is None:
        # Never leave an older report looking current: the folder holds only this notice.
        (out_dir / "report").mkdir(exist_ok=True)
        (out_dir / "report" / "index.html").write_text(
            "<!doctype html><meta charset='utf-8'><title>No report for this run</title>"
            f"<h1>No report for the run of {started:%Y-%m-%d %H:%M} UTC</h1>"
            "<p>That run used <code>--skip-notebooks</code>: the tables and figures beside this folder are "
            "current; no notebook was executed. Run <code>metaanalysis run</code> without it to build the "
            "report.</p>",
            encoding="utf-8",
        )
        return []
    notebooks = sorted(Path(notebooks_dir).glob("*.py"))
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)} if _main_thread() else {}
    try:
        return write_report(
            notebooks,
            out_dir / "report",
            {"STUDIES_DIR": str(Path(studies_dir).resolve()), "RESULTS_DIR": str(Path(out_dir).resolve())},
            cwd=Path(notebooks_dir).resolve(),
        )
    finally:
        # nbclient replaces SIGINT/SIGTERM handlers while a kernel runs and leaves the defaults behind.
        for s, handler in handlers.items():
            if handler is not None:
                signal.signal(s, handler)


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


def _describe_previous(target: Path) -> str:
    manifest = read_manifest(target)
    if manifest is None:
        return f"{target}/ was not changed"
    return f"{target}/ still holds the complete run finished {manifest.get('finished', '?')}"


_received: list[str] = []  # signals that arrived during this run


def _on_signal(signum, frame):
    name = signal.Signals(signum).name
    _received.append(name)
    if len(_received) > 1:
        return  # a second Ctrl-C while the staging folder is being removed: let that finish
    raise KeyboardInterrupt(name) if signum == signal.SIGINT else RunInterrupted(name)


def main(args) -> int:
    target = Path(args.out)
    _received.clear()
    handled = (signal.SIGINT, signal.SIGTERM)
    old = {s: signal.signal(s, _on_signal) for s in handled} if _main_thread() else {}
    try:
        return _main(args, target)
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


def _main(args, target: Path) -> int:
    try:
        if args.analyses and not Path(args.analyses).is_file():
            return _fail(f"--analyses {args.analyses}: no such file; nothing was pooled")
        notebooks = None if args.skip_notebooks else find_notebooks(args.notebooks, Path(args.studies))
        run(Path(args.studies), target, Path(args.analyses) if args.analyses else None, notebooks_dir=notebooks)
    except (KeyboardInterrupt, RunInterrupted):
        return _interrupted(target)
    except StudyValidationError as exc:
        return _fail(
            f"The evidence base does not validate; nothing was pooled and {_describe_previous(target)}.", str(exc)
        )
    except NotebookError as exc:
        if _received or "KeyboardInterrupt" in str(exc) or _kernel_stopped_by_signal(exc):
            _received.append("SIGINT")
            return _interrupted(target)
        return _fail(f"A notebook failed: {_one_line(exc)}; {_describe_previous(target)}.")
    except analyses_mod.AnalysisDeclarationError as exc:
        return _fail(f"The analyses declaration is invalid; nothing was pooled.\n{exc}")
    except OutputError as exc:
        return _fail(f"Cannot write the results: {exc}")
    except OSError as exc:
        return _fail(f"Run failed: {exc.strerror or exc} ({exc.filename}); {_describe_previous(target)}.")
    except Exception as exc:  # a bug: one line here, the traceback on request
        if _received:
            return _interrupted(target)
        if os.environ.get("METAANALYSIS_TRACEBACK"):
            raise
        return _fail(
            f"Run failed: {type(exc).__name__}: {_one_line(exc)}; {_describe_previous(target)}. "
            "(METAANALYSIS_TRACEBACK=1 shows the traceback)"
        )
    return 0


def _interrupted(target: Path) -> int:
    name = _received[0] if _received else "SIGINT"
    _fail(f"Interrupted ({name}); {_describe_previous(target)}.")
    return 143 if name == "SIGTERM" else 130


def _kernel_stopped_by_signal(exc: BaseException) -> bool:
    """nbclient answers SIGINT/SIGTERM with its own handler (ours is set aside while a kernel runs): it
    shuts the kernel down and the notebook fails with an unrelated error. Its client then holds
    `_async_cleanup_kernel_future` (nbclient 0.10-0.11); without it we say "a notebook failed"."""
    import traceback

    for error in (exc, exc.__cause__, exc.__context__):
        for frame, _ in traceback.walk_tb(getattr(error, "__traceback__", None)):
            if getattr(frame.f_locals.get("self"), "_async_cleanup_kernel_future", None) is not None:
                return True
    return False


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _one_line(exc: BaseException) -> str:
    return printable(" ".join(str(exc).split()))


def _fail(line: str, details: str = "") -> int:
    print(printable(line) + (f"\n{printable(details)}" if details else ""), file=sys.stderr)
    return 1
