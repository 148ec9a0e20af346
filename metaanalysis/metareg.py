"""A small mixed-effects meta-regression: `rma(yi, vi, mods = X)` for the two
places this toolkit needs moderators, Egger's test (a regression on the
standard error) and the test for subgroup differences with a common tau^2
(a regression on the group factor).

tau^2 is estimated as metafor 3.8-1 does for `method = "REML"` (or "ML"):
Fisher scoring from the Hedges estimate, step-halving to stay >= 0, stop when
tau^2 changes by less than 1e-5 (at most 100 iterations), then the check that
tau^2 = 0 does not have the larger likelihood. Copying the stopping rule, not
only the estimator, is what makes the numbers agree with metafor to 1e-6.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

THRESHOLD = 1e-5     # metafor control `threshold`: change in tau^2 at which scoring stops
MAXITER = 100        # metafor control `maxiter`
LL_TOL = np.finfo(float).eps ** 0.25   # metafor control `tol`, used in the tau^2 = 0 check


class FisherScoringError(RuntimeError):
    """REML/ML Fisher scoring for tau^2 did not converge."""


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


def _hat(X: np.ndarray, w: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(beta, (X'WX)^-1, P) for weights w; P = W - W X (X'WX)^-1 X' W."""
    XtW = X.T * w
    inv = np.linalg.inv(XtW @ X)
    beta = inv @ (XtW @ y)
    P = np.diag(w) - XtW.T @ inv @ XtW
    return beta, inv, P


def _loglik(y, v, X, tau2, reml: bool) -> float:
    w = 1.0 / (v + tau2)
    beta, _, _ = _hat(X, w, y)
    rss = float(np.sum(w * (y - X @ beta) ** 2))
    k, p = X.shape
    if reml:
        return (-0.5 * (k - p) * math.log(2 * math.pi) - 0.5 * np.sum(np.log(v + tau2))
                - 0.5 * np.linalg.slogdet((X.T * w) @ X)[1] - 0.5 * rss)
    return -0.5 * k * math.log(2 * math.pi) - 0.5 * np.sum(np.log(v + tau2)) - 0.5 * rss


def tau2_fisher_scoring(yi, vi, X, *, method: str = "REML") -> float:
    """tau^2 by metafor's Fisher scoring (REML or ML), starting from the Hedges estimate."""
    y, v, X = np.asarray(yi, float), np.asarray(vi, float), np.asarray(X, float)
    k, p = X.shape
    if k - p < 1:
        raise ValueError(f"{method} needs more studies than coefficients: k = {k}, p = {p}")
    # Hedges (HE) estimate as the starting value: (RSS_ols - tr(P_ols V)) / (k - p).
    P_ols = np.eye(k) - X @ np.linalg.inv(X.T @ X) @ X.T
    tau2 = max(0.0, float((y @ P_ols @ y - np.trace(P_ols @ np.diag(v))) / (k - p)))
    change, it = THRESHOLD + 1, 0
    while change > THRESHOLD:
        it += 1
        old = tau2
        w = 1.0 / (v + tau2)
        _, _, P = _hat(X, w, y)
        PP = P @ P
        if method == "REML":
            adj = float((y @ PP @ y - np.trace(P)) / np.trace(PP))
        else:
            adj = float((y @ PP @ y - w.sum()) / (w ** 2).sum())
        while tau2 + adj < 0:
            adj /= 2
        tau2 = tau2 + adj
        change = abs(old - tau2)
        if it > MAXITER:
            raise FisherScoringError(f"Fisher scoring for tau^2 ({method}) did not converge in {MAXITER} iterations")
    reml = method == "REML"
    if tau2 > THRESHOLD and _loglik(y, v, X, 0.0, reml) - _loglik(y, v, X, tau2, reml) > LL_TOL:
        tau2 = 0.0    # metafor: scoring stuck at a local maximum; tau^2 = 0 is better
    return tau2


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
    beta, vb, _ = _hat(X, w, y)
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
        pval = 2 * stats.t.sf(np.abs(zval), df)
        crit = stats.t.ppf(1 - (1 - level) / 2, df)
        QM = QM / m if m > 0 else 0.0
        QMp = float(stats.f.sf(QM, m, df)) if m > 0 else float("nan")
    w0 = 1.0 / v
    b0, _, _ = _hat(X, w0, y)
    QE = float(np.sum(w0 * (y - X @ b0) ** 2))
    return MetaRegResult(
        method=method, test=test, level=level, k=k, p=p, beta=tuple(map(float, beta)),
        se=tuple(map(float, se)), zval=tuple(map(float, zval)), pval=tuple(map(float, pval)),
        ci_lb=tuple(map(float, beta - crit * se)), ci_ub=tuple(map(float, beta + crit * se)),
        tau2=float(tau2), QM=QM, QM_df=m, QMp=QMp, QE=QE, QEp=float(stats.chi2.sf(QE, k - p)), df=df)


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
