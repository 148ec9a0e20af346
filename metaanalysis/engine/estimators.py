"""Estimators of the between-study variance tau^2, as metafor 3.8-1 defines them.

One function per estimator, registered in `ESTIMATORS` (adding an estimator
is one entry). Every estimator takes the outcomes, their sampling variances
and a design matrix `X` (intercept only unless a meta-regression passes
moderators), and returns a `Tau2Fit`.

Why we replicate metafor's iterations rather than solve to machine precision:
metafor stops Fisher scoring (ML, REML, EB) when tau^2 changes by less than
1e-5, and finds the PM root and the Q-profile limits with R's `uniroot()` at
tolerance eps^0.25 (1.2e-4, absolute). Those stopping rules leave metafor's
printed tau^2 up to ~1e-4 away from the exact root (2 % for the BCG risk
difference under PM), so an exact solver cannot agree with metafor at 1e-6.
We therefore run the same algorithms with the same starting values and
stopping rules (`Control`, metafor's defaults), which reproduces metafor to
~1e-14. Pass a tighter `Control(threshold=..., tol=...)` for the exact root;
tests/test_rma_edge_cases.py checks that scipy's exact root lies within
metafor's own tolerance of ours.

pymare (0.0.13) and statsmodels (0.15.0) compute some of the same
quantities (DL exactly; REML and PM to their own optimiser tolerances), but
not se(tau^2), the Q-profile CI, nor metafor's stopping points, and pymare's
defaults changed between releases (Knapp-Hartung by default since 0.0.11).
So they are not a runtime source of numbers here; the tests pin them against
ours with every option passed explicitly, so a change in either shows up.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from metaanalysis.engine.projection import InterceptSums, Projection

_EPS = float(np.finfo(float).eps)


class ConvergenceError(RuntimeError):
    """An iterative tau^2 (or CI) search did not converge; `estimator` names it."""

    def __init__(self, estimator: str, message: str):
        super().__init__(f"{estimator}: {message}")
        self.estimator = estimator


@dataclass(frozen=True, slots=True)
class Control:
    """Convergence settings, named and defaulted as metafor's `rma(control=list(...))`.

    threshold: Fisher scoring (ML, REML, EB) stops when tau^2 changes less than this.
    tol: tolerance of the Brent root search (PM estimator), as R's uniroot(tol=).
    maxiter: iterations allowed for Fisher scoring and the PM root search.
    tau2_min: lower bound for tau^2 (estimates below it are truncated to it).
    tau2_max: upper end of the PM search; None = metafor's max(100, 10 * mad(yi)^2).
    stepadj: Fisher scoring step multiplier.
    """

    threshold: float = 1e-5
    tol: float = _EPS**0.25
    maxiter: int = 100
    tau2_min: float = 0.0
    tau2_max: float | None = None
    stepadj: float = 1.0


@dataclass(frozen=True, slots=True)
class Tau2Fit:
    """tau^2 estimate, its standard error (None where metafor gives none), iterations used."""

    method: str
    tau2: float
    se_tau2: float | None
    iterations: int | None = None
    notes: tuple[str, ...] = ()


# -- linear algebra shared by the estimators --------------------------------------


def check_outcomes(yi, vi) -> tuple[np.ndarray, np.ndarray]:
    """yi, vi as float arrays, or ValueError naming the index and field (callers may bypass rma())."""
    yi = np.asarray(yi, dtype=float).ravel()
    vi = np.asarray(vi, dtype=float).ravel()
    if yi.shape != vi.shape:
        raise ValueError(f"'yi' has {yi.size} values but 'vi' has {vi.size}")
    if yi.size == 0:
        raise ValueError("no studies: 'yi' is empty")
    # one pass each when all is well: a finite sum has only finite terms, and min(vi) > 0 says the rest
    if math.isfinite(float(yi.sum())) and math.isfinite(float(vi.sum())) and float(vi.min()) > 0:
        return yi, vi
    for name, arr in (("yi", yi), ("vi", vi)):
        bad = np.flatnonzero(~np.isfinite(arr))
        if bad.size:
            raise ValueError(f"index {bad[0]}: '{name}' must be finite, got {arr[bad[0]]!r}")
    bad = np.flatnonzero(vi <= 0)
    if bad.size:
        raise ValueError(f"index {bad[0]}: 'vi' must be > 0, got {vi[bad[0]]!r}")
    return yi, vi


def design(k: int, X: np.ndarray | None = None) -> np.ndarray:
    """The design matrix: a column of ones unless moderators are given."""
    if X is None:  # a read-only column of ones, without allocating k of them
        return np.broadcast_to(np.ones((1, 1)), (k, 1))
    X = np.asarray(X, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    if X.shape[0] != k:
        raise ValueError(f"design matrix has {X.shape[0]} rows but there are {k} studies")
    if not np.all(np.isfinite(X)):
        raise ValueError("design matrix contains non-finite values")
    if np.linalg.matrix_rank(X) < X.shape[1]:
        raise ValueError("design matrix is not of full rank (redundant moderators)")
    return X


def intercept_only(X: np.ndarray) -> bool:
    """X is a single column of ones (no moderators): every P-sum is then a weighted sum."""
    return X.shape[1] == 1 and float(X.min()) == 1.0 == float(X.max())


def q_statistic(yi: np.ndarray, wi: np.ndarray, X: np.ndarray) -> float:
    """Generalised Q: the weighted residual sum of squares y'Py with weights `wi`."""
    return Projection(wi, X).quad(yi)


