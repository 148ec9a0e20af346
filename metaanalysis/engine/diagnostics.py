"""Sensitivity analyses: leave-one-out and Egger's regression test, as metafor's
`leave1out(rma(yi, vi))` and `regtest(rma(yi, vi))` (model "rma", predictor "sei").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from metaanalysis.engine.batch import fit_rows
from metaanalysis.engine.estimators import ESTIMATORS, ConvergenceError, check_outcomes
from metaanalysis.engine.metareg import rma_mods

LEAVE1OUT_COLUMNS = (
    "study",
    "estimate",
    "se",
    "zval",
    "pval",
    "ci_lb",
    "ci_ub",
    "QE",
    "QEp",
    "tau2",
    "I2",
    "H2",
    "note",
)
# When one study is left, metafor's leave1out() reports the fit with tau^2 = 0, I^2 = 0, H^2 = 1
# (rma fixes tau^2 at 0 for k = 1); rma() here reports None. Use metafor's values and say so.
_ONE_STUDY_NOTE = "one study left: tau2 = 0, I2 = 0, H2 = 1 by convention (as metafor's leave1out)"


@dataclass(frozen=True, slots=True)
class EggerResult:
    """Egger's test as metafor's regtest(): `zval`/`pval` test the slope on the standard error
    (t and `df` = k - 2 under test "knha"); `limit_estimate` is the intercept, the estimate for
    a study of infinite precision; `tau2` is the residual heterogeneity of that regression."""

    zval: float
    pval: float
    slope: float
    slope_se: float
    limit_estimate: float
    tau2: float
    k: int
    method: str
    test: str
    df: int | None = None


def egger_test(yi, vi, *, method: str = "REML", test: str = "z") -> EggerResult:
    """Egger's regression test: rma(yi, vi, mods = ~ sqrt(vi), method, test), slope's z (or t).
    Needs k >= 3 (two coefficients and at least one residual degree of freedom)."""
    y = np.asarray(yi, dtype=float)
    v = np.asarray(vi, dtype=float)
    if len(y) != len(v):
        raise ValueError(f"yi has {len(y)} values but vi has {len(v)}")
    if len(y) < 3:
        raise ValueError(f"Egger's test needs at least 3 studies; got k = {len(y)}")
    if np.any(~np.isfinite(v)) or np.any(v <= 0):
        raise ValueError(
            f"vi must be positive and finite; row(s) {[int(i) + 1 for i in np.flatnonzero(~(v > 0))]} are not"
        )
    X = np.column_stack([np.ones(len(y)), np.sqrt(v)])
    fit = rma_mods(y, v, X, method=method, test=test)
    return EggerResult(
        zval=fit.zval[1],
        pval=fit.pval[1],
        slope=fit.beta[1],
        slope_se=fit.se[1],
        limit_estimate=fit.beta[0],
        tau2=fit.tau2,
        k=fit.k,
        method=method,
        test=test,
        df=fit.df,
    )


def leave1out(
    yi,
    vi,
    *,
    method: str = "REML",
    test: str = "z",
    level: float = 0.95,
    studies=None,
    measure: str = "GEN",
    events=None,
    n=None,
) -> pd.DataFrame:
    """One rma() per omitted study, on the model scale (like metafor's leave1out()).

    Columns: `study` (the one left out), then metafor's leave1out columns with this
    project's names: estimate, se, zval, pval, ci_lb, ci_ub, QE, QEp, tau2, I2, H2.
    With k = 2 each fit has a single study: reported as metafor does (its yi and sqrt(vi),
    QE = 0, QEp = 1, tau2 = 0, I2 = 0, H2 = 1), with the `note` column saying so.
    The k fits are made at once, one row of a k x k mask each (engine/batch.py); `measure`,
    `events` and `n` only label the model scale and are checked for length.
    """
    y, v = check_outcomes(yi, vi)
    k = len(y)
    if k < 2:
        raise ValueError(f"leave-one-out needs at least 2 studies; got k = {k}")
    if method not in ESTIMATORS:
        raise ValueError(f"unknown method {method!r}; expected one of {sorted(ESTIMATORS)}")
    names = [str(s) for s in studies] if studies is not None else [str(i + 1) for i in range(k)]
    if len(names) != k:
        raise ValueError(f"studies has {len(names)} names but there are {k} studies")
    for name, arr in (("events", events), ("n", n)):
        if arr is not None and len(arr) != k:
            raise ValueError(f"{name} has {len(arr)} values but there are {k} studies")
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0 < level < 1:
        raise ValueError(f"'level' must be a fraction strictly between 0 and 1 (e.g. 0.95), got {level!r}")
    fits = fit_rows(y, v, 1.0 - np.eye(k), method=method, test=test, level=level)
    failed = np.flatnonzero(np.isnan(fits["estimate"]))
    if failed.size:
        raise ConvergenceError(
            method,
            "the fit without study(ies) "
            + ", ".join(names[i] for i in failed)
            + " failed (no convergence, or HKSJ with identical estimates)",
        )
    frame = pd.DataFrame({"study": names, **{c: fits[c] for c in LEAVE1OUT_COLUMNS[1:-1]}})
    frame["note"] = np.where(fits["k"] == 1, _ONE_STUDY_NOTE, "")
    return frame[list(LEAVE1OUT_COLUMNS)]


__all__ = ["egger_test", "EggerResult", "leave1out", "LEAVE1OUT_COLUMNS"]
