"""Prior distributions of the Bayesian random-effects models, and their default per measure.

Heterogeneity tau: half-normal with a named scale. Röver et al. (2021, Res Synth Methods
12:448) argue for weakly informative half-normal priors whose scale is judged against the
measure's unit information standard deviation (UISD, the within-study SD of one patient's
contribution); for log odds ratios and similar log ratios the half-normal with scale 0.5 (and
1.0 as the more conservative choice) is the routine one (Friede et al. 2017; Röver 2020, J Stat
Softw 93(6), Sect. 2.2): it puts 95 % prior probability on tau < 0.98, i.e. true odds ratios
within a factor of about 3 of the mean.

Defaults here (`DEFAULT_TAU_SCALE`):
- OR, RR (between-trial variation of a relative effect): 0.5, the routine choice above.
- PLO (logit of a single proportion) and the binomial-normal model: 1.0, the conservative choice
  of the same authors. Cohorts of one regimen differ in population and setting far more than arms
  of one trial, and our simulation (docs/methods-small-k.md, benchmarks/sim_coverage.py: k = 2-4,
  tau on the logit scale 0 to 1) found half-normal(0.5) credible intervals covering only 80-87 %
  when tau = 1, half-normal(1.0) at least 93 % in every cell.
- PR, PAS, PFT, RD: 0.25. Near p = 0.5 these scales are compressed by a factor of 4 against the
  logit (d logit p / dp = 4; the arcsine-root scales have UISD 1/2 against 2 for the logit), so
  1.0 on the logit corresponds to 0.25 there.
- GEN: no default. A generic yi may be on any scale; the caller names the scale
  (`halfnormal:0.5` for log hazard ratios, as for other log ratios).

Mean mu: flat (improper uniform) by default, as bayesmeta's default and as Röver et al.
recommend for the effect; a normal prior N(mean, sd^2) can be named instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

DEFAULT_TAU_SCALE: dict[str, float] = {
    "OR": 0.5,
    "RR": 0.5,
    "PLO": 1.0,
    "PR": 0.25,
    "PAS": 0.25,
    "PFT": 0.25,
    "RD": 0.25,
}
TAU_PRIOR_FAMILIES = ("halfnormal",)


@dataclass(frozen=True, slots=True)
class TauPrior:
    """Half-normal prior on tau: density 2/scale phi(tau/scale), tau >= 0."""

    family: str
    scale: float

    def __post_init__(self):
        if self.family not in TAU_PRIOR_FAMILIES:
            raise ValueError(f"tau prior family {self.family!r} is not one of {TAU_PRIOR_FAMILIES}")
        if not (isinstance(self.scale, (int, float)) and math.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"tau prior scale must be a positive number, got {self.scale!r}")

    def logpdf(self, tau):
        t = np.asarray(tau, dtype=float)
        return np.where(
            t >= 0,
            math.log(2.0) - 0.5 * math.log(2 * math.pi) - math.log(self.scale) - 0.5 * (t / self.scale) ** 2,
            -np.inf,
        )

    def quantile(self, p: float) -> float:
        return float(self.scale * special.ndtri(0.5 + 0.5 * p))

    @property
    def label(self) -> str:
        return f"half-normal({self.scale:g})"

    @property
    def spec(self) -> str:
        """The command-line spelling, e.g. 'halfnormal:0.5'."""
        return f"{self.family}:{self.scale:g}"


@dataclass(frozen=True, slots=True)
class MuPrior:
    """Flat (improper uniform) prior on mu when `sd` is None, else N(mean, sd^2)."""

    mean: float = 0.0
    sd: float | None = None

    def __post_init__(self):
        if self.sd is not None and not (math.isfinite(self.sd) and self.sd > 0):
            raise ValueError(f"mu prior sd must be a positive number or None (flat), got {self.sd!r}")
        if not math.isfinite(self.mean):
            raise ValueError(f"mu prior mean must be finite, got {self.mean!r}")

    @property
    def precision(self) -> float:
        return 0.0 if self.sd is None else 1.0 / self.sd**2

    def logpdf(self, mu):
        m = np.asarray(mu, dtype=float)
        if self.sd is None:
            return np.zeros_like(m)
        return -0.5 * math.log(2 * math.pi) - math.log(self.sd) - 0.5 * ((m - self.mean) / self.sd) ** 2

    @property
    def label(self) -> str:
        return "flat (improper uniform)" if self.sd is None else f"normal(mean={self.mean:g}, sd={self.sd:g})"


def parse_tau_prior(text: str) -> TauPrior:
    """'halfnormal:0.5' -> TauPrior('halfnormal', 0.5); a clear error for anything else."""
    family, sep, scale = str(text).strip().partition(":")
    if not sep or family.strip().lower() not in TAU_PRIOR_FAMILIES:
        raise ValueError(
            f"tau prior {text!r}: expected FAMILY:SCALE with FAMILY one of "
            f"{', '.join(TAU_PRIOR_FAMILIES)} (e.g. halfnormal:0.5)"
        )
    try:
        value = float(scale)
    except ValueError:
        raise ValueError(f"tau prior {text!r}: scale {scale!r} is not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"tau prior {text!r}: scale must be a positive finite number")
    return TauPrior(family.strip().lower(), value)


def default_tau_prior(measure: str) -> TauPrior:
    """The documented default half-normal prior for `measure` (see the module docstring)."""
    if measure not in DEFAULT_TAU_SCALE:
        raise ValueError(
            f"measure {measure!r} has no default tau prior: name one, e.g. halfnormal:0.5 "
            "for a log ratio (log hazard ratio, log odds ratio)"
        )
    return TauPrior("halfnormal", DEFAULT_TAU_SCALE[measure])


__all__ = ["TauPrior", "MuPrior", "DEFAULT_TAU_SCALE", "parse_tau_prior", "default_tau_prior"]
