"""Subgroup analysis: one random-effects fit per group and two tests for subgroup differences.

- Separate tau^2 (R meta's default, `Qbetween`): a common-effect Q on the per-group
  estimates b_g with their standard errors, df = G - 1. `subgroup_test()` does
  only this, so it works with any per-group fits (rma, GLMM, MH).
- Common tau^2 (`QM_common_tau2`): the Wald test of the group factor in
  `rma(yi, vi, mods = ~ factor(group))`, chi-square with G - 1 df.

A group with one study is fitted and shown (rma's k = 1 answer: its own yi and
sqrt(vi)) and it enters the separate-tau^2 test with that estimate and se, as it
does in R meta and in metafor's rma(b_g, sei = se_g, method = "FE").
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy import stats

from metaanalysis.engine.metareg import factor_design, rma_mods
from metaanalysis.engine.results import Fit, MetaResult, SubgroupResult


def subgroup_test(results: Mapping[str, Fit]) -> tuple[float, int, float]:
    """(Q, df, p) of the common-effect test that all groups share one pooled value:
    Q = sum w_g (b_g - b_w)^2, w_g = 1 / se_g^2, df = G - 1, p from chi-square.
    The b_g are on the model scale (logit, log ratio, ...), as the fits report them."""
    if len(results) < 2:
        raise ValueError(f"a test for subgroup differences needs at least 2 groups; got {len(results)}")
    est, se = [], []
    for name, fit in results.items():
        res: Any = fit
        if res.b is None or res.se is None or not (math.isfinite(res.b) and math.isfinite(res.se)) or res.se <= 0:
            raise ValueError(f"group {name!r}: estimate {res.b!r} with se {res.se!r} cannot enter the test")
        est.append(res.b)
        se.append(res.se)
    measures = {str(getattr(r, "measure", None)) for r in results.values()}
    if len(measures) > 1:
        raise ValueError(f"groups are on different scales: measures {sorted(measures)}")
    b, w = np.asarray(est), 1.0 / np.asarray(se) ** 2
    Q = float(np.sum(w * (b - np.sum(w * b) / np.sum(w)) ** 2))
    df = len(b) - 1
    return Q, df, float(stats.chi2.sf(Q, df))


def group_difference(groups: Mapping[str, Fit]) -> tuple[float | None, int | None, float | None, tuple[str, ...]]:
    """(Q, df, p, notes) of the separate-tau^2 test for differences between fitted groups, or Nones
    with the reason: fewer than two groups, or Bayesian fits (whose credible intervals are compared
    instead). A group with one study enters with its own estimate and se, and a note says so."""
    notes = []
    if any(g.bayesian for g in groups.values()):
        return None, None, None, ("no test for subgroup differences: compare the groups' credible intervals",)
    if len(groups) < 2:
        return None, None, None, (f"only {len(groups)} group: no test for subgroup differences",)
    singles = [label for label, r in groups.items() if getattr(r, "k", None) == 1]
    if singles:
        notes.append(
            "group(s) with one study enter Qbetween with that study's own estimate and se: " + ", ".join(singles)
        )
    q, df, p = subgroup_test(groups)
    return q, df, p, tuple(notes)


def subgroups(
    yi,
    vi,
    groups,
    *,
    method: str = "REML",
    test: str = "knha",
    level: float = 0.95,
    measure: str = "GEN",
    studies=None,
    events=None,
    n=None,
) -> SubgroupResult:
    """rma() per group (in order of first appearance), the overall rma(), Qbetween (separate
    tau^2) and QM_common_tau2 (one tau^2, Wald chi-square; REML or ML only, else None)."""
    from metaanalysis.engine.rma import rma  # imported here: rma.py is developed alongside this module

    y = np.asarray(yi, dtype=float)
    v = np.asarray(vi, dtype=float)
    k = len(y)
    given = [None if x is None else str(x) for x in groups]
    for name, arr in (("vi", v), ("groups", given), ("studies", studies), ("events", events), ("n", n)):
        if arr is not None and len(arr) != k:
            raise ValueError(f"{name} has {len(arr)} values but yi has {k}")
    g: list[str] = []
    for i, x in enumerate(given):
        if x is None or x.strip() == "" or x.lower() == "nan":
            raise ValueError(f"row {i + 1}: group label is missing")
        g.append(x)
    names = [str(s) for s in studies] if studies is not None else [str(i + 1) for i in range(k)]

    def take(arr, idx):
        return None if arr is None else [arr[j] for j in idx]

    fits: dict[str, MetaResult] = {}
    for label in dict.fromkeys(g):
        idx = [i for i in range(k) if g[i] == label]
        fits[label] = rma(
            y[idx],
            v[idx],
            method=method,
            test=test,
            level=level,
            measure=measure,
            studies=take(names, idx),
            events=take(events, idx),
            n=take(n, idx),
        )
    overall = rma(y, v, method=method, test=test, level=level, measure=measure, studies=names, events=events, n=n)
    notes = []
    singles = [lab for lab, f in fits.items() if f.k == 1]
    if singles:
        notes.append(
            "group(s) with one study enter Qbetween with that study's own estimate and se: " + ", ".join(singles)
        )
    if len(fits) < 2:
        notes.append(f"only {len(fits)} group: no test for subgroup differences")
        return SubgroupResult(
            groups=fits, Qbetween=None, Qbetween_df=None, Qbetween_p=None, overall=overall, notes=tuple(notes)
        )
    Q, df, p = subgroup_test(fits)
    QM = QMp = None
    if method in ("REML", "ML"):
        X, _ = factor_design(g)
        if k - X.shape[1] >= 1:
            reg = rma_mods(y, v, X, method=method, test="z")
            QM, QMp = reg.QM, reg.QMp
        else:
            notes.append("common-tau^2 test not computed: no residual degrees of freedom (one study per group)")
    else:
        notes.append(f"common-tau^2 test is implemented for REML and ML; method {method} has none")
    return SubgroupResult(
        groups=fits,
        Qbetween=Q,
        Qbetween_df=df,
        Qbetween_p=p,
        QM_common_tau2=QM,
        QMp_common_tau2=QMp,
        overall=overall,
        notes=tuple(notes),
    )


__all__ = ["subgroups", "subgroup_test"]
