"""Influence diagnostics of an intercept-only meta-analysis, as metafor's `influence(rma(yi, vi))`.

For each study i the model is refitted without it (same tau^2 estimator and test), and:

    rstudent  (y_i - b_(-i)) / sqrt(s2w_(-i) (v_i + tau2_(-i)) + Var(b_(-i)))   studentized deleted residual
    dffits    (b - b_(-i)) / sqrt(s2w_(-i) h_i (tau2_(-i) + v_i))
    cook_d    (b - b_(-i))^2 / Var(b)                                          Cook's distance
    cov_r     Var(b_(-i)) / Var(b)                                             covariance ratio
    tau2_del, QE_del                                                           tau^2 and Q without study i
    hat       h_i = w_i / sum(w), w_i = 1 / (v_i + tau2)                       hat value (leverage)
    weight    100 h_i
    dfbetas   (b - b_(-i)) / sqrt(s2w_(-i) / sum_j 1 / (v_j + tau2_(-i)))

s2w is 1 under the Wald test and the Hartung-Knapp scale factor under "knha" (metafor's `s2w`).
`influential` flags a study as metafor's print does: |dffits| > 3 sqrt(1 / (k - 1)), Cook's
distance beyond the median of chi^2(1), hat > 3 / k, or |dfbetas| > 1 (Viechtbauer & Cheung 2010,
Res Synth Methods 1:112).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

INFLUENCE_COLUMNS = (
    "study",
    "rstudent",
    "dffits",
    "cook_d",
    "cov_r",
    "tau2_del",
    "QE_del",
    "hat",
    "weight",
    "dfbetas",
    "influential",
)


def influence(yi, vi, *, method: str = "REML", test: str = "z", studies=None) -> pd.DataFrame:
    """One row per study: metafor's influence() columns (see the module docstring).

    Needs k >= 3 (each refit keeps at least two studies, so tau^2 and Q remain defined).
    """
    from metaanalysis.engine.rma import rma  # the fits come from the one rma()

    y = np.asarray(yi, dtype=float)
    v = np.asarray(vi, dtype=float)
    k = len(y)
    if len(v) != k:
        raise ValueError(f"yi has {k} values but vi has {len(v)}")
    if k < 3:
        raise ValueError(f"influence diagnostics need at least 3 studies (each refit keeps k - 1 >= 2); got k = {k}")
    names = [str(s) for s in studies] if studies is not None else [str(i + 1) for i in range(k)]
    if len(names) != k:
        raise ValueError(f"studies has {len(names)} names but there are {k} studies")

    full = rma(y, v, method=method, test=test, level=0.95)
    tau2 = full.tau2 or 0.0
    w = 1.0 / (v + tau2)
    hat = w / w.sum()
    vb = full.se**2
    rows = []
    for i in range(k):
        keep = np.arange(k) != i
        fit = rma(y[keep], v[keep], method=method, test=test, level=0.95)
        tau2_del = fit.tau2 or 0.0
        vb_del = fit.se**2
        # metafor's s2w: the fit's variance over its Wald variance (1 under test="z")
        s2w = vb_del * float(np.sum(1.0 / (v[keep] + tau2_del))) if test != "z" else 1.0
        diff = full.b - fit.b
        resid = y[i] - fit.b
        rstudent = resid / np.sqrt(v[i] * s2w + vb_del + tau2_del * s2w)
        dffits = diff / np.sqrt(s2w * hat[i] * (tau2_del + v[i]))
        dfbetas = diff / np.sqrt(s2w / float(np.sum(1.0 / (v + tau2_del))))
        rows.append(
            dict(
                study=names[i],
                rstudent=rstudent,
                dffits=dffits,
                cook_d=diff**2 / vb,
                cov_r=vb_del / vb,
                tau2_del=tau2_del,
                QE_del=fit.QE,
                hat=hat[i],
                weight=100 * hat[i],
                dfbetas=dfbetas,
            )
        )
    out = pd.DataFrame(rows)
    out["influential"] = (
        (out["dffits"].abs() > 3 * np.sqrt(1 / (k - 1)))
        | (stats.chi2.cdf(out["cook_d"], df=1) > 0.5)
        | (out["hat"] > 3 / k)
        | (out["dfbetas"].abs() > 1)
    )
    return out[list(INFLUENCE_COLUMNS)]


def baujat(yi, vi, *, method: str = "REML", test: str = "z", studies=None) -> pd.DataFrame:
    """The coordinates of metafor's baujat(): `x` = (y_i - b)^2 / (tau2 + v_i), the study's
    squared Pearson residual (its contribution to heterogeneity); `y` = (b_(-i) - b)^2 / Var(b_(-i)),
    its influence on the pooled result (Baujat et al. 2002, Stat Med 21:2641)."""
    from metaanalysis.engine.rma import rma

    y = np.asarray(yi, dtype=float)
    v = np.asarray(vi, dtype=float)
    k = len(y)
    if k < 3:
        raise ValueError(f"a Baujat plot needs at least 3 studies; got k = {k}")
    names = [str(s) for s in studies] if studies is not None else [str(i + 1) for i in range(k)]
    full = rma(y, v, method=method, test=test, level=0.95)
    rows = []
    for i in range(k):
        keep = np.arange(k) != i
        fit = rma(y[keep], v[keep], method=method, test=test, level=0.95)
        rows.append(
            dict(
                study=names[i],
                x=(y[i] - full.b) ** 2 / ((full.tau2 or 0.0) + v[i]),
                y=(fit.b - full.b) ** 2 / fit.se**2,
            )
        )
    return pd.DataFrame(rows)


def cumulative(
    yi,
    vi,
    *,
    order,
    method: str = "REML",
    test: str = "z",
    level: float = 0.95,
    studies=None,
    measure: str = "GEN",
    events=None,
    n=None,
    pi_method: str = "metafor",
) -> pd.DataFrame:
    """Cumulative meta-analysis (metafor's cumul()): the model refitted as studies are added in
    `order` (e.g. publication year), one row per step on the reporting scale."""
    from metaanalysis.engine.rma import rma

    y = np.asarray(yi, dtype=float)
    v = np.asarray(vi, dtype=float)
    k = len(y)
    names = [str(s) for s in studies] if studies is not None else [str(i + 1) for i in range(k)]
    idx = sorted(range(k), key=lambda i: (order[i], i))  # ties keep the input order, as R's order()
    rows = []
    for step in range(1, k + 1):
        sel = idx[:step]
        fit = rma(
            y[sel],
            v[sel],
            method=method,
            test=test,
            level=level,
            measure=measure,
            studies=[names[j] for j in sel],
            pi_method=pi_method,
            events=None if events is None else [events[j] for j in sel],
            n=None if n is None else [n[j] for j in sel],
        )
        lb, ub, _, _ = fit.reporting_interval()
        rows.append(
            dict(
                added=names[idx[step - 1]],
                order=order[idx[step - 1]],
                k=fit.k,
                estimate=fit.estimate,
                ci_lb=lb,
                ci_ub=ub,
                tau2=fit.tau2,
                I2=fit.I2,
            )
        )
    return pd.DataFrame(rows)


__all__ = ["influence", "baujat", "cumulative", "INFLUENCE_COLUMNS"]
