"""`metaanalysis run`: validate, pool every declared analysis, draw, report what changed.

Outputs (under --out, default `results/`):
  pooled.csv        one row per population, outcome, regimen class and method (primary variant)
  sensitivity.csv   the same for every sensitivity variant and method
  study_level.csv   every study row that entered a pooled row
  excluded.csv      every candidate row that did not, with the reason
  comparisons.csv   two-arm comparisons within a study (OR, RD)
  landmarks.csv     landmark survival rates, pooled where a CI allows it
  studies.csv       the evidence base, one row per study
  figures/          one forest plot per analysis (PNG at 300 dpi, SVG, PDF)
  report/           the executed notebooks as HTML
  changes.md        what changed against the previous run (also printed)
"""
from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on CI
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from metaanalysis.living import analyses as analyses_mod  # noqa: E402
from metaanalysis.living.changes import compare, read_previous  # noqa: E402
from metaanalysis.living.comparisons import compare_arms  # noqa: E402
from metaanalysis.presentation.figures import analysis_forest, comparison_forests  # noqa: E402
from metaanalysis.presentation.forest import save_forest  # noqa: E402
from metaanalysis.presentation.labels import arm_labels, citation_labels  # noqa: E402
from metaanalysis.living.landmarks import pool_landmarks  # noqa: E402
from metaanalysis.presentation.report import NotebookError, write_report  # noqa: E402
from metaanalysis.living.pooling import excluded_rows, pool, pooled_rows, pooled_table, study_level_rows  # noqa: E402
from metaanalysis.evidence.studies import StudyValidationError, outcome_table, study_table, time_to_event_table  # noqa: E402
from metaanalysis.evidence.validation import check_directory, errors  # noqa: E402
from metaanalysis.evidence.vocabulary import outcome_labels, regimen_labels  # noqa: E402


def run(studies_dir: Path, out_dir: Path, plan_path: Path | None = None, *,
        notebooks_dir: Path | None = None, log=print) -> dict:
    parsed, problems = check_directory(studies_dir)
    if errors(problems):
        raise StudyValidationError(problems)
    warnings = [p for p in problems if p not in errors(problems)]
    log(f"Validated {len(parsed)} study records: 0 errors, {len(warnings)} warnings "
        f"(`metaanalysis validate {studies_dir}` lists them).")
    records = [p.data for p in parsed]
    frame, tte = outcome_table(records), time_to_event_table(records)
    plan = analyses_mod.load_plan(plan_path)
    old_pooled, old_studies = read_previous(out_dir)
    (out_dir / "figures").mkdir(parents=True, exist_ok=True)

    pooled, level_rows, excluded, figures = [], [], [], []
    for analysis in plan.analyses:
        for method in analysis.methods:
            pa = pool(frame, analysis, method)
            pooled += pooled_rows(pa)
            if method == analysis.primary_method:
                level_rows.append(study_level_rows(pa))
                excluded.append(excluded_rows(pa))
                fig = analysis_forest(pa, citation_labels(records), arm_labels(records))
                if fig is not None:
                    figures += save_forest(fig, out_dir / "figures" / analysis.id)
                    plt.close(fig)
    sensitivity = pooled_table(frame, [v.apply(a) for a in plan.analyses for v in plan.sensitivity])

    comparisons = [compare_arms(frame, c) for c in plan.comparisons]
    for comp in comparisons:
        for measure, fig in comparison_forests(comp, citation_labels(records), arm_labels(records)).items():
            figures += save_forest(fig, out_dir / "figures" / f"{comp.id}_{measure}")
            plt.close(fig)
    landmarks = pool_landmarks(tte, plan.landmarks)

    tables = {
        "pooled.csv": pd.DataFrame(pooled),
        "sensitivity.csv": sensitivity,
        "study_level.csv": pd.concat(level_rows, ignore_index=True) if level_rows else pd.DataFrame(),
        "excluded.csv": pd.concat(excluded, ignore_index=True) if excluded else pd.DataFrame(),
        "comparisons.csv": pd.concat([c.table for c in comparisons], ignore_index=True) if comparisons else pd.DataFrame(),
        "landmarks.csv": landmarks,
        "studies.csv": study_table(records),
    }
    for name, table in tables.items():
        table.to_csv(out_dir / name, index=False)

    report = compare(old_pooled, tables["pooled.csv"], old_studies, set(tables["studies.csv"]["study"]))
    (out_dir / "changes.md").write_text("# Changes against the previous run\n\n" + report.text() + "\n",
                                        encoding="utf-8")
    html = []
    if notebooks_dir is not None:
        notebooks = sorted(Path(notebooks_dir).glob("*.py"))
        html = write_report(notebooks, out_dir / "report",
                            {"STUDIES_DIR": str(Path(studies_dir).resolve()),
                             "RESULTS_DIR": str(Path(out_dir).resolve())},
                            cwd=Path(notebooks_dir).resolve())
    log(f"Pooled {len(plan.analyses)} analyses x methods into {len(tables['pooled.csv'])} rows; "
        f"{len(figures)} figure files; {len(html)} report pages; results in {out_dir}/")
    log(report.text())
    return dict(tables=tables, figures=figures, report=report, html=html)


def main(args) -> int:
    try:
        run(Path(args.studies), Path(args.out), Path(args.analyses) if args.analyses else None,
            notebooks_dir=None if args.skip_notebooks else Path(args.notebooks))
    except StudyValidationError as exc:
        print(f"The evidence base does not validate; nothing was pooled.\n{exc}", file=sys.stderr)
        return 1
    except NotebookError as exc:
        print(f"A notebook failed; the tables and figures above were written.\n{exc}", file=sys.stderr)
        return 1
    except analyses_mod.AnalysisDeclarationError as exc:
        print(f"The analyses declaration is invalid; nothing was pooled.\n{exc}", file=sys.stderr)
        return 1
    return 0
