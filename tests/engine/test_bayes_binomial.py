"""Bayesian binomial-normal model (`engine/bayes_binomial.py`) against a slow independent route.

The slow route shares no code with the fast one: each study's random effect is integrated on a
fixed dense Gauss-Legendre grid of u in [-12, 12] (no mode finding), and mu and tau on dense
composite Gauss-Legendre grids; the posterior CDF of mu at the fast route's median and interval
ends must be 0.5, 0.025 and 0.975. No published example of this exact model (half-normal prior,
binomial likelihood, no MCMC) was found to pin it to; R meta/metafor have no equivalent.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special, stats

from metaanalysis.engine.bayes_binomial import rma_bayes_binomial, study_loglik
from metaanalysis.engine.bayes_priors import MuPrior


def _gl_edges(edges, per_panel, order=8):
    """Composite Gauss-Legendre nodes on [edges[0], edges[-1]] with `per_panel` panels between
    consecutive edges, and for each node the index of the edge interval it lies in."""
    x, w = np.polynomial.legendre.leggauss(order)
    nodes, weights, where = [], [], []
    for i, (a, b) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        sub = np.linspace(a, b, per_panel + 1)
        half = np.diff(sub)[:, None] / 2
        nodes.append((sub[:-1, None] + half * (x + 1)).ravel())
        weights.append((half * w).ravel())
        where.append(np.full(per_panel * order, i))
    return np.concatenate(nodes), np.concatenate(weights), np.concatenate(where)


def _gl(a, b, panels, order=8):
    nodes, weights, _ = _gl_edges([a, b], panels, order)
    return nodes, weights


def _slow_posterior(x, n, mu_edges, tau_edges, scale, mu_prior: MuPrior):
    """Posterior mass of each (mu interval, tau interval) cell between the given edges, from one
    evaluation of the joint density on dense grids (u: the random effect, on [-12, 12])."""
    mu, wmu, imu = _gl_edges(mu_edges, 12)
    tau, wtau, itau = _gl_edges(tau_edges, 10)
    u, wu = _gl(-12.0, 12.0, panels=30)
    logj = stats.halfnorm.logpdf(tau, scale=scale)[None, :] + np.zeros((len(mu), 1))
    if mu_prior.sd is not None:
        logj += stats.norm.logpdf(mu, mu_prior.mean, mu_prior.sd)[:, None]
    for xi, ni in zip(x, n, strict=True):
        eta = mu[:, None, None] + tau[None, :, None] * u[None, None, :]
        logb = xi * special.log_expit(eta) + (ni - xi) * special.log_expit(-eta)
        logj += special.logsumexp(logb + np.log(wu * stats.norm.pdf(u)), axis=-1)
    dens = np.exp(logj - logj.max()) * wmu[:, None] * wtau[None, :]
    cells = np.zeros((len(mu_edges) - 1, len(tau_edges) - 1))
    np.add.at(cells, (imu[:, None], itau[None, :]), dens)
    return cells / cells.sum()


@pytest.mark.parametrize(
    "x, n, mu_prior",
    [
        ([12, 7], [12, 20], MuPrior()),  # a 100 % arm, no continuity correction
        ([3, 10, 25], [30, 40, 60], MuPrior()),
        ([0, 2], [15, 25], MuPrior(0.0, 3.0)),
    ],
)
def test_fast_route_agrees_with_dense_grid(x, n, mu_prior):
    res = rma_bayes_binomial(x, n, tau_prior="halfnormal:0.5", mu_prior=mu_prior, shortest=False)
    # half-normal(0.5): P(tau > 4.5) < 1e-18; mu beyond +-14 on the logit scale carries no mass here
    cells = _slow_posterior(x, n, [-14.0, res.ci_lb, res.b, res.ci_ub, 14.0], [0.0, res.tau, 4.5], 0.5, mu_prior)
    mu_cdf = np.cumsum(cells.sum(axis=1))
    assert mu_cdf[:3] == pytest.approx([0.025, 0.5, 0.975], abs=2e-6)
    assert cells.sum(axis=0)[0] == pytest.approx(0.5, abs=2e-6)
    assert res.bt_pred == pytest.approx(special.expit(res.b))


def test_study_loglik_matches_quadrature():
    # L(mu, tau) for 12/12 and 7/20 at tau = 0, 0.5, 3 against a dense fixed grid in u
    x, n = np.array([12.0, 7.0]), np.array([12.0, 20.0])
    u, wu = _gl(-15.0, 15.0, panels=200)
    for mu, tau in [(0.3, 0.0), (1.0, 0.5), (2.0, 3.0)]:
        eta = mu + tau * u
        slow = sum(
            special.logsumexp(
                xi * special.log_expit(eta) + (ni - xi) * special.log_expit(-eta) + np.log(wu * stats.norm.pdf(u))
            )
            for xi, ni in zip(x, n, strict=True)
        )
        fast = study_loglik(x, n, mu, tau)[0]
        assert fast == pytest.approx(slow, abs=5e-6)


def test_all_events_needs_a_proper_mu_prior():
    with pytest.raises(ValueError, match="improper"):
        rma_bayes_binomial([12, 8], [12, 8])
    res = rma_bayes_binomial([12, 8], [12, 8], mu_prior=MuPrior(0.0, 2.0), shortest=False)
    assert 0.5 < res.bt_ci_lb < res.bt_pred < res.bt_ci_ub < 1


def test_bad_counts_are_all_listed():
    with pytest.raises(ValueError) as err:
        rma_bayes_binomial([3, 12, -1], [10, 10, 5], studies=["a", "b", "c"])
    assert "'b'" in str(err.value) and "'c'" in str(err.value)


def test_result_reads_like_the_other_fits():
    res = rma_bayes_binomial([4, 9], [20, 30], studies=["a", "b"])
    assert res.method == "BAYES-BN" and res.model == "binomial-normal" and res.measure == "PLO"
    assert res.tau_prior == "half-normal(1)"
    assert res.ci_shortest_ub - res.ci_shortest_lb <= res.ci_ub - res.ci_lb + 1e-9
    assert res.studies.events == (4, 9) and res.k == 2
    assert res.reporting_interval() == (res.bt_ci_lb, res.bt_ci_ub, res.bt_pi_lb, res.bt_pi_ub)
