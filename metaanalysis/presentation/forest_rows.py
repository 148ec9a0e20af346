"""Forest plots, part 3: the rows of the table — study labels and their order, square sizes on one
scale across the whole plot, pooled rows, and the text columns forestplot draws."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from metaanalysis.engine.results import Fit, SubgroupResult
from metaanalysis.presentation.forest_scale import Scale
from metaanalysis.presentation.forest_text import heterogeneity, model_label, model_name, shows_prediction
from metaanalysis.presentation.labels import symbols

MAX_SQUARE_AREA = 70.0  # points^2, the square of the largest weight in the figure
MIN_SQUARE_AREA = 5.0  # so that a study with a tiny weight remains visible
NBSP = "\u00a0"
SORT_KEYS = (None, "year", "estimate", "weight")
SINGLE_STUDY_METHODS = ("single study",)  # living.single_study: a class shown, not pooled
COLUMNS = ("events", "estimate", "weight")
_YEAR = re.compile(r"\b(19|20)\d{2}\b")


@dataclass
class Row:
    kind: str  # study | pooled | pi | text | blank
    label: str = ""
    events_n: str = ""
    arm_counts: tuple[str, str] = ("", "")
    numbers: tuple = ()  # (est, lb, ub) or (lb, ub) for pi, already scaled
    weight: str = ""
    area: float = float("nan")
    text: str = ""  # drawn by forest_draw over a blank table row
    bold: bool = False
    group: str = ""
    indent: bool = False  # text lines inside a class align with its study labels
    bayesian: bool = False  # a pooled row from a Bayesian fit: drawn as an open diamond


def group_fits(result, group_labels) -> tuple[list[tuple[str, str, Fit]], SubgroupResult | None]:
    """(key, display label, fit) per class, in the result's order."""
    if isinstance(result, Fit):
        if group_labels:
            raise ValueError("group_labels was given but the result has no groups (a single MetaResult)")
        return [("", "", result)], None
    if not isinstance(result, SubgroupResult):
        raise TypeError(
            f"forest_plot takes a fit (MetaResult, BayesResult) or a SubgroupResult, not {type(result).__name__}"
        )
    if not result.groups:
        raise ValueError("SubgroupResult.groups is empty: there is no group to plot")
    # group_labels may be a whole vocabulary (vocabulary.regimen_labels()): keys without a
    # class in this result are simply unused; a class without a key keeps its key as label.
    group_labels = dict(group_labels or {})
    out = []
    for key, res in result.groups.items():
        if not isinstance(res, Fit):
            raise TypeError(f"group {key!r}: expected a fit (MetaResult, BayesResult), got {type(res).__name__}")
        label = symbols(group_labels.get(key, key))
        if not label.strip():
            raise ValueError(f"group {key!r} has an empty label")
        out.append((key, label, res))
    labels = [lab.strip().lower() for _, lab, _ in out]
    if len(set(labels)) != len(labels):
        raise ValueError(f"two groups share one label (case-insensitive): {[lab for _, lab, _ in out]}")
    return out, result


def check_study_labels(fits, study_labels: Mapping[str, str]) -> None:
    labels = [lab.strip().lower() for _, lab, _ in fits if lab]
    for key, _, res in fits:
        if res.studies is not None:
            shown = [symbols(study_labels.get(s, s)) for s in res.studies.study]
            clash = [s for s in shown if s.strip().lower() in labels]
            if clash:
                raise ValueError(
                    f"group {key!r}: study label(s) {clash} equal a group label; forestplot would "
                    "draw them as group headers. Rename the study or the group label"
                )


# --------------------------------------------------------------------------- weights
def absolute_weights(fits: list[tuple[str, str, Fit]]) -> tuple[list[list[float]], str | None]:
    """Per study, a weight on ONE scale across all groups, and the footnote sentence saying which.

    A fit's `weight` column is a percentage within its own group; re-scaled per group, a single
    unpooled study (100 %) would draw the largest square of the plot. So each share is multiplied
    by its group's total: patients where any group is a GLMM or a single study shown with its
    counts (GLMM weights are patient shares), otherwise the total inverse-variance weight
    sum(1 / (vi + tau2)) (tau2 = 0 for common-effect and single-study fits).
    """
    if len(fits) == 1:
        return [list(fits[0][2].studies.weight)], None
    results = [res for _, _, res in fits]
    with_n = all(res.studies.n is not None for res in results)
    patients = with_n and (
        any(res.method in ("GLMM", *SINGLE_STUDY_METHODS) for res in results)
        or len({res.measure for res in results}) > 1
    )
    out = []
    for res in results:
        s = res.studies
        if patients:
            total = float(sum(s.n))
        else:
            tau2 = res.tau2 if res.tau2 is not None and res.method not in ("FE", "MH") else 0.0
            if res.bayesian:  # its weights are posterior means of w_i / sum w: scale by the IV total at tau
                tau2 = res.tau2
            total = float(sum(1.0 / (v + tau2) for v in s.vi))
        out.append([w / 100.0 * total for w in s.weight])
    unit = "number of patients" if patients else "total inverse-variance weight"
    return out, (
        f"Square areas are proportional to weight on one scale across the plot (a study's share "
        f"of its group times the group's {unit})"
    )


