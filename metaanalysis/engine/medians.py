"""Pooling medians across studies, as the R package metamedian (1.2.1) does.

Median-based methods (no within-study variance needed):
- MM, median of medians (McGrath et al. 2019, Stat Med 38:969): the sample
  median of the study medians; its CI inverts the sign test. With the normal
  approximation (metamedian's default) the bounds are the type-7 sample
  quantiles at 0.5 -+ z / (2 sqrt(k)); the exact version takes the order
  statistics x_(T+1), x_(k-T) with the smallest coverage 1 - 2 P(B <= T) >= level,
  B ~ Bin(k, 1/2).
- WM, weighted median of medians (weights = sample sizes): the same
  probabilities on the weighted quantile function metamedian uses
  (Hmisc::wtd.quantile, type "quantile", normwt = FALSE): with integer weights
  it equals the type-7 quantile of the sample in which each median appears
  n_i times.

Within-study variances of a median, for inverse-variance pooling with `rma()`:
- QE, quantile estimation (McGrath et al. 2020, Biometrical J 62:69; the
  fitting of McGrath et al. 2020, Stat Methods Med Res 29:2520): fit normal,
  log-normal, gamma and Weibull distributions to the printed quantiles
  (S1: min, median, max; S2: q1, median, q3; S3: all five) by least squares
  on the quantiles, keep the family with the smallest objective, and take the
  asymptotic variance of a sample median, 1 / (4 n f(m)^2). Starting values,
  box constraints and optimiser settings are metamedian's (two-group
  convention of estmeansd::qe.fit, R optim L-BFGS-B defaults).
- From a CI of a Kaplan-Meier median (McGrath et al. 2025, arXiv:2503.03065,
  metamedian_survival): the CI is read as a Wald interval, se = (ub - lb) / (2 z);
  with no upper bound (not reached), se = (median - lb) / z.

A median that was not reached has no value: none of these methods can use it,
and callers list such rows as excluded rather than drop them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special, stats

APPROXIMATIONS = ("normal", "exact")
QE_FAMILIES = ("normal", "log-normal", "gamma", "weibull")


@dataclass(frozen=True, slots=True)
class PooledMedian:
    """A median of medians: `method` "MM" or "WM"; `coverage` is the theoretical
    coverage of [ci_lb, ci_ub] (the level itself under the normal approximation)."""

    method: str
    approximation: str
    level: float
    k: int
    estimate: float
    ci_lb: float
    ci_ub: float
    coverage: float
    studies: tuple[str, ...]
    values: tuple[float, ...]
    weights: tuple[float, ...] | None = None


def quantile_type7(x, probs) -> np.ndarray:
    """R's default `quantile(x, probs)` (type 7, linear interpolation between order statistics)."""
    return np.quantile(np.asarray(x, dtype=float), np.asarray(probs, dtype=float), method="linear")


def weighted_quantile(x, weights, probs) -> np.ndarray:
    """Weighted quantiles as Hmisc::wtd.quantile(type = "quantile", normwt = FALSE) computes them.

    Weights are frequencies: with total weight N the p-quantile sits at
    position 1 + (N - 1) p of the expanded sample, interpolated between the
    values holding the positions floor and floor + 1 (a value holds the
    positions up to its cumulative weight).
    """
    x = np.asarray(x, dtype=float)
    w = np.asarray(weights, dtype=float)
    keep = w != 0
    values, inverse = np.unique(x[keep], return_inverse=True)
    cum = np.cumsum(np.bincount(inverse, weights=w[keep]))
    total = cum[-1]
    pos = 1 + (total - 1) * np.asarray(probs, dtype=float)
    low = np.maximum(np.floor(pos), 1)
    high = np.minimum(low + 1, total)
    frac = pos % 1

    def at(position):  # the first value whose cumulative weight reaches the position
        idx = np.searchsorted(cum, position, side="left")
        return values[np.minimum(idx, len(values) - 1)]

    return (1 - frac) * at(low) + frac * at(high)


