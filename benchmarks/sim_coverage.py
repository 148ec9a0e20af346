"""Coverage and width of 95 % intervals for single-arm proportion meta-analyses with few studies.

    .venv/bin/python benchmarks/sim_coverage.py --replicates 2000 --workers 2 --out DIR
    .venv/bin/python benchmarks/sim_coverage.py --quick --out DIR            # small grid, ~1 minute
    .venv/bin/python benchmarks/sim_coverage.py --scheduler tcp://HOST:8786 --out DIR  # any Dask cluster
    .venv/bin/python benchmarks/sim_coverage.py --check                      # vectorised vs library

Runs on Dask (`dask.distributed`, the `sim` extra of pyproject.toml): by default a LocalCluster of
`--workers` processes with one thread each on this machine; with `--scheduler ADDRESS` on an
existing cluster (its workers need this package installed, `pip install metaanalysis[sim]`). One
task is one block of BLOCK replicates of one cell.

Data. Replicate r of a cell (n_min, n_max, k, p, tau) draws from
`numpy.random.default_rng(SeedSequence(20261121, spawn_key=(n_min, n_max, k, round(1000 p),
round(1000 tau), r)))`: n = rng.integers(n_min, n_max + 1, size=k), theta = logit(p) +
tau * rng.standard_normal(k), x = rng.binomial(n, ilogit(theta)). The seed is a function of the
cell and the replicate only (never of a worker or of the order tasks finish), and the results are
assembled in the fixed order of the grid, so the output files are byte-identical for any number of
workers. They also do not depend on --replicates beyond the replicates drawn: the first 20
replicates of a 2,000-replicate run are those of a 20-replicate run.

Grid. Design A (n_i uniform on 10..100): k = 2, 3, 4, 5 x p = 0.1, 0.3, 0.5, 0.7, 0.9 x
tau = 0, 0.5, 1, and k = 10 at p = 0.3 (context). Design B (n_i uniform on 5..30, where 0 % and
100 % arms are frequent): k = 2, 3, 4 x p = 0.1, 0.9 x tau = 0, 0.5, 1. Every method runs
in every cell at every replicate.

The estimand is the median true proportion ilogit(mu), the same for every method; intervals are
compared on the proportion scale. Methods:
- GLMM: engine/glmm.py rma_glmm, ML, nAGQ = 7, Wald z interval (R meta's default), one call a data set.
- PLO-HKSJ: logit, 0.5 added to 0 % / 100 % studies, REML tau^2, Hartung-Knapp-Sidik-Jonkman.
- PFT-HKSJ: Freeman-Tukey double arcsine, REML, HKSJ, back-transformed with the harmonic mean n.
  Both by engine/batch.py fit_rows (rma() row by row, to rounding; `--check` compares with rma).
- BAYES-NN: the normal-normal model of engine/bayes.py on the logit yi, vi (0.5 added to 0 % /
  100 % arms), half-normal(0.5) on tau, flat mu; on fixed grids vectorised over replicates.
- BAYES-BN: the binomial-normal model of engine/bayes_binomial.py (exact binomial likelihood),
  half-normal(0.5), flat mu, on fixed grids vectorised over replicates (Gauss-Legendre in tau,
  Chebyshev series in mu per tau node; each study's integral over its random effect as
  `study_loglik` computes it, with a per-element Newton). A data set whose arms are all 0 % (or all
  100 %) has an improper posterior under the flat prior on mu: an error, as rma_bayes_binomial says.
- BAYES-NN-1, BAYES-BN-1: the same with the half-normal(1.0) prior.
All Bayesian intervals are equal-tailed 95 % credible intervals. `--check` compares the vectorised
versions with the library functions.

Output in DIR: small_k_coverage.csv (one row per cell and method: counts, coverage %, median
width in percentage points, the same restricted to replicates with a 0 % or 100 % arm) and
small_k_coverage.md (the tables and the decisions of docs/methods-small-k.md). A data set a method
cannot fit counts as not covered and as infinitely wide, and is counted in `errors`.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import os
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # before numpy: one BLAS thread
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
from numpy.polynomial import chebyshev as C  # noqa: E402
from scipy import special  # noqa: E402

from metaanalysis.engine.bayes_numerics import (  # noqa: E402
    chebyshev_nodes,
    clenshaw_curtis_weights,
    values_to_coefficients,
)
from metaanalysis.engine.bayes_priors import TauPrior  # noqa: E402

SEED = 20261121
BLOCK = 100  # replicates per task (part of the definition of the result: it groups the vectorised fits)
PRIOR = TauPrior("halfnormal", 0.5)
PRIOR_WIDE = TauPrior("halfnormal", 1.0)
METHODS = ("GLMM", "PLO-HKSJ", "PFT-HKSJ", "BAYES-NN", "BAYES-NN-1", "BAYES-BN-1")
TAUS = (0.0, 0.5, 1.0)
DESIGNS = {"A": (10, 100), "B": (5, 30)}


@dataclass(frozen=True)
class Cell:
    design: str
    k: int
    p: float
    tau: float

    @property
    def n_range(self) -> tuple[int, int]:
        return DESIGNS[self.design]

    @property
    def key(self) -> tuple[int, ...]:
        """The spawn key of the cell: its parameters, as integers."""
        lo, hi = self.n_range
        return (lo, hi, self.k, round(1000 * self.p), round(1000 * self.tau))


def grid(quick: bool = False) -> list[Cell]:
    if quick:
        return [Cell("A", k, p, t) for k in (2, 3) for p in (0.3, 0.9) for t in (0.0, 1.0)] + [Cell("B", 2, 0.95, 0.5)]
    main = [Cell("A", k, p, t) for k in (2, 3, 4, 5) for p in (0.1, 0.3, 0.5, 0.7, 0.9) for t in TAUS]
    context = [Cell("A", 10, 0.3, t) for t in TAUS]
    extreme = [Cell("B", k, p, t) for k in (2, 3, 4) for p in (0.1, 0.9) for t in TAUS]
    return main + context + extreme


def replicate_rng(cell: Cell, r: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(SEED, spawn_key=(*cell.key, r)))


def simulate(cell: Cell, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    """(x, n), one row per replicate start..stop-1 of `cell`."""
    lo, hi = cell.n_range
    x = np.empty((stop - start, cell.k), dtype=np.int64)
    n = np.empty_like(x)
    for i, r in enumerate(range(start, stop)):
        rng = replicate_rng(cell, r)
        n[i] = rng.integers(lo, hi + 1, size=cell.k)
        theta = special.logit(cell.p) + cell.tau * rng.standard_normal(cell.k)
        x[i] = rng.binomial(n[i], special.expit(theta))
    return x, n


# -- the binomial-normal study likelihood, vectorised with a per-element Newton ----------------

_U_DROP = 25.0  # as engine/bayes_binomial.py: the u-integral ends where h has dropped by this
_CHUNK = 65536  # elements per chunk of the quadrature stage


def study_loglik_fast(x, n, mu, tau, nodes: int = 16):
    """sum_i log L_i(mu, tau) with its first two mu-derivatives, as engine/bayes_binomial.py's
    `study_loglik` defines them: h(u) = x log p + (n - x) log(1 - p) - u^2 / 2, p = ilogit(mu + tau u);
    the mode of h by safeguarded Newton, the ends where h has dropped by 25, Gauss-Legendre between.
    The difference is speed: every element stops its Newton iteration when its own step is below
    1e-9 (the library iterates the whole array until the largest step is), and h uses one softplus."""
    x = np.asarray(x, dtype=float)
    n = np.asarray(n, dtype=float)
    mu_b = np.asarray(mu, dtype=float)[..., None]
    tau_b = np.asarray(tau, dtype=float)[..., None]
    shape = np.broadcast_shapes(mu_b.shape, tau_b.shape, x.shape)
    X, N, M, T = (np.broadcast_to(a, shape).ravel() for a in (x, n, mu_b, tau_b))
    a, b = T * (X - N), T * X  # h' changes sign in [a, b]; 0 lies inside
    u = np.zeros(X.size)
    act = np.arange(X.size)
    for _ in range(100):
        ua, ta, xa, na = u[act], T[act], X[act], N[act]
        p = special.expit(M[act] + ta * ua)
        g = ta * (xa - na * p) - ua
        c = -1.0 - ta * ta * na * p * (1 - p)
        aa = np.where(g > 0, ua, a[act])
        bb = np.where(g < 0, ua, b[act])
        a[act], b[act] = aa, bb
        newton = ua - g / c
        new = np.where((newton >= aa) & (newton <= bb), newton, (aa + bb) / 2)
        u[act] = new
        act = act[np.abs(new - ua) >= 1e-9]
        if act.size == 0:
            break

    def parts(uu, m, t, xx, nn, grad=True):
        eta = m + t * uu
        sp = np.logaddexp(0.0, eta)
        p = np.exp(eta - sp)
        return xx * eta - nn * sp - 0.5 * uu * uu, (t * (xx - nn * p) - uu) if grad else None, p

    h, g, p = parts(u, M, T, X, N)
    c = -1.0 - T * T * N * p * (1 - p)
    reach = math.sqrt(2 * _U_DROP)
    ends = []
    for sign in (-1.0, 1.0):
        e = u + sign * reach / np.sqrt(-c)
        lo_e, hi_e = (u - reach, u) if sign < 0 else (u, u + reach)
        for _ in range(4):
            he, ge, _ = parts(e, M, T, X, N)
            e = np.clip(e - (he - (h - _U_DROP)) / np.where(ge == 0, sign * -1e-300, ge), lo_e, hi_e)
        ends.append(e)
    zq, wq = np.polynomial.legendre.leggauss(nodes)
    logL, mean_s, hess = np.empty(X.size), np.empty(X.size), np.empty(X.size)
    for i in range(0, X.size, _CHUNK):  # in chunks: (elements x nodes) temporaries stay small
        j = slice(i, i + _CHUNK)
        half = ((ends[1][j] - ends[0][j]) / 2)[:, None]
        uq = ends[0][j][:, None] + half * (zq + 1)
        xx, nn = X[j][:, None], N[j][:, None]
        hq, _, pq = parts(uq, M[j][:, None], T[j][:, None], xx, nn, grad=False)
        logw = hq + np.log(half * wq)
        top = logw.max(-1, keepdims=True)
        w = np.exp(logw - top)
        s = w.sum(-1)
        logL[j] = np.log(s) + top[:, 0] - 0.5 * math.log(2 * math.pi)
        w /= s[:, None]
        score = xx - nn * pq
        mean_s[j] = np.sum(w * score, -1)
        hess[j] = np.sum(w * (score * score - nn * pq * (1 - pq)), -1) - mean_s[j] ** 2
    out = [v.reshape(shape).sum(-1) for v in (logL, mean_s, hess)]
    return out[0], out[1], out[2]


def bn_intervals(x, n, prior=PRIOR, level=0.95, n_tau=24, n_z=41, half_width=8.0, u_nodes=24, newton_nodes=12):
    """(median, lower, upper) of ilogit(mu) under the binomial-normal model, one row per data set
    (equal-tailed). Gauss-Legendre in tau on [0, 6 scale]; for each tau node the conditional of mu
    on +-8 Laplace sds around its mode by a Chebyshev series; quantiles of the mixture by bisection."""
    x, n = np.asarray(x, float), np.asarray(n, float)
    R, k = x.shape
    tz, tw = np.polynomial.legendre.leggauss(n_tau)
    tmax = 6 * prior.scale  # P(tau > 6 scale) = 2e-9
    tau = tmax * (tz + 1) / 2
    logw_tau = np.log(tw * tmax / 2) + prior.logpdf(tau)
    start = np.log((x.sum(1) + 0.5) / (n.sum(1) - x.sum(1) + 0.5))
    # Newton to each conditional mode of mu (it only centres the grid: 1e-3 will do), per element
    m = np.repeat(start[:, None], n_tau, axis=1).ravel()
    rows = np.repeat(np.arange(R), n_tau)
    taus = np.tile(tau, R)
    act = np.arange(R * n_tau)
    for _ in range(30):
        _, g, h = study_loglik_fast(x[rows[act]], n[rows[act]], m[act], taus[act], newton_nodes)
        step = np.clip(-g / np.minimum(h, -1e-12), -2, 2)
        m[act] += step
        act = act[np.abs(step) >= 1e-3]
        if act.size == 0:
            break
    _, _, h = study_loglik_fast(x[rows], n[rows], m, taus, u_nodes)
    m = m.reshape(R, n_tau)
    sd = (1 / np.sqrt(-np.minimum(h, -1e-12))).reshape(R, n_tau)
    z = chebyshev_nodes(n_z)
    mus = m[..., None] + sd[..., None] * half_width * z  # (R, T, Z)
    ll, _, _ = study_loglik_fast(x[:, None, None, :], n[:, None, None, :], mus, tau[None, :, None], u_nodes)
    top = ll.max(-1, keepdims=True)
    vals = np.exp(ll - top)
    scale = sd * half_width  # d mu / d t
    Z = np.sum(vals * clenshaw_curtis_weights(n_z), -1) * scale
    logW = logw_tau[None, :] + top[..., 0] + np.log(Z)
    W = np.exp(logW - logW.max(1, keepdims=True))
    W /= W.sum(1, keepdims=True)
    coef = np.moveaxis(values_to_coefficients(np.moveaxis(vals, -1, 0)), 0, -1)
    cdfc = C.chebint(coef, lbnd=-1, axis=-1) * (scale / Z)[..., None]
    cdfc = np.moveaxis(cdfc, -1, 0)  # (Z+1, R, T)
    lo, hi = (m - scale).min(1), (m + scale).max(1)

    def cdf(v):
        t = np.clip((v[:, None] - m) / scale, -1, 1)
        return np.sum(W * np.clip(C.chebval(t, cdfc, tensor=False), 0, 1), axis=1)

    out = []
    for q in (0.5, (1 - level) / 2, (1 + level) / 2):
        a, b = lo.copy(), hi.copy()
        for _ in range(60):
            mid = (a + b) / 2
            below = cdf(mid) < q
            a, b = np.where(below, mid, a), np.where(below, b, mid)
        out.append(special.expit((a + b) / 2))
    return np.stack(out, axis=1)


def nn_intervals(yi, vi, prior=PRIOR, level=0.95, n_tau=48):
    """The normal-normal posterior of engine/bayes.py on fixed grids, vectorised over rows:
    Gauss-Legendre in tau, mu | tau normal, equal-tailed quantiles of the mixture by bisection."""
    tz, tw = np.polynomial.legendre.leggauss(n_tau)
    tmax = 6 * prior.scale
    tau = tmax * (tz + 1) / 2
    w = 1 / (vi[:, None, :] + tau[None, :, None] ** 2)  # (R, T, k)
    W = w.sum(-1)
    m = (w * yi[:, None, :]).sum(-1) / W
    loglik = -0.5 * (
        np.log(vi[:, None, :] + tau[None, :, None] ** 2).sum(-1)
        + np.log(W)
        + (w * (yi[:, None, :] - m[..., None]) ** 2).sum(-1)
    )
    logw = loglik + np.log(tw * tmax / 2) + prior.logpdf(tau)
    P = np.exp(logw - logw.max(1, keepdims=True))
    P /= P.sum(1, keepdims=True)
    s = 1 / np.sqrt(W)
    lo, hi = (m - 12 * s).min(1), (m + 12 * s).max(1)
    out = []
    for q in (0.5, (1 - level) / 2, (1 + level) / 2):
        a, b = lo.copy(), hi.copy()
        for _ in range(60):
            mid = (a + b) / 2
            below = (P * special.ndtr((mid[:, None] - m) / s)).sum(1) < q
            a, b = np.where(below, mid, a), np.where(below, b, mid)
        out.append(special.expit((a + b) / 2))
    return np.stack(out, axis=1)


# -- the inverse-variance and GLMM intervals ---------------------------------------------------


def logit_effects(x, n):
    """escalc("PLO") with metafor's default: 1/2 added to studies with 0 or n events."""
    x, n = np.asarray(x, float), np.asarray(n, float)
    add = np.where((x == 0) | (x == n), 0.5, 0.0)
    a, b = x + add, n - x + add
    return np.log(a / b), 1 / a + 1 / b


