"""The result of a Bayesian random-effects fit (normal-normal or binomial-normal).

Field names follow `MetaResult` where the quantity is the same kind of thing:
`b` (posterior median of mu), `se` (posterior SD of mu), `ci_lb/ci_ub` (95 % equal-tailed
credible interval), `pi_lb/pi_ub` (equal-tailed posterior predictive interval of a new
study's true effect theta_new), `tau2` (posterior median of tau^2), `tau2_ci_lb/ub`,
`bt_*` (the same back-transformed), `k`, `measure`, `method` ("BAYES"), `level`,
`studies`, `notes`. Frequentist quantities (z, p, Q, I^2) do not apply and are None.

Equal-tailed intervals and medians are the primary summaries because they are
invariant under the back-transformation: ilogit of the 2.5 % quantile of mu IS the
2.5 % quantile of the pooled proportion. Shortest intervals (R bayesmeta's default
print) are given as `ci_shortest_*`, `pi_shortest_*`, `tau_shortest_*` on the
analysis scale only.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from metaanalysis.engine.results import StudyRows, _fmt

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
class BayesResult:
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
    method: str = "BAYES"
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

    @property
    def tau2(self) -> float:
        return self.tau**2

    @property
    def tau2_ci_lb(self) -> float:
        return self.tau_ci_lb**2

    @property
    def tau2_ci_ub(self) -> float:
        return self.tau_ci_ub**2

    @property
    def estimate(self) -> float:
        return self.bt_pred if self.bt_pred is not None else self.b

    def reporting_interval(self) -> tuple[float, float, float | None, float | None]:
        if self.bt_pred is not None:
            return self.bt_ci_lb, self.bt_ci_ub, self.bt_pi_lb, self.bt_pi_ub
        return self.ci_lb, self.ci_ub, self.pi_lb, self.pi_ub

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

    def to_frame(self) -> pd.DataFrame:
        """Study rows then the pooled row, in the columns of `MetaResult.to_frame()`."""
        rows = []
        if self.studies is not None:
            s = self.studies
            for i, name in enumerate(s.study):
                rows.append(
                    dict(
                        study=name,
                        events=None if s.events is None else s.events[i],
                        n=None if s.n is None else s.n[i],
                        estimate=s.estimate[i],
                        ci_lb=s.ci_lb[i],
                        ci_ub=s.ci_ub[i],
                        weight=s.weight[i],
                        kind="study",
                    )
                )
        lb, ub, _, _ = self.reporting_interval()
        rows.append(
            dict(
                study=f"Bayesian {self.model} model",
                events=None,
                n=None,
                estimate=self.estimate,
                ci_lb=lb,
                ci_ub=ub,
                weight=100.0 if self.studies is not None else None,
                kind="pooled",
            )
        )
        return pd.DataFrame(rows)

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

    def __str__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        return "<pre>" + html.escape(self.summary()) + "</pre>"


__all__ = ["BayesResult", "APPLICABLE_FIELDS", "BAYES_FIELDS"]
