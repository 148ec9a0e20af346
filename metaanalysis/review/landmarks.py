"""Landmark survival rates (e.g. 12-month OS) by regimen class.

A Kaplan-Meier rate S is pooled on the complementary log-log scale, where its
sampling distribution is closest to normal and every back-transformed value
stays in (0, 1). The model sees x = -log(-log S) (the cloglog value with its
sign flipped so that intervals keep their order; the fit is the same) and runs
the generic inverse-variance model of the other outcomes (REML + HKSJ).

The variance of x comes, in this order of preference, from
- the CI the paper printed, read as symmetric on this scale:
  var = ((x(ub) - x(lb)) / (2 z))^2 ("printed CI");
- the cohort size the paper printed, by the binomial approximation
  var(S) = S (1 - S) / n and the delta method, var(x) = var(S) / (S log S)^2
  ("binomial approximation, n = ..."). It treats every patient as followed to the
  landmark: with censoring the true variance is larger, so these rows are flagged
  and a sensitivity row pools the printed-CI rows alone.
A rate with neither is listed with that reason; no variance is ever invented.
Whole-cohort rows and strata (subgroups) are not regimen classes and are listed
as such; superseded reports and overlapping cohorts follow `pooling`'s rules.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from metaanalysis.engine.rma import rma
from metaanalysis.review.analyses import Landmark
from metaanalysis.review.pooling import overlap_reasons

NO_PRECISION = "neither a CI nor the cohort size printed: variance unknown, not pooled"
PRINTED_CI = "printed CI"
BINOMIAL = "binomial approximation (ignores censoring; understates the variance)"


def loglog(survival: float) -> float:
    """x = -log(-log S) for S in (0, 1)."""
    if not 0 < survival < 1:
        raise ValueError(f"a survival rate of {survival:.1%} has no complementary log-log value")
    return -math.log(-math.log(survival))


def loglog_variance_from_ci(percent_lb: float, percent_ub: float, level: float) -> float:
    """Variance of -log(-log S) from a CI printed in percent (assumed symmetric on that scale)."""
    lb, ub = percent_lb / 100, percent_ub / 100
    if not (0 < lb < ub < 1):
        raise ValueError(f"CI [{percent_lb}, {percent_ub}] % cannot be placed on the complementary log-log scale")
    z = stats.norm.ppf(0.5 + level / 2)
    return ((loglog(ub) - loglog(lb)) / (2 * z)) ** 2


def loglog_variance_binomial(percent: float, n: int) -> float:
    """Delta-method variance of -log(-log S) from the binomial variance S (1 - S) / n."""
    s = percent / 100
    if not 0 < s < 1:
        raise ValueError(f"a survival rate of {percent} % has no complementary log-log value")
    return (s * (1 - s) / n) / (s * math.log(s)) ** 2


def logit_variance_from_ci(percent_lb: float, percent_ub: float, level: float) -> float:
    """Variance on the logit scale from a CI printed in percent (the former scale; kept for comparison)."""
    lb, ub = percent_lb / 100, percent_ub / 100
    if not (0 < lb < ub < 1):
        raise ValueError(f"CI [{percent_lb}, {percent_ub}] % cannot be placed on the logit scale")
    z = stats.norm.ppf(0.5 + level / 2)
    return ((np.log(ub / (1 - ub)) - np.log(lb / (1 - lb))) / (2 * z)) ** 2


def _precision(row, level: float) -> tuple[float | None, str | None, str | None]:
    """(variance, where it came from, reason it could not be had)."""
    pct = float(row["percent"])
    if not 0 < pct < 100:
        return None, None, f"a rate of {pct:g} % has no complementary log-log value (no variance on this scale)"
    if pd.notna(row["ci_lb"]) and pd.notna(row["ci_ub"]):
        lvl = float(row["ci_level"]) if pd.notna(row.get("ci_level")) else level
        return loglog_variance_from_ci(float(row["ci_lb"]), float(row["ci_ub"]), lvl), PRINTED_CI, None
    if pd.notna(row.get("group_n")):
        return loglog_variance_binomial(pct, int(row["group_n"])), f"{BINOMIAL}, n = {int(row['group_n'])}", None
    return None, None, NO_PRECISION


def _fit(rows: pd.DataFrame, spec: Landmark, base: dict, variant: str) -> dict:
    iv = spec.inverse_variance
    yi = [loglog(p / 100) for p in rows["percent"].astype(float)]
    res = rma(
        yi,
        rows["vi"].to_numpy(float),
        method=iv.method,
        test=iv.test,
        level=spec.level,
        measure="GEN",
        transform="iloglog",
        studies=tuple(rows["study"]),
        pi_method=iv.pi_method,
    )
    ci_lb, ci_ub, pi_lb, pi_ub = res.reporting_interval()
    pct = lambda v: None if v is None else 100 * v  # noqa: E731
    return dict(
        base,
        kind="pooled",
        variant=variant,
        study=";".join(rows["study"]),
        k=res.k,
        percent=pct(res.estimate),
        ci_lb=pct(ci_lb),
        ci_ub=pct(ci_ub),
        pi_lb=pct(pi_lb),
        pi_ub=pct(pi_ub),
        tau2=res.tau2,
        I2=res.I2,
        method=f"{iv.method}, {iv.test}, cloglog",
        variance_from="; ".join(sorted(set(rows["variance_from"].str.split(",").str[0]))),
        reason=None,
    )


def pool_landmarks(tte: pd.DataFrame, landmarks: tuple[Landmark, ...]) -> pd.DataFrame:
    """One row per landmark, regimen class and study-or-pooled estimate, with reasons.

    `tte` is `studies.time_to_event_table` output; a `group_n` column (the
    row's own cohort size, see `survival.survival_frame`) enables the binomial
    approximation, without it only printed CIs count.
    """
    out = []
    rates = tte[tte["kind"] == "landmark"] if len(tte) else tte
    for spec in landmarks:
        sel = (
            rates[
                (rates["population"] == spec.population)
                & (rates["endpoint"] == spec.endpoint)
                & (rates["months"].astype(float) == spec.months)
            ]
            if len(rates)
            else rates
        )
        for cls, rows in sel.groupby("regimen_class", sort=True):
            base = dict(
                landmark=spec.id,
                population=spec.population,
                endpoint=spec.endpoint,
                months=spec.months,
                regimen_class=cls,
            )
            reasons = pd.Series(None, index=rows.index, dtype=object)
            reasons[rows["role"].fillna("treatment") != "treatment"] = "whole-cohort row, not a regimen class"
            reasons[reasons.isna() & rows["subgroup"].notna()] = "stratum of an arm (subgroup), not an arm"
            sup = reasons.isna() & rows["superseded_by"].notna()
            reasons[sup] = "superseded by " + rows.loc[sup, "superseded_by"].astype(str)
            live = rows[reasons.isna()].assign(n=rows.get("group_n", pd.Series(pd.NA, index=rows.index)))
            for study, why in overlap_reasons(live).items():
                reasons[reasons.isna() & (rows["study"] == study)] = why
            entered = []
            for idx, r in rows.iterrows():
                row = dict(
                    base,
                    kind="study",
                    variant="primary",
                    study=r["study"],
                    arm=r["arm"],
                    percent=r["percent"],
                    ci_lb=r["ci_lb"],
                    ci_ub=r["ci_ub"],
                    n=r.get("group_n"),
                )
                if pd.isna(reasons[idx]):
                    vi, source, why = _precision(r, spec.level)
                    reasons[idx] = why
                    if vi is not None:
                        entered.append(dict(r, vi=vi, variance_from=source))
                        row.update(variance_from=source, se=math.sqrt(vi))
                out.append(dict(row, reason=None if pd.isna(reasons[idx]) else reasons[idx]))
            entered = pd.DataFrame(entered)
            if len(entered) >= 2:
                out.append(_fit(entered, spec, base, "primary"))
                printed = entered[entered["variance_from"] == PRINTED_CI]
                if len(printed) != len(entered):
                    if len(printed) >= 2:
                        out.append(_fit(printed, spec, base, "printed CIs only"))
                    else:
                        out.append(
                            dict(
                                base,
                                kind="pooled",
                                variant="printed CIs only",
                                k=len(printed),
                                reason="fewer than two rates with a printed CI",
                            )
                        )
    return pd.DataFrame(out)