def ft_effects(x, n):
    """escalc("PFT") (metafor adds nothing for PFT)."""
    x, n = np.asarray(x, float), np.asarray(n, float)
    return 0.5 * (np.arcsin(np.sqrt(x / (n + 1))) + np.arcsin(np.sqrt((x + 1) / (n + 1)))), 1 / (4 * n + 2)


def hksj_intervals(measure, x, n):
    """REML + HKSJ 95 % CI back-transformed (PLO: ilogit; PFT: inverse Freeman-Tukey with the
    harmonic mean n), one row per data set; NaN where rma() would raise."""
    from metaanalysis.engine.batch import fit_rows
    from metaanalysis.engine.transforms import ipft

    yi, vi = logit_effects(x, n) if measure == "PLO" else ft_effects(x, n)
    fit = fit_rows(yi, vi, method="REML", test="knha", level=0.95)
    lo, hi = fit["ci_lb"], fit["ci_ub"]
    ok = np.isfinite(lo) & np.isfinite(hi)
    out = np.full((len(lo), 2), np.nan)
    if measure == "PLO":
        out[ok] = special.expit(np.stack([lo[ok], hi[ok]], 1))
    else:
        n_hm = 1.0 / np.mean(1.0 / np.asarray(n, float), axis=1)
        both = ipft(np.stack([lo[ok], hi[ok]], 1), n_hm[ok][:, None])
        out[ok] = np.sort(both, axis=1)
    return out


