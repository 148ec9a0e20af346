"""Landmark survival rates (e.g. 12-month OS) by regimen class.

A Kaplan-Meier rate is not events/n: censoring makes the binomial variance
wrong. So a rate enters a model only with the confidence interval the paper
printed, converted to a logit-scale variance (generic inverse variance, then
the same REML + Hartung-Knapp-Sidik-Jonkman model as other outcomes). A rate
without a CI is listed with that reason; no variance is ever invented for it.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from metaanalysis.living.analyses import Landmark
from metaanalysis.engine.rma import rma

NO_CI = "no confidence interval printed: variance unknown, not pooled"


def logit_variance_from_ci(percent_lb: float, percent_ub: float, level: float) -> float:
    """Variance on the logit scale from a CI printed in percent (assumed symmetric on that scale)."""
    lb, ub = percent_lb / 100, percent_ub / 100
    if not (0 < lb < ub < 1):
        raise ValueError(f"CI [{percent_lb}, {percent_ub}] % cannot be placed on the logit scale")
    z = stats.norm.ppf(0.5 + level / 2)
    return ((np.log(ub / (1 - ub)) - np.log(lb / (1 - lb))) / (2 * z)) ** 2


def pool_landmarks(tte: pd.DataFrame, landmarks: tuple[Landmark, ...]) -> pd.DataFrame:
    """One row per landmark, regimen class and study-or-pooled estimate, with reasons."""
    out = []
    rates = tte[tte["kind"] == "landmark"] if len(tte) else tte
    for spec in landmarks:
        sel = rates[(rates["population"] == spec.population) & (rates["endpoint"] == spec.endpoint)
                    & (rates["months"].astype(float) == spec.months)] if len(rates) else rates
        for cls, rows in sel.groupby("regimen_class", sort=True):
            base = dict(landmark=spec.id, population=spec.population, endpoint=spec.endpoint,
                        months=spec.months, regimen_class=cls)
            live = rows[rows["superseded_by"].isna()] if "superseded_by" in rows else rows
            for _, r in rows.drop(live.index).iterrows():
                out.append(dict(base, kind="study", study=r["study"], percent=r["percent"],
                                reason=f"superseded by {r['superseded_by']}"))
            with_ci = live[live["ci_lb"].notna() & live["ci_ub"].notna()]
            for _, r in live.drop(with_ci.index).iterrows():
                out.append(dict(base, kind="study", study=r["study"], percent=r["percent"],
                                ci_lb=None, ci_ub=None, reason=NO_CI))
            for _, r in with_ci.iterrows():
                out.append(dict(base, kind="study", study=r["study"], percent=r["percent"],
                                ci_lb=r["ci_lb"], ci_ub=r["ci_ub"], reason=None))
            if len(with_ci) >= 2:
                yi = np.log(with_ci["percent"] / (100 - with_ci["percent"])).to_numpy(float)
                vi = np.array([logit_variance_from_ci(a, b, spec.level)
                               for a, b in zip(with_ci["ci_lb"], with_ci["ci_ub"])])
                iv = spec.inverse_variance
                res = rma(yi, vi, method=iv.method, test=iv.test, level=spec.level, measure="PLO",
                          studies=tuple(with_ci["study"]), pi_method=iv.pi_method)
                ci_lb, ci_ub, pi_lb, pi_ub = res.reporting_interval()
                out.append(dict(base, kind="pooled", study=";".join(with_ci["study"]), k=res.k,
                                percent=100 * res.estimate, ci_lb=100 * ci_lb, ci_ub=100 * ci_ub,
                                pi_lb=100 * pi_lb, pi_ub=100 * pi_ub, tau2=res.tau2, I2=res.I2,
                                method=f"{iv.method}, {iv.test}", reason=None))
    return pd.DataFrame(out)
