"""Do the regimen classes of one analysis differ? Two tests, each named by its model.

- Cochran's Q between the classes' GLMM estimates (separate tau^2 per class, R meta's default
  test for subgroup differences). The GLMM is the model every pooled class has; the Bayesian
  primary rows of small classes have no Q.
- The permutation test (metafor's permutest()) of the mixed-effects meta-regression of the
  study logits on the class (REML, Wald z), which leans on no large-sample theory: with two to
  four studies per class the chi-square p-value of Q can be far too small.
Both are computed once, by the pipeline, and shown together wherever one is shown.
"""

from __future__ import annotations

import pandas as pd

from metaanalysis.engine.effects import escalc
from metaanalysis.engine.metareg import factor_design
from metaanalysis.engine.methods import GLMM
from metaanalysis.engine.resampling import permutest
from metaanalysis.engine.subgroups import group_difference
from metaanalysis.review.result import AnalysisResult, SubgroupTest

PERMUTATIONS = 1000
SEED = 2026  # fixed: the same data give the same permutation p-value in every run


def pooled_rows(result: AnalysisResult) -> pd.DataFrame:
    """The study rows of the classes with two or more studies (those a meta-regression compares)."""
    pooled = [c for c in result.classes if len(result.fits[c]) and next(iter(result.fits[c].values())).k >= 2]
    rows = result.included
    return rows[rows[result.analysis.group_by].isin(pooled)]


def class_permutation(result: AnalysisResult, *, iterations: int = PERMUTATIONS, seed: int = SEED):
    """(PermutationResult, classes) of the class factor on the logit scale, or (None, classes)."""
    rows = pooled_rows(result)
    classes = tuple(dict.fromkeys(rows[result.analysis.group_by]))
    if len(classes) < 2:
        return None, classes
    es = escalc(
        "PLO", events=rows["events"].astype(int), n=rows["n"].astype(int), add=None, to="only0", studies=rows["label"]
    )
    X, _ = factor_design(rows[result.analysis.group_by])
    perm = permutest(es.yi, es.vi, mods=X[:, 1:], method="REML", test="z", iter=iterations, seed=seed)
    return perm, classes


def subgroup_test(result: AnalysisResult) -> SubgroupTest:
    groups = {
        c: r.fit
        for c in result.classes
        if (r := result.fits[c].get(GLMM)) is not None and r.fit is not None and r.pooled
    }
    q, df, p, notes = group_difference(groups)
    try:
        perm, _ = class_permutation(result)
    except ValueError as exc:  # the meta-regression cannot be fitted: said, not hidden
        perm, notes = None, notes + (f"permutation test not computed: {exc}",)
    return SubgroupTest(
        method=GLMM,
        Q=q,
        df=df,
        p=p,
        permutation_QM=None if perm is None else float(perm.QM),
        permutation_p=None if perm is None else float(perm.QMp),
        permutation_iterations=None if perm is None else int(perm.iterations),
        permutation_exact=bool(perm is not None and perm.exact),
        notes=notes,
    )


__all__ = ["subgroup_test", "class_permutation", "pooled_rows", "PERMUTATIONS", "SEED"]