def typical_variance(vi: np.ndarray, X: np.ndarray) -> float:
    """metafor's 'typical' within-study variance s^2 = (k - p) / tr(P), P with weights 1/vi.

    I2 = 100 tau2 / (tau2 + s^2) and H2 = tau2 / s^2 + 1 use it.
    """
    k, p = X.shape
    if intercept_only(X):  # tr(P) = sum w - sum w^2 / sum w, w = 1 / vi
        w = 1.0 / vi
        W = float(w.sum())
        return (k - p) / (W - float(w @ w) / W)
    return (k - p) / Projection(1.0 / vi, X).trace()


def mad(y: np.ndarray) -> float:
    """Median absolute deviation with R's consistency constant 1.4826 (R `mad()`)."""
    return 1.4826 * float(np.median(np.abs(y - np.median(y))))


def brent_root(
    f: Callable[[float], float],
    lower: float,
    upper: float,
    *,
    tol: float,
    maxiter: int,
    f_lower: float | None = None,
    f_upper: float | None = None,
    name: str = "root search",
) -> float:
    """Root of `f` in [lower, upper] by Brent's method (Brent 1973, ch. 4, procedure `zero`).

    This is the algorithm of R's uniroot(), with its stopping rule
    |step| <= 2 eps |b| + tol / 2, so that with metafor's `tol` we stop at the
    same iterate as metafor does (see the module docstring for why).
    """
    fa = f(lower) if f_lower is None else f_lower
    fb = f(upper) if f_upper is None else f_upper
    if fa * fb > 0:
        raise ConvergenceError(name, f"no sign change between {lower:g} and {upper:g}")
    a, b = lower, upper
    if fa == 0:
        return a
    if fb == 0:
        return b
    c, fc = a, fa
    for _ in range(maxiter + 1):
        prev_step = b - a
        if abs(fc) < abs(fb):  # keep b the best approximation
            a, b, c = b, c, b
            fa, fb, fc = fb, fc, fb
        tol_act = 2 * _EPS * abs(b) + tol / 2
        new_step = (c - b) / 2
        if abs(new_step) <= tol_act or fb == 0:
            return b
        if abs(prev_step) >= tol_act and abs(fa) > abs(fb):
            # try interpolation: secant if only two points, else inverse quadratic
            cb = c - b
            if a == c:
                t1 = fb / fa
                p = cb * t1
                q = 1.0 - t1
            else:
                q, t1, t2 = fa / fc, fb / fc, fb / fa
                p = t2 * (cb * q * (q - t1) - (b - a) * (t1 - 1.0))
                q = (q - 1.0) * (t1 - 1.0) * (t2 - 1.0)
            if p > 0:
                q = -q
            else:
                p = -p
            if p < (0.75 * cb * q - abs(tol_act * q) / 2) and p < abs(prev_step * q / 2):
                new_step = p / q
        if abs(new_step) < tol_act:
            new_step = tol_act if new_step > 0 else -tol_act
        a, fa = b, fb
        b += new_step
        fb = f(b)
        if (fb > 0 and fc > 0) or (fb < 0 and fc < 0):
            c, fc = a, fa
    raise ConvergenceError(name, f"Brent root search did not converge in {maxiter} iterations")