def glmm_intervals(x, n):
    from metaanalysis.engine.glmm import rma_glmm

    out = np.full((len(x), 2), np.nan)
    for i in range(len(x)):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                r = rma_glmm(x[i].tolist(), n[i].tolist(), nAGQ=7)
            out[i] = r.bt_ci_lb, r.bt_ci_ub
        except (ValueError, RuntimeError, ArithmeticError):
            pass
    return out


def intervals(method, x, n):
    """(lower, upper) on the proportion scale for each row of x, n; NaN = the method failed."""
    if method == "GLMM":
        return glmm_intervals(x, n)
    if method in ("PLO-HKSJ", "PFT-HKSJ"):
        return hksj_intervals(method[:3], x, n)
    prior = PRIOR_WIDE if method.endswith("-1") else PRIOR
    if method.startswith("BAYES-NN"):
        return nn_intervals(*logit_effects(x, n), prior)[:, 1:]
    if method.startswith("BAYES-BN"):
        out = np.full((len(x), 2), np.nan)
        proper = (x.sum(1) > 0) & (x.sum(1) < n.sum(1))  # flat prior on mu: improper otherwise
        if proper.any():
            out[proper] = bn_intervals(x[proper], n[proper], prior)[:, 1:]
        return out
    raise ValueError(method)


