"""Many intercept-only random-effects fits at once: one row of a 2-D array per dataset.

Leave-one-out, permutation tests and GOSH fit the same model to thousands of variants of
one dataset (a study left out, signs flipped, a subset kept). Rather than call rma() per
variant, every quantity here is a row-wise weighted sum over a (datasets x studies)
array, with a 0/1 mask `M` saying which studies each row holds. Without moderators the
residual-maker P is a weighted centring, so (as in projection.py) every trace metafor
writes with P is such a sum.

The estimators repeat metafor 3.8-1's algorithms row by row, with the same start,
step halving and stopping rule per row (a row stops iterating when its own tau^2 change
is below the threshold, exactly as a single fit would), so each row equals the fit
rma() makes of that dataset to rounding. A row whose fit fails (no convergence, HKSJ
with a zero residual) is NaN, as metafor's gosh() and permutest() record NA.
PM solves a root per row with R's uniroot iterates; it runs row by row (estimators.py).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from metaanalysis.engine.estimators import Control, ConvergenceError, estimate_tau2

_EPS = float(np.finfo(float).eps)
BATCH_METHODS = ("FE", "DL", "HE", "HS", "SJ", "ML", "REML", "EB", "PM")


class _Sums:
    """Row-wise weighted centring for weights w (rows x studies; 0 = study not in the row)."""

    def __init__(self, w: np.ndarray):
        self.w = w
        self.W = w.sum(axis=1)
        self.W2 = np.einsum("ij,ij->i", w, w)

    def mean(self, y):
        return np.einsum("ij,ij->i", self.w, y) / self.W

    def quad(self, y):
        """y'Py = sum w (y - weighted mean)^2."""
        r = y - self.mean(y)[:, None]
        return np.einsum("ij,ij->i", self.w, r * r)

    def Py(self, y):
        return self.w * (y - self.mean(y)[:, None])

    def trace(self):
        return self.W - self.W2 / self.W

    def trace_pp(self):
        """tr(P^2) = sum w^2 - 2 sum w^3 / W + (sum w^2 / W)^2."""
        W3 = np.einsum("ij,ij->i", self.w, self.w * self.w)
        return self.W2 - 2.0 * W3 / self.W + (self.W2 / self.W) ** 2


def _he_raw(yc, V, M, n):
    s = _Sums(M)  # OLS: unit weights on the row's studies
    trpv = np.einsum("ij,ij->i", M, V) * (1.0 - 1.0 / n)
    return (s.quad(yc) - trpv) / (n - 1)


def _fisher(method, yc, V, M, n, control: Control):
    tau2 = np.maximum(np.maximum(0.0, _he_raw(yc, V, M, n)), control.tau2_min)
    active = np.ones(len(tau2), bool)
    failed = np.zeros(len(tau2), bool)
    iteration = 0
    while active.any():
        iteration += 1
        rows = np.flatnonzero(active)
        m, v, y, t = M[rows], V[rows], yc[rows], tau2[rows]
        w = m / (v + t[:, None])
        s = _Sums(w)
        if method == "ML":
            Py = s.Py(y)
            adj = (np.einsum("ij,ij->i", Py, Py) - s.W) / s.W2
        elif method == "REML":
            Py = s.Py(y)
            adj = (np.einsum("ij,ij->i", Py, Py) - s.trace()) / s.trace_pp()
        else:  # EB
            k = n[rows]
            adj = (s.quad(y) * k / (k - 1) - k) / s.W
        adj = adj * control.stepadj
        low = t + adj < control.tau2_min
        while low.any():  # step halving keeps tau^2 in bounds
            adj = np.where(low, adj / 2, adj)
            low = t + adj < control.tau2_min
        new = t + adj
        change = np.abs(t - new)
        tau2[rows] = new
        done = change <= control.threshold
        if iteration > control.maxiter:  # as estimators.py: past maxiter the fit has failed
            failed[rows] = True
            done[:] = True
        active[rows[done]] = False
    return tau2, failed


def _loglik(method, yc, V, M, n, tau2):
    w = M / (V + tau2[:, None])
    s = _Sums(w)
    logv = np.einsum("ij,ij->i", M, np.log(V + tau2[:, None]))
    if method == "ML":
        return -0.5 * n * np.log(2 * np.pi) - 0.5 * logv - 0.5 * s.quad(yc)
    return -0.5 * (n - 1) * np.log(2 * np.pi) - 0.5 * logv - 0.5 * np.log(s.W) - 0.5 * s.quad(yc)


