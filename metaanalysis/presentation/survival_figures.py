"""Figures of the survival tables: one median plot per median analysis, one forest plot of hazard ratios.

A median of medians has no study weights or variances, so it is not a forest plot
of an inverse-variance fit: each cohort's median is drawn with the CI the paper
printed (solid) or its range (dotted), a median not reached as an arrow from the
last value we know nothing beyond, and each pooled median (MM, WM, IV) as a
diamond spanning its interval. Hazard ratios go through `forest_plot`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from metaanalysis.engine.results import SubgroupResult
from metaanalysis.evidence.vocabulary import regimen_labels
from metaanalysis.presentation.forest import forest_plot, save_forest
from metaanalysis.presentation.labels import arm_labels, citation_labels, cite


@dataclass(frozen=True)
class Readers:
    """How a reader sees ids: study ids as citations ("Di Blasi 2022"), arm ids as the arm's
    label, regimen-class ids as the class's name."""

    citations: dict = field(default_factory=dict)
    arms: dict = field(default_factory=dict)
    classes: dict = field(default_factory=dict)

    @classmethod
    def of(cls, review) -> Readers:
        records = list(review.records)
        parts = {  # a cohort is an arm or a stratum of one ("study (subgroup id)")
            (r["id"], g["id"]): g.get("label") or g["id"]
            for r in records
            for a in r.get("arms") or []
            for g in a.get("subgroups") or []
            if isinstance(g, dict) and "id" in g
        }
        return cls(citation_labels(records), {**parts, **arm_labels(records)}, regimen_labels())

    def cohort(self, label) -> str:
        return cite(label, self.citations, self.arms) if isinstance(label, str) else label

    def cohorts(self, labels) -> str:
        if not isinstance(labels, str) or not labels.strip():
            return labels
        return "; ".join(self.cohort(x.strip()) for x in labels.split(";") if x.strip())

    def group(self, label) -> str:
        return self.classes.get(label, label) if isinstance(label, str) else label


PLAIN = Readers()


def _single_classes(table: pd.DataFrame) -> set:
    """Groups holding one cohort: its summary row repeats the cohort and is left out."""
    if "kind" not in table or "group_label" not in table:
        return set()
    return set(table.loc[table["kind"] == "single study", "group_label"])


def median_plot(table: pd.DataFrame, title: str, readers: Readers = PLAIN) -> Figure:
    """Cohort medians and pooled medians of one median analysis (rows of survival_medians.csv),
    with each median and its interval printed beside the plot. A class of one cohort shows that
    cohort, marked as not pooled, once."""
    lines = []  # (label, kind, estimate, lb, ub, style)
    single = _single_classes(table)
    for group, rows in table.groupby("group_label", sort=False, dropna=False):
        if group != "all cohorts":
            name = readers.group(str(group)) if pd.notna(group) else "not in a declared stratum"
            lines.append((name, "header", None, None, None, None))
        for _, r in rows.iterrows():
            if r["kind"] in ("study", "excluded"):
                nr = bool(r.get("not_reached")) if pd.notna(r.get("not_reached")) else False
                has_ci = pd.notna(r["median_ci_lb"])
                lb = r["median_ci_lb"] if has_ci else r.get("range_lb")
                ub = r["median_ci_ub"] if has_ci else r.get("range_ub")
                alone = group in single and r["kind"] == "study"
                tag = "  [not pooled: one cohort]" if alone else "" if r["kind"] == "study" else "  [not pooled]"
                n = f", n = {int(r['n'])}" if pd.notna(r.get("n")) else ""
                lines.append(
                    (
                        f"{readers.cohort(r['cohort'])}{n}{tag}",
                        "nr" if nr else "study",
                        None if nr else r["median"],
                        lb,
                        ub,
                        "-" if has_ci else ":",
                    )
                )
            elif r["kind"] == "pooled" and pd.notna(r.get("estimate")):
                lines.append(
                    (f"{r['method']} (k = {int(r['k'])})", "pooled", r["estimate"], r["ci_lb"], r["ci_ub"], "-")
                )
    height = 0.9 + 0.24 * len(lines)
    fig = Figure(figsize=(9.5, height))
    ax = fig.add_axes([0.42, 0.9 / height * 0.6, 0.38, 1 - 0.9 / height])
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
        ax.text(
            1.03,
            y,
            _printed(kind, est, lb, ub, style),
            transform=ax.get_yaxis_transform(),
            ha="left",
            va="center",
            fontsize=8,
            fontweight=weight,
        )
        if pd.notna(lb) and pd.notna(ub):
            ax.plot([lb, ub], [y, y], color="black", lw=1, ls=style)
        elif pd.notna(lb):  # CI open above (not reached)
            ax.annotate("", xy=(xmax, y), xytext=(lb, y), arrowprops=dict(arrowstyle="->", lw=1))
        if kind == "nr":
            continue  # "not reached" is printed in the column of numbers
        if kind == "pooled" and pd.notna(lb) and pd.notna(ub):
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
    ax.text(1.03, len(lines) + 0.6, "Median [interval]", transform=ax.get_yaxis_transform(), fontsize=8, va="bottom")
    fig.suptitle(title, fontsize=9, x=0.02, ha="left")
    return fig


