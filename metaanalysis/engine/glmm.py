"""Binomial-normal random-intercept model for single-arm proportions.

This is the model `metafor::rma.glmm(measure = "PLO")` fits through
`lme4::glmer(cbind(xi, ni - xi) ~ 1 + (1 | study), family = binomial, nAGQ = 7)`:

    x_i ~ Binomial(n_i, ilogit(beta0 + tau * u_i)),   u_i ~ N(0, 1),

estimated by maximum likelihood. The likelihood of each study is an integral
over u_i, approximated as glmer does for nAGQ > 1 (lme4 `src/external.cpp`,
`glmerAGQ`): find the mode of the integrand in u_i and its curvature, then
apply Gauss-Hermite quadrature centred at that mode and scaled by that
curvature (adaptive GHQ).

Standard error of beta0, as `vcov()` of a glmer fit with nAGQ > 1 computes it
(lme4 `vcov.merMod`, `use.hessian = TRUE` by default): the Hessian H of the
deviance with respect to (theta, beta0), where theta = tau for a binomial
model, by central differences with step 1e-4 (lme4 `deriv12`); then
vcov(beta0) = [2 H^-1]_(beta0, beta0). When tau is on the boundary (0) lme4
skips the Hessian and uses the penalised-least-squares (RX) approximation,
which for tau = 0 is 1 / sum(n_i mu (1 - mu)); so do we.

The maximisation itself (glmm_quadrature.py) is a joint Newton fit of (beta0, tau) with
exact derivatives, started from the inverse-variance REML fit of the study logits; it
finds the optimum of the same deviance the earlier nested searches found (tested on
random tables), in a tenth of the time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats

from metaanalysis.engine.checks import check_counts
from metaanalysis.engine.effects import escalc
from metaanalysis.engine.estimators import ConvergenceError, estimate_tau2
from metaanalysis.engine.glmm_quadrature import (
    _TAU_MAX,
    GLMMConvergenceError,
    deviances,
    fit_nested,  # noqa: F401
    fit_newton,
    saturated_terms,
)
from metaanalysis.engine.results import MetaResult
from metaanalysis.engine.study_rows import exact_rows

_HESSIAN_STEP = 1e-4  # lme4 deriv12 default `delta`
_BETA_MAX = 30.0  # |logit| this large (p ~ 1e-13) means beta0 ran away
_TAU_ZERO = 1e-6  # below this the optimum is on the boundary tau = 0


def deviance(beta: float, tau: float, events: np.ndarray, n: np.ndarray, nAGQ: int = 7) -> float:
    """-2 log marginal likelihood (up to a constant) by adaptive Gauss-Hermite quadrature."""
    x = np.asarray(events, dtype=float)
    n = np.asarray(n, dtype=float)
    return float(deviances([beta], [tau], x, n, nAGQ)[0])


def _typical_vi(vi: np.ndarray) -> float:
    """metafor's 'typical' within-study variance (k - 1) / tr(P) for an intercept-only model."""
    wi = 1.0 / vi
    return (len(vi) - 1) / (wi.sum() - (wi**2).sum() / wi.sum())


def heterogeneity_tests(events: Sequence | np.ndarray, n: Sequence | np.ndarray) -> dict[str, float]:
    """Wald and likelihood-ratio tests of the saturated (one logit per study) binomial model
    against the common-proportion model, as rma.glmm reports them (QE.Wld, QE.LRT; df = k - 1).

    Wald: the saturated glm's study logits have variance 1 / (n p (1 - p)) at the observed p,
    so the test of their equality is the inverse-variance Q of those logits. A 0 % or 100 %
    arm has an infinite logit whose glm weight is numerically zero: it does not contribute.
    LRT: twice the log-likelihood difference, observed proportions vs the pooled one.
    """
    x = np.asarray(events, dtype=float)
    nn = np.asarray(n, dtype=float)
    k = len(x)
    inner = (x > 0) & (x < nn)
    xi, ni = x[inner], nn[inner]
    wi = xi * (ni - xi) / ni
    li = np.log(xi / (ni - xi))
    QE_Wld = float(np.sum(wi * (li - np.sum(wi * li) / np.sum(wi)) ** 2)) if inner.sum() > 1 else 0.0
    p = x.sum() / nn.sum()
    QE_LRT = float(np.sum(_binomial_deviance(x, nn, np.full(k, math.log(p / (1 - p)))))) if 0 < p < 1 else 0.0
    df = k - 1
    return dict(
        QE_Wld=QE_Wld,
        QEp_Wld=float(stats.chi2.sf(QE_Wld, df)),
        QE_LRT=QE_LRT,
        QEp_LRT=float(stats.chi2.sf(QE_LRT, df)),
        df=df,
    )


def _ilogit(v: float) -> float:
    return float(1.0 / (1.0 + math.exp(-v)))


