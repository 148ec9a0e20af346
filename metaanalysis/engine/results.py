"""The one result type every model returns.

Field names follow metafor (`b, se, zval, pval, ci_lb, ci_ub, tau2, I2, H2,
QE, QEp`) with `.` replaced by `_`, so a number here can be put next to
`print(rma(...))` without a dictionary. Each quantity has exactly one name.
`I2` is in percent, as metafor and RevMan print it.

Quantities on the back-transformed scale (proportions, ratios) carry a `bt_`
prefix; `transform` names the back-transformation that produced them.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

# The fields of metafor_reference.json, in the order a reader expects them.
REFERENCE_FIELDS = (
    "k",
    "b",
    "se",
    "zval",
    "pval",
    "ci_lb",
    "ci_ub",
    "tau2",
    "se_tau2",
    "I2",
    "H2",
    "QE",
    "QEp",
    "pi_lb",
    "pi_ub",
    "tau2_ci_lb",
    "tau2_ci_ub",
    "I2_ci_lb",
    "I2_ci_ub",
    "bt_pred",
    "bt_ci_lb",
    "bt_ci_ub",
    "bt_pi_lb",
    "bt_pi_ub",
)


@dataclass(frozen=True, slots=True)
class StudyRows:
    """Per-study inputs and what a forest plot shows for each study.

    `estimate`, `ci_lb`, `ci_ub` are on the reporting scale (back-transformed
    where the measure has a back-transformation); `weight` is in percent.
    `events`/`n` are the counts behind a proportion, `None` for other measures.
    """

    study: tuple[str, ...]
    yi: tuple[float, ...]
    vi: tuple[float, ...]
    weight: tuple[float, ...]
    estimate: tuple[float, ...]
    ci_lb: tuple[float, ...]
    ci_ub: tuple[float, ...]
    events: tuple[int, ...] | None = None
    n: tuple[int, ...] | None = None


class Fit:
    """What every fit offers, whatever its model (as metafor's fits all carry the class "rma").

    Inverse-variance, GLMM, Mantel-Haenszel, single-study (`MetaResult`) and Bayesian
    (`BayesResult`) fits share these names: `method`, `measure`, `level`, `k`, `estimate`,
    `interval()` and `prediction()` on the reporting scale, `tau2` and `I2` (None where a model
    has no such quantity), `studies`, `notes`; and `summary()`, `to_frame()`, `_repr_html_()`.
    The forest plot, the tables and the summary of findings take any of them through this.
    """

    __slots__ = ()
    bayesian = False  # a Bayesian fit's interval is a credible interval, its tau2 a posterior median

    @property
    def estimate(self) -> float:
        """The pooled estimate on the reporting scale (back-transformed where defined)."""
        s: Any = self
        return s.bt_pred if s.bt_pred is not None else s.b

    def reporting_interval(self) -> tuple[float, float, float | None, float | None]:
        """(ci_lb, ci_ub, pi_lb, pi_ub) on the reporting scale."""
        s: Any = self
        if s.bt_pred is not None:
            return s.bt_ci_lb, s.bt_ci_ub, s.bt_pi_lb, s.bt_pi_ub
        return s.ci_lb, s.ci_ub, s.pi_lb, s.pi_ub

    def interval(self) -> tuple[float, float]:
        """The confidence (or credible) interval of the estimate, reporting scale."""
        lb, ub, _, _ = self.reporting_interval()
        return lb, ub

    def prediction(self) -> tuple[float | None, float | None]:
        """The prediction (or posterior predictive) interval of a new study's effect, reporting scale."""
        _, _, lb, ub = self.reporting_interval()
        return lb, ub

    @property
    def model_name(self) -> str:
        """The pooled row's name in `to_frame()`."""
        s: Any = self
        return f"{s.method} model"

    def to_frame(self) -> pd.DataFrame:
        """Study rows then one pooled row, in the columns the forest plot takes:
        `study, events, n, estimate, ci_lb, ci_ub, weight, kind`."""
        s: Any = self
        rows = []
        if s.studies is not None:
            st = s.studies
            for i, name in enumerate(st.study):
                rows.append(
                    dict(
                        study=name,
                        events=None if st.events is None else st.events[i],
                        n=None if st.n is None else st.n[i],
                        estimate=st.estimate[i],
                        ci_lb=st.ci_lb[i],
                        ci_ub=st.ci_ub[i],
                        weight=st.weight[i],
                        kind="study",
                    )
                )
        ci_lb, ci_ub = self.interval()
        rows.append(
            dict(
                study=self.model_name,
                events=None,
                n=None,
                estimate=self.estimate,
                ci_lb=ci_lb,
                ci_ub=ci_ub,
                weight=100.0 if s.studies is not None else None,
                kind="pooled",
            )
        )
        return pd.DataFrame(rows)

    def summary(self) -> str:
        raise NotImplementedError  # every fit writes its own, as metafor's print methods differ

    def __str__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        return "<pre>" + html.escape(self.summary()) + "</pre>"


@dataclass(frozen=True, slots=True)
class MetaResult(Fit):
    """A fitted meta-analysis: pooled estimate, heterogeneity, intervals.

    `test` is "z" (Wald), "knha" (Hartung-Knapp-Sidik-Jonkman, t with
    `df` = k - 1) or "knha_adhoc" (the same, never narrower than Wald: metafor's
    test="adhoc"); under the t tests `zval` holds the t statistic, as in metafor.
    `pi_method` names how the prediction interval was computed.
    `notes` says what could not be estimated and why (e.g. k = 1), so that a
    missing number is explained rather than silently absent.
    """

    measure: str
    method: str
    test: str
    level: float
    k: int
    b: float
    se: float
    zval: float | None
    pval: float | None
    ci_lb: float
    ci_ub: float
    tau2: float | None
    QE: float | None
    QEp: float | None
    I2: float | None
    H2: float | None
    pi_lb: float | None
    pi_ub: float | None
    df: float | None = None
    se_tau2: float | None = None
    tau2_ci_lb: float | None = None
    tau2_ci_ub: float | None = None
    I2_ci_lb: float | None = None
    I2_ci_ub: float | None = None
    pi_method: str | None = None
    transform: str | None = None
    bt_pred: float | None = None
    bt_ci_lb: float | None = None
    bt_ci_ub: float | None = None
    bt_pi_lb: float | None = None
    bt_pi_ub: float | None = None
    studies: StudyRows | None = None
    notes: tuple[str, ...] = ()
    provenance: dict[str, Any] = field(default_factory=dict)

    # -- views -------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The reference-named fields (those of metafor_reference.json) plus method info."""
        out = {name: getattr(self, name) for name in REFERENCE_FIELDS}
        out.update(
            measure=self.measure,
            method=self.method,
            test=self.test,
            level=self.level,
            df=self.df,
            pi_method=self.pi_method,
            transform=self.transform,
            notes=list(self.notes),
        )
        return out

    def summary(self) -> str:
        """A plain-text summary in the spirit of print(rma(...))."""
        pct = int(round(self.level * 100))
        test = {"z": "Wald z", "knha_adhoc": f"modified (ad hoc) Hartung-Knapp t({_fmt(self.df)})"}.get(
            self.test, f"Hartung-Knapp-Sidik-Jonkman t({_fmt(self.df)})"
        )
        lines = [
            f"{'Random' if self.method not in ('FE', 'MH') else 'Common'}-effects model "
            f"(k = {self.k}; tau^2 estimator: {self.method}; measure: {self.measure}; CI: {test})",
            "",
        ]
        if self.tau2 is not None:
            lines.append(
                f"tau^2 = {_fmt(self.tau2)} [{_fmt(self.tau2_ci_lb)}, {_fmt(self.tau2_ci_ub)}]   "
                f"I^2 = {_fmt(self.I2, 1)}% [{_fmt(self.I2_ci_lb, 1)}, {_fmt(self.I2_ci_ub, 1)}]   "
                f"H^2 = {_fmt(self.H2)}"
            )
        if self.QE is not None:
            lines.append(f"Q({self.k - 1}) = {_fmt(self.QE)}, p = {_fmt_p(self.QEp)}")
        lines += [
            "",
            f"estimate = {_fmt(self.b)}  se = {_fmt(self.se)}  "
            f"{'z' if self.test == 'z' else 't'} = {_fmt(self.zval)}  p = {_fmt_p(self.pval)}  "
            f"{pct}% CI [{_fmt(self.ci_lb)}, {_fmt(self.ci_ub)}]",
        ]
        if self.pi_lb is not None:
            lines.append(f"{pct}% prediction interval [{_fmt(self.pi_lb)}, {_fmt(self.pi_ub)}] ({self.pi_method})")
        if self.bt_pred is not None:
            lines.append(
                f"back-transformed ({self.transform}): {_fmt(self.bt_pred)} "
                f"[{_fmt(self.bt_ci_lb)}, {_fmt(self.bt_ci_ub)}]"
                + (f", prediction [{_fmt(self.bt_pi_lb)}, {_fmt(self.bt_pi_ub)}]" if self.bt_pi_lb is not None else "")
            )
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th><td>{html.escape(_fmt(v))}</td></tr>"
            for k, v in self.to_dict().items()
            if v is not None and k != "notes"
        )
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in self.notes)
        return (
            f"<div><strong>{html.escape(self.method)} / {html.escape(self.measure)} / "
            f"{html.escape(self.test)}</strong><table>{rows}</table>"
            + (f"<ul>{notes}</ul>" if notes else "")
            + "</div>"
        )