# -- the estimators -------------------------------------------------------------------
# Each takes (yc, vi, X, control): yc the centred outcomes (metafor estimates
# tau^2 from mean-centred yi; identical to using yi when X has an intercept).


def _fe(yc, vi, X, control: Control) -> Tau2Fit:
    return Tau2Fit("FE", 0.0, None)


def _dl(yc, vi, X, control: Control) -> Tau2Fit:
    """DerSimonian-Laird: (Q - (k - p)) / tr(P), truncated at tau2_min."""
    k, p = X.shape
    P = Projection(1.0 / vi, X)
    trP = P.trace()
    tau2 = max(control.tau2_min, (P.quad(yc) - (k - p)) / trP)
    se = math.sqrt((2 * (k - p) + 4 * tau2 * trP + 2 * tau2**2 * P.trace_pdp()) / trP**2)
    return Tau2Fit("DL", tau2, se)


def _he_start(yc, vi, X) -> float:
    """The Hedges value `_he_raw` computes, without forming P when there are no moderators:
    OLS residuals are then deviations from the mean and tr(P V) = (1 - 1/k) sum v."""
    k, p = X.shape
    if not intercept_only(X):
        return _he_raw(yc, vi, X)[0]
    m = float(yc.sum()) / k
    rss = float(yc @ yc) - k * m * m  # yc is centred already: m is rounding error
    return (rss - (1.0 - 1.0 / k) * float(vi.sum())) / (k - 1)


def _he_raw(yc, vi, X) -> tuple[float, Projection]:
    """Hedges (Hedges-Olkin) method-of-moments value before truncation, and the OLS P."""
    k, p = X.shape
    P = Projection(np.ones(k), X)
    return (P.quad(yc) - P.trace_pd(vi)) / (k - p), P


def _he(yc, vi, X, control: Control) -> Tau2Fit:
    """Hedges: (RSS_OLS - tr(P V)) / (k - p), truncated at tau2_min."""
    k, p = X.shape
    raw, P = _he_raw(yc, vi, X)
    tau2 = max(control.tau2_min, raw)
    se = math.sqrt((2 * P.trace_pdpd(vi) + 4 * tau2 * P.trace_pd(vi) + 2 * tau2**2 * (k - p)) / (k - p) ** 2)
    return Tau2Fit("HE", tau2, se)


def _hs(yc, vi, X, control: Control) -> Tau2Fit:
    """Hunter-Schmidt: (Q - k) / sum(w), w = 1/vi, truncated at tau2_min."""
    k, p = X.shape
    w = 1.0 / vi
    P = Projection(w, X)
    tau2 = max(control.tau2_min, (P.quad(yc) - k) / float(w.sum()))
    se = math.sqrt((2 * (k - p) + 4 * tau2 * P.trace() + 2 * tau2**2 * P.trace_pdp()) / float(w.sum()) ** 2)
    return Tau2Fit("HS", tau2, se)


def _sj(yc, vi, X, control: Control) -> Tau2Fit:
    """Sidik-Jonkman: one step from tau0 = mean((y - ybar)^2): tau0 * Q(tau0) / (k - p)."""
    k, p = X.shape
    tau0 = float(np.mean(yc**2))
    P = Projection(1.0 / (vi + tau0), X)
    tau2 = max(control.tau2_min, tau0 * P.quad(yc) / (k - p))
    se = math.sqrt(
        tau0**2 / (k - p) ** 2 * (2 * P.trace_pdpd(vi) + 4 * tau2 * P.trace_pdp(vi) + 2 * tau2**2 * P.trace_pdp())
    )
    return Tau2Fit("SJ", tau2, se)


