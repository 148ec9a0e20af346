"""Heterogeneity statistics: Q test, I^2, H^2, and the Q-profile CI of tau^2 (and of I^2).

Definitions follow metafor 3.8-1 (R/rma.uni.r, R/confint.rma.uni.r):
- QE = y'Py with weights 1/vi, on k - p degrees of freedom.
- s^2 (the "typical" within-study variance) = (k - p) / tr(P).
- random-effects models: I2 = 100 tau2 / (s^2 + tau2), H2 = tau2 / s^2 + 1,
  so both depend on the tau^2 estimator; FE: I2 = max(0, 100 (QE - df) / QE),
  H2 = QE / df.
- Q-profile CI (Viechtbauer 2007): the tau^2 values at which the generalised
  Q equals the chi^2(k - p) quantiles, searched over [0, max(100, 10 tau2)]
  with R's uniroot tolerance, so that limits agree with metafor's confint().
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from metaanalysis.engine.estimators import (
    Control,
    brent_root,
    check_outcomes,
    design,
    intercept_only,
    q_statistic,
    typical_variance,
)
from metaanalysis.engine.projection import InterceptSums

# confint.rma.uni() searches with uniroot(tol = eps^0.25, maxiter = 1000)
_QP_MAXITER = 1000


@dataclass(frozen=True, slots=True)
class QTest:
    """Cochran's Q with its df and p-value, and metafor's typical within-study variance `vt`."""

    QE: float
    df: int
    QEp: float
    vt: float


@dataclass(frozen=True, slots=True)
class Tau2Interval:
    """Q-profile limits for tau^2 and the matching I^2 / H^2 limits, with notes on bounds hit."""

    tau2_ci_lb: float
    tau2_ci_ub: float
    I2_ci_lb: float
    I2_ci_ub: float
    H2_ci_lb: float
    H2_ci_ub: float
    notes: tuple[str, ...] = ()


def q_test(yi, vi, *, X: np.ndarray | None = None) -> QTest:
    """Cochran's Q (weights 1/vi), its chi^2 p-value on k - p df, and s^2."""
    yi, vi = check_outcomes(yi, vi)
    X = design(len(yi), X)
    k, p = X.shape
    if k <= p:
        raise ValueError(f"Q test needs more studies than coefficients (k = {k}, p = {p})")
    if intercept_only(X):  # weighted sums in reused work space
        with InterceptSums(yi, vi) as sums:
            QE = max(0.0, sums.q(0.0))
            vt = (k - 1) / sums.trace(0.0)
        return QTest(QE, k - 1, float(stats.chi2.sf(QE, k - 1)), vt)
    QE = max(0.0, q_statistic(yi - yi.mean(), 1.0 / vi, X))
    return QTest(QE, k - p, float(stats.chi2.sf(QE, k - p)), typical_variance(vi, X))


def i2_h2(tau2: float, vt: float) -> tuple[float, float]:
    """(I2 in percent, H2) for a random-effects tau^2 and metafor's typical variance s^2."""
    return 100 * tau2 / (vt + tau2), tau2 / vt + 1


def i2_h2_fixed(QE: float, df: int) -> tuple[float, float]:
    """(I2, H2) for a common-effect (FE) model, from Q: I2 = max(0, 100 (Q - df) / Q), H2 = Q / df."""
    I2 = max(0.0, 100 * (QE - df) / QE) if QE > 0 else 0.0
    return I2, QE / df


def qprofile_ci(
    yi, vi, tau2: float, *, X: np.ndarray | None = None, level: float = 0.95, control: Control | None = None
) -> Tau2Interval:
    """Q-profile confidence interval for tau^2 (Viechtbauer 2007), as metafor's confint().

    `tau2` is the point estimate; it only sets the upper end of the search,
    max(100, 10 tau2), as in metafor. A limit equal to that end means the
    search hit the bound: the number is kept (so it matches metafor) and a
    note says the limit is not estimable. If Q(0) is already below the lower
    chi^2 quantile, the interval is the null set {0} (both limits 0, noted).
    """
    yi, vi = check_outcomes(yi, vi)
    X = design(len(yi), X)
    k, p = X.shape
    if k <= p:
        raise ValueError(f"Q-profile CI needs more studies than coefficients (k = {k}, p = {p})")
    control = control or Control()
    tau2_min = min(control.tau2_min, tau2)
    tau2_max = max(100.0, 10 * tau2, 10 * tau2_min)
    alpha = 1 - level
    crit_u = float(stats.chi2.isf(alpha / 2, k - p))  # Q at the lower limit
    crit_l = float(stats.chi2.ppf(alpha / 2, k - p))  # Q at the upper limit

    # no moderators: Q is a weighted sum of squares, from three weighted sums of the studies
    # taken with reused buffers (the two Brent searches evaluate it ~25 times)
    sums = InterceptSums(yi, vi, squares=True) if intercept_only(X) else None

    def q_at(t: float) -> float:
        return sums.q(t) if sums is not None else q_statistic(yi, 1.0 / (vi + t), X)

    q_min, q_max = q_at(tau2_min), q_at(tau2_max)
    notes: list[str] = []
    pct = f"{level * 100:g}%"

    # upper limit
    if q_min < crit_l:
        lb = ub = tau2_min
        notes.append(
            f"Q-profile {pct} CI for tau^2 is the null set: Q({tau2_min:g}) = {q_min:.4g} is already "
            f"below the chi^2 quantile {crit_l:.4g}; both limits reported as {tau2_min:g}"
        )
    else:
        if q_max > crit_l:
            ub = tau2_max
            notes.append(
                f"upper limit of the {pct} CI for tau^2 (and I^2) is not estimable: the Q-profile "
                f"search hit its bound tau^2 = {tau2_max:g} (metafor prints this bound)"
            )
        else:
            ub = brent_root(
                lambda t: q_at(t) - crit_l,
                tau2_min,
                tau2_max,
                tol=control.tol,
                maxiter=_QP_MAXITER,
                f_lower=q_min - crit_l,
                f_upper=q_max - crit_l,
                name="Q-profile upper limit",
            )
        # lower limit
        if q_max > crit_u:
            lb = ub = tau2_max
            notes.append(f"Q-profile {pct} CI for tau^2 lies entirely above the search bound {tau2_max:g}")
        elif q_min < crit_u:
            lb = tau2_min
        else:
            lb = brent_root(
                lambda t: q_at(t) - crit_u,
                tau2_min,
                tau2_max,
                tol=control.tol,
                maxiter=_QP_MAXITER,
                f_lower=q_min - crit_u,
                f_upper=q_max - crit_u,
                name="Q-profile lower limit",
            )
    vt = (k - p) / sums.trace(0.0) if sums is not None else typical_variance(vi, X)
    if sums is not None:
        sums.close()
    I2_lb, H2_lb = i2_h2(lb, vt)
    I2_ub, H2_ub = i2_h2(ub, vt)
    return Tau2Interval(lb, ub, I2_lb, I2_ub, H2_lb, H2_ub, tuple(notes))


__all__ = ["QTest", "Tau2Interval", "q_test", "i2_h2", "i2_h2_fixed", "qprofile_ci"]
