"""Many meta-regressions `rma(yi, vi, mods = X_b)` at once, one design matrix per fit.

A permutation test of a moderator (metafor's permutest() with `mods`) refits the model to
1,000 row orders of the design; one rma_mods() call each cost about 5 ms, most of it Python
overhead around p x p algebra, and the review runs such a test for every analysis. Here the
designs are stacked (fits x studies x coefficients) and every step of `estimators.py`'s
Fisher scoring is taken for all fits together, with the same start (truncated Hedges), step
halving and stopping rule per fit (a fit stops when its own tau^2 change is below the
threshold), the same tau^2 = 0 check for a local maximum and the same QR-based traces as
`projection.Projection`. So each fit equals rma_mods() of its design to rounding; a fit that
does not converge is NaN, as metafor's permutest() records NA.
"""

from __future__ import annotations

import numpy as np

from metaanalysis.engine.estimators import Control

_EPS = float(np.finfo(float).eps)
DESIGN_METHODS = ("FE", "ML", "REML")


class _Stacked:
    """P = W - W X (X'WX)^-1 X'W for a stack of weights (B x k) and designs (B x k x p)."""

    def __init__(self, w: np.ndarray, X: np.ndarray):
        self.w = w
        self.s = np.sqrt(w)
        self.Q = np.linalg.qr(self.s[:, :, None] * X, mode="reduced")[0]
        self.h = np.einsum("bkp,bkp->bk", self.Q, self.Q)

    def _r(self, y: np.ndarray) -> np.ndarray:
        sy = self.s * y
        return sy - np.einsum("bkp,bp->bk", self.Q, np.einsum("bkp,bk->bp", self.Q, sy))

    def residual(self, y):
        return self.s * self._r(y)

    def quad(self, y):
        r = self._r(y)
        return np.einsum("bk,bk->b", r, r)

    def trace(self):
        return self.w.sum(axis=1) - np.einsum("bk,bk->b", self.w, self.h)

    def trace_pd(self, d):
        return np.sum(self.w * (1.0 - self.h) * d, axis=1)

    def trace_pp(self):
        w = self.w
        qwq = np.einsum("bkp,bk,bkq->bpq", self.Q, w, self.Q)
        return np.sum(w * w, axis=1) - 2.0 * np.sum(w * w * self.h, axis=1) + np.sum(qwq * qwq, axis=(1, 2))


def _fisher(method: str, yc, v, X, control: Control):
    B, k, p = X.shape
    ones = np.ones((B, k))
    P1 = _Stacked(ones, X)
    he = (P1.quad(yc) - P1.trace_pd(v)) / (k - p)
    tau2 = np.maximum(np.maximum(0.0, he), control.tau2_min)
    active = np.ones(B, bool)
    failed = np.zeros(B, bool)
    iteration = 0
    while active.any():
        iteration += 1
        rows = np.flatnonzero(active)
        t = tau2[rows]
        w = 1.0 / (v[rows] + t[:, None])
        P = _Stacked(w, X[rows])
        Py = P.residual(yc[rows])
        pypy = np.einsum("bk,bk->b", Py, Py)
        if method == "ML":
            adj = (pypy - w.sum(axis=1)) / np.sum(w * w, axis=1)
        else:
            adj = (pypy - P.trace()) / P.trace_pp()
        adj = adj * control.stepadj
        low = t + adj < control.tau2_min
        while low.any():
            adj = np.where(low, adj / 2, adj)
            low = t + adj < control.tau2_min
        new = t + adj
        change = np.abs(t - new)
        tau2[rows] = new
        done = change <= control.threshold
        if iteration > control.maxiter:
            failed[rows[~done]] = True
            done[:] = True
        active[rows[done]] = False
    return tau2, failed


def _log_lik(method: str, yc, v, X, tau2):
    B, k, p = X.shape
    w = 1.0 / (v + tau2[:, None])
    rss = _Stacked(w, X).quad(yc)
    logv = np.sum(np.log(v + tau2[:, None]), axis=1)
    if method == "ML":
        return -0.5 * k * np.log(2 * np.pi) - 0.5 * logv - 0.5 * rss
    logdet = np.linalg.slogdet(np.einsum("bkp,bk,bkq->bpq", X, w, X))[1]
    return -0.5 * (k - p) * np.log(2 * np.pi) - 0.5 * logv - 0.5 * logdet - 0.5 * rss


def fit_designs(yi, vi, designs, *, method: str = "REML", test: str = "z", control: Control | None = None):
    """rma_mods(yi, vi, X_b, method, test) for every design X_b of `designs` (B x k x p, first
    column the intercept). Returns dict(beta, zval (B x p), QM, tau2 (B), failed (B)); the
    rows of a failed fit are NaN. QM tests every coefficient but the intercept (for `knha`,
    divided by its df, as metafor's F)."""
    if method not in DESIGN_METHODS:
        raise ValueError(f"method = {method!r}: expected one of {list(DESIGN_METHODS)}")
    if test not in ("z", "knha"):
        raise ValueError(f"test = {test!r} must be 'z' or 'knha'")
    control = control or Control()
    y, v = np.asarray(yi, float), np.asarray(vi, float)
    X = np.asarray(designs, float)
    B, k, p = X.shape
    Y, V = np.broadcast_to(y, (B, k)), np.broadcast_to(v, (B, k))
    if method == "FE":
        tau2, failed = np.zeros(B), np.zeros(B, bool)
    else:
        yc = Y - y.mean()  # as estimate_tau2: the outcomes centred at their mean
        tau2, failed = _fisher(method, yc, V, X, control)
        check = np.flatnonzero(~failed & (tau2 > control.threshold))
        if check.size:  # metafor's guard: tau^2 = 0 when it has the higher likelihood
            at0 = _log_lik(method, yc[check], V[check], X[check], np.zeros(check.size))
            at = _log_lik(method, yc[check], V[check], X[check], tau2[check])
            tau2[check[at0 - at > control.tol]] = 0.0
        tau2 = np.maximum(control.tau2_min, tau2)
    w = 1.0 / (V + tau2[:, None])
    XtW = np.swapaxes(X, 1, 2) * w[:, None, :]
    vb = np.linalg.inv(XtW @ X)
    beta = np.einsum("bpq,bq->bp", vb, np.einsum("bpk,bk->bp", XtW, Y))
    if test == "knha":
        resid = Y - np.einsum("bkp,bp->bk", X, beta)
        rss = np.sum(w * resid * resid, axis=1)
        vb = vb * np.where(rss > _EPS, rss / (k - p), 0.0)[:, None, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        se = np.sqrt(np.diagonal(vb, axis1=1, axis2=2))
        zval = beta / se
        m = p - 1
        if m > 0:
            b2 = beta[:, 1:]
            QM = np.einsum("bp,bp->b", b2, np.linalg.solve(vb[:, 1:, 1:], b2[:, :, None])[:, :, 0])
            QM = QM / m if test == "knha" else QM
        else:
            QM = np.zeros(B)
    beta, zval, QM = (np.where(failed[:, None] if a.ndim == 2 else failed, np.nan, a) for a in (beta, zval, QM))
    return dict(beta=beta, zval=zval, QM=QM, tau2=np.where(failed, np.nan, tau2), failed=failed)


__all__ = ["fit_designs", "DESIGN_METHODS"]
