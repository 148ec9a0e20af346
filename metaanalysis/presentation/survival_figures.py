"""Figures of the survival tables: one median plot per median analysis, one forest plot of hazard ratios.

A median of medians has no study weights or variances, so it is not a forest plot
of an inverse-variance fit: each cohort's median is drawn with the CI the paper
printed (solid) or its range (dotted), a median not reached as an arrow from the
last value we know nothing beyond, and each pooled median (MM, WM, IV) as a
diamond spanning its interval. Hazard ratios go through `forest_plot`.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from metaanalysis.engine.results import SubgroupResult
from metaanalysis.presentation.forest import forest_plot, save_forest


def median_plot(table: pd.DataFrame, title: str) -> Figure:
    """Cohort medians and pooled medians of one median analysis (rows of survival_medians.csv)."""
    lines = []  # (label, kind, estimate, lb, ub, style)
    for group, rows in table.groupby("group_label", sort=False, dropna=False):
        if group != "all cohorts":
            lines.append(
                (str(group) if pd.notna(group) else "not in a declared stratum", "header", None, None, None, None)
            )
        for _, r in rows.iterrows():
            if r["kind"] in ("study", "excluded"):
                nr = bool(r.get("not_reached")) if pd.notna(r.get("not_reached")) else False
                has_ci = pd.notna(r["median_ci_lb"])
                lb = r["median_ci_lb"] if has_ci else r.get("range_lb")
                ub = r["median_ci_ub"] if has_ci else r.get("range_ub")
                tag = "" if r["kind"] == "study" else "  [not pooled]"
                n = f", n = {int(r['n'])}" if pd.notna(r.get("n")) else ""
                lines.append(
                    (
                        f"{r['cohort']}{n}{tag}",
                        "nr" if nr else "study",
                        None if nr else r["median"],
                        lb,
                        ub,
                        "-" if has_ci else ":",
                    )
                )
            elif r["kind"] in ("pooled", "single study") and pd.notna(r.get("estimate")):
                lines.append(
                    (f"{r['method']} (k = {int(r['k'])})", "pooled", r["estimate"], r["ci_lb"], r["ci_ub"], "-")
                )
    height = 0.9 + 0.24 * len(lines)
    fig = Figure(figsize=(8.0, height))
    ax = fig.add_axes([0.48, 0.9 / height * 0.6, 0.5, 1 - 0.9 / height])
    known = [v for line in lines for v in line[2:5] if v is not None and pd.notna(v)]
    xmax = max(known) * 1.15 if known else 1.0
    for i, (label, kind, est, lb, ub, style) in enumerate(lines):
        y = len(lines) - i
        weight = "bold" if kind in ("header", "pooled") else "normal"
        ax.text(
            -0.02, y, label, transform=ax.get_yaxis_transform(), ha="right", va="center", fontsize=8, fontweight=weight
        )
        if kind == "header":
            continue
        if pd.notna(lb) and pd.notna(ub):
            ax.plot([lb, ub], [y, y], color="black", lw=1, ls=style)
        elif pd.notna(lb):  # CI open above (not reached)
            ax.annotate("", xy=(xmax, y), xytext=(lb, y), arrowprops=dict(arrowstyle="->", lw=1))
        if kind == "nr":
            ax.text(xmax, y, " not reached", va="center", fontsize=7)
        elif kind == "pooled" and pd.notna(lb) and pd.notna(ub):
            ax.fill([lb, est, ub, est], [y, y + 0.3, y, y - 0.3], color="black")
        elif est is not None and pd.notna(est):
            ax.plot([est], [y], "s", color="black", ms=5)
    ax.set_ylim(0.3, len(lines) + 0.7)
    ax.set_xlim(0, xmax)
    ax.set_yticks([])
    ax.set_xlabel("Median (months); solid line: printed CI, dotted: printed range", fontsize=8)
    ax.tick_params(labelsize=8)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    fig.suptitle(title, fontsize=9, x=0.02, ha="left")
    return fig


def draw_survival(review, figures_dir: Path, *, reuse_from: Path | None = None) -> list[Path]:
    """Median plots and the hazard-ratio forest plot of a review; returns the files written.
    `reuse_from`: the previous run's intact figures (see `save_forest`)."""
    written: list[Path] = []
    medians = review.medians
    for analysis, table in medians.groupby("analysis", sort=False):
        fig = median_plot(table, table["label"].iloc[0])
        written += save_forest(fig, Path(figures_dir) / f"survival_{analysis}", reuse_from=reuse_from)
        plt.close(fig)
    fig = hazard_ratio_forest(review)
    if fig is not None:
        written += save_forest(fig, Path(figures_dir) / "survival_hazard_ratios", reuse_from=reuse_from)
        plt.close(fig)
    return written


