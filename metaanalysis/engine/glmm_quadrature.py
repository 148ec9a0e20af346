"""The binomial-normal GLMM's marginal deviance by adaptive Gauss-Hermite quadrature, and
its maximum-likelihood fit (see glmm.py for the model and what lme4 does).

Speed (issue 11): the quadrature is vectorised over studies, nodes and, where several
(beta0, tau) points are needed at once (the finite-difference Hessian), over points;
the Gauss-Hermite rule is computed once per nAGQ; and (beta0, tau) are fitted jointly by
Newton's method from the logit REML fit, with the exact gradient and Hessian of the
quadrature deviance carried through by forward-mode differentiation (`jets.py`). The
per-study modes u_i(beta0, tau) enter those derivatives too: two Newton steps for the
mode taken in jet arithmetic from the converged mode give its first and second
derivatives exactly (the Newton map has zero slope at its fixed point). If Newton does
not converge the fit falls back to the nested one-dimensional searches used before.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy import optimize, special

from metaanalysis.engine import jets
from metaanalysis.engine.jets import Jet

_MODE_TOL = 1e-12  # Newton step size at which a per-study mode counts as found
_MODE_MAXIT = 200
_NEWTON_MAXIT = 60
_NEWTON_TOL = 1e-8  # a Newton step this small in (beta0, tau) is the last one (error ~ its square)
_TAU_MAX = 20.0  # a tau this large on the logit scale means the fit has failed


class GLMMConvergenceError(RuntimeError):
    """The marginal likelihood could not be maximised; no number is returned."""


@functools.cache
def gh_rule(nAGQ: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Hermite rule for the standard normal density (lme4 `GHrule`): nodes z_k and
    weights w_k with sum(w_k) = 1, so that sum w_k g(z_k) approximates E g(Z).
    Cached: it is an eigenvalue problem, and a fit needs it hundreds of times."""
    z, w = np.polynomial.hermite_e.hermegauss(nAGQ)
    z, w = z, w / math.sqrt(2.0 * math.pi)
    z.setflags(write=False)
    w.setflags(write=False)
    return z, w


def saturated_terms(x: np.ndarray, n: np.ndarray) -> np.ndarray:
    """2 [x log(x/n) + (n-x) log((n-x)/n)] per study, 0 log 0 = 0: the saturated
    log-likelihood that turns -2 log-likelihood into the binomial deviance."""
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(x > 0, x * np.log(x / n), 0.0)
        b = np.where(n - x > 0, (n - x) * np.log((n - x) / n), 0.0)
    return 2.0 * (a + b)


def _neg2_loglik(x, n, eta):
    # -2 [x eta - n log(1 + e^eta)]: the binomial kernel, finite for 0 % and 100 % arms
    return -2.0 * (x * eta - n * np.logaddexp(0.0, eta))


def modes(x: np.ndarray, n: np.ndarray, beta, tau, start: np.ndarray | None = None) -> np.ndarray:
    """Per-study mode in u of p(x_i | u) phi(u): the minimum of the strictly convex
    phi(u) = u^2/2 - x eta + n log(1 + e^eta), eta = beta + tau u. Newton steps, halved while
    they do not decrease phi (plain Newton can oscillate on this sigmoid-shaped gradient).
    beta and tau may be arrays broadcasting against x (several points at once)."""

    def objective(u):
        eta = beta + tau * u
        return 0.5 * u * u - x * eta + n * np.logaddexp(0.0, eta)

    shape = np.broadcast_shapes(np.shape(x), np.shape(beta), np.shape(tau))
    u = np.zeros(shape) if start is None else np.broadcast_to(start, shape).copy()
    phi = objective(u)
    for _ in range(_MODE_MAXIT):
        mu = special.expit(beta + tau * u)
        step = -(u - tau * (x - n * mu)) / (1.0 + tau * tau * n * mu * (1.0 - mu))
        for _halving in range(60):
            new_phi = objective(u + step)
            worse = new_phi > phi + 1e-12 * (1.0 + np.abs(phi))  # ignore rounding-level increases
            if not worse.any():
                break
            step = np.where(worse, 0.5 * step, step)
        u, phi = u + step, new_phi
        if np.max(np.abs(step)) < _MODE_TOL * (1.0 + np.max(np.abs(u))):
            return u
    raise GLMMConvergenceError(f"per-study conditional modes did not converge at beta0 = {beta}, tau = {tau}")


def deviances(beta, tau, x: np.ndarray, n: np.ndarray, nAGQ: int = 7) -> np.ndarray:
    """-2 log marginal likelihood (binomial-deviance constant included) at each point
    (beta[j], tau[j]); beta and tau are 1-D arrays of equal length."""
    beta = np.asarray(beta, dtype=float)[:, None]
    tau = np.asarray(tau, dtype=float)[:, None]
    u = modes(x, n, beta, tau)
    mu = special.expit(beta + tau * u)
    L2 = 1.0 + tau * tau * n * mu * (1.0 - mu)  # curvature of the integrand at its mode
    devc0 = _neg2_loglik(x, n, beta + tau * u) + u * u
    out = np.sum(devc0 + np.log(L2), axis=-1) + np.sum(saturated_terms(x, n))
    if nAGQ == 1:
        return out
    z, w = gh_rule(nAGQ)
    uk = u[..., None] + z / np.sqrt(L2)[..., None]
    devck = _neg2_loglik(x[:, None], n[:, None], beta[..., None] + tau[..., None] * uk) + uk * uk
    mult = np.sum(w * np.exp(-0.5 * (devck - devc0[..., None]) + 0.5 * z * z), axis=-1)
    return out - 2.0 * np.sum(np.log(mult), axis=-1)


