"""Random-effects (and common-effect) meta-analysis of `yi`, `vi`: metafor's `rma()`.

`rma()` takes effect sizes and nothing else; `rma_effects()` takes the
`EffectSizes` that `escalc()` returns. Both return the frozen `MetaResult`.

Tests of the pooled estimate (`test`):
- "z": Wald test and CI with the normal quantile;
- "knha": Hartung-Knapp-Sidik-Jonkman: variance scaled by
  s2w = sum(w (y - b)^2) / (k - 1), t with k - 1 df (metafor test="knha");
- "knha_adhoc": the same but s2w never below 1, so never narrower than Wald
  (metafor test="adhoc").

Prediction interval (`pi_method`):
- "metafor": b +- crit sqrt(se^2 + tau2), crit the normal quantile under "z"
  and t(k - 1) under the HKSJ tests, as metafor's predict();
- "higgins2009": the same with t(k - 2) (Higgins, Thompson & Spiegelhalter
  2009, J R Stat Soc A 172:137, eq. 12), using the fit's se.
Common-effect (FE) fits have no prediction interval (as in metafor).

Edge cases: k = 1 returns the study itself with a Wald interval (a requested
HKSJ test falls back to "z" with a note, as metafor does), and tau2, Q, I2,
H2 and the prediction interval None with a note. HKSJ with all estimates
identical (residual Q = 0, hence se = 0) raises ValueError rather than report
a zero-width interval.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math

import numpy as np
import scipy
from scipy import stats

from metaanalysis import __version__
from metaanalysis.engine.checks import DefaultLabels, check_effects, is_number
from metaanalysis.engine.effects import MEASURES, EffectSizes
from metaanalysis.engine.estimators import ESTIMATORS, Control, estimate_tau2
from metaanalysis.engine.heterogeneity import i2_h2, i2_h2_fixed, q_test, qprofile_ci
from metaanalysis.engine.pymare_dataset import from_pymare, is_pymare_dataset
from metaanalysis.engine.results import MetaResult
from metaanalysis.engine.study_rows import wald_rows
from metaanalysis.engine.transforms import apply_transform, choose_transform

TESTS = ("z", "knha", "knha_adhoc")
PI_METHODS = ("metafor", "higgins2009")
_EPS = float(np.finfo(float).eps)


def rma(
    yi,
    vi=None,
    *,
    method: str = "REML",
    test: str = "knha",
    level: float = 0.95,
    measure: str = "GEN",
    studies=None,
    events=None,
    n=None,
    pi_method: str = "metafor",
    transform: str | None = None,
    control: Control | None = None,
    study_rows: bool = True,
) -> MetaResult:
    """Fit an intercept-only meta-analysis of `yi` with sampling variances `vi`.

    method: tau^2 estimator, a key of `estimators.ESTIMATORS` (FE = common effect).
    test: "z", "knha" or "knha_adhoc" (see module docstring).
    level: confidence level as a fraction (0.95).
    measure: the scale of `yi` (decides the default back-transformation).
    studies/events/n: labels and counts carried into `studies` rows; `n` is
    required for PFT (inverse Freeman-Tukey needs the sample sizes).
    transform: back-transformation name overriding the measure's default
    (e.g. "exp" for GEN log hazard ratios; "none" for none).
    control: convergence settings (default: metafor's).

    `yi` may also be an intercept-only `pymare.Dataset` (then `vi` is left out): its y, v and n
    are pooled as they are (see `pymare_dataset.py`).
    study_rows: False leaves out the per-study rows (`studies` is None): at k = 100,000 making
    them costs more than the fit.
    """
    if is_pymare_dataset(yi):
        if vi is not None:
            raise ValueError("rma(dataset): the Dataset holds the variances; leave 'vi' out")
        es = from_pymare(yi, measure=measure, studies=studies)
        yi, vi, n = es.yi, es.vi, (es.n if n is None else n)
    elif vi is None:
        raise ValueError("rma() needs 'vi', the sampling variances of 'yi' (or a pymare.Dataset as its first argument)")
    if method not in ESTIMATORS:
        raise ValueError(f"unknown method {method!r}; expected one of {sorted(ESTIMATORS)}")
    if test not in TESTS:
        raise ValueError(f"unknown test {test!r}; expected one of {list(TESTS)}")
    if pi_method not in PI_METHODS:
        raise ValueError(f"unknown pi_method {pi_method!r}; expected one of {list(PI_METHODS)}")
    if measure not in MEASURES:
        raise ValueError(f"unknown measure {measure!r}; expected one of {list(MEASURES)}")
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0 < level < 1:
        raise ValueError(f"'level' must be a fraction strictly between 0 and 1 (e.g. 0.95), got {level!r}")
    control = control or Control()
    y, v, labels = check_effects(yi, vi, studies)
    k = len(y)
    ev = _optional_counts("events", events, labels)
    nn = _optional_counts("n", n, labels)
    transform = choose_transform(measure, transform, nn)
    notes: list[str] = []
    alpha = 1 - level

    if k == 1:
        return _single_study(
            y, v, labels, ev, nn, method, test, level, measure, pi_method, transform, control, study_rows
        )

    tau_fit = estimate_tau2(method, y, v, control=control)
    notes += tau_fit.notes
    tau2 = tau_fit.tau2
    w = 1.0 / (v + tau2)
    b = float(np.sum(w * y) / np.sum(w))
    vb = 1.0 / float(np.sum(w))
    df = k - 1
    if test in ("knha", "knha_adhoc"):
        if method == "FE":
            notes.append(
                "Hartung-Knapp adjustment applied to a common-effect (FE) model, which it is not "
                "meant for (metafor warns likewise)"
            )
        rss = float(np.sum(w * (y - b) ** 2))
        s2w = 0.0 if rss <= _EPS else rss / df
        if test == "knha_adhoc":
            s2w = max(1.0, s2w)
        elif s2w == 0.0:
            raise ValueError(
                "Hartung-Knapp (test='knha') is undefined when all study estimates are identical "
                "(weighted residual sum of squares 0 gives se = 0); use test='knha_adhoc' or 'z'"
            )
        vb *= s2w
        crit = float(stats.t.isf(alpha / 2, df))
    else:
        crit = float(stats.norm.isf(alpha / 2))
    se = math.sqrt(vb)
    zval = b / se
    pval = float(2 * (stats.t.sf(abs(zval), df) if test != "z" else stats.norm.sf(abs(zval))))
    ci_lb, ci_ub = b - crit * se, b + crit * se

    q = q_test(y, v)
    I2, H2 = i2_h2_fixed(q.QE, q.df) if method == "FE" else i2_h2(tau2, q.vt)

    tau2_ci = None
    if method != "FE":
        tau2_ci = qprofile_ci(y, v, tau2, level=level, control=control)
        notes += tau2_ci.notes

    pi_lb = pi_ub = None
    if method == "FE":
        pass  # a common-effect model predicts no spread of true effects
    elif pi_method == "metafor":
        half = crit * math.sqrt(vb + tau2)
        pi_lb, pi_ub = b - half, b + half
    elif k >= 3:
        half = float(stats.t.isf(alpha / 2, k - 2)) * math.sqrt(vb + tau2)
        pi_lb, pi_ub = b - half, b + half
    else:
        notes.append("Higgins (2009) prediction interval needs k >= 3 (t with k - 2 df); not computed")

    bt = _back_transformed(transform, nn, b, ci_lb, ci_ub, pi_lb, pi_ub)
    rows = wald_rows(y, v, 100 * w / np.sum(w), labels, ev, nn, transform, level) if study_rows else None
    return MetaResult(
        measure=measure,
        method=method,
        test=test,
        level=level,
        k=k,
        b=b,
        se=se,
        zval=zval,
        pval=pval,
        ci_lb=ci_lb,
        ci_ub=ci_ub,
        tau2=tau2,
        QE=q.QE,
        QEp=q.QEp,
        I2=I2,
        H2=H2,
        pi_lb=pi_lb,
        pi_ub=pi_ub,
        df=df if test != "z" else None,
        se_tau2=tau_fit.se_tau2,
        tau2_ci_lb=None if tau2_ci is None else tau2_ci.tau2_ci_lb,
        tau2_ci_ub=None if tau2_ci is None else tau2_ci.tau2_ci_ub,
        I2_ci_lb=None if tau2_ci is None else tau2_ci.I2_ci_lb,
        I2_ci_ub=None if tau2_ci is None else tau2_ci.I2_ci_ub,
        pi_method=pi_method if pi_lb is not None else None,
        transform=transform,
        **bt,
        studies=rows,
        notes=tuple(notes),
        provenance=_provenance(
            y, v, labels, ev, nn, method, test, level, measure, pi_method, transform, control, tau_fit.iterations
        ),
    )


def rma_effects(
    es: EffectSizes,
    *,
    method: str = "REML",
    test: str = "knha",
    level: float = 0.95,
    pi_method: str = "metafor",
    transform: str | None = None,
    control: Control | None = None,
) -> MetaResult:
    """`rma()` on the output of `escalc()`, carrying its measure, labels and counts along."""
    return rma(
        es.yi,
        es.vi,
        method=method,
        test=test,
        level=level,
        measure=es.measure,
        studies=es.studies,
        events=es.events,
        n=es.n,
        pi_method=pi_method,
        transform=transform,
        control=control,
    )


# -- pieces ----------------------------------------------------------------------------


def _single_study(y, v, labels, ev, nn, method, test, level, measure, pi_method, transform, control, study_rows=True):
    notes = [
        "heterogeneity not estimable with k = 1: tau^2, Q, I^2, H^2 and the prediction interval "
        "are not reported; the estimate is the study's own"
    ]
    if test != "z":
        notes.append(f"test={test!r} needs k >= 2 (t with k - 1 df); Wald z interval used instead, as metafor does")
    b, se = float(y[0]), math.sqrt(float(v[0]))
    crit = float(stats.norm.isf((1 - level) / 2))
    zval = b / se
    ci_lb, ci_ub = b - crit * se, b + crit * se
    bt = _back_transformed(transform, nn, b, ci_lb, ci_ub, None, None)
    rows = wald_rows(y, v, [100.0], labels, ev, nn, transform, level) if study_rows else None
    return MetaResult(
        measure=measure,
        method=method,
        test="z",
        level=level,
        k=1,
        b=b,
        se=se,
        zval=zval,
        pval=float(2 * stats.norm.sf(abs(zval))),
        ci_lb=ci_lb,
        ci_ub=ci_ub,
        tau2=None,
        QE=None,
        QEp=None,
        I2=None,
        H2=None,
        pi_lb=None,
        pi_ub=None,
        df=None,
        se_tau2=None,
        pi_method=None,
        transform=transform,
        **bt,
        studies=rows,
        notes=tuple(notes),
        provenance=_provenance(y, v, labels, ev, nn, method, test, level, measure, pi_method, transform, control, None),
    )


def _back_transformed(transform, nn, b, ci_lb, ci_ub, pi_lb, pi_ub) -> dict:
    if transform is None:
        return {}

    def f(x: float) -> float:
        return float(apply_transform(transform, x, n=nn))

    lo, hi = sorted((f(ci_lb), f(ci_ub)))
    out = dict(bt_pred=f(b), bt_ci_lb=lo, bt_ci_ub=hi)
    if pi_lb is not None:
        out["bt_pi_lb"], out["bt_pi_ub"] = sorted((f(pi_lb), f(pi_ub)))
    return out


def _optional_counts(name, values, labels):
    if values is None:
        return None
    vals = list(values)
    if len(vals) != len(labels):
        raise ValueError(f"'{name}' has {len(vals)} values but there are {len(labels)} studies")
    out = np.empty(len(vals))
    for i, val in enumerate(vals):
        if not is_number(val) or not math.isfinite(float(val)) or float(val) < 0 or float(val) != round(float(val)):
            raise ValueError(f"study {labels[i]} (index {i}): '{name}' must be a whole number >= 0, got {val!r}")
        out[i] = float(val)
    if name == "n" and np.any(out <= 0):
        i = int(np.argmax(out <= 0))
        raise ValueError(f"study {labels[i]} (index {i}): 'n' must be > 0")
    return out


def _provenance(y, v, labels, ev, nn, method, test, level, measure, pi_method, transform, control, iterations) -> dict:
    # digest of the exact inputs: yi and vi as little-endian float64 bytes (repr of each
    # float took 0.3 s at k = 100,000), counts as int64 bytes, labels joined by NUL
    h = hashlib.sha256()
    for arr in (y, v):
        h.update(np.ascontiguousarray(arr, dtype="<f8").tobytes())
    for name, arr in (("events", ev), ("n", nn)):
        h.update(name.encode() + (b"-" if arr is None else np.asarray(arr, dtype="<i8").tobytes()))
    h.update(b"labels 1..k" if isinstance(labels, DefaultLabels) else "\x00".join(labels).encode())
    digest = h.hexdigest()
    return dict(
        package="metaanalysis",
        version=__version__,
        function="rma",
        method=method,
        test=test,
        level=level,
        measure=measure,
        pi_method=pi_method,
        transform=transform,
        control=dataclasses.asdict(control),
        tau2_iterations=iterations,
        inputs_sha256=digest,
        numpy=np.__version__,
        scipy=scipy.__version__,
        algorithms="metafor 3.8-1 definitions (rma.uni, confint.rma.uni, predict.rma)",
    )


__all__ = ["rma", "rma_effects", "TESTS", "PI_METHODS"]
