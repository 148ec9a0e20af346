"""Forest plots a journal would accept: one weight scale across groups, citation labels and their
order, no meaningless rows, two-arm comparisons, symbols, wrapped footnotes."""

from __future__ import annotations

import re

import matplotlib
import numpy as np
import pytest
from matplotlib.collections import LineCollection, PathCollection
from matplotlib.patches import Rectangle
from matplotlib.text import Text

from metaanalysis.engine.effects import escalc
from metaanalysis.engine.glmm import rma_glmm
from metaanalysis.engine.results import SubgroupResult
from metaanalysis.engine.rma import rma_effects
from metaanalysis.engine.single_study import single_proportion
from metaanalysis.presentation import forest, forest_rows
from metaanalysis.presentation.forest import forest_plot
from metaanalysis.presentation.forest_text import wrap

matplotlib.use("Agg")


def _texts(fig) -> list[str]:
    fig.canvas.draw()
    return [
        re.sub(r"\s+", " ", t.get_text().replace(forest.NBSP, " ")).replace("[ ", "[").strip()
        for t in fig.findobj(Text)
        if t.get_visible() and t.get_text().strip()
    ]


def _squares_by_label(fig) -> dict[str, float]:
    """study label -> square area, read from the drawn scatter and the y tick labels."""
    ax = fig.axes[0]
    fig.canvas.draw()
    labels = {int(round(y)): _label(t.get_text()) for y, t in zip(ax.get_yticks(), ax.get_yticklabels(), strict=True)}
    (points,) = [c for c in ax.collections if isinstance(c, PathCollection)]
    offsets = np.ma.asarray(points.get_offsets())
    out = {}
    for (_x, y), area, masked in zip(
        offsets.data, points.get_sizes(), np.ma.getmaskarray(offsets).any(axis=1), strict=True
    ):
        if not masked:
            out[labels[int(round(y))]] = float(area)
    return out


def _label(tick: str) -> str:
    """A table row's tick label holds the whole row; the study label is its first column."""
    return tick.replace(forest.NBSP, " ").strip().split("  ")[0]


def _row_order(fig) -> list[str]:
    ax = fig.axes[0]
    fig.canvas.draw()
    rows = sorted(zip(ax.get_yticks(), ax.get_yticklabels(), strict=True), key=lambda yt: -yt[0])  # top row first
    return [_label(t.get_text()) for _, t in rows]


def _glmm_and_single():
    pooled = rma_glmm(
        [40, 33, 29], [92, 61, 60], studies=("Shumilov 2025", "Thieblemont 2023", "Topp 2025"), level=0.95, nAGQ=7
    )
    single = single_proportion(7, 20, study="Small 2024")
    return SubgroupResult(
        groups={"bsab": pooled, "len": single},
        Qbetween=None,
        Qbetween_df=None,
        Qbetween_p=None,
        notes=("test for subgroup differences not computed: fewer than two classes with k >= 2",),
    )


def test_an_unpooled_small_arm_never_draws_a_bigger_square_than_a_pooled_large_study():
    fig = forest_plot(_glmm_and_single(), group_labels={"bsab": "Bispecific", "len": "Lenalidomide"})
    areas = _squares_by_label(fig)
    assert areas["Small 2024"] < areas["Shumilov 2025"]
    # one scale across the plot: areas in proportion to patients (20 vs 92), not to within-group shares
    assert areas["Small 2024"] / areas["Shumilov 2025"] == pytest.approx(20 / 92, rel=1e-6)
    assert areas["Thieblemont 2023"] / areas["Shumilov 2025"] == pytest.approx(61 / 92, rel=1e-6)
    assert "Square areas are proportional to weight on one scale across the plot" in " ".join(_texts(fig))


def test_inverse_variance_groups_share_one_weight_scale():
    es_a = escalc("PLO", events=[40, 33, 29], n=[92, 61, 60], add=None, to="only0", studies=("A", "B", "C"))
    es_b = escalc("PLO", events=[5], n=[20], add=None, to="only0", studies=("D",))
    a = rma_effects(es_a, method="REML", test="knha", level=0.95, pi_method="metafor")
    b = rma_effects(es_b, method="FE", test="z", level=0.95, pi_method="metafor")
    areas = _squares_by_label(
        forest_plot(SubgroupResult(groups={"pooled": a, "single": b}, Qbetween=None, Qbetween_df=None, Qbetween_p=None))
    )
    w = {s: 1 / (v + a.tau2) for s, v in zip(a.studies.study, a.studies.vi, strict=True)}
    w["D"] = 1 / b.studies.vi[0]
    top = max(w.values())
    for study, weight in w.items():
        assert areas[study] == pytest.approx(
            max(forest_rows.MIN_SQUARE_AREA, forest_rows.MAX_SQUARE_AREA * weight / top), rel=1e-9
        )


def test_single_unpooled_study_has_no_weight_and_one_group_has_no_subgroup_line():
    single = single_proportion(7, 20, study="Small 2024")
    sub = SubgroupResult(
        groups={"len": single},
        Qbetween=None,
        Qbetween_df=None,
        Qbetween_p=None,
        notes=("test for subgroup differences not computed: fewer than two classes with k >= 2",),
    )
    texts = _texts(forest_plot(sub))
    assert not any("100.0%" in t for t in texts)
    assert not any("subgroup differences" in t.lower() for t in texts)