def _printed(kind, est, lb, ub, style) -> str:
    """The numbers of one line as the table prints them: "5.9 [5.1, 6.3]" (range in parentheses)."""
    if kind == "nr":
        return "not reached"
    if est is None or pd.isna(est):
        return "–"
    if pd.isna(lb):
        return f"{est:.1f}"
    upper = "not reached" if pd.isna(ub) else f"{ub:.1f}"
    return f"{est:.1f} [{lb:.1f}, {upper}]" if style == "-" else f"{est:.1f} (range {lb:.1f}-{upper})"


def draw_survival(review, figures_dir: Path, *, reuse_from: Path | None = None) -> list[Path]:
    """Median plots and the hazard-ratio forest plot of a review; returns the files written.
    `reuse_from`: the previous run's intact figures (see `save_forest`)."""
    written: list[Path] = []
    medians = review.medians
    readers = Readers.of(review)
    for analysis, table in medians.groupby("analysis", sort=False):
        fig = median_plot(table, table["label"].iloc[0], readers)
        written += save_forest(fig, Path(figures_dir) / f"survival_{analysis}", reuse_from=reuse_from)
        plt.close(fig)
    fig = hazard_ratio_forest(review, readers)
    if fig is not None:
        written += save_forest(fig, Path(figures_dir) / "survival_hazard_ratios", reuse_from=reuse_from)
        plt.close(fig)
    return written


def hazard_ratio_forest(review, readers: Readers | None = None) -> Figure | None:
    """The hazard ratios of a review, one group per comparison (None when there are none): each
    study's ratio and interval as printed, cohorts cited, comparisons named as the papers name them."""
    fits = dict(review.hazard_ratio_fits or {})
    if not fits:
        return None
    readers = readers or Readers.of(review)
    sub = SubgroupResult(
        groups=fits,
        Qbetween=None,
        Qbetween_df=None,
        Qbetween_p=None,
        notes=(
            "study ratios and intervals as printed; for pooling, each standard error was rebuilt from "
            "the printed 95% interval as (ln upper - ln lower) / (2 x 1.96)",
            "different comparisons: no test for subgroup differences",
        ),
    )
    cohorts = {s: readers.cohort(s) for res in fits.values() for s in res.studies.study}
    return forest_plot(
        sub,
        title="Hazard ratios after CAR-T failure (as printed; pooled where k >= 2)",
        xlabel="Hazard ratio (log scale)",
        group_labels={key: key[:1].upper() + key[1:] for key in fits},
        study_labels=cohorts,
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


def readable_medians(table: pd.DataFrame, readers: Readers = PLAIN):
    """Endpoint, median and interval first; then method, cohorts and why a row did not enter.
    A class of one cohort is that cohort's row, once (marked: one cohort, not pooled)."""
    rows = []
    single = _single_classes(table)
    for _, r in table.iterrows():
        if r["kind"] == "single study":
            continue
        if r["kind"] == "pooled":
            value = "" if pd.isna(r.get("estimate")) else f"{r['estimate']:.1f}"
            rows.append(
                {
                    "Endpoint": r["endpoint"],
                    "Median (months)": value,
                    "95% interval": _interval(r.get("ci_lb"), r.get("ci_ub")),
                    "Method": r["method"],
                    "k": int(r["k"]) if pd.notna(r.get("k")) else "",
                    "Group": readers.group(r.get("group_label")),
                    "Cohorts": readers.cohorts(r.get("studies")),
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
                    "Method": "one cohort (not pooled)"
                    if r.get("group_label") in single and r["kind"] == "study"
                    else "cohort" + (f" (in {r['method']})" if pd.notna(r.get("method")) else " (not pooled)"),
                    "k": "",
                    "Group": readers.group(r.get("group_label")),
                    "Cohorts": readers.cohort(r["cohort"]) + (f", n = {int(r['n'])}" if pd.notna(r.get("n")) else ""),
                    "Note": r.get("reason") if pd.notna(r.get("reason")) else "",
                }
            )
    return _as_printed(rows)


def readable_hazard_ratios(table: pd.DataFrame, readers: Readers = PLAIN):
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
                "Row": r["method"] if pooled else readers.cohort(r["cohort"]),
                "k": int(r["k"]) if pooled else "",
                "Note": "; ".join(str(x) for x in (r.get("reason"), r.get("note"), r.get("model")) if pd.notna(x)),
            }
        )
    return _as_printed(rows)


def readable_landmarks(table: pd.DataFrame, readers: Readers = PLAIN):
    """Landmark rate with CI first, then class, where its variance came from, and why not pooled."""
    rows = []
    for _, r in table.iterrows():
        pct = "" if pd.isna(r.get("percent")) else f"{r['percent']:.1f}"
        rows.append(
            {
                "Endpoint": f"{r['endpoint']} at {r['months']:g} months",
                "Rate (%)": pct,
                "95% CI": _interval(r.get("ci_lb"), r.get("ci_ub")),
                "Class": readers.group(r["regimen_class"]),
                "Row": readers.cohort(r["study"])
                if r["kind"] == "study"
                else f"pooled ({r.get('variant')}, k = {r.get('k')})",
                "Variance from": r.get("variance_from") if pd.notna(r.get("variance_from")) else "",
                "Not pooled because": r.get("reason") if pd.notna(r.get("reason")) else "",
            }
        )
    return _as_printed(rows)