def _pm(yc, vi, X, control: Control) -> Tau2Fit:
    """Paule-Mandel: the tau^2 at which generalised Q equals k - p (0 if Q(0) < k - p)."""
    k, p = X.shape
    target = k - p
    tau2_max = control.tau2_max if control.tau2_max is not None else max(100.0, 10 * mad(yc) ** 2)

    def excess(t: float) -> float:
        return q_statistic(yc, 1.0 / (vi + t), X) - target

    f_min = excess(control.tau2_min)
    if f_min < 0:
        tau2 = control.tau2_min
    else:
        f_max = excess(tau2_max)
        if f_max > 0:
            raise ConvergenceError("PM", f"Q({tau2_max:g}) still exceeds k - p: raise Control.tau2_max")
        tau2 = brent_root(
            excess,
            control.tau2_min,
            tau2_max,
            tol=control.tol,
            maxiter=control.maxiter,
            f_lower=f_min,
            f_upper=f_max,
            name="PM",
        )
    tau2 = max(control.tau2_min, tau2)
    return Tau2Fit("PM", tau2, _se_moment(vi, tau2, k, p))


def _se_moment(vi, tau2, k, p) -> float:
    """se of tau^2 that metafor reports for EB and PM: sqrt(2 k^2 / (k - p) / sum(w)^2)."""
    w = 1.0 / (vi + tau2)
    return math.sqrt(2 * k**2 / (k - p) / float(w.sum()) ** 2)


def _fisher_scoring(method: str, yc, vi, X, control: Control, sums: InterceptSums | None = None) -> tuple[float, int]:
    """metafor's Fisher scoring for ML, REML and EB, started at the (truncated) HE estimate."""
    k, p = X.shape
    tau2 = max(0.0, _he_start(yc, vi, X), control.tau2_min)
    change = control.threshold + 1
    iteration = 0
    if sums is None and intercept_only(X):
        sums = InterceptSums(yc, vi, centred=True)
    while change > control.threshold:
        iteration += 1
        old = tau2
        if sums is not None:  # the same step from weighted sums (one pass over the studies)
            t = sums.reml_terms(tau2)
            if method == "ML":
                adj = (t["pypy"] - t["W"]) / t["W2"]
            elif method == "REML":
                adj = (t["pypy"] - t["trace"]) / t["trace_pp"]
            else:  # EB: yc'Py = Q
                adj = (t["q"] * k / (k - p) - k) / t["W"]
        else:
            w = 1.0 / (vi + tau2)
            P = Projection(w, X)
            Py = P.residual(yc)
            if method == "ML":
                adj = (float(Py @ Py) - float(w.sum())) / float(np.sum(w**2))
            elif method == "REML":
                adj = (float(Py @ Py) - P.trace()) / P.trace_pdp()
            else:  # EB
                adj = (float(yc @ Py) * k / (k - p) - k) / float(w.sum())
        adj *= control.stepadj
        while tau2 + adj < control.tau2_min:  # step halving keeps tau^2 in bounds
            adj /= 2
        tau2 = tau2 + adj
        change = abs(old - tau2)
        if iteration > control.maxiter:
            raise ConvergenceError(
                method,
                f"Fisher scoring did not converge in {control.maxiter} iterations "
                f"(last change {change:.3g}); try Control(stepadj=0.5, maxiter=1000)",
            )
    return tau2, iteration


def _log_lik(method: str, yc, vi, X, tau2: float, sums: InterceptSums | None = None) -> float:
    """ML or REML log-likelihood (the |X'X| constant omitted: it cancels in comparisons)."""
    k, p = X.shape
    if sums is not None:  # intercept only: rss = Q, X'WX = sum w
        _, W, rss = sums.mean(tau2)
        logv = sums.log_sum(tau2)
        if method == "ML":
            return -0.5 * k * math.log(2 * math.pi) - 0.5 * logv - 0.5 * rss
        return -0.5 * (k - p) * math.log(2 * math.pi) - 0.5 * logv - 0.5 * math.log(W) - 0.5 * rss
    w = 1.0 / (vi + tau2)
    rss = Projection(w, X).quad(yc)
    if method == "ML":
        return -0.5 * k * math.log(2 * math.pi) - 0.5 * float(np.sum(np.log(vi + tau2))) - 0.5 * rss
    logdet = np.linalg.slogdet(X.T @ (X * w[:, None]))[1]
    return -0.5 * (k - p) * math.log(2 * math.pi) - 0.5 * float(np.sum(np.log(vi + tau2))) - 0.5 * logdet - 0.5 * rss