def run_block(cell: Cell, start: int, stop: int) -> dict:
    """One task: replicates start..stop-1 of `cell`, every method. Returns the intervals and the
    flags of each replicate (and, for the log only, which worker ran it)."""
    x, n = simulate(cell, start, stop)
    extreme = np.any((x == 0) | (x == n), axis=1)
    boundary = (x.sum(1) == 0) | (x.sum(1) == n.sum(1))
    with np.errstate(all="ignore"):
        res = {m: intervals(m, x, n) for m in METHODS}
    try:
        from distributed import get_worker

        worker = get_worker().address
    except (ImportError, ValueError):
        worker = "local"
    return dict(cell=cell, start=start, intervals=res, extreme=extreme, boundary=boundary, worker=worker)


# -- summaries ---------------------------------------------------------------------------------

CSV_FIELDS = (
    "design",
    "n_min",
    "n_max",
    "k",
    "p",
    "tau",
    "method",
    "replicates",
    "errors",
    "covered",
    "coverage",
    "median_width",
    "extreme_replicates",
    "extreme_errors",
    "extreme_covered",
    "extreme_coverage",
    "extreme_median_width",
    "boundary_replicates",
    "boundary_covered",
)


def _stats(ints, p, mask):
    sub = ints[mask]
    ok = np.all(np.isfinite(sub), axis=1)
    covered = ok & (sub[:, 0] <= p) & (p <= sub[:, 1])
    width = np.median(np.where(ok, sub[:, 1] - sub[:, 0], np.inf)) if len(sub) else math.nan
    return len(sub), int((~ok).sum()), int(covered.sum()), width


