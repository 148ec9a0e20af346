"""The registry of pooling methods: each name that `data/analyses.yaml`, `pool-csv` and
`results/pooled.csv` use, once, with how it is fitted, what it takes, and how it is named.

    METHODS["BAYES-NN"].label          -> "Bayesian, normal-normal"
    describe("PLO", iv, tau_prior)     -> the sentence the report's Methods paragraph prints
    fit_proportion("GLMM", events, n, studies=..., level=0.95, iv=..., tau_prior=...)

Proportion methods (a regimen class's events/n):
- GLMM: binomial-normal random intercepts, ML with 7-point adaptive Gauss-Hermite quadrature
  (R meta's default for single-arm proportions), Wald CI;
- PLO, PFT, PAS, PR: escalc on the logit, Freeman-Tukey, arcsine or raw scale (0.5 added to a
  0 %/100 % arm on the logit, metafor's default), then inverse-variance random effects with the
  analyses file's tau^2 estimator, CI and prediction interval;
- BAYES-NN: normal-normal Bayesian model on the logit yi, vi (as R bayesmeta), half-normal prior
  on tau, flat prior on mu; BAYES-BN: binomial-normal Bayesian model on the counts themselves.
MH (Mantel-Haenszel) pools 2x2 tables; pool-csv also takes every tau^2 estimator of
`estimators.ESTIMATORS` for inverse-variance pooling of any measure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from metaanalysis.engine.bayes_result import BAYES_BN, BAYES_NN
from metaanalysis.engine.results import Fit

GLMM = "GLMM"
MH = "MH"
SINGLE = "not pooled (k = 1)"  # a class with one study: its own proportion, under no model

TAU2_NAMES = {
    "DL": "DerSimonian-Laird",
    "HE": "Hedges",
    "HS": "Hunter-Schmidt",
    "SJ": "Sidik-Jonkman",
    "ML": "ML",
    "REML": "REML",
    "EB": "empirical Bayes",
    "PM": "Paule-Mandel",
}
CI_NAMES = {
    "z": "Wald z CI",
    "knha": "Hartung-Knapp-Sidik-Jonkman CI",
    "knha_adhoc": "Hartung-Knapp-Sidik-Jonkman CI (ad hoc variance floor)",
}
SCALES = {"PLO": "logit", "PFT": "Freeman-Tukey double-arcsine", "PAS": "arcsine", "PR": "raw proportion"}


@dataclass(frozen=True, slots=True)
class IVSettings:
    """Inverse-variance settings: tau^2 estimator, CI (z, knha, knha_adhoc), prediction interval."""

    method: str = "REML"
    test: str = "knha"
    pi_method: str = "metafor"


@dataclass(frozen=True, slots=True)
class Method:
    name: str
    inputs: str  # "counts" (events, n), "tables" (2x2) or "effects" (yi, vi)
    label: str  # short name: table columns, plot legends, change reports
    model: str  # the model in a few words (forest-plot rows and footnotes)
    bayesian: bool = False
    measure: str | None = None  # the effect-size scale an inverse-variance method pools on


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method(GLMM, "counts", "GLMM", "binomial-normal GLMM"),
        Method("PLO", "counts", "Logit, IV", "random effects on the logit scale", measure="PLO"),
        Method("PFT", "counts", "Freeman-Tukey, IV", "random effects on the Freeman-Tukey scale", measure="PFT"),
        Method("PAS", "counts", "Arcsine, IV", "random effects on the arcsine scale", measure="PAS"),
        Method("PR", "counts", "Raw proportion, IV", "random effects on raw proportions", measure="PR"),
        Method(BAYES_NN, "effects", "Bayesian, normal-normal", "Bayesian normal-normal model", bayesian=True),
        Method(BAYES_BN, "counts", "Bayesian, binomial-normal", "Bayesian binomial-normal model", bayesian=True),
        Method(MH, "tables", "Mantel-Haenszel", "common effect, Mantel-Haenszel"),
        Method(SINGLE, "counts", "single study, not pooled", "single study (exact interval)"),
    )
}
PROPORTION_METHODS = (GLMM, "PLO", "PFT", "PAS", "PR", BAYES_NN, BAYES_BN)


def label(name: str) -> str:
    return METHODS[name].label if name in METHODS else name


def describe(name: str, iv: IVSettings | None = None, tau_prior: str | None = None, level: float = 0.95) -> str:
    """One sentence naming the method and every setting behind its numbers (the Methods paragraph)."""
    iv = iv or IVSettings()
    pct = f"{level:.0%}"
    ivtext = f"{TAU2_NAMES.get(iv.method, iv.method)} τ², {CI_NAMES.get(iv.test, iv.test)}"
    from metaanalysis.engine.bayes_priors import parse_tau_prior  # scipy: only when a prior is described

    prior = parse_tau_prior(tau_prior).label if tau_prior else "no"
    if name == GLMM:
        return (
            "binomial-normal random-intercept GLMM (maximum likelihood, adaptive Gauss-Hermite quadrature with "
            f"7 points; R meta's default for single-arm proportions), Wald {pct} CI"
        )
    if name in SCALES:
        extra = ", 0.5 added to a 0 % or 100 % arm" if name == "PLO" else ""
        return f"inverse-variance random effects on the {SCALES[name]} scale{extra} ({ivtext})"
    if name == BAYES_NN:
        return (
            f"Bayesian normal-normal random-effects model on the logit scale (0.5 added to a 0 % or 100 % arm), "
            f"{prior} prior on τ, flat prior on μ; posterior median and {pct} equal-tailed credible interval, "
            "posterior predictive interval; exact numerical integration, no sampling"
        )
    if name == BAYES_BN:
        return (
            f"Bayesian binomial-normal random-effects model (exact binomial likelihood, no continuity correction), "
            f"{prior} prior on τ, flat prior on μ; posterior median and {pct} equal-tailed credible interval, "
            "posterior predictive interval; exact numerical integration, no sampling"
        )
    if name == MH:
        return "common-effect Mantel-Haenszel model"
    if name == SINGLE:
        return f"a class with one study shows that study's proportion with its exact (Clopper-Pearson) {pct} CI"
    return name


def fit_proportion(
    name: str,
    events: Sequence[int] | np.ndarray,
    n: Sequence[int] | np.ndarray,
    *,
    studies: Sequence[str],
    level: float,
    iv: IVSettings,
    tau_prior: str,
) -> Fit:
    """Pool one regimen class's events/n with the method `name` (a key of METHODS)."""
    # The models are imported here, not with the registry: the names and labels above are read by
    # the plots and tables, which must not pay for (or inherit the warning filters of) statsmodels.
    from metaanalysis.engine.bayes import rma_bayes_effects
    from metaanalysis.engine.bayes_binomial import rma_bayes_binomial
    from metaanalysis.engine.effects import escalc
    from metaanalysis.engine.glmm import rma_glmm
    from metaanalysis.engine.rma import rma_effects
    from metaanalysis.engine.single_study import single_proportion

    counts: list[int] = np.asarray(events, dtype=int).tolist()
    sizes: list[int] = np.asarray(n, dtype=int).tolist()
    events, n = counts, sizes
    labels = tuple(studies)
    if name == SINGLE:
        return single_proportion(int(events[0]), int(n[0]), study=labels[0], level=level)
    if name == GLMM:
        return rma_glmm(events, n, studies=labels, level=level, nAGQ=7)
    if name == BAYES_BN:
        return rma_bayes_binomial(events, n, studies=labels, level=level, tau_prior=tau_prior, shortest=False)
    if name == BAYES_NN:
        es = escalc("PLO", events=events, n=n, add=None, to="only0", studies=labels)
        return rma_bayes_effects(es, tau_prior=tau_prior, level=level)
    if name in SCALES:
        # add=None: metafor's default (1/2 for PLO, no correction for PFT, PAS, PR)
        es = escalc(name, events=events, n=n, add=None, to="only0", studies=labels)
        return rma_effects(es, method=iv.method, test=iv.test, level=level, pi_method=iv.pi_method)
    raise ValueError(f"unknown proportion method {name!r}; known: {', '.join(PROPORTION_METHODS)}")


__all__ = [
    "METHODS",
    "Method",
    "IVSettings",
    "PROPORTION_METHODS",
    "GLMM",
    "MH",
    "SINGLE",
    "BAYES_NN",
    "BAYES_BN",
    "label",
    "describe",
    "fit_proportion",
]
