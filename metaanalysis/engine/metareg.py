"""A small mixed-effects meta-regression: `rma(yi, vi, mods = X)` for the two
places this toolkit needs moderators, Egger's test (a regression on the
standard error) and the test for subgroup differences with a common tau^2
(a regression on the group factor).

tau^2 comes from the same estimator as every other fit (`estimators.py`):
metafor 3.8-1's Fisher scoring for REML/ML, with its start, stopping rule and
tau^2 = 0 check, which is what makes the numbers agree with metafor to 1e-6.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from metaanalysis.engine.estimators import ConvergenceError, estimate_tau2

# Kept as a name for callers; the estimator raises ConvergenceError.
FisherScoringError = ConvergenceError


@dataclass(frozen=True, slots=True)
class MetaRegResult:
    """Coefficients of `yi ~ X` with a random effect; QM tests all coefficients but the
    intercept (the first column of X must be the intercept), as metafor's default `btt`."""

    method: str
    test: str
    level: float
    k: int
    p: int
    beta: tuple[float, ...]
    se: tuple[float, ...]
    zval: tuple[float, ...]
    pval: tuple[float, ...]
    ci_lb: tuple[float, ...]
    ci_ub: tuple[float, ...]
    tau2: float
    QM: float
    QM_df: int
    QMp: float
    QE: float
    QEp: float
    df: int | None = None


def _hat(X: np.ndarray, w: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(beta, (X'WX)^-1) for weights w, in O(k p^2) (no k x k matrix)."""
    XtW = X.T * w
    inv = np.linalg.inv(XtW @ X)
    beta = inv @ (XtW @ y)
    return beta, inv


def tau2_fisher_scoring(yi, vi, X, *, method: str = "REML") -> float:
    """tau^2 for `yi ~ X` by metafor's Fisher scoring: the shared estimator of
    `estimators.py` (same start, stopping rule and tau^2 = 0 check as rma())."""
    return estimate_tau2(method, yi, vi, X=np.asarray(X, float)).tau2


def rma_mods(yi, vi, X, *, method: str = "REML", test: str = "z", level: float = 0.95) -> MetaRegResult:
    """Mixed-effects meta-regression of `yi` on the columns of `X` (first column: intercept).

    method: "REML", "ML" or "FE" (tau^2 = 0). test: "z" (Wald) or "knha" (t and F with
    k - p df, vb scaled by the weighted residual mean square, as metafor)."""
    if method not in ("REML", "ML", "FE"):
        raise ValueError(f"method = {method!r}: rma_mods supports 'REML', 'ML' and 'FE'")
    if test not in ("z", "knha"):
        raise ValueError(f"test = {test!r} must be 'z' or 'knha'")
    y, v, X = np.asarray(yi, float), np.asarray(vi, float), np.asarray(X, float)
    if X.ndim != 2 or X.shape[0] != len(y) or len(v) != len(y):
        raise ValueError(f"shapes do not match: {len(y)} yi, {len(v)} vi, X {X.shape}")
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(v)) and np.all(np.isfinite(X))):
        raise ValueError("yi, vi and X must be finite numbers")
    if np.any(v <= 0):
        raise ValueError(f"vi must be positive; row(s) {[int(i) + 1 for i in np.flatnonzero(v <= 0)]} are not")
    if not np.allclose(X[:, 0], 1.0):
        raise ValueError("the first column of X must be the intercept (all ones)")
    k, p = X.shape
    if np.linalg.matrix_rank(X) < p:
        raise ValueError("X is rank deficient: some moderators are collinear")
    if k - p < 1:
        raise ValueError(f"too few studies for {p} coefficients: k = {k}")
    tau2 = 0.0 if method == "FE" else tau2_fisher_scoring(y, v, X, method=method)
    w = 1.0 / (v + tau2)
    beta, vb = _hat(X, w, y)
    df = None
    if test == "knha":
        rss = float(np.sum(w * (y - X @ beta) ** 2))
        vb = vb * (rss / (k - p) if rss > np.finfo(float).eps else 0.0)
        df = k - p
    se = np.sqrt(np.diag(vb))
    zval = beta / se
    m = p - 1
    b2, V2 = beta[1:], vb[1:, 1:]
    QM = float(b2 @ np.linalg.solve(V2, b2)) if m > 0 else 0.0
    if test == "z":
        pval = 2 * stats.norm.sf(np.abs(zval))
        crit = stats.norm.ppf(1 - (1 - level) / 2)
        QMp = float(stats.chi2.sf(QM, m)) if m > 0 else float("nan")
    else:
        pval = 2 * stats.t.sf(np.abs(zval), k - p)
        crit = stats.t.ppf(1 - (1 - level) / 2, k - p)
        QM = QM / m if m > 0 else 0.0
        QMp = float(stats.f.sf(QM, m, k - p)) if m > 0 else float("nan")
    w0 = 1.0 / v
    b0, _ = _hat(X, w0, y)
    QE = float(np.sum(w0 * (y - X @ b0) ** 2))
    return MetaRegResult(
        method=method,
        test=test,
        level=level,
        k=k,
        p=p,
        beta=tuple(map(float, beta)),
        se=tuple(map(float, se)),
        zval=tuple(map(float, zval)),
        pval=tuple(map(float, pval)),
        ci_lb=tuple(map(float, beta - crit * se)),
        ci_ub=tuple(map(float, beta + crit * se)),
        tau2=float(tau2),
        QM=QM,
        QM_df=m,
        QMp=QMp,
        QE=QE,
        QEp=float(stats.chi2.sf(QE, k - p)),
        df=df,
    )


def factor_design(groups) -> tuple[np.ndarray, list[str]]:
    """Intercept plus treatment-coded dummies, levels in order of first appearance
    (the reference level is the first group seen). Returns (X, levels)."""
    levels = list(dict.fromkeys(str(g) for g in groups))
    g = [str(x) for x in groups]
    X = np.ones((len(g), len(levels)))
    for j, lev in enumerate(levels[1:], start=1):
        X[:, j] = [1.0 if x == lev else 0.0 for x in g]
    return X, levels


__all__ = ["rma_mods", "MetaRegResult", "tau2_fisher_scoring", "factor_design", "FisherScoringError"]