def _fmt(v, digits):
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "inf" if v == math.inf else ""
    return f"{v:.{digits}f}"


def summarise_cells(cells, blocks) -> list[dict]:
    """One row per (cell, method), from the blocks in grid order."""
    rows = []
    for cell in cells:
        parts = sorted(blocks[cell], key=lambda b: b["start"])
        extreme = np.concatenate([b["extreme"] for b in parts])
        boundary = np.concatenate([b["boundary"] for b in parts])
        mixed = extreme & ~boundary  # a 0 % or 100 % arm, but not every arm on the same boundary
        lo, hi = cell.n_range
        for m in METHODS:
            ints = np.concatenate([b["intervals"][m] for b in parts])
            R, err, cov, wid = _stats(ints, cell.p, np.ones(len(ints), bool))
            eR, eerr, ecov, ewid = _stats(ints, cell.p, mixed)
            bR, _, bcov, _ = _stats(ints, cell.p, boundary)
            rows.append(
                dict(
                    design=cell.design,
                    n_min=lo,
                    n_max=hi,
                    k=cell.k,
                    p=f"{cell.p:g}",
                    tau=f"{cell.tau:g}",
                    method=m,
                    replicates=R,
                    errors=err,
                    covered=cov,
                    coverage=_fmt(100 * cov / R, 2),
                    median_width=_fmt(100 * wid, 3),
                    extreme_replicates=eR,
                    extreme_errors=eerr,
                    extreme_covered=ecov,
                    extreme_coverage=_fmt(100 * ecov / eR, 2) if eR else "",
                    extreme_median_width=_fmt(100 * ewid, 3) if eR else "",
                    boundary_replicates=bR,
                    boundary_covered=bcov,
                )
            )
    return rows


# -- the decision rules of docs/methods-small-k.md, fixed before the run -----------------------
# Rule 1 (the primary for classes with k = 2..4): on the design-A cells, a method keeps nominal
# coverage at a given k if its coverage averaged over the (p, tau) cells is at least 94 % and no
# cell is below 90 %; among the methods that keep it at every k in 2..4 the primary is the one with
# the narrowest median width averaged over those cells (and then over k).
# Rule 2 (classes holding a 0 % or 100 % arm): the same thresholds applied to the coverage among
# the replicates with such an arm (not all arms on one boundary), in every cell of either design
# with k in 2..4 and at least 200 such replicates; the candidates are the two Bayesian models with
# the prior rule 1 chose; the narrower of those that keep it wins (if none does, the one with the
# higher mean conditional coverage, reported as failing).
MIN_MEAN_COVERAGE, MIN_CELL_COVERAGE, DECISION_KS, MIN_EXTREME_REPLICATES = 94.0, 90.0, (2, 3, 4), 200
SETTINGS = {  # how each simulated method is written in analyses.yaml
    "GLMM": dict(method="GLMM"),
    "PLO-HKSJ": dict(method="PLO"),
    "PFT-HKSJ": dict(method="PFT"),
    "BAYES-NN": dict(method="BAYES", model="normal-normal", tau_prior="halfnormal:0.5"),
    "BAYES-BN": dict(method="BAYES", model="binomial-normal", tau_prior="halfnormal:0.5"),
    "BAYES-NN-1": dict(method="BAYES", model="normal-normal", tau_prior="halfnormal:1.0"),
    "BAYES-BN-1": dict(method="BAYES", model="binomial-normal", tau_prior="halfnormal:1.0"),
}


def _by_k(rows, cov_key, wid_key, keep):
    stats: dict = {}
    for r in rows:
        if keep(r) and r[cov_key] != "":
            stats.setdefault((int(r["k"]), r["method"]), []).append((float(r[cov_key]), float(r[wid_key])))
    out = {}
    for key, vals in stats.items():
        cov = np.array([v[0] for v in vals])
        wid = np.array([v[1] for v in vals])
        out[key] = dict(
            cells=len(vals),
            mean=float(cov.mean()),
            min=float(cov.min()),
            width=float(wid.mean()),
            nominal=bool(cov.mean() >= MIN_MEAN_COVERAGE and cov.min() >= MIN_CELL_COVERAGE),
        )
    return out


def _choose(stats, candidates):
    keep = [m for m in candidates if all(stats.get((k, m), {}).get("nominal") for k in DECISION_KS)]
    width = {m: float(np.mean([stats[(k, m)]["width"] for k in DECISION_KS])) for m in keep}
    return keep, width, (min(width, key=width.get) if width else None)


