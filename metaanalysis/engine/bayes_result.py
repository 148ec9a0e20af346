"""The result of a Bayesian random-effects fit (normal-normal or binomial-normal).

Field names follow `MetaResult` where the quantity is the same kind of thing:
`b` (posterior median of mu), `se` (posterior SD of mu), `ci_lb/ci_ub` (95 % equal-tailed
credible interval), `pi_lb/pi_ub` (equal-tailed posterior predictive interval of a new
study's true effect theta_new), `tau2` (posterior median of tau^2), `tau2_ci_lb/ub`,
`bt_*` (the same back-transformed), `k`, `measure`, `method` (BAYES_NN or BAYES_BN), `level`,
`studies`, `notes`. Frequentist quantities (z, p, Q, I^2) do not apply and are None.

Equal-tailed intervals and medians are the primary summaries because they are
invariant under the back-transformation: ilogit of the 2.5 % quantile of mu IS the
2.5 % quantile of the pooled proportion. Shortest intervals (R bayesmeta's default
print) are given as `ci_shortest_*`, `pi_shortest_*`, `tau_shortest_*` on the
analysis scale only.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from metaanalysis.engine.results import Fit, StudyRows, _fmt

# The two Bayesian models, by the names the method registry, the analyses file, pool-csv and
# results/pooled.csv use (each named once, here).
BAYES_NN = "BAYES-NN"  # normal-normal on yi, vi (R bayesmeta's model)
BAYES_BN = "BAYES-BN"  # binomial-normal on the counts (exact binomial likelihood)
MODELS = {"normal-normal": BAYES_NN, "binomial-normal": BAYES_BN}

# to_dict(): the MetaResult reference names that apply, then the Bayesian ones
APPLICABLE_FIELDS = (
    "k",
    "b",
    "se",
    "ci_lb",
    "ci_ub",
    "tau2",
    "pi_lb",
    "pi_ub",
    "tau2_ci_lb",
    "tau2_ci_ub",
    "bt_pred",
    "bt_ci_lb",
    "bt_ci_ub",
    "bt_pi_lb",
    "bt_pi_ub",
)
BAYES_FIELDS = (
    "model",
    "tau_prior",
    "mu_prior",
    "mu_mean",
    "ci_shortest_lb",
    "ci_shortest_ub",
    "pi_median",
    "pi_shortest_lb",
    "pi_shortest_ub",
    "tau",
    "tau_mean",
    "tau_ci_lb",
    "tau_ci_ub",
    "tau_shortest_lb",
    "tau_shortest_ub",
)


@dataclass(frozen=True, slots=True)
class BayesResult(Fit):
    """A Bayesian random-effects fit; all summaries are exact posterior quantities (no sampling)."""

    measure: str
    model: str  # "normal-normal" | "binomial-normal"
    tau_prior: str  # e.g. "half-normal(0.5)"
    mu_prior: str
    level: float
    k: int
    b: float  # posterior median of mu
    mu_mean: float
    se: float  # posterior SD of mu
    ci_lb: float
    ci_ub: float
    ci_shortest_lb: float
    ci_shortest_ub: float
    pi_median: float
    pi_lb: float
    pi_ub: float
    pi_shortest_lb: float
    pi_shortest_ub: float
    tau: float  # posterior median of tau
    tau_mean: float
    tau_ci_lb: float
    tau_ci_ub: float
    tau_shortest_lb: float
    tau_shortest_ub: float
    transform: str | None = None
    bt_pred: float | None = None
    bt_ci_lb: float | None = None
    bt_ci_ub: float | None = None
    bt_pi_lb: float | None = None
    bt_pi_ub: float | None = None
    studies: StudyRows | None = None
    notes: tuple[str, ...] = ()
    provenance: dict[str, Any] = field(default_factory=dict)
    test: str = "posterior"
    pi_method: str = "posterior predictive"
    # frequentist quantities: not defined for this model
    zval: None = None
    pval: None = None
    df: None = None
    QE: None = None
    QEp: None = None
    I2: None = None
    H2: None = None

    bayesian = True

    @property
    def method(self) -> str:
        return MODELS[self.model]

    @property
    def model_name(self) -> str:
        return f"Bayesian {self.model} model"

    @property
    def tau2(self) -> float:
        return self.tau**2

    @property
    def tau2_ci_lb(self) -> float:
        return self.tau_ci_lb**2

    @property
    def tau2_ci_ub(self) -> float:
        return self.tau_ci_ub**2

    def to_dict(self) -> dict[str, Any]:
        out = {name: getattr(self, name) for name in APPLICABLE_FIELDS + BAYES_FIELDS}
        out.update(
            measure=self.measure,
            method=self.method,
            test=self.test,
            level=self.level,
            pi_method=self.pi_method,
            transform=self.transform,
            notes=list(self.notes),
        )
        return out

    def summary(self) -> str:
        pct = int(round(self.level * 100))
        lines = [
            f"Bayesian {self.model} random-effects model (k = {self.k}; measure: {self.measure})",
            f"priors: tau ~ {self.tau_prior}, mu ~ {self.mu_prior}",
            "",
            f"tau: median {_fmt(self.tau)}, mean {_fmt(self.tau_mean)}, {pct}% equal-tailed "
            f"[{_fmt(self.tau_ci_lb)}, {_fmt(self.tau_ci_ub)}], shortest "
            f"[{_fmt(self.tau_shortest_lb)}, {_fmt(self.tau_shortest_ub)}]",
            f"mu:  median {_fmt(self.b)}, mean {_fmt(self.mu_mean)}, sd {_fmt(self.se)}, {pct}% equal-tailed "
            f"[{_fmt(self.ci_lb)}, {_fmt(self.ci_ub)}], shortest "
            f"[{_fmt(self.ci_shortest_lb)}, {_fmt(self.ci_shortest_ub)}]",
            f"new study (posterior predictive): median {_fmt(self.pi_median)}, {pct}% "
            f"[{_fmt(self.pi_lb)}, {_fmt(self.pi_ub)}]",
        ]
        if self.bt_pred is not None:
            lines.append(
                f"back-transformed ({self.transform}): {_fmt(self.bt_pred)} "
                f"[{_fmt(self.bt_ci_lb)}, {_fmt(self.bt_ci_ub)}], prediction "
                f"[{_fmt(self.bt_pi_lb)}, {_fmt(self.bt_pi_ub)}]"
            )
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def posterior_result(
    *,
    model: str,
    measure: str,
    tau_prior: str,
    mu_prior: str,
    level: float,
    k: int,
    mu: Any,
    mu_moments: tuple[float, float],
    predictive: Any,
    tau: Any,
    back: Callable[[float], float] | None,
    transform: str | None,
    studies: StudyRows,
    notes: tuple[str, ...],
    provenance: dict[str, Any],
    shortest: bool = True,
) -> BayesResult:
    """The BayesResult of a posterior, whichever model produced it.

    `mu`, `predictive` and `tau` are the posterior distributions of mu, of a new study's effect and
    of tau (anything with `quantile(p)` and `shortest(level)`; tau also `moment(1)`);
    `mu_moments` = (mean, sd) of mu; `back` maps the analysis scale to the reporting scale (None:
    no back-transformation). Equal-tailed intervals at `level`; shortest ones when `shortest`.
    """
    alpha = (1 - level) / 2
    ci = (mu.quantile(alpha), mu.quantile(1 - alpha))
    pi = (predictive.quantile(alpha), predictive.quantile(1 - alpha))
    median = mu.quantile(0.5)
    nan2 = (math.nan, math.nan)
    ci_s = mu.shortest(level) if shortest else nan2
    pi_s = predictive.shortest(level) if shortest else nan2
    tau_s = tau.shortest(level) if shortest else nan2
    bt: dict[str, Any] = {}
    if back is not None:
        bt = dict(
            transform=transform,
            bt_pred=back(median),
            bt_ci_lb=back(ci[0]),
            bt_ci_ub=back(ci[1]),
            bt_pi_lb=back(pi[0]),
            bt_pi_ub=back(pi[1]),
        )
    return BayesResult(
        measure=measure,
        model=model,
        tau_prior=tau_prior,
        mu_prior=mu_prior,
        level=level,
        k=k,
        b=median,
        mu_mean=mu_moments[0],
        se=mu_moments[1],
        ci_lb=ci[0],
        ci_ub=ci[1],
        ci_shortest_lb=ci_s[0],
        ci_shortest_ub=ci_s[1],
        pi_median=predictive.quantile(0.5),
        pi_lb=pi[0],
        pi_ub=pi[1],
        pi_shortest_lb=pi_s[0],
        pi_shortest_ub=pi_s[1],
        tau=tau.quantile(0.5),
        tau_mean=tau.moment(1),
        tau_ci_lb=tau.quantile(alpha),
        tau_ci_ub=tau.quantile(1 - alpha),
        tau_shortest_lb=tau_s[0],
        tau_shortest_ub=tau_s[1],
        studies=studies,
        notes=notes,
        provenance=provenance,
        **bt,
    )


__all__ = ["BayesResult", "posterior_result", "APPLICABLE_FIELDS", "BAYES_FIELDS", "BAYES_NN", "BAYES_BN", "MODELS"]
