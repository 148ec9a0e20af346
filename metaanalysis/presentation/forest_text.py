"""Forest plots, part 2: the words on the plot — model names, heterogeneity lines, the test for
subgroup differences and the footnote naming how every drawn pooled number was obtained."""

from __future__ import annotations

import math
import textwrap
from typing import Any

from metaanalysis.engine.methods import SCALES as POOLING_SCALES
from metaanalysis.engine.methods import TAU2_NAMES as TAU2_METHOD_NAMES
from metaanalysis.engine.results import Fit, SubgroupResult
from metaanalysis.presentation.labels import symbols

# Below three studies a prediction interval says nothing useful: with k = 2 the between-study
# variance rests on one degree of freedom (and Higgins et al. 2009's t(k-2) is undefined).
MIN_K_PREDICTION = 3


def model_label(res: Fit) -> str:
    if res.bayesian:
        return f"Bayesian {getattr(res, 'model', '')} model".replace("  ", " ")
    if res.method == "GLMM":
        return "Random-effects model (GLMM)"
    if res.method == "MH":
        return "Common-effect model (MH)"
    if res.method == "FE":
        return "Common-effect model"
    return "Random-effects model"


def model_name(res: Fit) -> str:
    """The short name a heterogeneity line starts with, so that no line leaves its model unsaid."""
    if res.bayesian:
        return model_label(res)
    if res.method in ("GLMM", "MH"):
        return res.method
    if res.method == "FE":
        return "Common-effect model"
    return f"Random effects ({res.method})"  # the tau^2 estimator: REML, DL, PM, ...


def fmt_p(p: float | None) -> str:
    if p is None or not math.isfinite(p):
        return "p = NA"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _fmt_tau2(t: float) -> str:
    if t == 0:
        return "0"
    return "< 0.0001" if t < 1e-4 else f"{t:.4f}"


def _fmt_tau(t: float) -> str:
    return "0" if t == 0 else ("< 0.01" if t < 0.01 else f"{t:.2f}")


def heterogeneity(res: Fit, name: str = "Heterogeneity") -> str:
    """The heterogeneity line of one fit, in the fit's own terms: for a Bayesian fit the posterior
    median of τ with its credible interval, for the others τ², I² and Q."""
    r: Any = res
    if res.bayesian:
        pct = f"{r.level:.0%}"
        return (
            f"{name}: τ = {_fmt_tau(r.tau)} (posterior median; {pct} credible interval "
            f"{_fmt_tau(r.tau_ci_lb)} to {_fmt_tau(r.tau_ci_ub)})"
        )
    parts = []
    if r.tau2 is not None and r.method not in ("FE", "MH"):  # a common-effect fit estimates no tau^2
        parts.append(f"τ² = {_fmt_tau2(r.tau2)}")
    if r.I2 is not None:
        parts.append(f"I² = {r.I2:.1f}%")
    if r.QE is not None:
        # the GLMM's QE is metafor's Wald-type test, not Cochran's Q
        q = "Wald Q" if r.method == "GLMM" else "Q"
        parts.append(f"{q} = {r.QE:.2f} (df = {r.k - 1}), {fmt_p(r.QEp)}")
    return f"{name}: " + ("; ".join(parts) if parts else "not estimated")


def subgroup_lines(sub: SubgroupResult) -> list[str]:
    """The test for subgroup differences, only where it was computed (never a "not computed" line)."""
    if sub.Qbetween is None:
        return []
    lines = [f"Test for subgroup differences: Q = {sub.Qbetween:.2f}, df = {sub.Qbetween_df}, {fmt_p(sub.Qbetween_p)}"]
    if sub.QM_common_tau2 is not None:
        lines.append(f"  (meta-regression, common τ²: QM = {sub.QM_common_tau2:.2f}, {fmt_p(sub.QMp_common_tau2)})")
    return lines


def shows_prediction(res: Fit, show_prediction: bool) -> bool:
    return show_prediction and res.k >= MIN_K_PREDICTION and res.reporting_interval()[2] is not None