def hazard_ratio_forest(review) -> Figure | None:
    """The hazard ratios of a review, one group per comparison (None when there are none)."""
    fits = dict(review.hazard_ratio_fits or {})
    if not fits:
        return None
    sub = SubgroupResult(
        groups=fits,
        Qbetween=None,
        Qbetween_df=None,
        Qbetween_p=None,
        notes=("different comparisons: no test for subgroup differences",),
    )
    return forest_plot(
        sub,
        title="Hazard ratios after CAR-T failure (as printed; pooled where k >= 2)",
        xlabel="Hazard ratio (log scale)",
    )


# -- reader-facing tables -------------------------------------------------------------------


def _interval(lb, ub, decimals: int = 1) -> str:
    if pd.isna(lb):
        return ""
    return f"{lb:.{decimals}f} to {'not reached' if pd.isna(ub) else f'{ub:.{decimals}f}'}"


def _as_printed(rows: list[dict]):
    """A reader's table: no index, a dash where nothing was printed or estimated (never NaN)."""
    from metaanalysis.presentation.style import paper_table

    frame = pd.DataFrame(rows).astype(object)
    frame = frame.where(frame.notna() & frame.ne(""), "–")
    # lists of cohorts ("a;b;c") wrap in a narrow column only with a space after each separator
    frame = frame.map(lambda v: v.replace(";", "; ") if isinstance(v, str) else v)
    return paper_table(frame, numeric=("k", "N", "n"))


def readable_medians(table: pd.DataFrame):
    """Endpoint, median and interval first; then method, cohorts and why a row did not enter."""
    rows = []
    for _, r in table.iterrows():
        if r["kind"] in ("pooled", "single study"):
            value = "" if pd.isna(r.get("estimate")) else f"{r['estimate']:.1f}"
            rows.append(
                {
                    "Endpoint": r["endpoint"],
                    "Median (months)": value,
                    "95% interval": _interval(r.get("ci_lb"), r.get("ci_ub")),
                    "Method": r["method"],
                    "k": int(r["k"]) if pd.notna(r.get("k")) else "",
                    "Group": r.get("group_label"),
                    "Cohorts": r.get("studies"),
                    "Note": "; ".join(str(x) for x in (r.get("reason"), r.get("note")) if pd.notna(x)),
                }
            )
        else:
            nr = pd.notna(r.get("not_reached")) and bool(r.get("not_reached"))
            ci = _interval(r.get("median_ci_lb"), r.get("median_ci_ub"))
            rng = _interval(r.get("range_lb"), r.get("range_ub"))
            rows.append(
                {
                    "Endpoint": r["endpoint"],
                    "Median (months)": "not reached" if nr else f"{r['median']:.1f}",
                    "95% interval": f"CI {ci}" if ci else (f"range {rng}" if rng else ""),
                    "Method": "cohort" + (f" (in {r['method']})" if pd.notna(r.get("method")) else " (not pooled)"),
                    "k": "",
                    "Group": r.get("group_label"),
                    "Cohorts": r["cohort"] + (f", n = {int(r['n'])}" if pd.notna(r.get("n")) else ""),
                    "Note": r.get("reason") if pd.notna(r.get("reason")) else "",
                }
            )
    return _as_printed(rows)


def readable_hazard_ratios(table: pd.DataFrame):
    """HR with CI first, then what it compares, k and the studies (or why a study did not enter)."""
    rows = []
    for _, r in table.iterrows():
        pooled = r["kind"] in ("pooled", "single study")
        rows.append(
            {
                "Endpoint": r["endpoint"],
                "HR": f"{r['hr']:.2f}",
                "95% CI": _interval(r.get("hr_ci_lb"), r.get("hr_ci_ub"), 2),
                "Comparison": r["label"],
                "Row": r["method"] if pooled else r["cohort"],
                "k": int(r["k"]) if pooled else "",
                "Note": "; ".join(str(x) for x in (r.get("reason"), r.get("note"), r.get("model")) if pd.notna(x)),
            }
        )
    return _as_printed(rows)


def readable_landmarks(table: pd.DataFrame):
    """Landmark rate with CI first, then class, where its variance came from, and why not pooled."""
    rows = []
    for _, r in table.iterrows():
        pct = "" if pd.isna(r.get("percent")) else f"{r['percent']:.1f}"
        rows.append(
            {
                "Endpoint": f"{r['endpoint']} at {r['months']:g} months",
                "Rate (%)": pct,
                "95% CI": _interval(r.get("ci_lb"), r.get("ci_ub")),
                "Class": r["regimen_class"],
                "Row": r["study"] if r["kind"] == "study" else f"pooled ({r.get('variant')}, k = {r.get('k')})",
                "Variance from": r.get("variance_from") if pd.notna(r.get("variance_from")) else "",
                "Not pooled because": r.get("reason") if pd.notna(r.get("reason")) else "",
            }
        )
    return _as_printed(rows)
