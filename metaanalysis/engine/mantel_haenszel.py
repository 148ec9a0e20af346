"""Mantel-Haenszel common-effect pooling of 2x2 tables, as `metafor::rma.mh`.

Odds ratio: the MH estimator with the Robins-Breslow-Greenland (1986)
variance, both taken from statsmodels' `StratifiedTable` (which computes the
same formulas as rma.mh; the tests pin it to metafor). Risk ratio: the MH
estimator from `StratifiedTable`, with the Greenland-Robins (1985) variance,
which statsmodels does not provide, computed here.

As in rma.mh with its defaults, nothing is added to zero cells for the MH
estimate itself; the heterogeneity test QE is the inverse-variance Q of the
per-study estimates from escalc (1/2 added to the cells of tables with a zero
cell), around the MH estimate, over the tables with an estimable yi (a table
with no events, or only events, in both arms is left out of QE and says so).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats
from statsmodels.stats.contingency_tables import StratifiedTable

from metaanalysis.engine.effects import escalc
from metaanalysis.engine.results import MetaResult, StudyRows


def _check_tables(ai, n1i, ci, n2i, studies) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]]:
    cols = dict(ai=ai, n1i=n1i, ci=ci, n2i=n2i)
    k = len(ai)
    for name, col in cols.items():
        if len(col) != k:
            raise ValueError(f"{name} has {len(col)} values but ai has {k}")
    if k == 0:
        raise ValueError("no studies given")
    names = tuple(str(s) for s in studies) if studies is not None else tuple(str(i + 1) for i in range(k))
    if len(names) != k:
        raise ValueError(f"studies has {len(names)} names but there are {k} tables")
    for name, col in cols.items():
        for i, v in enumerate(col):
            if (
                isinstance(v, bool)
                or not isinstance(v, (int, np.integer, float, np.floating))
                or not math.isfinite(v)
                or float(v) != int(v)
                or v < 0
            ):
                raise ValueError(f"study {names[i]!r}: {name} = {v!r} is not a non-negative whole number")
    for i in range(k):
        for ev, tot, en, tn in ((ai[i], n1i[i], "ai", "n1i"), (ci[i], n2i[i], "ci", "n2i")):
            if tot <= 0:
                raise ValueError(f"study {names[i]!r}: {tn} = {tot} must be positive")
            if ev > tot:
                raise ValueError(f"study {names[i]!r}: {en} = {ev} exceeds {tn} = {tot}")
    a, n1, c, n2 = (np.asarray(x, dtype=float) for x in (ai, n1i, ci, n2i))
    return a, n1, c, n2, names


def _study_effects(measure, a, n1, c, n2, names) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """escalc(measure) with add = 1/2, to = "only0", plus metafor's drop00 = TRUE:
    (yi, vi, usable) where `usable` is False for tables with no events or only events in both arms."""
    usable = ~(((a == 0) & (c == 0)) | ((a == n1) & (c == n2)))
    es = escalc(
        measure,
        ai=[int(v) for v in a],
        n1i=[int(v) for v in n1],
        ci=[int(v) for v in c],
        n2i=[int(v) for v in n2],
        add=0.5,
        to="only0",
        studies=names,
    )
    return es.yi, es.vi, usable


def rma_mh(
    ai: Sequence[int],
    n1i: Sequence[int],
    ci: Sequence[int],
    n2i: Sequence[int],
    *,
    measure: str = "OR",
    level: float = 0.95,
    studies: Sequence[str] | None = None,
) -> MetaResult:
    """Mantel-Haenszel pooled log odds ratio or log risk ratio with a Wald z interval.

    `ai`/`n1i`: events/total in the treated arm; `ci`/`n2i`: in the control arm.
    Returns method "MH", test "z", tau2 None (a common-effect model), b and the
    interval on the log scale and exponentiated in `bt_*`.
    """
    if measure not in ("OR", "RR"):
        raise ValueError(f"measure = {measure!r}: Mantel-Haenszel is implemented for 'OR' and 'RR'")
    if not 0 < level < 1:
        raise ValueError(f"level = {level} must lie strictly between 0 and 1")
    a, n1, c, n2, names = _check_tables(ai, n1i, ci, n2i, studies)
    b, d, N = n1 - a, n2 - c, n1 + n2
    # statsmodels wants one 2x2 table per stratum: [[a, b], [c, d]], stacked along axis 2.
    table = StratifiedTable(np.array([[a, b], [c, d]]), shift_zeros=False)
    if measure == "OR":
        R, S = np.sum(a * d / N), np.sum(b * c / N)
        if R == 0 or S == 0:
            raise ValueError(
                "Mantel-Haenszel odds ratio is not estimable: "
                + ("no table has a > 0 and d > 0" if R == 0 else "no table has b > 0 and c > 0")
            )
        beta = float(table.logodds_pooled)
        se = float(table.logodds_pooled_se)
    else:
        if a.sum() == 0 or c.sum() == 0:
            raise ValueError(
                "Mantel-Haenszel risk ratio is not estimable: "
                + ("no events in any treated arm (ai)" if a.sum() == 0 else "no events in any control arm (ci)")
            )
        beta = float(np.log(table.riskratio_pooled))
        R, S = np.sum(a * n2 / N), np.sum(c * n1 / N)
        se = math.sqrt(float(np.sum(n1 * n2 * (a + c) / N**2 - a * c / N)) / (R * S))
    zcrit = float(stats.norm.ppf(1 - (1 - level) / 2))
    ci_lb, ci_ub = beta - zcrit * se, beta + zcrit * se
    zval = beta / se

    yi, vi, usable = _study_effects(measure, a, n1, c, n2, names)
    k_yi = int(usable.sum())
    notes = []
    if k_yi < len(a):
        dropped = [names[i] for i in range(len(a)) if not usable[i]]
        notes.append(
            "tables with no events (or only events) in both arms count in the MH estimate but not in "
            "QE: " + ", ".join(dropped)
        )
    if k_yi > 1:
        QE = max(0.0, float(np.sum((yi[usable] - beta) ** 2 / vi[usable])))
        QEp = float(stats.chi2.sf(QE, k_yi - 1))
        I2 = max(0.0, 100.0 * (QE - (k_yi - 1)) / QE) if QE > 0 else 0.0
        H2 = QE / (k_yi - 1)
    else:
        QE, QEp, I2, H2 = None, None, None, None
        notes.append("fewer than 2 tables with an estimable effect: no heterogeneity test")

    # Forest-plot weights: each table's share of the MH numerator weight, b_i c_i / N_i for OR
    # (a common choice, e.g. RevMan) and c_i n1_i / N_i for RR.
    mh_w = b * c / N if measure == "OR" else c * n1 / N
    rows = StudyRows(
        study=names,
        yi=tuple(map(float, yi)),
        vi=tuple(map(float, vi)),
        weight=tuple(float(v) for v in 100 * mh_w / mh_w.sum()),
        estimate=tuple(float(v) for v in np.exp(yi)),
        ci_lb=tuple(float(v) for v in np.exp(yi - zcrit * np.sqrt(vi))),
        ci_ub=tuple(float(v) for v in np.exp(yi + zcrit * np.sqrt(vi))),
    )
    return MetaResult(
        measure=measure,
        method="MH",
        test="z",
        level=level,
        k=len(a),
        b=beta,
        se=se,
        zval=zval,
        pval=float(2 * stats.norm.sf(abs(zval))),
        ci_lb=ci_lb,
        ci_ub=ci_ub,
        tau2=None,
        QE=QE,
        QEp=QEp,
        I2=I2,
        H2=H2,
        pi_lb=None,
        pi_ub=None,
        transform="exp",
        bt_pred=math.exp(beta),
        bt_ci_lb=math.exp(ci_lb),
        bt_ci_ub=math.exp(ci_ub),
        studies=rows,
        notes=tuple(notes),
        provenance=dict(
            estimator="Mantel-Haenszel (statsmodels StratifiedTable, shift_zeros=False)",
            variance="Robins-Breslow-Greenland" if measure == "OR" else "Greenland-Robins",
            QE="inverse-variance Q of escalc yi (add 1/2 to tables with a zero cell) around the MH estimate",
        ),
    )


__all__ = ["rma_mh"]