def decide(rows) -> dict:
    """Both rules on the rows of small_k_coverage.csv (strings, as read back)."""
    main = _by_k(rows, "coverage", "median_width", lambda r: r["design"] == "A")
    keep, width, choice = _choose(main, METHODS)
    out = dict(main=main, keep=keep, width=width, primary=choice)
    ext = _by_k(
        rows,
        "extreme_coverage",
        "extreme_median_width",
        lambda r: int(r["k"]) in DECISION_KS and int(r["extreme_replicates"]) >= MIN_EXTREME_REPLICATES,
    )
    out["extreme"] = ext
    if choice is None or not choice.startswith("BAYES"):
        out.update(extreme_candidates=(), extreme_keep=[], extreme_width={}, extreme_model=None, extreme_failed=False)
        return out
    suffix = "-1" if choice.endswith("-1") else ""
    cands = (f"BAYES-NN{suffix}", f"BAYES-BN{suffix}")
    ekeep, ewidth, echoice = _choose(ext, cands)
    failed = echoice is None
    if failed:
        echoice = max(cands, key=lambda m: np.mean([ext[(k, m)]["mean"] for k in DECISION_KS if (k, m) in ext]))
    out.update(
        extreme_candidates=cands,
        extreme_keep=ekeep,
        extreme_width=ewidth,
        extreme_model=SETTINGS[echoice]["model"],
        extreme_method=echoice,
        extreme_failed=failed,
    )
    return out


def markdown(rows, header: str) -> str:
    """The tables of small_k_coverage.md."""
    cells: dict = {}
    for r in rows:
        cells.setdefault((r["design"], int(r["k"]), r["p"], r["tau"]), {})[r["method"]] = r
    out = [header, ""]

    def cell_text(r, cov, wid, err):
        if r[cov] == "":
            return "-"
        e = f" ({r[err]} err)" if int(r[err]) else ""
        w = r[wid] if r[wid] == "inf" else f"{float(r[wid]):.1f}"
        return f"{float(r[cov]):.1f} / {w}{e}"

    for design, title in (("A", "design A: n_i uniform on 10..100"), ("B", "design B: n_i uniform on 5..30")):
        out += [
            f"#### Coverage % / median width (percentage points), {title}",
            "",
            "| k | p | tau | " + " | ".join(METHODS) + " |",
            "|---|---|---|" + "---|" * len(METHODS),
        ]
        for (d, k, p, t), ms in cells.items():
            if d == design:
                cols = [cell_text(ms[m], "coverage", "median_width", "errors") for m in METHODS]
                out.append(f"| {k} | {p} | {t} | " + " | ".join(cols) + " |")
        out.append("")
    out += [
        "#### Among replicates with a 0 % or 100 % arm (not all arms on one boundary): coverage % / median width",
        "",
        "| design | k | p | tau | replicates | " + " | ".join(METHODS) + " | all-boundary replicates |",
        "|---|---|---|---|---|" + "---|" * len(METHODS) + "---|",
    ]
    for (d, k, p, t), ms in cells.items():
        first = ms[METHODS[0]]
        if int(first["extreme_replicates"]) == 0 and int(first["boundary_replicates"]) == 0:
            continue
        cols = [cell_text(ms[m], "extreme_coverage", "extreme_median_width", "extreme_errors") for m in METHODS]
        out.append(
            f"| {d} | {k} | {p} | {t} | {first['extreme_replicates']} | "
            + " | ".join(cols)
            + f" | {first['boundary_replicates']} |"
        )
    out.append("")
    res = decide(rows)
    out += _summary_table("Rule 1: design A, by k", res["main"])
    out.append(
        f"Methods that keep nominal coverage at every k in {DECISION_KS}: "
        + (", ".join(f"{m} (mean width {res['width'][m]:.1f} pp)" for m in res["keep"]) or "none")
    )
    out.append(f"Primary for k = 2..4 by rule 1: {res['primary']}")
    out.append("")
    out += _summary_table(
        f"Rule 2: replicates with a 0 % or 100 % arm, cells with k <= 4 and >= {MIN_EXTREME_REPLICATES} of them",
        res["extreme"],
    )
    if res["extreme_candidates"]:
        out.append(
            f"Candidates {', '.join(res['extreme_candidates'])}; keeping nominal coverage at every k: "
            + (", ".join(f"{m} (mean width {res['extreme_width'][m]:.1f} pp)" for m in res["extreme_keep"]) or "none")
        )
        out.append(
            f"Model for classes with a 0 % or 100 % arm by rule 2: {res['extreme_model']} ({res['extreme_method']})"
            + (
                " - no candidate keeps nominal coverage; the higher mean coverage is named"
                if res["extreme_failed"]
                else ""
            )
        )
    return "\n".join(out) + "\n"


def _summary_table(title, stats):
    out = [
        f"#### {title}",
        "",
        "| k | method | cells | mean coverage % | min coverage % | mean width (pp) | nominal |",
        "|---|---|---|---|---|---|---|",
    ]
    for (k, m), s in sorted(stats.items(), key=lambda kv: (kv[0][0], METHODS.index(kv[0][1]))):
        out.append(
            f"| {k} | {m} | {s['cells']} | {s['mean']:.1f} | {s['min']:.1f} | {s['width']:.1f} | "
            f"{'yes' if s['nominal'] else 'no'} |"
        )
    out.append("")
    return out


