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
from collections.abc import Sequence

import numpy as np
import scipy
from scipy import stats

from metaanalysis import __version__
from metaanalysis.engine.effects import MEASURES, EffectSizes
from metaanalysis.engine.estimators import ESTIMATORS, Control, estimate_tau2
from metaanalysis.engine.heterogeneity import i2_h2, i2_h2_fixed, q_test, qprofile_ci
from metaanalysis.engine.results import MetaResult, StudyRows
from metaanalysis.engine.transforms import TRANSFORMS, apply_transform, default_transform, ipft

TESTS = ("z", "knha", "knha_adhoc")
PI_METHODS = ("metafor", "higgins2009")
_EPS = float(np.finfo(float).eps)


def rma(
    yi,
    vi,
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
    study_rows: False leaves out the per-study rows (`studies` is None): at k = 100,000 making
    them costs more than the fit.
    """
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
    y, v, labels = _validate(yi, vi, studies)
    k = len(y)
    ev = _optional_counts("events", events, labels)
    nn = _optional_counts("n", n, labels)
    transform = _choose_transform(measure, transform, nn)
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
    rows = _study_rows(y, v, w, labels, ev, nn, transform, level) if study_rows else None
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
    rows = _study_rows(y, v, 1.0 / v, labels, ev, nn, transform, level) if study_rows else None
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


def _study_rows(y, v, w, labels, ev, nn, transform, level) -> StudyRows:
    """Per-study Wald intervals yi +- z sqrt(vi) on the reporting scale; weights in percent."""
    z = float(stats.norm.isf((1 - level) / 2))
    half = z * np.sqrt(v)
    est, lo, hi = y.copy(), y - half, y + half
    if transform == "ipft_hm":  # each study back-transformed with its own n (metafor transf.ipft)
        est, lo, hi = (np.asarray(ipft(a, nn), dtype=float) for a in (est, lo, hi))
    elif transform is not None:
        est, lo, hi = (np.asarray(apply_transform(transform, a), dtype=float) for a in (est, lo, hi))
    weight = 100 * w / np.sum(w)
    floats = lambda a: tuple(np.asarray(a, dtype=float).tolist())  # noqa: E731  (fast for large k)
    return StudyRows(
        study=tuple(labels),
        yi=floats(y),
        vi=floats(v),
        weight=floats(weight),
        estimate=floats(est),
        ci_lb=floats(np.minimum(lo, hi)),
        ci_ub=floats(np.maximum(lo, hi)),
        events=None if ev is None else tuple(int(e) for e in ev),
        n=None if nn is None else tuple(int(x) for x in nn),
    )


def _choose_transform(measure, transform, nn) -> str | None:
    name = default_transform(measure) if transform is None else transform
    if name == "none":
        return None
    if name is not None and name not in TRANSFORMS:
        raise ValueError(f"unknown transform {name!r}; expected one of {sorted(TRANSFORMS)} or 'none'")
    if name == "ipft_hm" and nn is None:
        raise ValueError("measure PFT is back-transformed with the harmonic mean of n: pass n= (sample sizes)")
    return name


def _validate(yi, vi, studies):
    fast = _numeric_arrays(yi, vi)
    if fast is None:
        try:
            ys, vs = list(yi), list(vi)
        except TypeError:
            raise ValueError("'yi' and 'vi' must be sequences of numbers") from None
    else:
        ys, vs = fast
    if len(ys) != len(vs):
        raise ValueError(f"'yi' has {len(ys)} values but 'vi' has {len(vs)}")
    if len(ys) == 0:
        raise ValueError("no studies: 'yi' is empty")
    labels = _DefaultLabels(len(ys)) if studies is None else tuple(str(s) for s in studies)
    if len(labels) != len(ys):
        raise ValueError(f"'studies' has {len(labels)} labels but there are {len(ys)} studies")
    if fast is not None:
        # numeric arrays: checked in bulk; the first offending study is then checked as below
        y, v = fast
        bad = np.flatnonzero(~np.isfinite(y) | ~np.isfinite(v) | ~(v > 0))
        if not bad.size:
            return y, v, labels
        ys, vs = ys.tolist(), vs.tolist()
    y, v = np.empty(len(ys)), np.empty(len(ys))
    for i, (a, c) in enumerate(zip(ys, vs, strict=True)):
        for name, val, arr in (("yi", a, y), ("vi", c, v)):
            if not _is_number(val) or not math.isfinite(float(val)):
                raise ValueError(f"study {labels[i]} (index {i}): '{name}' must be a finite number, got {val!r}")
            arr[i] = float(val)
        if v[i] <= 0:
            raise ValueError(f"study {labels[i]} (index {i}): 'vi' must be > 0, got {v[i]!r}")
    return y, v, labels


def _numeric_arrays(yi, vi):
    """yi and vi as float64 (the arrays themselves when already float64; rma only reads them)
    when both are numpy arrays of a real (not bool) dtype."""
    if all(isinstance(a, np.ndarray) and a.ndim == 1 and a.dtype.kind in "fiu" for a in (yi, vi)):
        return yi.astype(float, copy=False), vi.astype(float, copy=False)
    return None


def _optional_counts(name, values, labels):
    if values is None:
        return None
    vals = list(values)
    if len(vals) != len(labels):
        raise ValueError(f"'{name}' has {len(vals)} values but there are {len(labels)} studies")
    out = np.empty(len(vals))
    for i, val in enumerate(vals):
        if not _is_number(val) or not math.isfinite(float(val)) or float(val) < 0 or float(val) != round(float(val)):
            raise ValueError(f"study {labels[i]} (index {i}): '{name}' must be a whole number >= 0, got {val!r}")
        out[i] = float(val)
    if name == "n" and np.any(out <= 0):
        i = int(np.argmax(out <= 0))
        raise ValueError(f"study {labels[i]} (index {i}): 'n' must be > 0")
    return out


class _DefaultLabels(Sequence):
    """The labels "1", ..., "k" of unnamed studies, made as strings only when the study rows are
    (at k = 100,000 the strings alone took longer than the fit)."""

    __slots__ = ("k",)

    def __init__(self, k: int):
        self.k = k

    def __len__(self) -> int:
        return self.k

    def __getitem__(self, i):
        return str(range(1, self.k + 1)[i]) if isinstance(i, int) else tuple(map(str, range(1, self.k + 1)[i]))

    def __iter__(self):
        return map(str, range(1, self.k + 1))


def _is_number(val) -> bool:
    return isinstance(val, (int, float, np.integer, np.floating)) and not isinstance(val, bool)


def _provenance(y, v, labels, ev, nn, method, test, level, measure, pi_method, transform, control, iterations) -> dict:
    # digest of the exact inputs: yi and vi as little-endian float64 bytes (repr of each
    # float took 0.3 s at k = 100,000), counts as int64 bytes, labels joined by NUL
    h = hashlib.sha256()
    for arr in (y, v):
        h.update(np.ascontiguousarray(arr, dtype="<f8").tobytes())
    for name, arr in (("events", ev), ("n", nn)):
        h.update(name.encode() + (b"-" if arr is None else np.asarray(arr, dtype="<i8").tobytes()))
    h.update(b"labels 1..k" if isinstance(labels, _DefaultLabels) else "\x00".join(labels).encode())
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