def square_areas(weights: list[list[float]]) -> list[list[float]]:
    wmax = max((w for ws in weights for w in ws), default=0.0)
    return [
        [max(MIN_SQUARE_AREA, MAX_SQUARE_AREA * w / wmax) if wmax > 0 else MIN_SQUARE_AREA for w in ws]
        for ws in weights
    ]


# --------------------------------------------------------------------------- rows
def _year(label: str) -> float:
    found = _YEAR.search(label)
    return float(found.group(0)) if found else math.inf


def study_order(labels: list[str], estimates, weights, sort_by: str | None) -> list[int]:
    """Row order within a group: as given, by publication year (read from the citation label,
    "Thieblemont 2023"; undated last), by estimate (ascending) or by weight (largest first)."""
    idx = list(range(len(labels)))
    if sort_by is None:
        return idx
    if sort_by == "year":
        return sorted(idx, key=lambda i: (_year(labels[i]), labels[i]))
    if sort_by == "estimate":
        return sorted(idx, key=lambda i: (estimates[i], labels[i]))
    if sort_by == "weight":
        return sorted(idx, key=lambda i: (-weights[i], labels[i]))
    raise ValueError(f"sort_by = {sort_by!r}; choose one of {SORT_KEYS}")


def fit_rows(
    res: Fit,
    scale: Scale,
    areas: list[float],
    show_prediction: bool,
    group: str,
    *,
    study_labels: Mapping[str, str],
    sort_by: str | None,
    arm_counts: Mapping | None,
    group_key: str,
) -> list[Row]:
    s = res.studies
    f = scale.factor
    labels = [symbols(study_labels.get(name, name)) for name in s.study]
    rows = []
    for i in study_order(labels, s.estimate, s.weight, sort_by):
        counts = _arm_counts(arm_counts, group_key, s.study[i])
        rows.append(
            Row(
                "study",
                label=labels[i],
                group=group,
                events_n="" if s.events is None else f"{s.events[i]}/{s.n[i]}",
                arm_counts=counts,
                numbers=(s.estimate[i] * f, s.ci_lb[i] * f, s.ci_ub[i] * f),
                # a single study is not pooled: it has no weight to show
                weight=f"{s.weight[i]:.1f}%" if res.k >= 2 else "",
                area=areas[i],
            )
        )
    if res.k < 2:
        rows.append(Row("text", text="k = 1: not pooled", group=group))
        return rows
    lb, ub, pi_lb, pi_ub = res.reporting_interval()
    rows.append(
        Row(
            "pooled",
            label=model_label(res),
            group=group,
            bold=True,
            # the group's totals, as R meta and RevMan print them on the pooled row
            events_n="" if s.events is None else f"{sum(s.events)}/{sum(s.n)}",
            numbers=(res.estimate * f, lb * f, ub * f),
            weight="100.0%",
            bayesian=res.bayesian,
        )
    )
    if shows_prediction(res, show_prediction):
        rows.append(Row("pi", label="Prediction interval", group=group, numbers=(pi_lb * f, pi_ub * f)))
    rows.append(Row("text", text=heterogeneity(res, name=f"{model_name(res)}, heterogeneity"), group=group))
    return rows


def beside_rows(res: Fit, scale: Scale, group: str, label: str | None = None) -> list[Row]:
    """A second model's pooled estimate, drawn as a diamond under the class's own (`beside`),
    with its own heterogeneity line, labelled as that model's."""
    f = scale.factor
    lb, ub = res.interval()
    label = label or f"{model_label(res)} (alternative)"
    name = model_name(res)
    return [
        Row(
            "pooled",
            label=label,
            group=group,
            numbers=(res.estimate * f, lb * f, ub * f),
            bold="primary" in label,
            bayesian=res.bayesian,
        ),
        Row("text", text=heterogeneity(res, name=f"{name}, heterogeneity"), group=group),
    ]


