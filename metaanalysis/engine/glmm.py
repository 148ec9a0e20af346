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
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy import optimize, special, stats
from statsmodels.stats.proportion import proportion_confint

from metaanalysis.engine.effects import escalc
from metaanalysis.engine.results import MetaResult, StudyRows

_HESSIAN_STEP = 1e-4          # lme4 deriv12 default `delta`
_MODE_TOL = 1e-12             # Newton step size at which a per-study mode counts as found
_MODE_MAXIT = 200
_TAU_MAX = 20.0               # a tau this large on the logit scale means the fit has failed
_BETA_MAX = 30.0              # |logit| this large (p ~ 1e-13) means beta0 ran away
_TAU_ZERO = 1e-6              # below this the optimum is on the boundary tau = 0


class GLMMConvergenceError(RuntimeError):
    """The marginal likelihood could not be maximised; no number is returned."""


def _gh_rule(nAGQ: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Hermite rule for the standard normal density (lme4 `GHrule`): nodes z_k and
    weights w_k with sum(w_k) = 1, so that sum w_k g(z_k) approximates E g(Z)."""
    z, w = np.polynomial.hermite_e.hermegauss(nAGQ)
    return z, w / math.sqrt(2.0 * math.pi)


def _log_mu(eta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log(mu) and log(1 - mu) for mu = ilogit(eta), without overflow."""
    return -np.logaddexp(0.0, -eta), -np.logaddexp(0.0, eta)


def _dev_terms(x: np.ndarray, n: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """Binomial deviance residual per study, 2 [x log(x/(n mu)) + (n-x) log((n-x)/(n(1-mu)))],
    with 0 log 0 = 0 (needed for 0 % and 100 % arms)."""
    lmu, l1mu = _log_mu(eta)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(x > 0, x * (np.log(x / n) - lmu), 0.0)
        b = np.where(n - x > 0, (n - x) * (np.log((n - x) / n) - l1mu), 0.0)
    return 2.0 * (a + b)


def _modes(x: np.ndarray, n: np.ndarray, beta: float, tau: float) -> np.ndarray:
    """Per-study mode in u of p(x_i | u) phi(u): the minimum of the strictly convex
    phi(u) = u^2/2 - x eta + n log(1 + e^eta), eta = beta + tau u. Newton steps, halved while
    they do not decrease phi (plain Newton can oscillate on this sigmoid-shaped gradient)."""
    def objective(u):
        eta = beta + tau * u
        return 0.5 * u * u - x * eta + n * np.logaddexp(0.0, eta)

    u = np.zeros_like(x)
    phi = objective(u)
    for _ in range(_MODE_MAXIT):
        mu = special.expit(beta + tau * u)
        step = -(u - tau * (x - n * mu)) / (1.0 + tau * tau * n * mu * (1.0 - mu))
        for _halving in range(60):
            new_phi = objective(u + step)
            worse = new_phi > phi + 1e-12 * (1.0 + np.abs(phi))   # ignore rounding-level increases
            if not worse.any():
                break
            step = np.where(worse, 0.5 * step, step)
        u, phi = u + step, new_phi
        if np.max(np.abs(step)) < _MODE_TOL * (1.0 + np.max(np.abs(u))):
            return u
    raise GLMMConvergenceError(
        f"per-study conditional modes did not converge at beta0 = {beta:.6g}, tau = {tau:.6g}")


def deviance(beta: float, tau: float, events: np.ndarray, n: np.ndarray, nAGQ: int = 7) -> float:
    """-2 log marginal likelihood (up to a constant) by adaptive Gauss-Hermite quadrature."""
    x = np.asarray(events, dtype=float)
    n = np.asarray(n, dtype=float)
    u = _modes(x, n, beta, tau)
    mu = special.expit(beta + tau * u)
    L2 = 1.0 + tau * tau * n * mu * (1.0 - mu)     # curvature of the integrand at its mode
    devc0 = _dev_terms(x, n, beta + tau * u) + u * u
    if nAGQ == 1:
        return float(np.sum(devc0 + np.log(L2)))
    z, w = _gh_rule(nAGQ)
    sd = 1.0 / np.sqrt(L2)
    uk = u[:, None] + z[None, :] * sd[:, None]
    devck = _dev_terms(x[:, None], n[:, None], beta + tau * uk) + uk * uk
    mult = np.sum(w[None, :] * np.exp(-0.5 * (devck - devc0[:, None]) + 0.5 * z[None, :] ** 2), axis=1)
    return float(np.sum(devc0 + np.log(L2)) - 2.0 * np.sum(np.log(mult)))


def _check_counts(events: Sequence, n: Sequence, studies: Sequence | None) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    if len(events) != len(n):
        raise ValueError(f"events has {len(events)} values but n has {len(n)}")
    names = tuple(str(s) for s in studies) if studies is not None else tuple(str(i + 1) for i in range(len(n)))
    if len(names) != len(n):
        raise ValueError(f"studies has {len(names)} names but there are {len(n)} studies")
    if len(n) == 0:
        raise ValueError("no studies given")
    for i, (xi, ni) in enumerate(zip(events, n)):
        for field, v in (("events", xi), ("n", ni)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer, float, np.floating)) \
                    or not math.isfinite(v) or float(v) != int(v):
                raise ValueError(f"study {names[i]!r}: {field} = {v!r} is not a whole number")
        if ni <= 0:
            raise ValueError(f"study {names[i]!r}: n = {ni} must be positive")
        if xi < 0 or xi > ni:
            raise ValueError(f"study {names[i]!r}: events = {xi} must lie between 0 and n = {ni}")
    return np.asarray(events, dtype=float), np.asarray(n, dtype=float), names


def _typical_vi(vi: np.ndarray) -> float:
    """metafor's 'typical' within-study variance (k - 1) / tr(P) for an intercept-only model."""
    wi = 1.0 / vi
    return (len(vi) - 1) / (wi.sum() - (wi ** 2).sum() / wi.sum())


def heterogeneity_tests(events: Sequence, n: Sequence) -> dict[str, float]:
    """Wald and likelihood-ratio tests of the saturated (one logit per study) binomial model
    against the common-proportion model, as rma.glmm reports them (QE.Wld, QE.LRT; df = k - 1).

    Wald: the saturated glm's study logits have variance 1 / (n p (1 - p)) at the observed p,
    so the test of their equality is the inverse-variance Q of those logits. A 0 % or 100 %
    arm has an infinite logit whose glm weight is numerically zero: it does not contribute.
    LRT: twice the log-likelihood difference, observed proportions vs the pooled one.
    """
    x = np.asarray(events, dtype=float)
    n = np.asarray(n, dtype=float)
    k = len(x)
    inner = (x > 0) & (x < n)
    xi, ni = x[inner], n[inner]
    wi = xi * (ni - xi) / ni
    li = np.log(xi / (ni - xi))
    QE_Wld = float(np.sum(wi * (li - np.sum(wi * li) / np.sum(wi)) ** 2)) if inner.sum() > 1 else 0.0
    p = x.sum() / n.sum()
    QE_LRT = float(np.sum(_dev_terms(x, n, np.full(k, math.log(p / (1 - p)))))) if 0 < p < 1 else 0.0
    df = k - 1
    return dict(QE_Wld=QE_Wld, QEp_Wld=float(stats.chi2.sf(QE_Wld, df)),
                QE_LRT=QE_LRT, QEp_LRT=float(stats.chi2.sf(QE_LRT, df)), df=df)


def _clopper_pearson(x: np.ndarray, n: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    # statsmodels' exact ("beta") interval, the same one single_study.py shows for a lone study
    lb, ub = proportion_confint(x, n, alpha=1 - level, method="beta")
    return np.asarray(lb, dtype=float), np.asarray(ub, dtype=float)


def _study_rows(names, x, n, yi, vi, level) -> StudyRows:
    # Per-study interval: Clopper-Pearson exact interval of the proportion, R meta's
    # metaprop default. The GLMM has no inverse-variance weights: `weight` is the
    # study's share of patients, 100 n_i / sum(n).
    lb, ub = _clopper_pearson(x, n, level)
    return StudyRows(study=names, yi=tuple(map(float, yi)), vi=tuple(map(float, vi)),
                     weight=tuple(float(v) for v in 100.0 * n / n.sum()),
                     estimate=tuple(float(v) for v in x / n),
                     ci_lb=tuple(map(float, lb)), ci_ub=tuple(map(float, ub)),
                     events=tuple(int(v) for v in x), n=tuple(int(v) for v in n))


def _ilogit(v: float) -> float:
    return float(1.0 / (1.0 + math.exp(-v)))


def _fit(x: np.ndarray, n: np.ndarray, nAGQ: int) -> tuple[float, float, float]:
    """(beta0, tau, deviance) at the ML optimum: tau by bounded Brent on the profile deviance,
    beta0 by Brent for each tau. Both 1-D problems are smooth; the profile in tau was
    unimodal on the reference cases and on 200 random sets of tables."""
    p = x.sum() / n.sum()
    beta_start = math.log(max(p, 1e-3) / max(1 - p, 1e-3))

    def profile(tau: float) -> tuple[float, float]:
        res = optimize.minimize_scalar(lambda b: deviance(b, tau, x, n, nAGQ), method="brent",
                                       bracket=(beta_start - 1.0, beta_start + 1.0),
                                       options=dict(xtol=1e-12, maxiter=500))
        if not res.success:
            raise GLMMConvergenceError(f"beta0 did not converge at tau = {tau:.6g}: {res.message}")
        return float(res.x), float(res.fun)

    res = optimize.minimize_scalar(lambda t: profile(t)[1], method="bounded", bounds=(0.0, _TAU_MAX),
                                   options=dict(xatol=1e-10, maxiter=500))
    if not res.success:
        raise GLMMConvergenceError(f"tau did not converge: {res.message}")
    tau = float(res.x)
    if tau > _TAU_MAX * 0.999:
        raise GLMMConvergenceError(f"tau ran to the search bound {_TAU_MAX}: the likelihood has no finite maximum")
    if tau < _TAU_ZERO or profile(0.0)[1] <= res.fun:
        tau = 0.0
    beta, dev = profile(tau)
    if not (math.isfinite(dev) and abs(beta) < _BETA_MAX):
        raise GLMMConvergenceError(f"beta0 ran to {beta:.6g}: the likelihood has no finite maximum")
    return beta, tau, dev


def _se_beta(beta: float, tau: float, x: np.ndarray, n: np.ndarray, nAGQ: int) -> float:
    if tau == 0.0:
        mu = _ilogit(beta)
        return 1.0 / math.sqrt(float(np.sum(n * mu * (1 - mu))))
    h = _HESSIAN_STEP
    f = lambda t, b: deviance(b, t, x, n, nAGQ)   # noqa: E731
    f0 = f(tau, beta)
    Htt = (f(tau + h, beta) - 2 * f0 + f(tau - h, beta)) / h ** 2
    Hbb = (f(tau, beta + h) - 2 * f0 + f(tau, beta - h)) / h ** 2
    Htb = (f(tau + h, beta + h) - f(tau + h, beta - h) - f(tau - h, beta + h) + f(tau - h, beta - h)) / (4 * h ** 2)
    H = np.array([[Htt, Htb], [Htb, Hbb]])
    if not np.all(np.isfinite(H)) or np.linalg.det(H) <= 0 or Hbb <= 0:
        raise GLMMConvergenceError(f"Hessian of the deviance is not positive definite at the optimum: {H.tolist()}")
    V = 2.0 * np.linalg.inv(H)
    return math.sqrt(V[1, 1])


def rma_glmm(events: Sequence[int], n: Sequence[int], *, studies: Sequence[str] | None = None,
             level: float = 0.95, nAGQ: int = 7) -> MetaResult:
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
    x, nn, names = _check_counts(events, n, studies)
    k = len(x)
    # escalc("PLO") with metafor's defaults (add = 1/2 to studies with 0 or n events): the
    # study rows, and the within-study variances rma.glmm uses for I^2.
    es = escalc("PLO", events=[int(v) for v in x], n=[int(v) for v in nn], add=0.5, to="only0", studies=names)
    yi, vi = es.yi, es.vi
    zcrit = float(stats.norm.ppf(1 - (1 - level) / 2))
    rows = _study_rows(names, x, nn, yi, vi, level)
    provenance = dict(model="binomial-normal random intercept (rma.glmm measure='PLO', lme4::glmer)",
                      estimation="ML, adaptive Gauss-Hermite quadrature", nAGQ=nAGQ)

    if k == 1:
        # One study: no tau^2 to estimate; report the study's own logit with its binomial se.
        if x[0] in (0, nn[0]):
            raise ValueError(f"study {names[0]!r}: a single study with {int(x[0])}/{int(nn[0])} events "
                             "has an infinite logit; nothing can be pooled")
        b = float(math.log(x[0] / (nn[0] - x[0])))
        se = math.sqrt(1.0 / x[0] + 1.0 / (nn[0] - x[0]))
        ci = (b - zcrit * se, b + zcrit * se)
        zval = b / se
        return MetaResult(
            measure="PLO", method="GLMM", test="z", level=level, k=1, b=b, se=se, zval=zval,
            pval=float(2 * stats.norm.sf(abs(zval))), ci_lb=ci[0], ci_ub=ci[1], tau2=None, QE=None,
            QEp=None, I2=None, H2=None, pi_lb=None, pi_ub=None, transform="ilogit",
            bt_pred=_ilogit(b), bt_ci_lb=_ilogit(ci[0]), bt_ci_ub=_ilogit(ci[1]), studies=rows,
            notes=("k = 1: the estimate is the single study's own logit with its binomial standard "
                   "error; tau^2, I^2, heterogeneity tests and the prediction interval are not estimable",),
            provenance=provenance)

    if x.sum() == 0 or x.sum() == nn.sum():
        raise ValueError(f"every study has {'no' if x.sum() == 0 else 'only'} events: the pooled logit is "
                         f"{'-' if x.sum() == 0 else '+'}infinity and the GLMM has no finite maximum")
    beta, tau, dev = _fit(x, nn, nAGQ)
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
        notes.append("0 % or 100 % arm(s) " + ", ".join(extreme) + " enter the likelihood exactly; they carry "
                     "no weight in the Wald heterogeneity test QE (see QE_LRT in provenance)")
    notes.append("study weights are shares of patients (n_i / sum n); the GLMM has no inverse-variance weights")
    provenance.update(deviance=dev, tau=tau, vcov="2 * inverse finite-difference Hessian of the deviance "
                      "in (tau, beta0), step 1e-4 (lme4 vcov.merMod, use.hessian = TRUE)",
                      QE_Wld=het["QE_Wld"], QEp_Wld=het["QEp_Wld"], QE_LRT=het["QE_LRT"], QEp_LRT=het["QEp_LRT"],
                      optimizer="scipy.optimize.minimize_scalar: bounded Brent on tau (xatol 1e-10), "
                                "Brent on beta0 (xtol 1e-12)")
    return MetaResult(
        measure="PLO", method="GLMM", test="z", level=level, k=k, b=beta, se=se, zval=zval,
        pval=float(2 * stats.norm.sf(abs(zval))), ci_lb=ci_lb, ci_ub=ci_ub, tau2=tau2,
        QE=het["QE_Wld"], QEp=het["QEp_Wld"], I2=I2, H2=H2,
        pi_lb=beta - half_pi, pi_ub=beta + half_pi, pi_method="metafor", transform="ilogit",
        bt_pred=_ilogit(beta), bt_ci_lb=_ilogit(ci_lb), bt_ci_ub=_ilogit(ci_ub),
        bt_pi_lb=_ilogit(beta - half_pi), bt_pi_ub=_ilogit(beta + half_pi),
        studies=rows, notes=tuple(notes), provenance=provenance)


__all__ = ["rma_glmm", "deviance", "heterogeneity_tests", "GLMMConvergenceError"]
