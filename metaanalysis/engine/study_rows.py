"""What a forest plot shows for each study, built the same way for every model.

- `wald_rows`: inverse-variance models (rma, the normal-normal Bayesian model): each study's
  own interval yi +- z sqrt(vi), back-transformed like the pooled value (Freeman-Tukey with the
  study's own n, as metafor's transf.ipft), with the model's weights.
- `exact_rows`: models of the counts themselves (GLMM, binomial-normal Bayesian, a single
  study): the observed proportion with its Clopper-Pearson exact interval (R meta's metaprop
  default; statsmodels' "beta" method), weighted by share of patients, since these models have
  no inverse-variance weights.
"""

from __future__ import annotations

import numpy as np
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from metaanalysis.engine.results import StudyRows
from metaanalysis.engine.transforms import apply_transform, ipft


def _floats(a) -> tuple[float, ...]:
    return tuple(np.asarray(a, dtype=float).tolist())  # tolist(): fast for large k


def wald_rows(y, v, weight_percent, labels, events, n, transform: str | None, level: float) -> StudyRows:
    z = float(stats.norm.isf((1 - level) / 2))
    half = z * np.sqrt(v)
    est, lo, hi = np.asarray(y, dtype=float), y - half, y + half
    if transform == "ipft_hm":
        est, lo, hi = (np.asarray(ipft(a, n), dtype=float) for a in (est, lo, hi))
    elif transform is not None:
        est, lo, hi = (np.asarray(apply_transform(transform, a), dtype=float) for a in (est, lo, hi))
    return StudyRows(
        study=tuple(labels),
        yi=_floats(y),
        vi=_floats(v),
        weight=_floats(weight_percent),
        estimate=_floats(est),
        ci_lb=_floats(np.minimum(lo, hi)),
        ci_ub=_floats(np.maximum(lo, hi)),
        events=None if events is None else tuple(int(e) for e in events),
        n=None if n is None else tuple(int(x) for x in n),
    )


def exact_rows(labels, x, n, yi, vi, level: float) -> StudyRows:
    x, n = np.asarray(x, dtype=float), np.asarray(n, dtype=float)
    lb, ub = proportion_confint(x, n, alpha=1 - level, method="beta")
    return StudyRows(
        study=tuple(labels),
        yi=_floats(yi),
        vi=_floats(vi),
        weight=_floats(100.0 * n / n.sum()),
        estimate=_floats(x / n),
        ci_lb=_floats(np.atleast_1d(lb)),
        ci_ub=_floats(np.atleast_1d(ub)),
        events=tuple(int(v) for v in x),
        n=tuple(int(v) for v in n),
    )


__all__ = ["wald_rows", "exact_rows"]
