"""Bayesian normal-normal model (`engine/bayes.py`) against the published bayesmeta example.

Source: Röver C (2020). Bayesian random-effects meta-analysis using the bayesmeta R package.
J Stat Softw 93(6), doi:10.18637/jss.v093.i06 (the PDF ships in the bayesmeta package as
inst/doc/Roever2020-bayesmeta.pdf). Data: Table 3 (p. 20), Crins et al. (2014), six studies of
IL-2RA vs control, log odds ratios by metafor's escalc(measure = "OR") (0.5 added to Gras 2008).

    R> ma01 <- bayesmeta(crins.es, mu.prior.mean = 0, mu.prior.sd = 4,
    +                    tau.prior = function(t) dhalfnormal(t, scale = 0.5))
    R> ma01$summary                                             # p. 23
    R> 1 - ma01$pposterior(mu = 0); 1 - ma01$pposterior(tau = 1) # p. 25
    R> ma01$qposterior(tau.p = 0.99)                            # p. 25
    R> ma01$post.interval(tau.level = 0.99, method = "central") # p. 27
    R> ma05 <- bayesmeta(crins.es[randomized == "yes", ], ...)  # p. 33: Heffron and Spada only
    R> ma05$pposterior(mu = 0)

What bayesmeta computes exactly, and what it approximates: the posterior of tau is integrated
numerically (R integrate), so every tau number is exact and we must match it. The marginal of
mu and the predictive distribution are replaced by a discrete normal mixture on a tau grid whose
neighbouring conditionals differ by a symmetrised KL divergence of delta = 0.01 ("DIRECT",
Röver & Friede 2017, J Comput Graph Stat 26:217; bayesmeta.R, discretize()). Its printed mu SD
and intervals therefore carry an approximation error of up to ~2e-3 here, which our exact mixture
does not. So the test checks (a) tau numbers and the mu/theta median and mean against the
publication to 1e-4 relative, (b) every published mu/theta number to 1e-4 after applying the
DIRECT grid (re-implemented below from the paper's description) to our tau posterior, which
shows the models and inputs are the same, and (c) the exact numbers against a slow, independent
two-dimensional integration (a dense tensor Gauss-Legendre grid over mu and tau).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import optimize, stats

from metaanalysis.engine.bayes import nn_posterior, rma_bayes, rma_bayes_effects
from metaanalysis.engine.bayes_numerics import NormalMixture
from metaanalysis.engine.bayes_priors import MuPrior, TauPrior, default_tau_prior, parse_tau_prior
from metaanalysis.engine.effects import escalc

REL = 1e-4
# Table 3, p. 20: events/total in the IL-2RA and control groups
CRINS = dict(
    ai=[14, 16, 3, 9, 4, 0], n1i=[61, 28, 18, 54, 36, 50], ci=[15, 19, 8, 29, 11, 3], n2i=[20, 28, 12, 54, 36, 34]
)
LABELS = ["Heffron 2003", "Gibelli 2004", "Schuller 2005", "Ganschow 2005", "Spada 2006", "Gras 2008"]
PRIOR = TauPrior("halfnormal", 0.5)
MU_PRIOR = MuPrior(0.0, 4.0)


@pytest.fixture(scope="module")
def crins():
    return escalc("OR", studies=LABELS, **CRINS)


@pytest.fixture(scope="module")
def ma01(crins):
    return rma_bayes_effects(crins, tau_prior=PRIOR, mu_prior=MU_PRIOR)


@pytest.fixture(scope="module")
def post01(crins):
    return nn_posterior(crins.yi, crins.vi, PRIOR, MU_PRIOR)


def test_table3_effect_sizes(crins):
    # the rounded yi and sigma_i printed in Table 3
    assert np.round(crins.yi, 2).tolist() == [-2.31, -0.46, -2.30, -1.76, -1.26, -2.42]
    assert np.round(np.sqrt(crins.vi), 2).tolist() == [0.60, 0.56, 0.88, 0.46, 0.64, 1.53]


def test_tau_posterior_matches_publication(ma01, post01):
    # ma01$summary, p. 23, column tau (shortest interval, bayesmeta's default)
    assert ma01.tau == pytest.approx(0.3445023, rel=REL)
    assert ma01.tau_mean == pytest.approx(0.3810562, rel=REL)
    sd = math.sqrt(post01.tau.moment(2) - post01.tau.moment(1) ** 2)
    assert sd == pytest.approx(0.2593672, rel=REL)
    assert ma01.tau_shortest_lb == 0.0
    assert ma01.tau_shortest_ub == pytest.approx(0.8607193, rel=REL)
    # p. 25 and p. 27
    assert 1 - float(post01.tau.cdf(1.0)) == pytest.approx(0.02097488, rel=REL)
    assert post01.tau.quantile(0.99) == pytest.approx(1.109186, rel=REL)
    assert post01.tau.shortest(0.99) == pytest.approx((0.0, 1.109186), rel=REL)
    assert (post01.tau.quantile(0.005), post01.tau.quantile(0.995)) == pytest.approx(
        (0.003547657, 1.205400562), rel=REL
    )


def test_mu_median_and_mean_match_publication(ma01):
    # p. 23: mu median -1.5734819, mean -1.5764365; theta (predictive) median -1.5701653.
    # Exact values; the DIRECT approximation moves them by ~1e-5 only.
    assert ma01.b == pytest.approx(-1.5734819, rel=REL)
    assert ma01.mu_mean == pytest.approx(-1.5764365, rel=REL)
    assert ma01.pi_median == pytest.approx(-1.5701653, rel=REL)
    # the exact intervals lie within bayesmeta's approximation error of the published ones
    assert (ma01.ci_shortest_lb, ma01.ci_shortest_ub) == pytest.approx((-2.2311251, -0.9263075), abs=2e-3)
    assert (ma01.pi_shortest_lb, ma01.pi_shortest_ub) == pytest.approx((-2.7661319, -0.4072970), abs=2e-3)
    assert ma01.se == pytest.approx(0.3295301, abs=2e-3)


def _symkl(m1, s1, m2, s2):
    return (m1 - m2) ** 2 * 0.5 * (1 / s1**2 + 1 / s2**2) + (s1**2 - s2**2) ** 2 / (2 * s1**2 * s2**2)


def direct_mixtures(y, v, tau_dist, m0, s0, delta=0.01, epsilon=1e-4):
    """bayesmeta's DIRECT grid (Röver & Friede 2017): reference points tau_j and bin edges such
    that the conditionals of mu, of theta_new and of every study's theta_i differ between
    neighbours by a symmetrised KL divergence of exactly `delta`; first point tau = 0; bins up
    to the 1 - epsilon quantile of tau; bin weights = posterior probability of the bin."""

    def moments(t):
        w = 1 / (v + t * t)
        V = 1 / (w.sum() + 1 / s0**2)
        m = (np.sum(w * y) + m0 / s0**2) * V
        b = t * t / (v + t * t)
        return [(m, math.sqrt(V)), (m, math.sqrt(V + t * t))] + [
            (bi * yi + (1 - bi) * m, math.sqrt(bi * vi + (1 - bi) ** 2 * V)) for bi, yi, vi in zip(b, y, v, strict=True)
        ]

    def divergence(t1, t2):
        return max(_symkl(*a, *b) for a, b in zip(moments(t1), moments(t2), strict=True))

    def step(t, upper):
        while divergence(t, upper) <= delta:
            upper *= 2
        return optimize.brentq(lambda s: divergence(t, s) - delta, t, upper, xtol=1e-13), upper

    maxtau = tau_dist.quantile(1 - epsilon)
    taus = [0.0]
    edge, upper = step(0.0, 1.0)
    weights = [float(tau_dist.cdf(edge))]
    while edge <= maxtau or len(taus) < 2:
        ref, upper = step(edge, upper)
        new_edge, upper = step(ref, upper)
        taus.append(ref)
        weights.append(max(0.0, float(tau_dist.cdf(new_edge) - tau_dist.cdf(edge))))
        edge = new_edge
    mo = [moments(t) for t in taus]
    mix = [
        NormalMixture(np.array(weights), np.array([m[j][0] for m in mo]), np.array([m[j][1] for m in mo]))
        for j in (0, 1)
    ]
    return mix[0], mix[1]


def test_direct_grid_reproduces_every_published_mu_number(crins, post01):
    mu, pred = direct_mixtures(crins.yi, crins.vi, post01.tau, 0.0, 4.0)
    # ma01$summary, p. 23
    assert mu.quantile(0.5) == pytest.approx(-1.5734819, rel=REL)
    assert mu.mean == pytest.approx(-1.5764365, rel=REL)
    assert mu.sd == pytest.approx(0.3295301, rel=REL)
    assert mu.shortest(0.95) == pytest.approx((-2.2311251, -0.9263075), rel=REL)
    assert pred.quantile(0.5) == pytest.approx(-1.5701653, rel=REL)
    assert pred.sd == pytest.approx(0.5671855, rel=REL)
    assert pred.shortest(0.95) == pytest.approx((-2.7661319, -0.4072970), rel=REL)
    # p. 25: 1 - ma01$pposterior(mu = 0)
    assert 1 - float(mu.cdf(0.0)) == pytest.approx(6.187343e-05, rel=REL)


def test_two_randomised_studies_ma05(crins):
    idx = [0, 4]  # Heffron 2003 and Spada 2006, p. 32-33
    post = nn_posterior(crins.yi[idx], crins.vi[idx], PRIOR, MU_PRIOR)
    mu, pred = direct_mixtures(crins.yi[idx], crins.vi[idx], post.tau, 0.0, 4.0)
    assert float(mu.cdf(0.0)) == pytest.approx(0.9974968, rel=REL)  # p. 33
    # Figure 6 (p. 33), two decimals: mean -1.78 [-2.86, -0.69], prediction [-3.25, -0.28]
    res = rma_bayes(crins.yi[idx], crins.vi[idx], measure="OR", tau_prior=PRIOR, mu_prior=MU_PRIOR)
    assert round(res.b, 2) == -1.78
    assert [round(x, 2) for x in (res.ci_shortest_lb, res.ci_shortest_ub)] == [-2.86, -0.69]
    assert [round(x, 2) for x in (res.pi_shortest_lb, res.pi_shortest_ub)] == [-3.25, -0.28]


# -- the slow, independent route: a dense tensor Gauss-Legendre grid over (mu, tau) -----------


def _gl(a, b, panels=300, order=10):
    """Composite Gauss-Legendre nodes and weights on [a, b]."""
    x, w = np.polynomial.legendre.leggauss(order)
    edges = np.linspace(a, b, panels + 1)
    half = np.diff(edges)[:, None] / 2
    return ((edges[:-1, None] + half * (x + 1)).ravel(), (half * w).ravel())


@pytest.mark.parametrize("case", ["ma01", "two_studies_flat_mu"])
def test_exact_route_agrees_with_dense_grid(crins, case):
    if case == "ma01":
        y, v, mu_prior = crins.yi, crins.vi, MU_PRIOR
    else:
        y, v, mu_prior = crins.yi[[1, 2]], crins.vi[[1, 2]], MuPrior()
    res = rma_bayes(y, v, measure="OR", tau_prior=PRIOR, mu_prior=mu_prior)
    MU_LO, MU_HI, TAU_HI = -12.0, 10.0, 6.0

    def mass(mu_range, tau_range, extra=None):
        """Integral of the unnormalised joint density over a rectangle (times `extra`)."""
        mu, wmu = _gl(*mu_range, panels=200)
        tau, wtau = _gl(*tau_range, panels=60)
        M, T = mu[:, None], tau[None, :]
        logj = stats.halfnorm.logpdf(T, scale=PRIOR.scale) + np.zeros_like(M)
        if mu_prior.sd is not None:
            logj = logj + stats.norm.logpdf(M, mu_prior.mean, mu_prior.sd)
        for yi, vi in zip(y, v, strict=True):
            logj = logj + stats.norm.logpdf(yi, M, np.sqrt(vi + T * T))
        dens = np.exp(logj) * wmu[:, None] * wtau[None, :]
        return float(np.sum(dens if extra is None else dens * extra(M, T)))

    Z = mass((MU_LO, MU_HI), (0.0, TAU_HI))
    mu_cdf = lambda m: mass((MU_LO, m), (0.0, TAU_HI)) / Z  # noqa: E731
    tau_cdf = lambda t: mass((MU_LO, MU_HI), (0.0, t)) / Z  # noqa: E731
    pred_cdf = lambda x: mass((MU_LO, MU_HI), (0.0, TAU_HI), lambda M, T: stats.norm.cdf((x - M) / T)) / Z  # noqa: E731
    mean = mass((MU_LO, MU_HI), (0.0, TAU_HI), lambda M, T: M) / Z
    second = mass((MU_LO, MU_HI), (0.0, TAU_HI), lambda M, T: M * M) / Z

    assert mu_cdf(res.b) == pytest.approx(0.5, abs=1e-7)
    assert mu_cdf(res.ci_lb) == pytest.approx(0.025, abs=1e-7)
    assert mu_cdf(res.ci_ub) == pytest.approx(0.975, abs=1e-7)
    assert mu_cdf(res.ci_shortest_ub) - mu_cdf(res.ci_shortest_lb) == pytest.approx(0.95, abs=1e-7)
    assert tau_cdf(res.tau) == pytest.approx(0.5, abs=1e-7)
    assert tau_cdf(res.tau_ci_ub) == pytest.approx(0.975, abs=1e-7)
    assert pred_cdf(res.pi_lb) == pytest.approx(0.025, abs=1e-6)
    assert pred_cdf(res.pi_ub) == pytest.approx(0.975, abs=1e-6)
    assert res.mu_mean == pytest.approx(mean, rel=1e-7)
    assert res.se == pytest.approx(math.sqrt(second - mean**2), rel=1e-7)


# -- result, priors and errors -----------------------------------------------------------------


def test_back_transformation_is_the_quantile_of_the_proportion():
    es = escalc("PLO", events=[4, 9, 12], n=[20, 30, 12], studies=["a", "b", "c"])
    res = rma_bayes_effects(es)
    expit = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    assert res.tau_prior == "half-normal(1)"
    assert res.bt_pred == pytest.approx(expit(res.b), rel=1e-12)
    assert (res.bt_ci_lb, res.bt_ci_ub) == pytest.approx((expit(res.ci_lb), expit(res.ci_ub)), rel=1e-12)
    assert res.reporting_interval()[:2] == (res.bt_ci_lb, res.bt_ci_ub)
    assert res.tau2 == pytest.approx(res.tau**2)
    assert sum(res.studies.weight) == pytest.approx(100.0)
    frame = res.to_frame()
    assert list(frame["kind"]) == ["study"] * 3 + ["pooled"]


def test_pft_back_transformed_with_harmonic_mean_n():
    res = rma_bayes_effects(escalc("PFT", events=[3, 10], n=[15, 40]))
    assert res.tau_prior == "half-normal(0.25)"
    assert 0 < res.bt_ci_lb < res.bt_pred < res.bt_ci_ub < 1


def test_priors_are_named_and_checked():
    assert parse_tau_prior("halfnormal:0.5") == TauPrior("halfnormal", 0.5)
    assert default_tau_prior("OR").scale == 0.5
    assert default_tau_prior("PR").scale == 0.25
    assert default_tau_prior("PLO").scale == 1.0
    with pytest.raises(ValueError, match="no default tau prior"):
        default_tau_prior("GEN")
    for bad in ("halfcauchy:0.5", "halfnormal", "halfnormal:-1", "halfnormal:abc", "halfnormal:inf"):
        with pytest.raises(ValueError, match="tau prior"):
            parse_tau_prior(bad)
    with pytest.raises(ValueError, match="no default tau prior"):
        rma_bayes([0.1, 0.2], [0.01, 0.02])


def test_bad_input_lists_every_problem():
    with pytest.raises(ValueError) as err:
        rma_bayes([0.1, float("nan"), 0.3], [0.01, 0.02, -1.0], measure="OR", studies=["a", "b", "c"])
    assert "study b (index 1): 'yi'" in str(err.value) and "study c (index 2): 'vi' must be > 0" in str(err.value)


def test_a_wider_prior_gives_a_wider_interval():
    y, v = [0.2, 1.4], [0.04, 0.05]
    narrow = rma_bayes(y, v, measure="OR", tau_prior="halfnormal:0.5")
    wide = rma_bayes(y, v, measure="OR", tau_prior="halfnormal:1.0")
    assert wide.ci_ub - wide.ci_lb > narrow.ci_ub - narrow.ci_lb
    assert wide.tau > narrow.tau
