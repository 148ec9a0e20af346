"""Influence, small-study and resampling diagnostics of the pooled classes, computed once.

Influence diagnostics are defined for inverse-variance models (as metafor's influence()), so a
class is read from its logit (PLO) fit. For every class with at least MIN_K studies: leave-one-out,
influence(), Egger's regression (metafor's regtest()), Baujat coordinates and the cumulative
meta-analysis by publication year. For the analysis with the most pooled studies: the
permutation test of the class factor and GOSH of its largest class.
"""

from __future__ import annotations

import pandas as pd

from metaanalysis.engine.diagnostics import egger_test, leave1out
from metaanalysis.engine.influence import baujat, cumulative, influence
from metaanalysis.engine.resampling import gosh
from metaanalysis.review.class_differences import pooled_rows
from metaanalysis.review.result import AnalysisResult, ClassDiagnostics, Resampling

MIN_K = 3  # leave-one-out keeps two studies, Egger's regression one residual degree of freedom
DIAGNOSED_METHOD = "PLO"


def diagnose(result: AnalysisResult) -> list[ClassDiagnostics]:
    out = []
    iv, level = result.analysis.inverse_variance, result.analysis.level
    opts = dict(method=iv.method, test=iv.test)
    for cls in result.classes:
        r = result.fits[cls].get(DIAGNOSED_METHOD)
        if r is None or r.fit is None or not r.pooled or r.k < MIN_K:
            continue
        s = r.fit.studies
        assert s is not None
        rows = result.included[result.included[result.analysis.group_by] == cls]
        years = [9999 if pd.isna(y) else int(y) for y in rows["year"]]
        out.append(
            ClassDiagnostics(
                analysis=result.id,
                regimen_class=cls,
                fit=r.fit,
                leave_one_out=leave1out(s.yi, s.vi, studies=s.study, level=level, **opts),
                influence=influence(s.yi, s.vi, studies=s.study, **opts),
                egger=egger_test(s.yi, s.vi, method=iv.method, test="z"),
                baujat=baujat(s.yi, s.vi, studies=s.study, **opts),
                cumulative=cumulative(
                    s.yi,
                    s.vi,
                    order=years,  # undated reports last
                    studies=s.study,
                    measure=r.fit.measure,
                    level=level,
                    pi_method=iv.pi_method,
                    **opts,
                ),
            )
        )
    return out


def resampling(results: tuple[AnalysisResult, ...]) -> Resampling | None:
    """Permutation test and GOSH for the analysis with the most studies in pooled classes."""
    candidates = [(len(pooled_rows(r)), r) for r in results]
    candidates = [c for c in candidates if c[0] >= 2]
    if not candidates:
        return None
    k, best = max(candidates, key=lambda c: c[0])
    rows = pooled_rows(best)
    classes = tuple(dict.fromkeys(rows[best.analysis.group_by]))
    test = best.subgroup_test  # the permutation test was run once, with the subgroup test
    group = best.analysis.group_by
    largest = max(classes, key=lambda c: int((rows[group] == c).sum()))
    fit = best.fits[largest].get(DIAGNOSED_METHOD)
    subsets, highlight = None, None
    if fit is not None and fit.fit is not None and fit.fit.studies is not None:
        s = fit.fit.studies
        subsets = gosh(s.yi, s.vi, method="REML", studies=s.study)
        part = rows[rows[group] == largest]
        highlight = str(part.loc[part["n"].idxmax(), "label"])
    return Resampling(
        analysis=best.id,
        regimen_class=largest,
        classes=classes,
        k=k,
        QM=None if test is None else test.permutation_QM,
        permutation_p=None if test is None else test.permutation_p,
        iterations=None if test is None else test.permutation_iterations,
        exact=bool(test is not None and test.permutation_exact),
        gosh=subsets,
        gosh_highlight=highlight,
    )


__all__ = ["diagnose", "resampling", "MIN_K", "DIAGNOSED_METHOD"]