@dataclass(frozen=True, slots=True)
class SubgroupResult:
    """One fit per subgroup plus the test for subgroup differences.

    `Qbetween`/`Qbetween_p` use separate tau^2 per group (R meta's default: a
    common-effect test on the per-group estimates); `QM_common_tau2`/
    `QMp_common_tau2` come from a meta-regression on the group factor with one
    tau^2. Either is `None` (with a note) where it is not meaningful, e.g.
    fewer than two groups that could be pooled.
    """

    groups: Mapping[str, Fit]
    Qbetween: float | None
    Qbetween_df: int | None
    Qbetween_p: float | None
    QM_common_tau2: float | None = None
    QMp_common_tau2: float | None = None
    overall: Fit | None = None
    notes: tuple[str, ...] = ()

    def to_frame(self) -> pd.DataFrame:
        parts = []
        for name, res in self.groups.items():
            frame = res.to_frame()
            frame.insert(0, "group", name)
            parts.append(frame)
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()

    def summary(self) -> str:
        out = []
        for name, res in self.groups.items():
            out += [f"== {name} ==", res.summary(), ""]
        if self.Qbetween is not None:
            out.append(
                f"Test for subgroup differences (separate tau^2): Q({self.Qbetween_df}) = "
                f"{_fmt(self.Qbetween)}, p = {_fmt_p(self.Qbetween_p)}"
            )
        if self.QM_common_tau2 is not None:
            out.append(
                f"Test for subgroup differences (common tau^2, meta-regression): QM = "
                f"{_fmt(self.QM_common_tau2)}, p = {_fmt_p(self.QMp_common_tau2)}"
            )
        out += [f"note: {n}" for n in self.notes]
        return "\n".join(out)

    def __str__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        return "<pre>" + html.escape(self.summary()) + "</pre>"


def _fmt(x: Any, digits: int = 4) -> str:
    if x is None:
        return "NA"
    if isinstance(x, float):
        if math.isnan(x):
            return "NA"
        return f"{x:.{digits}f}"
    return str(x)


def _fmt_p(p: float | None) -> str:
    if p is None:
        return "NA"
    return "<.0001" if p < 1e-4 else f"{p:.4f}"


__all__ = ["Fit", "MetaResult", "SubgroupResult", "StudyRows", "REFERENCE_FIELDS"]