def _binomial_deviance(x: np.ndarray, n: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """Binomial deviance residual per study at logit eta (0 log 0 = 0 for 0 % and 100 % arms)."""
    return saturated_terms(x, n) - 2.0 * (x * eta - n * np.logaddexp(0.0, eta))


def _start(yi: np.ndarray, vi: np.ndarray) -> tuple[float, float]:
    """Warm start for Newton: the inverse-variance REML fit of the study logits (escalc PLO).
    A tau^2 of 0 there is moved off the boundary, where the tau-gradient vanishes by symmetry."""
    try:
        tau2 = estimate_tau2("REML", yi, vi).tau2
    except ConvergenceError:
        tau2 = 0.25
    w = 1.0 / (vi + tau2)
    return float(np.sum(w * yi) / np.sum(w)), max(math.sqrt(tau2), 0.1)


def _fit(x: np.ndarray, n: np.ndarray, nAGQ: int, start: tuple[float, float]) -> tuple[float, float, float, str]:
    """(beta0, tau, deviance, optimiser) at the ML optimum. Joint Newton from `start` (see
    glmm_quadrature.py); the nested 1-D searches if Newton does not converge. tau = 0 (the
    boundary) when the optimum is there or the boundary deviance is no worse, as lme4's
    bounded optimiser would report; beta0 there is the pooled logit in closed form."""
    found = fit_newton(x, n, nAGQ, *start)
    optimiser = "joint Newton on (beta0, tau), exact gradient and Hessian, from the logit REML fit"
    if found is None:
        beta, tau = fit_nested(x, n, nAGQ)
        optimiser = "nested Brent searches (Newton did not converge)"
    else:
        beta, tau, _ = found
    if tau > _TAU_MAX * 0.999:
        raise GLMMConvergenceError(f"tau ran to the search bound {_TAU_MAX}: the likelihood has no finite maximum")
    p = x.sum() / n.sum()
    beta0 = math.log(p / (1 - p))
    dev_pair = deviances([beta, beta0], [tau, 0.0], x, n, nAGQ)
    dev = float(dev_pair[0])
    if tau < _TAU_ZERO or dev_pair[1] <= dev:
        beta, tau, dev = beta0, 0.0, float(dev_pair[1])
    if not (math.isfinite(dev) and abs(beta) < _BETA_MAX):
        raise GLMMConvergenceError(f"beta0 ran to {beta:.6g}: the likelihood has no finite maximum")
    return beta, tau, dev, optimiser


def _se_beta(beta: float, tau: float, x: np.ndarray, n: np.ndarray, nAGQ: int) -> float:
    """lme4's vcov: 2 H^-1 with H the central-difference Hessian of the deviance in (tau, beta0)
    (deriv12, step _HESSIAN_STEP); the nine points are evaluated in one vectorised call."""
    if tau == 0.0:
        mu = _ilogit(beta)
        return 1.0 / math.sqrt(float(np.sum(n * mu * (1 - mu))))
    h = _HESSIAN_STEP
    dt = np.array([0, h, -h, 0, 0, h, h, -h, -h])
    db = np.array([0, 0, 0, h, -h, h, -h, h, -h])
    f = deviances(beta + db, tau + dt, x, n, nAGQ)
    Htt = (f[1] - 2 * f[0] + f[2]) / h**2
    Hbb = (f[3] - 2 * f[0] + f[4]) / h**2
    Htb = (f[5] - f[6] - f[7] + f[8]) / (4 * h**2)
    H = np.array([[Htt, Htb], [Htb, Hbb]])
    if not np.all(np.isfinite(H)) or np.linalg.det(H) <= 0 or Hbb <= 0:
        raise GLMMConvergenceError(f"Hessian of the deviance is not positive definite at the optimum: {H.tolist()}")
    V = 2.0 * np.linalg.inv(H)
    return math.sqrt(V[1, 1])


def rma_glmm(
    events: Sequence[int], n: Sequence[int], *, studies: Sequence[str] | None = None, level: float = 0.95, nAGQ: int = 7
) -> MetaResult:
    """Random-intercept logistic model (ML, adaptive GHQ with `nAGQ` nodes), as
    `rma.glmm(measure = "PLO", method = "ML", test = "z")`. Wald z interval for beta0,
    prediction interval beta0 +- z sqrt(se^2 + tau^2) on the logit scale, both also
    back-transformed by the inverse logit.

    QE/QEp hold the Wald-type heterogeneity test (metafor's QE.Wld), the analogue of
    Cochran's Q; the likelihood-ratio version (QE.LRT) is in `provenance`.
    """
    if not 0 < level < 1:
        raise ValueError(f"level = {level} must lie strictly between 0 and 1")
    if not (isinstance(nAGQ, int) and nAGQ >= 1):
        raise ValueError(f"nAGQ = {nAGQ!r} must be a positive integer")
    x, nn, names = check_counts(events, n, studies)
    k = len(x)
    # escalc("PLO") with metafor's defaults (add = 1/2 to studies with 0 or n events): the
    # study rows, and the within-study variances rma.glmm uses for I^2.
    es = escalc("PLO", events=[int(v) for v in x], n=[int(v) for v in nn], add=0.5, to="only0", studies=names)
    yi, vi = es.yi, es.vi
    zcrit = float(stats.norm.ppf(1 - (1 - level) / 2))
    rows = exact_rows(names, x, nn, yi, vi, level)
    provenance = dict(
        model="binomial-normal random intercept (rma.glmm measure='PLO', lme4::glmer)",
        estimation="ML, adaptive Gauss-Hermite quadrature",
        nAGQ=nAGQ,
    )

    if k == 1:
        # One study: no tau^2 to estimate; report the study's own logit with its binomial se.
        if x[0] in (0, nn[0]):
            raise ValueError(
                f"study {names[0]!r}: a single study with {int(x[0])}/{int(nn[0])} events "
                "has an infinite logit; nothing can be pooled"
            )
        b = float(math.log(x[0] / (nn[0] - x[0])))
        se = math.sqrt(1.0 / x[0] + 1.0 / (nn[0] - x[0]))
        ci = (b - zcrit * se, b + zcrit * se)
        zval = b / se
        return MetaResult(
            measure="PLO",
            method="GLMM",
            test="z",
            level=level,
            k=1,
            b=b,
            se=se,
            zval=zval,
            pval=float(2 * stats.norm.sf(abs(zval))),
            ci_lb=ci[0],
            ci_ub=ci[1],
            tau2=None,
            QE=None,
            QEp=None,
            I2=None,
            H2=None,
            pi_lb=None,
            pi_ub=None,
            transform="ilogit",
            bt_pred=_ilogit(b),
            bt_ci_lb=_ilogit(ci[0]),
            bt_ci_ub=_ilogit(ci[1]),
            studies=rows,
            notes=(
                "k = 1: the estimate is the single study's own logit with its binomial standard "
                "error; tau^2, I^2, heterogeneity tests and the prediction interval are not estimable",
            ),
            provenance=provenance,
        )

    if x.sum() == 0 or x.sum() == nn.sum():
        raise ValueError(
            f"every study has {'no' if x.sum() == 0 else 'only'} events: the pooled logit is "
            f"{'-' if x.sum() == 0 else '+'}infinity and the GLMM has no finite maximum"
        )
    beta, tau, dev, optimiser = _fit(x, nn, nAGQ, _start(np.asarray(yi), np.asarray(vi)))
    se = _se_beta(beta, tau, x, nn, nAGQ)
    tau2 = tau * tau
    vt = _typical_vi(vi)
    I2 = 100.0 * tau2 / (vt + tau2)
    H2 = tau2 / vt + 1.0
    zval = beta / se
    ci_lb, ci_ub = beta - zcrit * se, beta + zcrit * se
    half_pi = zcrit * math.sqrt(se * se + tau2)
    het = heterogeneity_tests(x, nn)
    notes = []
    if tau == 0.0:
        notes.append("tau^2 estimated at 0 (boundary): se of beta0 from the common-effect information, as lme4 does")
    extreme = [names[i] for i in range(k) if x[i] in (0, nn[i])]
    if extreme:
        notes.append(
            "0 % or 100 % arm(s) " + ", ".join(extreme) + " enter the likelihood exactly; they carry "
            "no weight in the Wald heterogeneity test QE (see QE_LRT in provenance)"
        )
    notes.append("study weights are shares of patients (n_i / sum n); the GLMM has no inverse-variance weights")
    provenance.update(
        deviance=dev,
        tau=tau,
        vcov="2 * inverse finite-difference Hessian of the deviance "
        "in (tau, beta0), step 1e-4 (lme4 vcov.merMod, use.hessian = TRUE)",
        QE_Wld=het["QE_Wld"],
        QEp_Wld=het["QEp_Wld"],
        QE_LRT=het["QE_LRT"],
        QEp_LRT=het["QEp_LRT"],
        optimizer=optimiser,
    )
    return MetaResult(
        measure="PLO",
        method="GLMM",
        test="z",
        level=level,
        k=k,
        b=beta,
        se=se,
        zval=zval,
        pval=float(2 * stats.norm.sf(abs(zval))),
        ci_lb=ci_lb,
        ci_ub=ci_ub,
        tau2=tau2,
        QE=het["QE_Wld"],
        QEp=het["QEp_Wld"],
        I2=I2,
        H2=H2,
        pi_lb=beta - half_pi,
        pi_ub=beta + half_pi,
        pi_method="metafor",
        transform="ilogit",
        bt_pred=_ilogit(beta),
        bt_ci_lb=_ilogit(ci_lb),
        bt_ci_ub=_ilogit(ci_ub),
        bt_pi_lb=_ilogit(beta - half_pi),
        bt_pi_ub=_ilogit(beta + half_pi),
        studies=rows,
        notes=tuple(notes),
        provenance=provenance,
    )


__all__ = ["rma_glmm", "deviance", "heterogeneity_tests", "GLMMConvergenceError"]