def test_no_not_computed_line_and_no_prediction_interval_below_three_studies():
    pooled = rma_glmm([25, 7], [57, 13], studies=("Gouni 2024", "Kim 2023"), level=0.95, nAGQ=7)
    sub = SubgroupResult(
        groups={"pola": pooled, "len": single_proportion(7, 52, study="DESCAR-T 2025")},
        Qbetween=None,
        Qbetween_df=None,
        Qbetween_p=None,
    )
    fig = forest_plot(sub)
    texts = _texts(fig)
    assert pooled.bt_pi_lb is not None  # estimable by the engine, but not meaningful with k = 2
    assert not any(t.startswith("Prediction interval") for t in texts)
    assert not [p for p in fig.axes[0].patches if isinstance(p, Rectangle) and p is not fig.axes[0].patch]
    assert "No prediction interval with fewer than 3 studies" in " ".join(texts)
    assert not any("not computed" in t and t.startswith("Test for subgroup") for t in texts)


def test_citation_labels_symbols_and_sorting():
    pooled = rma_glmm(
        [40, 33, 29],
        [92, 61, 60],
        studies=("shumilov2025", "thieblemont2023_priorcart", "topp2025"),
        level=0.95,
        nAGQ=7,
    )
    labels = {"shumilov2025": "Shumilov 2025", "thieblemont2023_priorcart": "Thieblemont 2023", "topp2025": "Topp 2024"}
    sub = SubgroupResult(groups={"bsab": pooled}, Qbetween=None, Qbetween_df=None, Qbetween_p=None)

    def order(**kw):
        fig = forest_plot(sub, study_labels=labels, group_labels={"bsab": "Infection grade >= 3"}, **kw)
        return [
            r.split(" ")[0] for r in _row_order(fig) if r.split(" ")[0] in ("Shumilov", "Thieblemont", "Topp")
        ], _texts(fig)

    as_given, texts = order()
    assert as_given == ["Shumilov", "Thieblemont", "Topp"]
    assert "Infection grade ≥ 3" in texts and not any("thieblemont2023_priorcart" in t for t in texts)
    assert order(sort_by="year")[0] == ["Thieblemont", "Topp", "Shumilov"]  # 2023, 2024, 2025
    assert order(sort_by="estimate")[0] == ["Shumilov", "Topp", "Thieblemont"]  # 43.5, 48.3, 54.1 %
    assert order(sort_by="weight")[0] == ["Shumilov", "Thieblemont", "Topp"]  # n = 92, 61, 60
    with pytest.raises(ValueError, match="sort_by"):
        forest_plot(sub, sort_by="size")


def test_axis_limits_and_columns_can_be_chosen():
    pooled = rma_glmm([40, 33, 29], [92, 61, 60], studies=("A 2021", "B 2022", "C 2023"), level=0.95, nAGQ=7)
    fig = forest_plot(pooled, xlim=(20, 80), columns=("estimate",))
    assert fig.axes[0].get_xlim() == pytest.approx((20, 80))
    texts = _texts(fig)
    assert "Events/N" not in " ".join(texts) and "Weight" not in texts
    assert any(t.startswith("A 2021 43.5 [") for t in texts)


def _two_arm():
    fits = {}
    for outcome, (a, n1, c, n2) in {"ORR": (8, 27, 2, 34), "infection": (18, 27, 12, 34)}.items():
        es = escalc("RD", ai=[a], n1i=[n1], ci=[c], n2i=[n2], add=0.5, to="only0", studies=("wang2025",))
        fits[outcome] = rma_effects(es, method="FE", test="z", level=0.95, pi_method="metafor")
    return SubgroupResult(groups=fits, Qbetween=None, Qbetween_df=None, Qbetween_p=None)


def test_two_arm_comparison_shows_counts_per_arm_favours_labels_null_line_and_percent():
    counts = {("ORR", "wang2025"): (8, 27, 2, 34), ("infection", "wang2025"): (18, 27, 12, 34)}
    fig = forest_plot(
        _two_arm(),
        study_labels={"wang2025": "Wang 2025"},
        arm_names=("CTI2", "Other"),
        arm_counts=counts,
        favours=("more with other salvage", "more with CTI2"),
    )
    texts = _texts(fig)
    # 8/27 - 2/34 = 0.23747 -> 23.7 percentage points
    assert any(t.startswith("Wang 2025 8/27 2/34 23.7 [") for t in texts), texts
    assert any(t.startswith("Wang 2025 18/27 12/34 31.4 [") for t in texts)
    header = next(t for t in texts if t.startswith("Study"))
    assert header == "Study CTI2 n/N Other n/N RD, % [95% CI]"  # no weight column: nothing is pooled
    assert "← more with other salvage" in texts and "more with CTI2 →" in texts
    assert fig.axes[0].get_xlabel() == "Risk difference (percentage points)"
    lines = [
        seg
        for c in fig.axes[0].collections
        if isinstance(c, LineCollection)
        for seg in c.get_segments()
        if len(seg) == 2 and seg[0][0] == seg[1][0] == 0.0
    ]
    assert lines, "the line of no effect at 0 is drawn"
    assert not any("subgroup differences" in t.lower() for t in texts)
    with pytest.raises(ValueError, match="arm_counts has no entry"):
        forest_plot(_two_arm(), arm_names=("CTI2", "Other"), arm_counts={"other": (1, 2, 1, 2)})


def test_footnote_lines_never_end_on_a_single_word():
    text = (
        "Binomial-normal GLMM (ML, nAGQ = 7), Wald CI; prediction interval with normal quantile. Groups "
        "with k = 1 show the single study, not pooled. GLMM weights are shares of patients (a GLMM has "
        "no inverse-variance weights)."
    )
    for width in range(40, 140):
        lines = wrap(text, width)
        assert all(len(line) <= width for line in lines)
        assert len(lines) == 1 or len(lines[-1].split()) >= 2, (width, lines)
