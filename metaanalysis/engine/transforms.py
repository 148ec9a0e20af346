"""Back-transformations from the analysis scale to the reporting scale.

Each function is the inverse of one effect-size measure, defined as metafor's
`transf.*` functions define it (metafor 3.8-1, R/transf.r), including where
they clip: metafor clips the inverse arcsine and inverse Freeman-Tukey to
[0, 1] (a CI bound can fall outside the range the transformation can reach),
but not the inverse logit (which cannot leave (0, 1)) nor exp.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.special import expit

ArrayLike = float | np.ndarray


def ilogit(x: ArrayLike) -> ArrayLike:
    """Inverse logit (metafor `transf.ilogit`); already within (0, 1), no clipping."""
    return _same_shape(x, expit(np.asarray(x, dtype=float)))


def iarcsin(x: ArrayLike) -> ArrayLike:
    """Inverse of the arcsine square-root transformation (metafor `transf.iarcsin`).

    sin(x)^2 is periodic, so values outside [0, pi/2] would fold back; metafor
    returns 0 below 0 and 1 above asin(1), and so do we.
    """
    xa = np.asarray(x, dtype=float)
    out = np.sin(xa) ** 2
    out = np.where(xa < 0, 0.0, out)
    out = np.where(xa > np.arcsin(1.0), 1.0, out)
    return _same_shape(x, out)


def pft(p: ArrayLike, n: ArrayLike) -> ArrayLike:
    """Freeman-Tukey double arcsine of a proportion `p` with sample size `n` (metafor `transf.pft`)."""
    pa = np.asarray(p, dtype=float)
    na = np.asarray(n, dtype=float)
    x = pa * na
    out = 0.5 * (np.arcsin(np.sqrt(x / (na + 1))) + np.arcsin(np.sqrt((x + 1) / (na + 1))))
    return _same_shape(p, out)


def ipft(x: ArrayLike, n: ArrayLike) -> ArrayLike:
    """Inverse Freeman-Tukey for one proportion with its own `n` (Miller 1978; metafor `transf.ipft`).

    Clipped to 1 above pft(1, n) and to 0 below pft(0, n), as metafor does: the
    closed-form inverse is only defined between those two values.
    """
    xa = np.asarray(x, dtype=float)
    na = np.broadcast_to(np.asarray(n, dtype=float), xa.shape)
    if np.any(~np.isfinite(na)) or np.any(na <= 0):
        raise ValueError(f"ipft: sample sizes must be positive and finite, got {n!r}")
    s = np.sin(2 * xa)
    with np.errstate(invalid="ignore", divide="ignore"):
        inner = 1 - (s + (s - 1 / s) / na) ** 2
        out = 0.5 * (1 - np.sign(np.cos(2 * xa)) * np.sqrt(inner))
    out = np.where(xa > pft(1.0, na), 1.0, out)
    out = np.where(xa < pft(0.0, na), 0.0, out)
    if np.any(~np.isfinite(out)):
        bad = np.atleast_1d(xa)[~np.isfinite(np.atleast_1d(out))]
        raise ValueError(f"ipft: inverse Freeman-Tukey undefined at {bad.tolist()} (n = {n!r})")
    return _same_shape(x, out)


def ipft_hm(x: ArrayLike, ni: ArrayLike) -> ArrayLike:
    """Inverse Freeman-Tukey with the harmonic mean of the studies' `ni` (Miller 1978;
    metafor `transf.ipft.hm`), the usual choice for a pooled estimate."""
    na = np.asarray(ni, dtype=float).ravel()
    if na.size == 0 or np.any(~np.isfinite(na)) or np.any(na <= 0):
        raise ValueError(f"ipft_hm: 'n' must be positive and finite sample sizes, got {ni!r}")
    n_hm = 1.0 / float(np.mean(1.0 / na))
    return ipft(x, n_hm)


def exp(x: ArrayLike) -> ArrayLike:
    """exp, for log ratios (OR, RR, log hazard ratios)."""
    return _same_shape(x, np.exp(np.asarray(x, dtype=float)))


def iloglog(x: ArrayLike) -> ArrayLike:
    """Survival probability S from x = -log(-log S): the complementary log-log scale of a
    survival rate, sign-flipped so that it increases with S (intervals keep their order)."""
    return _same_shape(x, np.exp(-np.exp(-np.asarray(x, dtype=float))))


# name -> (function, whether it needs the per-study sample sizes)
TRANSFORMS: dict[str, tuple[Callable[..., ArrayLike], bool]] = {
    "ilogit": (ilogit, False),
    "iarcsin": (iarcsin, False),
    "ipft_hm": (ipft_hm, True),
    "exp": (exp, False),
    "iloglog": (iloglog, False),
}

# The back-transformation metafor users apply by default for each measure;
# None: the measure is reported on its own scale (PR, RD, and GEN unless the
# caller names a transformation).
MEASURE_TRANSFORM: dict[str, str | None] = {
    "PLO": "ilogit",
    "PFT": "ipft_hm",
    "PAS": "iarcsin",
    "PR": None,
    "OR": "exp",
    "RR": "exp",
    "RD": None,
    "GEN": None,
}


def default_transform(measure: str) -> str | None:
    """The back-transformation used for `measure` unless the caller names another."""
    if measure not in MEASURE_TRANSFORM:
        raise ValueError(f"unknown measure {measure!r}; expected one of {sorted(MEASURE_TRANSFORM)}")
    return MEASURE_TRANSFORM[measure]


def back_transform(
    measure: str, x: ArrayLike, *, n: ArrayLike | None = None, transform: str | None = None
) -> ArrayLike:
    """Back-transform `x` from the analysis scale of `measure` to its reporting scale.

    `transform` overrides the measure's default (e.g. "exp" for a GEN log
    hazard ratio). Measures reported on their own scale (PR, RD, GEN) are
    returned unchanged. PFT needs `n`, the studies' sample sizes.
    """
    name = transform if transform is not None else default_transform(measure)
    if name is None or name == "none":
        return x
    return apply_transform(name, x, n=n)


def choose_transform(measure: str, transform: str | None, n) -> str | None:
    """The back-transformation a fit applies: `transform` when given ("none": none), else the
    measure's default; ValueError for an unknown name or for PFT without sample sizes."""
    name = default_transform(measure) if transform is None else transform
    if name in (None, "none"):
        return None
    if name not in TRANSFORMS:
        raise ValueError(f"unknown transform {name!r}; expected one of {sorted(TRANSFORMS)} or 'none'")
    if name == "ipft_hm" and n is None:
        raise ValueError("measure PFT is back-transformed with the harmonic mean of n: pass n= (sample sizes)")
    return name


def apply_transform(name: str, x: ArrayLike, *, n: ArrayLike | None = None) -> ArrayLike:
    """Apply the named back-transformation (a key of TRANSFORMS)."""
    if name not in TRANSFORMS:
        raise ValueError(f"unknown transform {name!r}; expected one of {sorted(TRANSFORMS)}")
    func, needs_n = TRANSFORMS[name]
    if needs_n:
        if n is None:
            raise ValueError(f"transform {name!r} needs the studies' sample sizes: pass n=")
        return func(x, n)
    return func(x)


def _same_shape(x: ArrayLike, out: np.ndarray) -> ArrayLike:
    """Return a Python float for a scalar result, an array otherwise."""
    if np.ndim(out) == 0:
        return float(out)
    return out


__all__ = [
    "ilogit",
    "iarcsin",
    "pft",
    "ipft",
    "ipft_hm",
    "exp",
    "iloglog",
    "TRANSFORMS",
    "MEASURE_TRANSFORM",
    "default_transform",
    "back_transform",
    "apply_transform",
]