def _likelihood_fit(method: str, yc, vi, X, control: Control, sums: InterceptSums | None) -> Tau2Fit:
    k, p = X.shape
    tau2, iterations = _fisher_scoring(method, yc, vi, X, control, sums)
    notes: tuple[str, ...] = ()
    # metafor's guard against Fisher scoring stopping at a local maximum:
    # if tau^2 = 0 has a higher likelihood, it reports tau^2 = 0.
    if method in ("ML", "REML") and tau2 > control.threshold:
        if _log_lik(method, yc, vi, X, 0.0, sums) - _log_lik(method, yc, vi, X, tau2, sums) > control.tol:
            notes = (
                f"{method}: Fisher scoring may have stopped at a local maximum; tau^2 set to 0 "
                "(higher likelihood), as metafor does",
            )
            tau2 = 0.0
    tau2 = max(control.tau2_min, tau2)
    if method == "EB":
        se = _se_moment(vi, tau2, k, p)
    elif sums is not None:
        t = sums.reml_terms(tau2)
        se = math.sqrt(2 / (t["W2"] if method == "ML" else t["trace_pp"]))
    else:
        w = 1.0 / (vi + tau2)
        se = math.sqrt(2 / (float(np.sum(w**2)) if method == "ML" else Projection(w, X).trace_pdp()))
    return Tau2Fit(method, tau2, se, iterations, notes)


def _likelihood(method: str):
    def estimate(yc, vi, X, control: Control) -> Tau2Fit:
        sums = InterceptSums(yc, vi, centred=True) if intercept_only(X) else None
        try:
            return _likelihood_fit(method, yc, vi, X, control, sums)
        finally:
            if sums is not None:
                sums.close()

    estimate.__name__ = f"_{method.lower()}"
    estimate.__doc__ = f"{method} by Fisher scoring (metafor's algorithm, start and stopping rule)."
    return estimate


# name -> estimator; metafor's names. A new estimator is one entry here.
ESTIMATORS: dict[str, Callable[..., Tau2Fit]] = {
    "FE": _fe,
    "DL": _dl,
    "HE": _he,
    "HS": _hs,
    "SJ": _sj,
    "ML": _likelihood("ML"),
    "REML": _likelihood("REML"),
    "EB": _likelihood("EB"),
    "PM": _pm,
}


def estimate_tau2(method: str, yi, vi, *, X: np.ndarray | None = None, control: Control | None = None) -> Tau2Fit:
    """Estimate tau^2 with `method` (a key of ESTIMATORS) for outcomes `yi`, variances `vi`.

    `yi`, `vi` must already be validated (finite, vi > 0); `X` defaults to an
    intercept. Needs k > p (one more study than coefficients) except for FE.
    """
    if method not in ESTIMATORS:
        raise ValueError(f"unknown tau^2 estimator {method!r}; expected one of {sorted(ESTIMATORS)}")
    yi, vi = check_outcomes(yi, vi)
    X = design(len(yi), X)
    k, p = X.shape
    if method != "FE" and k <= p:
        raise ValueError(f"{method}: estimating tau^2 needs more studies than coefficients (k = {k}, p = {p})")
    control = control or Control()
    yc = yi - yi.mean()
    return ESTIMATORS[method](yc, vi, X, control)


__all__ = [
    "ESTIMATORS",
    "Control",
    "Tau2Fit",
    "ConvergenceError",
    "estimate_tau2",
    "brent_root",
    "check_outcomes",
    "design",
    "q_statistic",
    "intercept_only",
    "typical_variance",
    "mad",
]