def method_text(res: Fit) -> str:
    r: Any = res
    if res.bayesian:
        return (
            f"Bayesian {r.model} model: posterior median and {r.level:.0%} equal-tailed credible interval, "
            f"prior {r.tau_prior} on τ and {r.mu_prior} on μ"
        )
    if res.method == "GLMM":
        nagq = r.provenance.get("nAGQ")
        text = f"Binomial-normal GLMM (ML{'' if nagq is None else f', nAGQ = {nagq}'}), Wald CI"
    elif res.method == "MH":
        text = "Common effect, Mantel-Haenszel"
    elif res.method == "FE":
        text = "Common effect, inverse variance"
    else:
        ci = {
            "knha": "Hartung-Knapp-Sidik-Jonkman CI",
            "knha_adhoc": "Hartung-Knapp-Sidik-Jonkman CI (ad hoc variance floor)",
        }.get(r.test, "Wald z CI")
        text = f"Random effects, {TAU2_METHOD_NAMES.get(res.method, res.method)} τ², {ci}"
    if res.measure in POOLING_SCALES and res.method != "GLMM":
        text += f", pooled on the {POOLING_SCALES[res.measure]} scale"
    return text


def pi_text(res: Fit) -> str:
    r: Any = res
    if res.bayesian:
        return "prediction interval: posterior predictive of a new cohort's true rate"
    if r.pi_method == "metafor":  # metafor: t(k-1) under knha, normal quantile under z
        return "prediction interval t(k-1)" if r.test != "z" else "prediction interval with normal quantile"
    if r.pi_method == "higgins2009":
        return "prediction interval t(k-2) (Higgins et al. 2009)"
    return f"prediction interval: {r.pi_method}"


def footnote(
    fits: list[tuple[str, str, Fit]],
    sub: SubgroupResult | None,
    show_prediction: bool,
    weight_scale: str | None,
    beside=None,
) -> str:
    """Sentences naming how every drawn pooled number was obtained, read from the results."""
    pooled = [(label, res) for _, label, res in fits if res.k >= 2]
    if sub is not None and sub.overall is not None:
        pooled.append(("Overall", sub.overall))
    methods: dict[str, list[str]] = {}  # method sentence -> classes it applies to
    for label, res in pooled:
        text = method_text(res)
        if shows_prediction(res, show_prediction):
            text += f"; {pi_text(res)}"
        methods.setdefault(text, []).append(label)
    if len(methods) == 1:
        parts = list(methods)
    else:
        parts = [f"{', '.join(labels)}: {text}" for text, labels in methods.items()]
    if show_prediction and any(res.k < MIN_K_PREDICTION for _, res in pooled):
        parts.append(
            f"No prediction interval with fewer than {MIN_K_PREDICTION} studies (the between-study "
            "variance is then too poorly estimated for one to mean anything)"
        )
    if any(res.k < 2 for _, _, res in fits):
        parts.append("Groups with k = 1 show the single study, not pooled (no weight)")
    if sub is not None and len(fits) > 1:
        if pooled:
            parts.append("Weights are within each group")
        if sub.Qbetween is not None:
            parts.append("Test for subgroup differences with a separate τ² per group")
        parts += [symbols(note[:1].upper() + note[1:]) for note in sub.notes]
    drawn_beside = [b for key, _, res in fits if res.k >= 2 and (b := (beside or {}).get(key or "result"))]
    beside_texts = dict.fromkeys(
        f"{model_label(b)} (alternative, drawn beneath): {method_text(b)}"
        for b in drawn_beside
        if method_text(b) not in methods
    )
    parts += list(beside_texts)
    if weight_scale:
        parts.append(weight_scale)
    if any(res.method == "GLMM" for _, res in pooled):
        parts.append("GLMM weights are shares of patients (a GLMM has no inverse-variance weights)")
    return ". ".join(p.rstrip(".") for p in parts) + "."


def wrap(text: str, width: int) -> list[str]:
    """Lines of at most `width` characters, each paragraph's last line holding at least two words
    (no orphan word): the width shrinks until it does."""
    lines = []
    for para in text.split("\n"):
        w = width
        out = textwrap.wrap(para, width=w) or [""]
        while len(out) > 1 and len(out[-1].split()) < 2 and w > 20:
            w -= 1
            out = textwrap.wrap(para, width=w)
        lines += out
    return lines