def write_outputs(out_dir: Path, cells, blocks, replicates: int) -> list[dict]:
    rows = summarise_cells(cells, blocks)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "small_k_coverage.csv").write_text(buf.getvalue(), encoding="utf-8")
    read_back = list(csv.DictReader(io.StringIO(buf.getvalue())))
    header = (
        f"{len(cells)} cells x {replicates} replicates, every method in every cell; seed {SEED}, "
        f"blocks of {BLOCK} (benchmarks/sim_coverage.py)"
    )
    (out_dir / "small_k_coverage.md").write_text(markdown(read_back, header), encoding="utf-8")
    return read_back


# -- check -------------------------------------------------------------------------------------


def check() -> float:
    """The vectorised methods against the library (rma_bayes_binomial, nn_posterior, rma_effects)."""
    from metaanalysis.engine.bayes import nn_posterior
    from metaanalysis.engine.bayes_binomial import rma_bayes_binomial, study_loglik
    from metaanalysis.engine.bayes_priors import MuPrior
    from metaanalysis.engine.effects import escalc
    from metaanalysis.engine.rma import rma_effects

    worst = {}
    sets = [([3, 6], [3, 7]), ([12, 5, 9], [12, 20, 9]), ([0, 4], [8, 25])]
    for cell in (Cell("A", 2, 0.1, 1.0), Cell("A", 3, 0.5, 0.5), Cell("B", 4, 0.95, 0.5), Cell("B", 3, 0.05, 1.0)):
        x, n = simulate(cell, 0, 3)
        sets += [(x[i].tolist(), n[i].tolist()) for i in range(len(x))]
    rng = np.random.default_rng(3)
    for _ in range(5):  # the likelihood itself, at random (mu, tau)
        x, n = simulate(Cell("B", 3, 0.9, 1.0), 0, 1)
        mu, tau = rng.normal(1.5, 2, 8), rng.uniform(0, 4, 8)
        lib = np.array(study_loglik(x[0], n[0], mu, tau))
        fast = np.array(study_loglik_fast(x[0], n[0], mu, tau, 32))
        worst["study_loglik"] = max(worst.get("study_loglik", 0), float(np.max(np.abs(lib - fast) / (1 + np.abs(lib)))))
    for xs, ns in sets:
        x, n = np.array([xs]), np.array([ns])
        for prior, suffix in ((PRIOR, ""), (PRIOR_WIDE, "-1")):
            if 0 < sum(xs) < sum(ns):
                r = rma_bayes_binomial(xs, ns, tau_prior=prior, shortest=False)
                lib = np.array([r.bt_pred, r.bt_ci_lb, r.bt_ci_ub])
                fast = bn_intervals(x, n, prior)[0]
                worst["BN" + suffix] = max(worst.get("BN" + suffix, 0), float(np.max(np.abs(lib - fast))))
                print(
                    f"BN{suffix} {xs}/{ns}: library {np.round(lib, 5).tolist()} vectorised {np.round(fast, 5).tolist()}"
                )
            es = escalc("PLO", events=xs, n=ns, add=None, to="only0")
            post = nn_posterior(es.yi, es.vi, prior, MuPrior())
            lib = special.expit([post.mu.quantile(q) for q in (0.5, 0.025, 0.975)])
            fast = nn_intervals(*logit_effects(x, n), prior)[0]
            worst["NN" + suffix] = max(worst.get("NN" + suffix, 0), float(np.max(np.abs(lib - fast))))
        for measure in ("PLO", "PFT"):
            es = escalc(measure, events=xs, n=ns, add=None, to="only0")
            try:
                r = rma_effects(es, method="REML", test="knha", level=0.95)
                lib = np.array([r.bt_ci_lb, r.bt_ci_ub])
            except (ValueError, RuntimeError):
                lib = np.full(2, np.nan)
            fast = hksj_intervals(measure, x, n)[0]
            same_nan = np.array_equal(np.isnan(lib), np.isnan(fast))
            d = float(np.nanmax(np.abs(lib - fast))) if np.isfinite(lib).any() else 0.0
            worst[measure] = max(worst.get(measure, 0), d if same_nan else math.inf)
    for name, v in worst.items():
        print(f"largest difference, {name}: {v:.2e}")
    return max(v for k, v in worst.items() if k.startswith(("BN", "NN")))


# -- running -----------------------------------------------------------------------------------


def _cache_path(cache: Path, cell: Cell, start: int, stop: int) -> Path:
    return cache / ("-".join(map(str, (*cell.key, start, stop))) + ".npz")


def _save_block(path: Path, b: dict) -> None:
    arrays = {f"m_{m}": v for m, v in b["intervals"].items()}
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, extreme=b["extreme"], boundary=b["boundary"], **arrays)
    tmp.replace(path)