def tau2_rows(method: str, Y, V, M, control: Control | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(tau^2 per row, failed per row) for rows of at least two studies (others: 0)."""
    control = control or Control()
    n = M.sum(axis=1)
    multi = n > 1
    tau2 = np.zeros(len(n))
    failed = np.zeros(len(n), bool)
    if method == "FE" or not multi.any():
        return tau2, failed
    idx = np.flatnonzero(multi)
    Ym, Vm, Mm, nm = Y[idx], V[idx], M[idx], n[idx]
    yc = (Ym - (np.einsum("ij,ij->i", Mm, Ym) / nm)[:, None]) * Mm  # metafor centres yi first
    if method == "DL":
        s = _Sums(Mm / Vm)
        t = np.maximum(control.tau2_min, (s.quad(yc) - (nm - 1)) / s.trace())
    elif method == "HE":
        t = np.maximum(control.tau2_min, _he_raw(yc, Vm, Mm, nm))
    elif method == "HS":
        s = _Sums(Mm / Vm)
        t = np.maximum(control.tau2_min, (s.quad(yc) - nm) / s.W)
    elif method == "SJ":
        tau0 = np.einsum("ij,ij->i", Mm, yc * yc) / nm
        s = _Sums(Mm / (Vm + tau0[:, None]))
        t = np.maximum(control.tau2_min, tau0 * s.quad(yc) / (nm - 1))
    elif method in ("ML", "REML", "EB"):
        t, bad = _fisher(method, yc, Vm, Mm, nm, control)
        if method != "EB":  # metafor's check that tau^2 = 0 is not more likely
            check = (t > control.threshold) & ~bad
            ll0 = _loglik(method, yc, Vm, Mm, nm, np.zeros(len(t)))
            llt = _loglik(method, yc, Vm, Mm, nm, t)
            t = np.where(check & (ll0 - llt > control.tol), 0.0, t)
        t = np.maximum(control.tau2_min, t)
        failed[idx] = bad
    elif method == "PM":
        t = np.empty(len(idx))
        for j in range(len(idx)):
            keep = Mm[j] > 0
            try:
                t[j] = estimate_tau2("PM", Ym[j, keep], Vm[j, keep], control=control).tau2
            except ConvergenceError:
                t[j] = np.nan
                failed[idx[j]] = True
    else:
        raise ValueError(f"unknown tau^2 estimator {method!r}; expected one of {list(BATCH_METHODS)}")
    tau2[idx] = t
    return tau2, failed


def fit_rows(
    Y,
    V,
    M=None,
    *,
    method: str = "REML",
    test: str = "z",
    level: float = 0.95,
    control: Control | None = None,
    i2_from_q: bool = False,
) -> dict[str, np.ndarray]:
    """rma(yi, vi, method, test) for every row: arrays k, estimate, se, zval, pval, ci_lb,
    ci_ub, tau2, QE, QEp, I2, H2 (NaN where the row's fit failed). Y and V are
    (rows x studies) or one row broadcast against M. A row with one study reports that
    study (Wald z, tau2 = 0, QE = 0, QEp = 1, I2 = 0, H2 = 1, as rma and metafor do).
    `i2_from_q`: I2 and H2 from Q as for FE (metafor's gosh() does this for DL fits)."""
    if method not in BATCH_METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {list(BATCH_METHODS)}")
    if test not in ("z", "knha", "knha_adhoc"):
        raise ValueError(f"unknown test {test!r}; expected 'z', 'knha' or 'knha_adhoc'")
    Y, V = np.atleast_2d(np.asarray(Y, float)), np.atleast_2d(np.asarray(V, float))
    M = np.ones(np.broadcast_shapes(Y.shape, V.shape)) if M is None else np.asarray(M, float)
    Y, V = np.broadcast_to(Y, M.shape), np.broadcast_to(V, M.shape)
    n = M.sum(axis=1)
    if np.any(n < 1):
        raise ValueError("every row needs at least one study")
    tau2, failed = tau2_rows(method, Y, V, M, control)
    w = M / (V + tau2[:, None])
    s = _Sums(w)
    b = s.mean(Y)
    vb = 1.0 / s.W
    df = n - 1
    single = n == 1
    alpha = 1 - level
    with np.errstate(divide="ignore", invalid="ignore"):
        if test == "z":
            crit = np.full(len(n), stats.norm.isf(alpha / 2))
        else:
            rss = s.quad(Y)
            s2w = np.where(rss <= _EPS, 0.0, rss / df)
            if test == "knha_adhoc":
                s2w = np.maximum(1.0, s2w)
            else:
                failed |= (s2w == 0.0) & ~single  # rma() refuses HKSJ with a zero residual
            vb = np.where(single, vb, vb * s2w)
            crit = np.where(single, stats.norm.isf(alpha / 2), stats.t.isf(alpha / 2, np.maximum(df, 1)))
        se = np.sqrt(vb)
        zval = b / se
        use_t = (test != "z") & ~single
        pval = np.where(use_t, 2 * stats.t.sf(np.abs(zval), np.maximum(df, 1)), 2 * stats.norm.sf(np.abs(zval)))
        yc = (Y - (np.einsum("ij,ij->i", M, Y) / n)[:, None]) * M
        s0 = _Sums(M / V)
        QE = np.maximum(0.0, s0.quad(yc))
        QEp = stats.chi2.sf(QE, np.maximum(df, 1))
        if method == "FE" or i2_from_q:
            I2 = np.where(QE > 0, np.maximum(0.0, 100 * (QE - df) / QE), 0.0)
            H2 = QE / df
        else:
            vt = df / s0.trace()
            I2 = 100 * tau2 / (vt + tau2)
            H2 = tau2 / vt + 1
    QE, QEp, I2, H2 = (np.where(single, fill, a) for a, fill in ((QE, 0.0), (QEp, 1.0), (I2, 0.0), (H2, 1.0)))
    out = dict(
        k=n.astype(int),
        estimate=b,
        se=se,
        zval=zval,
        pval=pval,
        ci_lb=b - crit * se,
        ci_ub=b + crit * se,
        tau2=tau2,
        QE=QE,
        QEp=QEp,
        I2=I2,
        H2=H2,
    )
    for key in out:
        if key != "k":
            out[key] = np.where(failed, np.nan, out[key])
    return out


__all__ = ["fit_rows", "tau2_rows", "BATCH_METHODS"]
