"""Permutation tests and GOSH, as metafor 3.8-1's permutest() and gosh() define them.

Both refit one model to many variants of a dataset; the fits are made together, one
row per variant (engine/batch.py), which is what makes 1,000 permutations or 65,535
subsets take a fraction of a second instead of minutes.

permutest (metafor R/permutest.rma.uni.r), model without moderators: the null
hypothesis mu = 0 is tested by flipping the signs of the yi. With `exact=True`, or
when the 2^k sign patterns are no more than `iter`, every pattern is used (in
expand.grid order, so the result is deterministic); otherwise `iter` random patterns,
the first being the observed data. p = share of |z*| >= |z| - comptol (comptol =
sqrt(machine eps)); QMp likewise for QM = z^2. With moderators the rows of the
moderator matrix are permuted instead (k! orders, or `iter` random ones); that path
refits with rma_mods() one permutation at a time.

gosh (metafor R/gosh.rma.r): the model fitted to every non-empty subset of the studies
(at most 10^6, else that many random subsets), reporting k, QE, I2, H2, tau2 and the
estimate per subset, ordered by subset size as metafor orders them. FE and DL fits use
metafor's shortcut formulas (I2 and H2 from Q); other estimators a full fit per subset.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import permutations

import numpy as np
import pandas as pd

from metaanalysis.engine.batch import BATCH_METHODS, fit_rows
from metaanalysis.engine.estimators import Control, check_outcomes

COMPTOL = float(np.finfo(float).eps) ** 0.5  # metafor's control comptol
_GOSH_MAX = 10**6  # metafor: all subsets if at most 10^6
_CHUNK = 1 << 16  # subsets per batch (memory ~ chunk x k)


@dataclass(frozen=True)
class PermutationResult:
    """Observed statistics and their permutation p-values, with the permutation
    distributions (`zval_perm`, `beta_perm`, `QM_perm`; NaN where a fit failed)."""

    method: str
    test: str
    k: int
    exact: bool
    iterations: int
    beta: tuple[float, ...]
    zval: tuple[float, ...]
    pval: tuple[float, ...]
    QM: float
    QMp: float
    zval_perm: np.ndarray = field(repr=False)
    beta_perm: np.ndarray = field(repr=False)
    QM_perm: np.ndarray = field(repr=False)
    seed: int | None = None


@dataclass(frozen=True)
class GoshResult:
    """One row per subset (`res`: k, QE, I2, H2, tau2, estimate), which studies each
    subset holds (`incl`, subsets x studies), and whether its fit succeeded (`fit`)."""

    res: pd.DataFrame
    incl: np.ndarray = field(repr=False)
    fit: np.ndarray = field(repr=False)
    method: str
    exact: bool
    studies: tuple[str, ...]


def _sign_matrix(k: int) -> np.ndarray:
    """All 2^k sign patterns in R expand.grid(c(1, -1), ...) order (first study fastest)."""
    r = np.arange(2**k)[:, None]
    return 1.0 - 2.0 * ((r >> np.arange(k)) & 1)


def permutest(
    yi,
    vi,
    *,
    mods=None,
    method: str = "REML",
    test: str = "z",
    exact: bool = False,
    iter: int = 1000,
    seed: int | None = None,
    control: Control | None = None,
) -> PermutationResult:
    """Permutation test of a random-effects model (metafor permutest()). `mods`: optional
    moderator matrix without the intercept column (an intercept is added, as rma does)."""
    y, v = check_outcomes(yi, vi)
    k = len(y)
    if iter < 2:
        raise ValueError(f"iter = {iter}: at least 2 permutations are needed")
    if mods is not None:
        return _permutest_mods(y, v, mods, method, test, exact, iter, seed)
    if method not in BATCH_METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {list(BATCH_METHODS)}")
    if k < 2:
        raise ValueError("a permutation test needs at least 2 studies")
    obs = fit_rows(y, v, method=method, test=test, control=control)
    if not np.isfinite(obs["zval"][0]):
        raise ValueError("the model could not be fitted to the observed data")
    is_exact = exact or 2**k <= iter
    if is_exact:
        if k > 24:
            raise ValueError(f"an exact test needs 2^{k} fits; use exact=False")
        fits = fit_rows(_sign_matrix(k) * y, v, method=method, test=test, control=control)
        z, b = fits["zval"], fits["estimate"]
    else:
        rng = np.random.default_rng(seed)
        z, b = np.empty(iter), np.empty(iter)
        todo = np.arange(iter)
        for _attempt in range(100):  # metafor redraws a pattern whose fit failed
            signs = rng.choice(np.array([-1.0, 1.0]), size=(len(todo), k))
            fits = fit_rows(signs * y, v, method=method, test=test, control=control)
            ok = np.isfinite(fits["zval"])
            z[todo[ok]], b[todo[ok]] = fits["zval"][ok], fits["estimate"][ok]
            todo = todo[~ok]
            if not todo.size:
                break
        else:
            raise ValueError("too many permuted datasets could not be fitted")
        z[0], b[0] = obs["zval"][0], obs["estimate"][0]  # the first permutation is the data
    QM = z * z
    z0 = float(obs["zval"][0])
    ok = ~np.isnan(z)
    pval = min(1.0, float(np.mean(np.abs(z[ok]) >= abs(z0) - COMPTOL)))
    QMp = float(np.mean(QM[ok] >= z0 * z0 - COMPTOL))
    return PermutationResult(
        method=method,
        test=test,
        k=k,
        exact=is_exact,
        iterations=len(z),
        beta=(float(obs["estimate"][0]),),
        zval=(z0,),
        pval=(pval,),
        QM=z0 * z0,
        QMp=QMp,
        zval_perm=z[:, None],
        beta_perm=b[:, None],
        QM_perm=QM,
        seed=seed,
    )


def _permutest_mods(y, v, mods, method, test, exact, iter, seed) -> PermutationResult:
    from metaanalysis.engine.batch_mods import fit_designs
    from metaanalysis.engine.metareg import rma_mods

    Z = np.asarray(mods, dtype=float)
    Z = Z[:, None] if Z.ndim == 1 else Z
    k = len(y)
    if Z.shape[0] != k:
        raise ValueError(f"mods has {Z.shape[0]} rows but there are {k} studies")
    X = np.column_stack([np.ones(k), Z])
    if test not in ("z", "knha"):
        raise ValueError(f"test = {test!r}: with moderators the test is 'z' or 'knha'")
    mtest = test
    obs = rma_mods(y, v, X, method=method, test=mtest)  # errors here are the user's to see
    # number of distinct row orders: k! / prod(multiplicity of identical rows)!
    _, counts = np.unique(X, axis=0, return_counts=True)
    n_exact = math.factorial(k) // math.prod(math.factorial(int(c)) for c in counts)
    is_exact = exact or n_exact <= iter
    if is_exact:
        if math.factorial(k) > 10**7:
            raise ValueError(f"an exact test enumerates {k}! row orders here; use exact=False")
        orders = list(dict.fromkeys(tuple(map(tuple, X[list(p)])) for p in permutations(range(k))))
        designs = [np.array(o) for o in orders]
    else:
        rng = np.random.default_rng(seed)
        designs = [X] + [X[rng.permutation(k)] for _ in range(iter - 1)]
    p = X.shape[1]
    try:  # all row orders in one stacked fit (engine/batch_mods.py): each equals rma_mods()
        fits = fit_designs(y, v, np.stack(designs), method=method, test=mtest)
        zs, bs, qm = fits["zval"], fits["beta"], fits["QM"]
    except np.linalg.LinAlgError:  # a singular fit in the stack: fit one by one, skip that one
        zs, bs = np.full((len(designs), p), np.nan), np.full((len(designs), p), np.nan)
        qm = np.full(len(designs), np.nan)
        for i, D in enumerate(designs):
            try:
                r = rma_mods(y, v, D, method=method, test=mtest)
            except (ValueError, RuntimeError):
                continue
            zs[i], bs[i], qm[i] = r.zval, r.beta, r.QM
    z0 = np.asarray(obs.zval)
    ok = ~np.isnan(qm)  # failed fits are left out, as metafor's na.rm = TRUE
    pval = tuple(min(1.0, float(np.mean(np.abs(zs[ok, j]) >= abs(z0[j]) - COMPTOL))) for j in range(p))
    QMp = float(np.mean(qm[ok] >= obs.QM - COMPTOL))
    return PermutationResult(
        method=method,
        test=mtest,
        k=k,
        exact=is_exact,
        iterations=len(designs),
        beta=tuple(obs.beta),
        zval=tuple(obs.zval),
        pval=pval,
        QM=obs.QM,
        QMp=QMp,
        zval_perm=zs,
        beta_perm=bs,
        QM_perm=qm,
        seed=seed,
    )


def _subset_codes(k: int, subsets: int | None, seed: int | None) -> tuple[np.ndarray, bool]:
    """Subsets as bit codes (bit j = study j), in metafor's order: all non-empty subsets in
    expand.grid order, or random ones (size ~ Binomial(k, 1/2) given >= 1), then by size."""
    total = 2**k - 1
    limit = _GOSH_MAX if subsets is None else int(subsets)
    if limit < 2:
        raise ValueError("subsets must be at least 2")
    if total <= limit:
        codes, exact = np.arange(1, total + 1, dtype=np.int64), True
    else:
        if k > 62:
            raise ValueError("more than 62 studies: subsets cannot be coded")
        rng = np.random.default_rng(seed)
        sizes = np.arange(1, k + 1)
        prob = np.array([math.comb(k, s) for s in sizes], float)
        m = rng.choice(sizes, size=limit, p=prob / prob.sum())
        codes = np.array(
            [sum(1 << int(j) for j in rng.choice(k, size=int(s), replace=False)) for s in m], dtype=np.int64
        )
        exact = False
    size = np.zeros(len(codes), dtype=np.int64)
    for j in range(k):
        size += (codes >> j) & 1
    return codes[np.argsort(size, kind="stable")], exact


def gosh(
    yi,
    vi,
    *,
    method: str = "REML",
    studies=None,
    subsets: int | None = None,
    seed: int | None = None,
    control: Control | None = None,
) -> GoshResult:
    """GOSH: the model fitted to every subset of the studies (metafor gosh())."""
    y, v = check_outcomes(yi, vi)
    k = len(y)
    if k < 2:
        raise ValueError("GOSH needs at least 2 studies")
    if method not in BATCH_METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {list(BATCH_METHODS)}")
    names = tuple(str(s) for s in studies) if studies is not None else tuple(str(i + 1) for i in range(k))
    if len(names) != k:
        raise ValueError(f"studies has {len(names)} names but there are {k} studies")
    codes, exact = _subset_codes(k, subsets, seed)
    incl = ((codes[:, None] >> np.arange(k)) & 1).astype(bool)
    cols = ("k", "QE", "I2", "H2", "tau2", "estimate")
    out = {c: np.empty(len(codes)) for c in cols}
    for start in range(0, len(codes), _CHUNK):
        part = slice(start, start + _CHUNK)
        fits = fit_rows(
            y, v, incl[part].astype(float), method=method, test="z", control=control, i2_from_q=method == "DL"
        )
        for c in cols:
            out[c][part] = fits[c]
    res = pd.DataFrame(out)
    res["k"] = res["k"].astype(int)
    return GoshResult(
        res=res, incl=incl, fit=res.notna().all(axis=1).to_numpy(), method=method, exact=exact, studies=names
    )


__all__ = ["permutest", "PermutationResult", "gosh", "GoshResult", "COMPTOL"]