def deviance_jet(
    beta: float, tau: float, x: np.ndarray, n: np.ndarray, nAGQ: int, u_start: np.ndarray | None = None
) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """Deviance at (beta, tau) with its exact gradient and Hessian in (beta, tau), and the
    per-study modes (to warm-start the next call)."""
    u0 = modes(x, n, beta, tau, start=u_start)
    b, t = Jet.variables([beta, tau])

    def eta_mu(u):
        eta = b + t * u
        return eta, jets.expit(eta)

    u = Jet.const(u0, b)
    for _ in range(2):  # Newton steps for the mode in jet arithmetic: exact du and d2u
        _, mu = eta_mu(u)
        info = 1.0 + t.square() * (n * (mu * (1.0 - mu)))
        u = u - (u - t * (x - n * mu)) / info
    eta, mu = eta_mu(u)
    L2 = 1.0 + t.square() * (n * (mu * (1.0 - mu)))
    sp0 = jets.softplus(eta)
    devc0 = -2.0 * (x * eta - n * sp0) + u.square()
    total = (devc0 + jets.log(L2)).sum()
    if nAGQ > 1:
        # node k of study i sits at u + sd z_k, sd = L2^-1/2, so eta_k - eta = tau sd z_k and
        # -(devc_k - devc_0)/2 + z_k^2/2 = A z_k + B z_k^2 - n (softplus(eta_k) - softplus(eta))
        # with A = (x tau - u) sd and B = (1 - sd^2)/2: only softplus and exp act on (study, node).
        z, w = gh_rule(nAGQ)
        sd = jets.rsqrt(L2)
        A = (x * t - u) * sd
        B = 0.5 * (1.0 - sd.square())
        etak = eta[:, None] + (t * sd)[:, None] * z
        ek = A[:, None] * z + B[:, None] * (z * z) - n[:, None] * (jets.softplus(etak) - sp0[:, None])
        mult = (jets.exp(ek) * w).sum(axis=1)
        total = total - 2.0 * jets.log(mult).sum()
    dev = float(total.v) + float(np.sum(saturated_terms(x, n)))
    return dev, np.asarray(total.g, dtype=float), np.asarray(total.h, dtype=float), u0


def fit_newton(x: np.ndarray, n: np.ndarray, nAGQ: int, beta: float, tau: float) -> tuple[float, float, float] | None:
    """Joint damped Newton for (beta0, tau >= 0) from a start; None if it does not converge.
    The deviance is even in tau (u -> -u), so a step through 0 is reflected."""
    dev, g, H, u = deviance_jet(beta, tau, x, n, nAGQ)
    for _ in range(_NEWTON_MAXIT):
        # Newton direction; if H is not positive definite, shift its spectrum (Levenberg)
        lam = 0.0
        tr, det = H[0, 0] + H[1, 1], H[0, 0] * H[1, 1] - H[0, 1] * H[1, 0]
        disc = math.sqrt(max(0.0, 0.25 * tr * tr - det))
        lo, hi = 0.5 * tr - disc, 0.5 * tr + disc  # eigenvalues of the 2 x 2 Hessian
        if lo <= 1e-8 * max(1.0, abs(hi)):
            lam = -lo + 1e-3 * max(1.0, abs(hi))
        step = -np.linalg.solve(H + lam * np.eye(2), g)
        if lam == 0.0 and np.max(np.abs(step)) < _NEWTON_TOL * (1.0 + abs(beta) + tau):
            # Newton converges quadratically: after a step this small the error is O(step^2)
            return beta + step[0], abs(tau + step[1]), dev
        for _halving in range(40):
            nb, nt = beta + step[0], abs(tau + step[1])
            if nt > _TAU_MAX:
                step = 0.5 * step
                continue
            try:
                ndev, ng, nH, nu = deviance_jet(nb, nt, x, n, nAGQ, u_start=u)
            except GLMMConvergenceError:
                step = 0.5 * step
                continue
            if math.isfinite(ndev) and ndev <= dev + 1e-12 * abs(dev):
                break
            step = 0.5 * step
        else:
            return None
        beta, tau, dev, g, H, u = nb, nt, ndev, ng, nH, nu
    return None


def fit_nested(x: np.ndarray, n: np.ndarray, nAGQ: int) -> tuple[float, float]:
    """(beta0, tau) by bounded Brent on the profile deviance in tau and Brent on beta0 for
    each tau: slow, used only if Newton fails. Both 1-D problems are smooth; the profile in
    tau was unimodal on the reference cases and on 200 random sets of tables."""
    p = x.sum() / n.sum()
    beta_start = math.log(max(p, 1e-3) / max(1 - p, 1e-3))

    def profile(tau: float) -> tuple[float, float]:
        res = optimize.minimize_scalar(
            lambda b: float(deviances([b], [tau], x, n, nAGQ)[0]),
            method="brent",
            bracket=(beta_start - 1.0, beta_start + 1.0),
            options=dict(xtol=1e-12, maxiter=500),
        )
        if not res.success:
            raise GLMMConvergenceError(f"beta0 did not converge at tau = {tau:.6g}: {res.message}")
        return float(res.x), float(res.fun)

    res = optimize.minimize_scalar(
        lambda t: profile(t)[1], method="bounded", bounds=(0.0, _TAU_MAX), options=dict(xatol=1e-10, maxiter=500)
    )
    if not res.success:
        raise GLMMConvergenceError(f"tau did not converge: {res.message}")
    tau = float(res.x)
    return profile(tau)[0], tau


__all__ = [
    "GLMMConvergenceError",
    "gh_rule",
    "modes",
    "deviances",
    "deviance_jet",
    "fit_newton",
    "fit_nested",
    "saturated_terms",
]