def _load_block(path: Path, cell: Cell, start: int) -> dict | None:
    with np.load(path) as z:
        if not all(f"m_{m}" in z for m in METHODS):
            return None
        ints = {m: z[f"m_{m}"] for m in METHODS}
        return dict(
            cell=cell, start=start, intervals=ints, extreme=z["extreme"], boundary=z["boundary"], worker="cache"
        )


def cache_dir(root: Path) -> Path:
    """Finished blocks of a long run, under a digest of this script and the package version (a
    changed script or engine release starts afresh)."""
    import hashlib

    from metaanalysis import __version__

    digest = hashlib.sha256(Path(__file__).read_bytes() + __version__.encode()).hexdigest()[:16]
    return root / digest


def run(cells, replicates: int, client, cache: Path | None = None) -> tuple[dict, dict]:
    """Submit one task per (cell, block), block by block; collect in grid order. With
    `cache`, finished blocks are kept there and a rerun computes only the missing ones."""
    from distributed import as_completed, progress

    tasks = [(c, s, min(s + BLOCK, replicates)) for c in cells for s in range(0, replicates, BLOCK)]
    blocks: dict = {c: [] for c in cells}
    workers: dict = {}
    todo = []
    for i, (c, s, e) in enumerate(tasks):
        b = _load_block(_cache_path(cache, c, s, e), c, s) if cache and _cache_path(cache, c, s, e).exists() else None
        if b is None:
            todo.append(i)
        else:
            blocks[c].append(b)
            workers["cache"] = workers.get("cache", 0) + 1
    if cache:
        cache.mkdir(parents=True, exist_ok=True)
        print(f"{len(tasks) - len(todo)} of {len(tasks)} blocks from {cache}", flush=True)
    # block-major: every cell's first block, then every cell's second, ...: a run stopped early has
    # left every cell with about the same number of replicates in the cache (slowest cells first)
    order = sorted(todo, key=lambda i: (tasks[i][1], -tasks[i][0].k, i))
    futures = [client.submit(run_block, *tasks[i], pure=False) for i in order]
    if sys.stdout.isatty() and not cache:
        progress(futures)
    else:  # a log: one line per 2 % (and each finished block cached as it arrives)
        step = max(1, len(futures) // 50)
        for done, fut in enumerate(as_completed(futures), 1):
            if cache:
                b = fut.result()
                _save_block(_cache_path(cache, b["cell"], b["start"], b["start"] + len(b["extreme"])), b)
            if done % step == 0 or done == len(futures):
                print(f"[{done}/{len(futures)} tasks] {time.strftime('%H:%M:%S')}", flush=True)
    for b in client.gather(futures):
        blocks[b["cell"]].append(b)
        workers[b["worker"]] = workers.get(b["worker"], 0) + 1
    return blocks, workers


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--replicates", type=int, default=None, help="per cell (default 2000; 200 with --quick)")
    ap.add_argument("--workers", type=int, default=2, help="local Dask worker processes (1 thread each)")
    ap.add_argument("--out", type=Path, help="directory for small_k_coverage.csv and .md")
    ap.add_argument("--quick", action="store_true", help="9 cells (k = 2, 3; p = 0.3, 0.9, 0.95), about a minute")
    ap.add_argument("--scheduler", metavar="ADDRESS", help="run on the Dask cluster at ADDRESS (tcp://host:8786)")
    ap.add_argument("--cache", type=Path, help="keep finished blocks here; a rerun computes only the missing ones")
    ap.add_argument("--check", action="store_true", help="compare the vectorised methods with the library and stop")
    args = ap.parse_args(argv)
    if args.check:
        return 0 if check() < 1e-3 else 1
    if args.out is None:
        ap.error("--out DIR is required")
    replicates = args.replicates or (200 if args.quick else 2000)
    cells = grid(args.quick)
    from distributed import Client, LocalCluster

    started = time.time()
    cluster = None
    if args.scheduler:
        client = Client(args.scheduler)
        where = f"Dask cluster at {args.scheduler}: {len(client.scheduler_info()['workers'])} workers"
    else:
        cluster = LocalCluster(
            n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
        )
        client = Client(cluster)
        where = f"Dask LocalCluster: {args.workers} worker processes x 1 thread, scheduler {cluster.scheduler_address}"
    print(where, flush=True)
    print(f"{len(cells)} cells x {replicates} replicates in blocks of {BLOCK}", flush=True)
    try:
        blocks, workers = run(cells, replicates, client, cache_dir(args.cache) if args.cache else None)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    rows = write_outputs(args.out, cells, blocks, replicates)
    print("tasks per worker: " + ", ".join(f"{w}: {c}" for w, c in sorted(workers.items())))
    print(f"wall time {time.time() - started:.0f} s")
    res = decide(rows)
    print(f"rule 1 (k = 2..4): {res['primary']}; rule 2 (0 %/100 % arm): {res.get('extreme_model')}")
    print(f"wrote {args.out / 'small_k_coverage.csv'} and {args.out / 'small_k_coverage.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
else:  # imported (tests): let Dask ship this module's functions to workers by value
    try:
        import cloudpickle

        cloudpickle.register_pickle_by_value(sys.modules[__name__])
    except (ImportError, ValueError):
        pass