def median_of_medians(
    yi, *, weights=None, level: float = 0.95, approximation: str = "normal", studies=None
) -> PooledMedian:
    """MM (no `weights`) or WM (`weights` = sample sizes) with its sign-test interval."""
    y = np.asarray(yi, dtype=float)
    k = len(y)
    labels = tuple(studies) if studies is not None else tuple(str(i + 1) for i in range(k))
    if k == 0:
        raise ValueError("median_of_medians: no medians given")
    if len(labels) != k:
        raise ValueError(f"median_of_medians: {len(labels)} study labels for {k} medians")
    bad = [labels[i] for i in range(k) if not math.isfinite(y[i])]
    if bad:
        raise ValueError(
            f"median_of_medians: median missing or not finite for {', '.join(bad)} "
            "(a median not reached has no value and cannot enter)"
        )
    if not 0 < level < 1:
        raise ValueError(f"median_of_medians: 'level' must be a fraction in (0, 1), got {level!r}")
    if approximation not in APPROXIMATIONS:
        raise ValueError(f"median_of_medians: 'approximation' must be one of {APPROXIMATIONS}")
    w = None
    if weights is not None:
        w = np.asarray(weights, dtype=float)
        if len(w) != k:
            raise ValueError(f"median_of_medians: {len(w)} weights for {k} medians")
        bad = [labels[i] for i in range(k) if not (math.isfinite(w[i]) and w[i] > 0)]
        if bad:
            raise ValueError(f"median_of_medians: weight (sample size) missing or not positive for {', '.join(bad)}")
        if approximation == "exact":
            raise ValueError(
                "median_of_medians: the exact sign-test interval is defined for MM only; "
                "use approximation='normal' for WM"
            )
    method = "MM" if w is None else "WM"

    if approximation == "normal":
        half = min(0.5, stats.norm.ppf(0.5 + level / 2) / (2 * math.sqrt(k)))
        probs = [0.5 - half, 0.5, 0.5 + half]
        q = quantile_type7(y, probs) if w is None else weighted_quantile(y, w, probs)
        lb, est, ub, coverage = q[0], q[1], q[2], level
    else:
        t = np.arange(0, k // 2 + 1)
        cover = 1 - 2 * stats.binom.cdf(t, k, 0.5)
        ok = cover >= level
        if not ok.any():
            raise ValueError(
                f"median_of_medians: with k = {k} no exact sign-test interval reaches "
                f"{level:.0%} coverage (at most {cover[0]:.4f})"
            )
        coverage = float(cover[ok].min())
        tt = int(t[ok][np.argmin(cover[ok])])
        s = np.sort(y)
        # [x_(T+1), x_(k-T)] covers the median with probability 1 - 2 P(B <= T).
        # (metamedian 1.2.1's unweighted exact branch takes x_(k-T-1) as the upper bound.)
        lb, est, ub = s[tt], float(np.median(s)), s[k - tt - 1]
    return PooledMedian(
        method,
        approximation,
        level,
        k,
        float(est),
        float(lb),
        float(ub),
        float(coverage),
        labels,
        tuple(map(float, y)),
        None if w is None else tuple(map(float, w)),
    )


# -- within-study variance of a median --------------------------------------------------------


def median_variance_from_ci(median: float, ci_lb: float, ci_ub: float | None, *, level: float = 0.95) -> float:
    """Variance of a Kaplan-Meier median from its printed CI read as a Wald interval
    (McGrath et al. 2025; metamedian_survival): se = (ub - lb) / (2 z), or
    (median - lb) / z when the upper bound was not reached (`ci_ub` None)."""
    z = stats.norm.ppf(0.5 + level / 2)
    if not (math.isfinite(median) and math.isfinite(ci_lb)):
        raise ValueError(f"median_variance_from_ci: median {median!r} and lower bound {ci_lb!r} must be numbers")
    if ci_ub is None or (isinstance(ci_ub, float) and math.isnan(ci_ub)):
        if not ci_lb < median:
            raise ValueError(f"median_variance_from_ci: lower bound {ci_lb} not below the median {median}")
        se = (median - ci_lb) / z
    else:
        if not ci_lb <= median <= ci_ub or ci_lb == ci_ub:
            raise ValueError(f"median_variance_from_ci: median {median} not inside its CI [{ci_lb}, {ci_ub}]")
        se = (ci_ub - ci_lb) / (2 * z)
    return se * se


@dataclass(frozen=True, slots=True)
class QEFit:
    """Distributions fitted to printed quantiles; `family` has the smallest `objective`."""

    scenario: str
    family: str
    parameters: dict[str, tuple[float, float]]
    objective: dict[str, float]
    density_at_median: float


def _quantiles(family: str, theta, probs: np.ndarray) -> np.ndarray:
    """Quantile functions of the QE families (R's qnorm, qlnorm, qgamma with rate, qweibull)."""
    a, b = theta
    if family == "normal":
        return a + b * special.ndtri(probs)
    if family == "log-normal":
        return np.exp(a + b * special.ndtri(probs))
    if family == "gamma":  # shape, rate
        return special.gammaincinv(a, probs) / b
    return b * (-np.log1p(-probs)) ** (1 / a)  # Weibull shape, scale


def _density_at_median(family: str, theta) -> float:
    a, b = theta
    if family == "normal":
        return float(stats.norm.pdf(a, loc=a, scale=b))
    if family == "log-normal":
        return float(stats.lognorm.pdf(math.exp(a), s=b, scale=math.exp(a)))
    if family == "gamma":
        dist = stats.gamma(a, scale=1 / b)
    else:
        dist = stats.weibull_min(a, scale=b)
    return float(dist.pdf(dist.median()))


def _r_lbfgsb(fun, start, bounds):
    """R optim(method = "L-BFGS-B") with its defaults: central differences with step
    1e-3 (kept inside the box), factr = 1e7, pgtol = 0 (a tiny gtol here: scipy 1.17 is slow with 0),
    lmm = 5, maxit = 100."""
    lower = np.array([b[0] for b in bounds])
    upper = np.array([b[1] for b in bounds])

    def grad(x):
        g = np.empty_like(x)
        for i in range(len(x)):
            hi, lo = x.copy(), x.copy()
            hi[i] = min(x[i] + 1e-3, upper[i])
            lo[i] = max(x[i] - 1e-3, lower[i])
            g[i] = (fun(hi) - fun(lo)) / (hi[i] - lo[i])
        return g

    res = optimize.minimize(
        fun,
        np.asarray(start, dtype=float),
        jac=grad,
        method="L-BFGS-B",
        bounds=bounds,
        options={"ftol": 1e7 * np.finfo(float).eps, "gtol": 1e-300, "maxcor": 5, "maxiter": 100, "maxls": 20},
    )
    return res.x, float(res.fun)


def qe_fit(
    *,
    median: float,
    n: int,
    q1: float | None = None,
    q3: float | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
) -> QEFit:
    """Fit the QE candidate families to S1, S2 or S3 summary data (see module docstring)."""
    q1, q3, minimum, maximum = (
        None if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in (q1, q3, minimum, maximum)
    )
    if q1 is not None and q3 is not None and minimum is not None and maximum is not None:
        scenario, probs, given = "S3", [1 / n, 0.25, 0.5, 0.75, 1 - 1 / n], [minimum, q1, median, q3, maximum]
        mu_lo, mu_hi = q1, q3
    elif q1 is not None and q3 is not None:
        scenario, probs, given = "S2", [0.25, 0.5, 0.75], [q1, median, q3]
        mu_lo, mu_hi = q1, q3
    elif minimum is not None and maximum is not None:
        scenario, probs, given = "S1", [1 / n, 0.5, 1 - 1 / n], [minimum, median, maximum]
        mu_lo, mu_hi = minimum, maximum
    else:
        raise ValueError("qe_fit: needs the quartiles (q1, q3), the range (minimum, maximum) or both")
    if not (isinstance(n, (int, np.integer)) and n > 1):
        raise ValueError(f"qe_fit: n must be an integer > 1, got {n!r}")
    quants = np.asarray(given, dtype=float)
    if np.any(np.diff(quants) < 0):
        raise ValueError(f"qe_fit: quantiles {list(quants)} are not in increasing order")
    p = np.asarray(probs)
    starts = {
        "normal": ((median, 1.0), [(mu_lo, mu_hi), (1e-3, 50)]),
        "log-normal": (
            (math.log(median) if median > 0 else 0.0, 1.0),
            [(math.log(mu_lo) if mu_lo > 0 else -np.inf, math.log(mu_hi) if mu_hi > 0 else np.inf), (1e-3, 10)],
        ),
        "gamma": ((1.0, 1.0), [(1e-3, 40), (1e-3, 40)]),
        "weibull": ((1.0, 1.0), [(1e-3, 50), (1e-3, 50)]),
    }
    families = QE_FAMILIES if quants.min() >= 0 else ("normal",)  # negative values: only the normal
    params, values = {}, {}
    for fam in families:
        start, bounds = starts[fam]

        def objective(theta, fam=fam):
            return float(np.sum((_quantiles(fam, theta, p) - quants) ** 2))

        try:
            theta, value = _r_lbfgsb(objective, start, bounds)
        except (ValueError, FloatingPointError):
            continue  # as metamedian: a family that cannot be fitted is not a candidate
        if math.isfinite(value):
            params[fam], values[fam] = (float(theta[0]), float(theta[1])), value
    if not values:
        raise ValueError("qe_fit: no candidate distribution could be fitted")
    best = min(values, key=lambda fam: values[fam])
    return QEFit(scenario, best, params, values, _density_at_median(best, params[best]))


def median_variance_qe(*, median: float, n: int, q1=None, q3=None, minimum=None, maximum=None) -> float:
    """Asymptotic variance of a sample median, 1 / (4 n f(m)^2), with f from `qe_fit`."""
    fit = qe_fit(median=median, n=n, q1=q1, q3=q3, minimum=minimum, maximum=maximum)
    return 0.25 / (fit.density_at_median**2 * n)


__all__ = [
    "PooledMedian",
    "QEFit",
    "median_of_medians",
    "weighted_quantile",
    "quantile_type7",
    "median_variance_from_ci",
    "median_variance_qe",
    "qe_fit",
    "APPROXIMATIONS",
    "QE_FAMILIES",
]
