"""Survival as the papers report it: medians and hazard ratios pooled across cohorts.

Which rows enter is decided here (declarations: `medians` and `hazard_ratios` in
`data/analyses.yaml`); the statistics are the engine's (`medians`, `rma`). Every
candidate row ends in the output, either in a pooled row's `studies` or with the
reason it could not enter: a superseded report, an overlapping cohort (the
larger is kept, as for proportions: `pooling.overlap_reasons`), a median not
reached, a missing cohort size (WM) or CI (inverse variance).

Medians, per group (the whole cohorts, a regimen class, or a timing stratum):
  MM, WM  median of the cohort medians, unweighted / weighted by cohort size, with
          the sign-test interval (metamedian's normal approximation);
  IV      medians whose CI was printed, CI read as Wald (McGrath et al. 2025), pooled
          by REML + HKSJ. (QE from quartiles is in the engine; the records print no
          quartiles of survival times.)
A median not reached has no value for any of these: it is listed, and the pooled
median of a group that has one is biased towards shorter survival (said in `note`).
Hazard ratios: log HR with its SE from the printed CI, pooled by generic inverse
variance (REML + HKSJ) where k >= 2, otherwise shown as single studies.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from metaanalysis.engine.effects import AsymmetricIntervalWarning, log_ratio_from_ci
from metaanalysis.engine.medians import median_of_medians, median_variance_from_ci
from metaanalysis.engine.rma import rma
from metaanalysis.evidence.studies import time_to_event_table
from metaanalysis.review.analyses import HazardRatioAnalysis, MedianAnalysis, Plan
from metaanalysis.review.pooling import overlap_reasons

NOT_REACHED = (
    "median not reached: no value, so MM, WM and IV cannot use it "
    "(the pooled median of this group is biased towards shorter survival)"
)
NR_NOTE = "a cohort whose median was not reached could not enter: biased towards shorter survival"
NO_SIZE = "cohort size not printed: not in WM"
NO_CI = "no CI printed: not in IV"
NO_HR_CI = "no CI printed: the SE of the log HR is unknown"


def group_sizes(records: list[dict[str, Any]]) -> dict[tuple[str, str, str | None], int | None]:
    """(study, arm, subgroup or None) -> that cohort's own printed size (never the arm's for a subgroup)."""
    out = {}
    for r in records:
        for arm in r.get("arms") or []:
            out[(r["id"], arm["id"], None)] = (arm.get("n") or {}).get("value")
            for sub in arm.get("subgroups") or []:
                out[(r["id"], arm["id"], sub["id"])] = (sub.get("n") or {}).get("value")
    return out


def survival_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """`time_to_event_table` plus `group_n` (the row's own cohort size, <NA> if not printed)."""
    tte = time_to_event_table(records)
    sizes = group_sizes(records)
    keys = zip(
        tte["study"], tte["arm"], tte["subgroup"].astype(object).where(tte["subgroup"].notna(), None), strict=True
    )
    return tte.assign(group_n=pd.array([sizes.get(k) for k in keys], dtype="Int64"))


def _superseded_or_overlapping(rows: pd.DataFrame) -> pd.Series:
    """Per row, why it cannot enter (superseded report, overlapping cohort: the rule pooling.py
    applies to proportions), or None."""
    reasons = pd.Series(None, index=rows.index, dtype=object)
    sup = rows["superseded_by"].notna()
    reasons[sup] = "superseded by " + rows.loc[sup, "superseded_by"].astype(str)
    live = rows[reasons.isna()].assign(n=rows["group_n"])
    for study, why in overlap_reasons(live).items():
        reasons[reasons.isna() & (rows["study"] == study)] = why
    return reasons


def _label(r) -> str:
    return r["study"] + (
        f" ({r['subgroup']})" if pd.notna(r["subgroup"]) else f" ({r['arm']})" if r["role"] == "treatment" else ""
    )


def _groups(tte: pd.DataFrame, spec: MedianAnalysis) -> tuple[list[tuple[str, str, pd.DataFrame]], pd.DataFrame]:
    """(group id, group label, rows) for the spec, and candidate rows outside every group (with reason)."""
    cand = tte[(tte["kind"] == "median") & (tte["population"] == spec.population) & (tte["endpoint"] == spec.endpoint)]
    whole = cand["subgroup"].isna()
    if spec.cohorts == "whole":
        return [("all", "all cohorts", cand[whole & (cand["role"] == "overall")])], cand.iloc[:0]
    if spec.cohorts == "by_class":
        arms = cand[whole & (cand["role"] == "treatment")]
        return [(c, c, rows) for c, rows in arms.groupby("regimen_class", sort=True)], cand.iloc[:0]
    subs = cand[~whole]
    key = subs["study"] + "/" + subs["subgroup"]
    groups = [(t.id, t.label, subs[key.isin(t.members)]) for t in spec.timing]
    placed = key.isin([m for t in spec.timing for m in t.members])
    other = subs[~placed].assign(
        reason="stratum not split by time to failure, or at a cut-off no declared stratum uses"
    )
    return groups, other


def _median_rows(spec: MedianAnalysis, gid: str, glabel: str, rows: pd.DataFrame) -> list[dict]:
    base = dict(
        analysis=spec.id,
        label=spec.label,
        population=spec.population,
        endpoint=spec.endpoint,
        group=gid,
        group_label=glabel,
    )
    rows = rows.sort_values(["year", "study", "arm"])
    # apply() on no rows returns a frame, not a column: an empty group gets an empty column
    rows = rows.assign(cohort=rows.apply(_label, axis=1) if len(rows) else pd.Series(dtype=object, index=rows.index))
    reasons = _superseded_or_overlapping(rows)
    reasons[reasons.isna() & rows["not_reached"].fillna(False).astype(bool)] = NOT_REACHED
    use = rows[reasons.isna()]
    with_n = use[use["group_n"].notna()]
    with_ci = use[use["ci_lb"].notna()]
    out = []
    for idx, r in rows.iterrows():
        methods = [m for m, part in (("MM", use), ("WM", with_n), ("IV", with_ci)) if idx in part.index]
        why = None if pd.isna(reasons[idx]) else reasons[idx]
        why = why or "; ".join(w for w, part in ((NO_SIZE, with_n), (NO_CI, with_ci)) if idx not in part.index) or None
        out.append(
            dict(
                base,
                kind="study" if methods else "excluded",
                method=";".join(methods) or None,
                study=r["study"],
                cohort=r["cohort"],
                start=r["start"],
                n=r["group_n"],
                median=r["value"],
                not_reached=bool(r["not_reached"]) if pd.notna(r["not_reached"]) else None,
                median_ci_lb=r["ci_lb"],
                median_ci_ub=r["ci_ub"],
                range_lb=r["range_lb"],
                range_ub=r["range_ub"],
                reason=why,
            )
        )
    note = NR_NOTE if reasons.eq(NOT_REACHED).any() else None
    if len(use) == 1:
        r = use.iloc[0]
        out.append(
            dict(
                base,
                kind="single study",
                method="not pooled (k = 1)",
                k=1,
                estimate=r["value"],
                ci_lb=r["ci_lb"],
                ci_ub=r["ci_ub"],
                studies=r["cohort"],
                note=note,
            )
        )
    if len(use) < 2:
        return out
    for method, part in (("MM", use), ("WM", with_n)):
        row = dict(base, kind="pooled", method=method, k=len(part), studies=";".join(part["cohort"]), note=note)
        if len(part) < 2:
            out.append(dict(row, reason="fewer than two cohorts with a printed size"))
            continue
        pm = median_of_medians(
            part["value"].astype(float),
            weights=None if method == "MM" else part["group_n"].astype(float),
            level=spec.level,
            studies=part["cohort"],
        )
        small = (
            (
                f"k = {pm.k}: the interval is (close to) the range of the medians, which covers the "
                f"true median with probability {1 - 2.0 ** (1 - pm.k):.3f} (sign test)"
            )
            if pm.k < 6
            else None
        )
        out.append(
            dict(
                row,
                estimate=pm.estimate,
                ci_lb=pm.ci_lb,
                ci_ub=pm.ci_ub,
                coverage=pm.coverage,
                note="; ".join(x for x in (note, small) if x) or None,
            )
        )
    row = dict(base, kind="pooled", method="IV", k=len(with_ci), studies=";".join(with_ci["cohort"]), note=note)
    if len(with_ci) < 2:
        return out + [dict(row, reason="fewer than two medians with a printed CI")]
    vi = [
        median_variance_from_ci(
            float(r["value"]),
            float(r["ci_lb"]),
            None if pd.isna(r["ci_ub"]) else float(r["ci_ub"]),
            level=float(r["ci_level"]) if pd.notna(r["ci_level"]) else spec.level,
        )
        for _, r in with_ci.iterrows()
    ]
    iv = spec.inverse_variance
    res = rma(
        with_ci["value"].astype(float).to_numpy(),
        vi,
        method=iv.method,
        test=iv.test,
        level=spec.level,
        studies=tuple(with_ci["cohort"]),
        pi_method=iv.pi_method,
    )
    return out + [
        dict(
            row,
            method=f"IV ({iv.method}, {iv.test})",
            estimate=res.b,
            ci_lb=res.ci_lb,
            ci_ub=res.ci_ub,
            pi_lb=res.pi_lb,
            pi_ub=res.pi_ub,
            tau2=res.tau2,
            I2=res.I2,
        )
    ]


# The median a summary leads with, decided once here: weighted by cohort size (the patients
# count, as they do for proportions), else unweighted, else the inverse-variance pool of printed
# intervals, else the one cohort. IV comes last because it leaves out every median printed
# without an interval, which most reports are.
PRIMARY_MEDIAN_ORDER = ("WM", "MM", "IV")


def _mark_primary(rows: list[dict]) -> list[dict]:
    """`rows` of one group, with `primary` True on the one row to read first (see PRIMARY_MEDIAN_ORDER)."""

    def usable(r: dict) -> bool:
        return r.get("estimate") is not None and not pd.isna(r["estimate"])

    pooled = {str(r["method"]).split(" ")[0]: r for r in rows if r["kind"] == "pooled" and usable(r)}
    chosen = next((pooled[m] for m in PRIMARY_MEDIAN_ORDER if m in pooled), None)
    if chosen is None:
        chosen = next((r for r in rows if r["kind"] == "single study" and usable(r)), None)
    return [dict(r, primary=r is chosen) for r in rows]


def pool_medians(tte: pd.DataFrame, specs: tuple[MedianAnalysis, ...]) -> pd.DataFrame:
    """results/survival_medians.csv: pooled rows, the study rows behind them, and excluded rows with reasons."""
    out = []
    for spec in specs:
        groups, other = _groups(tte, spec)
        for gid, glabel, rows in groups:
            out += _mark_primary(_median_rows(spec, gid, glabel, rows))
        for _, r in other.iterrows():
            out.append(
                dict(
                    analysis=spec.id,
                    label=spec.label,
                    population=spec.population,
                    endpoint=spec.endpoint,
                    kind="excluded",
                    study=r["study"],
                    cohort=_label(r),
                    start=r["start"],
                    n=r["group_n"],
                    median=r["value"],
                    not_reached=r["not_reached"],
                    median_ci_lb=r["ci_lb"],
                    median_ci_ub=r["ci_ub"],
                    reason=r["reason"],
                    primary=False,
                )
            )
    # The leading columns even when nothing is recorded, so readers can group and filter.
    return pd.DataFrame(out, columns=None if out else ["analysis", "label", "population", "endpoint", "kind"])


# -- hazard ratios -----------------------------------------------------------------------------


def _hr_group(
    spec_id: str, label: str, endpoint: str, rows: pd.DataFrame, spec: HazardRatioAnalysis | None, level: float
) -> tuple[list[dict], Any]:
    base = dict(analysis=spec_id, label=label, endpoint=endpoint)
    rows = rows.sort_values(["year", "study"]).assign(cohort=lambda f: f.apply(_label, axis=1))
    reasons = _superseded_or_overlapping(rows)
    reasons[reasons.isna() & (rows["ci_lb"].isna() | rows["ci_ub"].isna())] = NO_HR_CI
    out, yi, vi, names, printed = [], [], [], [], []
    for idx, r in rows.iterrows():
        row = dict(
            base,
            kind="study",
            study=r["study"],
            cohort=r["cohort"],
            comparison=r["comparison"],
            model=r["model"],
            hr=r["value"],
            hr_ci_lb=r["ci_lb"],
            hr_ci_ub=r["ci_ub"],
            p=r["p_printed"],
        )
        if pd.isna(reasons[idx]):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", AsymmetricIntervalWarning)
                y, v = log_ratio_from_ci(
                    float(r["value"]),
                    float(r["ci_lb"]),
                    float(r["ci_ub"]),
                    level=float(r["ci_level"]) if pd.notna(r["ci_level"]) else level,
                )
            yi.append(y), vi.append(v), names.append(r["cohort"])
            printed.append((float(r["value"]), float(r["ci_lb"]), float(r["ci_ub"])))
            row.update(log_hr=y, se=math.sqrt(v), note="; ".join(str(w.message) for w in caught) or None)
        else:
            row.update(kind="excluded", reason=reasons[idx])
        out.append(row)
    if not yi:
        return out, None
    iv = spec.inverse_variance if spec is not None else None
    method, test, pi = (iv.method, iv.test, iv.pi_method) if iv else ("REML", "knha", "metafor")
    res = rma(
        np.array(yi),
        np.array(vi),
        method=method,
        test=test,
        level=level,
        studies=tuple(names),
        transform="exp",
        pi_method=pi,
    )
    # A study row shows the ratio and interval as the paper printed them; the standard error
    # rebuilt from that interval serves the weights and the pooling only.
    hr, lb, ub = (tuple(col) for col in zip(*printed, strict=True))
    res = replace(res, studies=replace(res.studies, estimate=hr, ci_lb=lb, ci_ub=ub))
    ci_lb, ci_ub, pi_lb, pi_ub = res.reporting_interval()
    models = sorted(set(rows["model"].dropna()))
    note = "univariable and multivariable HRs pooled together" if len(models) > 1 else None
    if res.k == 1:  # shown as printed, not as the Wald interval rebuilt from it
        one = rows[reasons.isna()].iloc[0]
        ci_lb, ci_ub = float(one["ci_lb"]), float(one["ci_ub"])
    out.append(
        dict(
            base,
            kind="pooled" if res.k >= 2 else "single study",
            method=f"generic inverse variance ({method}, {test})" if res.k >= 2 else "not pooled (k = 1)",
            k=res.k,
            hr=res.estimate,
            hr_ci_lb=ci_lb,
            hr_ci_ub=ci_ub,
            pi_lb=pi_lb if res.k >= 2 else None,
            pi_ub=pi_ub if res.k >= 2 else None,
            tau2=res.tau2,
            I2=res.I2,
            studies=";".join(names),
            note=note,
        )
    )
    return out, res


def pool_hazard_ratios(
    tte: pd.DataFrame, specs: tuple[HazardRatioAnalysis, ...], level: float = 0.95
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """results/survival_hazard_ratios.csv and the fits ("analysis | endpoint" -> MetaResult) for plots.

    A hazard ratio no declaration claims is shown as a single study under its own comparison text.
    """
    hrs = tte[tte["kind"] == "hazard_ratio"]
    out, fits, claimed = [], {}, pd.Series(False, index=hrs.index)
    for spec in specs:
        mine = (hrs["population"] == spec.population) & hrs["comparison"].isin(spec.comparisons)
        claimed |= mine
        for endpoint, rows in hrs[mine].groupby("endpoint", sort=True):
            rows_out, res = _hr_group(spec.id, spec.label, endpoint, rows, spec, spec.level)
            out += rows_out
            if res is not None:
                fits[f"{spec.label} | {endpoint}"] = res
    for (comparison, endpoint), rows in hrs[~claimed].groupby(["comparison", "endpoint"], sort=True, dropna=False):
        label = str(comparison) if pd.notna(comparison) else "comparison not stated"
        rows_out, res = _hr_group("(not declared)", label, endpoint, rows, None, level)
        out += rows_out
        if res is not None:
            fits[f"{label} | {endpoint}"] = res
    return pd.DataFrame(out), fits


def survival_tables(records: list[dict[str, Any]], plan: Plan) -> dict[str, Any]:
    """The survival tables of a run, and the hazard-ratio fits for the forest plot."""
    from metaanalysis.review.landmarks import pool_landmarks

    tte = survival_frame(records)
    level = plan.analyses[0].level if plan.analyses else 0.95
    hr, fits = pool_hazard_ratios(tte, plan.hazard_ratios, level)
    return {
        "survival_medians.csv": pool_medians(tte, plan.medians),
        "survival_hazard_ratios.csv": hr,
        "landmarks.csv": pool_landmarks(tte, plan.landmarks),
        "hazard_ratio_fits": fits,
    }