def _arm_counts(arm_counts: Mapping | None, group_key: str, study: str) -> tuple[str, str]:
    """ "a/n1", "c/n2" for a two-arm study; arm_counts is keyed by (group key, study) or study."""
    if not arm_counts:
        return "", ""
    counts = arm_counts.get((group_key, study), arm_counts.get(study))
    if counts is None:
        raise ValueError(f"arm_counts has no entry for study {study!r} (group {group_key!r})")
    a, n1, c, n2 = (int(x) for x in counts)
    if not (0 <= a <= n1 and 0 <= c <= n2 and n1 > 0 and n2 > 0):
        raise ValueError(f"arm_counts for study {study!r}: {a}/{n1} and {c}/{n2} are not valid counts")
    return f"{a}/{n1}", f"{c}/{n2}"


# --------------------------------------------------------------------------- table text
def format_numbers(rows: list[Row], decimals: int) -> dict[int, str]:
    """'45.5 [16.7, 76.6]' with the brackets aligned down the column."""

    def num(x: float) -> str:
        text = f"{x:.{decimals}f}"
        return text.lstrip("-") if float(text) == 0 else text  # no "-0.000"

    triples = [(num(r.numbers[0]), num(r.numbers[1]), num(r.numbers[2])) for r in rows if len(r.numbers) == 3]
    pis = [(num(r.numbers[0]), num(r.numbers[1])) for r in rows if len(r.numbers) == 2]
    we = max((len(t[0]) for t in triples), default=0)
    wl = max([len(t[1]) for t in triples] + [len(p[0]) for p in pis], default=0)
    wu = max([len(t[2]) for t in triples] + [len(p[1]) for p in pis], default=0)
    out = {}
    for i, r in enumerate(rows):
        if len(r.numbers) == 3:
            e, lo, hi = (num(v) for v in r.numbers)
            out[i] = f"{e:>{we}} [{lo:>{wl}}, {hi:>{wu}}]"
        elif len(r.numbers) == 2:
            lo, hi = (num(v) for v in r.numbers)
            out[i] = f"{'':>{we}} [{lo:>{wl}}, {hi:>{wu}}]"
    return out


def table_columns(
    scale: Scale, *, with_events: bool, arm_names: tuple[str, str] | None, columns: tuple[str, ...] | None
) -> list[tuple[str, str]]:
    """(column, header) of the table, left to right after the study label."""
    chosen = COLUMNS if columns is None else tuple(columns)
    unknown = [c for c in chosen if c not in COLUMNS]
    if unknown:
        raise ValueError(f"columns {unknown} are not among {COLUMNS}")
    out = []
    if "events" in chosen:
        if arm_names is not None:
            out += [("arm_exp", f"{arm_names[0]} n/N"), ("arm_ctrl", f"{arm_names[1]} n/N")]
        elif with_events:
            out.append(("events_n", "Events/N"))
    if "estimate" in chosen:
        out.append(("est_ci", scale.est_header))
    if "weight" in chosen:
        out.append(("weight", "Weight"))
    return out


def frame_of(rows: list[Row], columns: list[tuple[str, str]], decimals: int) -> pd.DataFrame:
    est_text = format_numbers(rows, decimals)
    texts = {
        "events_n": [r.events_n for r in rows],
        "weight": [r.weight for r in rows],
        "arm_exp": [r.arm_counts[0] for r in rows],
        "arm_ctrl": [r.arm_counts[1] for r in rows],
        "est_ci": [est_text.get(i, "") for i in range(len(rows))],
    }
    for col, header in columns:
        if col != "est_ci":  # counts and weights right-aligned under their header
            width = max(len(header), *(len(t) for t in texts[col]))
            texts[col] = [t.rjust(width) for t in texts[col]]
    seen: set[str] = set()
    records = []
    for i, r in enumerate(rows):
        label = r.label
        while not label or label in seen:  # unique, non-empty category (forestplot's y axis)
            label += NBSP
        seen.add(label)
        est = r.numbers if r.kind == "study" else (np.nan,) * 3
        records.append(
            dict(
                row_id=i,
                label=label,
                group=r.group,
                **{col: texts[col][i] for col, _ in columns},
                estimate=est[0],
                ci_lb=est[1],
                ci_ub=est[2],
                marker_area=r.area,
            )
        )
    return pd.DataFrame.from_records(records)
