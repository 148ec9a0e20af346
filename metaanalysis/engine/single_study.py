"""A regimen class with one study is shown, not pooled.

Its row is the study's own proportion x/n with the Clopper-Pearson exact
interval (R meta's `metaprop` default for study-level intervals), not a model
estimate: a continuity-corrected logit would show 12/12 as 96 %, which no
reader would recognise from the paper. statsmodels computes the exact
interval (`method="beta"`).
"""

from __future__ import annotations

import math

from metaanalysis.engine.results import MetaResult
from metaanalysis.engine.study_rows import exact_rows

METHOD = "single study"


def single_proportion(events: int, n: int, *, study: str, level: float = 0.95) -> MetaResult:
    events, n = int(events), int(n)
    if not 0 <= events <= n or n <= 0:
        raise ValueError(f"study {study!r}: events = {events} and n = {n} are not a proportion")
    p = events / n
    rows = exact_rows((study,), [events], [n], [p], [p * (1 - p) / n], level)
    lb, ub = rows.ci_lb[0], rows.ci_ub[0]
    return MetaResult(
        measure="PR",
        method=METHOD,
        test="exact",
        level=level,
        k=1,
        b=p,
        se=math.sqrt(p * (1 - p) / n),
        zval=None,
        pval=None,
        ci_lb=float(lb),
        ci_ub=float(ub),
        tau2=None,
        QE=None,
        QEp=None,
        I2=None,
        H2=None,
        pi_lb=None,
        pi_ub=None,
        studies=rows,
        notes=(
            "k = 1: the study's own proportion with the Clopper-Pearson exact interval; not pooled, "
            "heterogeneity not estimable",
        ),
        provenance=dict(ci="statsmodels.stats.proportion.proportion_confint(method='beta')"),
    )
