"""Forest plots: what they show must be the numbers of the result they were given.

Hand-made results carry plausible numbers whose formatted form is written out
below (e.g. 5/11 = 0.4545... is printed "45.5"). Plots of real fits are checked
against R metafor 3.8-1 (/work/shared/reference/metafor_reference.json), e.g. for
Kearon 1998 by symptom status, R:
    es <- escalc("PLO", xi, ni); rma(es$yi[sel], es$vi[sel], method = "REML")   # per group
    predict(fit, transf = transf.ilogit)                                        # bt_pred, bt_ci_*
"""

from __future__ import annotations

import re
import subprocess
import sys

import forestplot
import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.collections import LineCollection, PathCollection
from matplotlib.patches import Polygon, Rectangle
from matplotlib.text import Text
from PIL import Image
from reference import case, effect_sizes

from metaanalysis.engine.results import MetaResult, StudyRows, SubgroupResult
from metaanalysis.presentation import forest
from metaanalysis.presentation.forest import forest_plot, save_forest

matplotlib.use("Agg")


# --------------------------------------------------------------------------- helpers
def _study_rows(names, events, n, est, lb, ub, weight):
    return StudyRows(
        study=tuple(names),
        yi=tuple(0.0 for _ in names),
        vi=tuple(0.1 for _ in names),
        weight=tuple(weight),
        estimate=tuple(est),
        ci_lb=tuple(lb),
        ci_ub=tuple(ub),
        events=tuple(events),
        n=tuple(n),
    )


def _fit(
    studies,
    *,
    k=None,
    bt=(0.40, 0.30, 0.50),
    bt_pi=(0.20, 0.65),
    tau2=0.2,
    I2=48.2,
    QE=12.3,
    QEp=0.0153,
    method="REML",
    test="knha",
    measure="PLO",
):
    k = len(studies.study) if k is None else k
    return MetaResult(
        measure=measure,
        method=method,
        test=test,
        level=0.95,
        k=k,
        b=-0.4,
        se=0.2,
        zval=-2.0,
        pval=0.05,
        ci_lb=-0.85,
        ci_ub=0.0,
        tau2=tau2 if k > 1 else None,
        QE=QE if k > 1 else None,
        QEp=QEp if k > 1 else None,
        I2=I2 if k > 1 else None,
        H2=None,
        pi_lb=None if bt_pi is None else -1.4,
        pi_ub=None if bt_pi is None else 0.6,
        df=k - 1,
        pi_method="metafor",
        transform="ilogit",
        bt_pred=bt[0],
        bt_ci_lb=bt[1],
        bt_ci_ub=bt[2],
        bt_pi_lb=None if bt_pi is None else bt_pi[0],
        bt_pi_ub=None if bt_pi is None else bt_pi[1],
        studies=studies,
    )


def _single():
    # 5/11 with a Clopper-Pearson-like interval 16.74 % to 76.62 %.
    rows = _study_rows(["Smith 2024"], [5], [11], [5 / 11], [0.1674], [0.7662], [100.0])
    return _fit(rows, k=1, bt=(5 / 11, 0.1674, 0.7662), bt_pi=None)


def _three_studies():
    rows = _study_rows(
        ["Alpha 2021", "Beta 2022 (a very long registry name, real-world cohort)", "Gamma 2023"],
        [0, 10, 12],
        [9, 10, 33],
        [0.0, 1.0, 12 / 33],
        [0.0, 0.6915, 0.2040],
        [0.3363, 1.0, 0.5490],
        [10.0, 35.5, 54.5],
    )
    return _fit(rows)


def _subgroups(**kw):
    groups = {"cart": _three_studies(), "imid": _single()}
    return SubgroupResult(groups=groups, Qbetween=4.8712, Qbetween_df=1, Qbetween_p=0.02731, **kw)


def _norm(text: str) -> str:
    """Collapse the column padding so that '[ 4.7,  50.8]' reads '[4.7, 50.8]'."""
    text = re.sub(r"\s+", " ", text.replace(forest.NBSP, " "))
    return text.replace("[ ", "[").strip()


def _texts(fig) -> list[str]:
    fig.canvas.draw()  # tick labels get their text at draw time
    return [_norm(t.get_text()) for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]


def _row_text(fig, label: str) -> str:
    rows = [t for t in _texts(fig) if t.startswith(label)]
    assert len(rows) == 1, f"expected one table row starting with {label!r}, found {rows}"
    return rows[0]


def _ax(fig):
    return fig.axes[0]


def _vertical_lines(ax) -> list[float]:
    """x of every vertical segment drawn by vlines (the reference line); CI lines are horizontal."""
    return [
        seg[0][0]
        for c in ax.collections
        if isinstance(c, LineCollection)
        for seg in c.get_segments()
        if len(seg) == 2 and seg[0][0] == seg[1][0]
    ]


def _squares(ax) -> list[tuple[float, float]]:
    """(x, area) of forestplot's study squares, top row first; rows without a study are masked."""
    (collection,) = [c for c in ax.collections if isinstance(c, PathCollection)]
    offsets = np.ma.asarray(collection.get_offsets())
    drawn = [
        (float(y), float(x), float(a))
        for (x, y), a, m in zip(
            offsets.data, collection.get_sizes(), np.ma.getmaskarray(offsets).any(axis=1), strict=True
        )
        if not m
    ]
    return [(x, a) for _, x, a in sorted(drawn, reverse=True)]


@pytest.fixture(autouse=True)
def _no_open_figures():
    before = set(plt.get_fignums())
    yield
    assert set(plt.get_fignums()) == before, "forest_plot left a pyplot figure open"


# --------------------------------------------------------------------------- files
def test_save_forest_writes_png_at_300_dpi_svg_and_pdf_with_text_as_text(tmp_path):
    fig = forest_plot(_subgroups(), title="ORR after CAR-T failure")
    paths = save_forest(fig, tmp_path / "figures" / "orr")
    assert [p.name for p in paths] == ["orr.png", "orr.svg", "orr.pdf"]
    assert all(p.is_file() and p.stat().st_size > 1000 for p in paths)
    with Image.open(paths[0]) as img:
        assert img.format == "PNG"
        assert img.info["dpi"] == pytest.approx((300, 300), abs=0.5)
        # at 300 dpi a figure several inches wide is thousands of pixels wide
        assert img.size[0] >= 300 * 4
    svg = paths[1].read_text()
    assert "<svg" in svg[:2000]
    # text stays text (editable in Inkscape or Illustrator), not glyph outlines
    assert ">ORR after CAR-T failure</text>" in svg and "Smith 2024" in svg
    assert paths[2].read_bytes()[:5] == b"%PDF-"


def test_save_forest_refuses_a_suffix(tmp_path):
    fig = forest_plot(_single())
    with pytest.raises(ValueError, match="without suffix"):
        save_forest(fig, tmp_path / "orr.png")


# --------------------------------------------------------------------------- forestplot
def test_the_table_and_study_rows_are_drawn_by_forestplot(monkeypatch):
    calls = []
    real = forestplot.forestplot

    def spy(*args, **kwargs):
        calls.append((args, kwargs))
        return real(*args, **kwargs)

    monkeypatch.setattr(forest.fp, "forestplot", spy)
    fig = forest_plot(_subgroups())
    assert len(calls) == 1
    (frame,), kwargs = calls[0]
    assert kwargs["groupvar"] == "group" and kwargs["logscale"] is False
    assert kwargs["ax"] is _ax(fig)
    studies = frame.loc[~frame["estimate"].isna()]
    assert [s.strip(forest.NBSP) for s in studies["label"]] == [
        "Alpha 2021",
        "Beta 2022 (a very long registry name, real-world cohort)",
        "Gamma 2023",
        "Smith 2024",
    ]
    # study estimates in percent, straight from StudyRows
    assert list(studies["estimate"]) == pytest.approx([0.0, 100.0, 100 * 12 / 33, 100 * 5 / 11])


def test_each_tick_label_sits_on_its_own_row():
    """forestplot's y axis is categorical: every row must have its own label and position."""
    fig = forest_plot(_subgroups())
    ax = _ax(fig)
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert len(labels) == len(set(labels))
    ys = list(ax.get_yticks())
    assert ys == list(range(len(labels)))
    # the diamond of the first class is on the row labelled as its pooled row
    diamond = next(p for p in ax.patches if isinstance(p, Polygon))
    y = diamond.get_xy()[0][1]
    assert "Random-effects model" in labels[int(round(y))]


# --------------------------------------------------------------------------- content
def test_study_rows_show_counts_estimate_ci_and_weight():
    fig = forest_plot(_subgroups())
    # a single study is not pooled: no "Weight 100 %"
    assert _row_text(fig, "Smith 2024") == "Smith 2024 5/11 45.5 [16.7, 76.6]"
    assert _row_text(fig, "Alpha 2021") == "Alpha 2021 0/9 0.0 [0.0, 33.6] 10.0%"
    assert _row_text(fig, "Beta 2022") == (
        "Beta 2022 (a very long registry name, real-world cohort) 10/10 100.0 [69.2, 100.0] 35.5%"
    )


def test_class_headers_subtotals_heterogeneity_and_subgroup_test():
    fig = forest_plot(_subgroups(), group_labels={"cart": "CAR-T re-treatment", "imid": "IMiD-based"})
    texts = _texts(fig)
    assert "CAR-T re-treatment" in texts and "IMiD-based" in texts
    # the pooled row carries the class's totals, 0 + 10 + 12 events of 9 + 10 + 33 patients
    assert "Random-effects model 22/52 40.0 [30.0, 50.0] 100.0%" in texts
    assert "Prediction interval [20.0, 65.0]" in texts
    assert "Random effects (REML), heterogeneity: τ² = 0.2000; I² = 48.2%; Q = 12.30 (df = 2), p = 0.015" in texts
    assert "k = 1: not pooled" in texts
    assert "Test for subgroup differences: Q = 4.87, df = 1, p = 0.027" in texts


def test_single_study_class_has_no_diamond_and_pooled_class_has_one():
    ax = _ax(forest_plot(_subgroups()))
    diamonds = [p for p in ax.patches if isinstance(p, Polygon)]
    assert len(diamonds) == 1
    xs = sorted({round(x, 9) for x, _ in diamonds[0].get_xy()})
    assert xs == pytest.approx([30.0, 40.0, 50.0])  # bt_ci_lb, bt_pred, bt_ci_ub in percent


def test_prediction_interval_bar_and_switch():
    ax = _ax(forest_plot(_subgroups()))
    bars = [p for p in ax.patches if isinstance(p, Rectangle) and p is not ax.patch]
    assert len(bars) == 1
    assert (bars[0].get_x(), bars[0].get_x() + bars[0].get_width()) == pytest.approx((20.0, 65.0))
    fig = forest_plot(_subgroups(), show_prediction=False)
    assert not [p for p in _ax(fig).patches if isinstance(p, Rectangle) and p is not _ax(fig).patch]
    assert not any(t.startswith("Prediction interval") for t in _texts(fig))


def test_squares_are_sized_by_weight():
    fig = forest_plot(_three_studies())
    sizes = [a for _, a in _squares(_ax(fig))]
    assert len(sizes) == 3
    # areas proportional to weights 10.0, 35.5, 54.5 (none below the visibility floor here)
    assert [s / sizes[-1] for s in sizes] == pytest.approx([10.0 / 54.5, 35.5 / 54.5, 1.0])


def test_percent_axis_has_no_reference_line_and_spans_0_to_100():
    fig = forest_plot(_three_studies())
    ax = _ax(fig)
    lo, hi = ax.get_xlim()
    assert lo <= 0 and hi >= 100 and hi - lo < 110
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "20", "40", "60", "80", "100"]
    assert ax.get_xlabel() == "Proportion (%)"
    assert _vertical_lines(ax) == []


def test_proportion_scale_can_be_switched_off():
    fig = forest_plot(_three_studies(), percent=False, xlabel="Response rate")
    assert _row_text(fig, "Gamma 2023") == "Gamma 2023 12/33 0.364 [0.204, 0.549] 54.5%"
    assert _ax(fig).get_xlabel() == "Response rate"


def test_footnote_names_the_method_of_the_result():
    texts = " ".join(_texts(forest_plot(_subgroups())))
    assert "Random effects, REML τ², Hartung-Knapp-Sidik-Jonkman CI" in texts
    assert "prediction interval t(k-1)" in texts
    texts = " ".join(_texts(forest_plot(_fit(_three_studies().studies, test="z", method="DL"))))
    assert "Random effects, DerSimonian-Laird τ², Wald z CI" in texts
    assert "prediction interval with normal quantile" in texts


def test_title_and_an_existing_axes_are_used():
    fig, ax = plt.subplots()
    try:
        out = forest_plot(_three_studies(), title="My title", ax=ax)
        assert out is fig
        assert "My title" in _texts(fig)
    finally:
        plt.close(fig)


def test_import_leaves_warnings_and_numpy_error_state_alone():
    """forestplot silences all warnings and numpy errors on import; forest.py must undo that."""
    code = (
        "import warnings, numpy as np; before = (np.geterr(), list(warnings.filters)); "
        "import metaanalysis.presentation.forest; after = (np.geterr(), list(warnings.filters)); "
        "assert before == after, (before, after)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


# --------------------------------------------------------------------------- errors
def test_empty_subgroup_result_is_an_error():
    with pytest.raises(ValueError, match="groups is empty"):
        forest_plot(SubgroupResult(groups={}, Qbetween=None, Qbetween_df=None, Qbetween_p=None))


def test_meta_result_without_studies_is_an_error():
    res = _fit(_three_studies().studies)
    bare = MetaResult(**{**{f: getattr(res, f) for f in res.__dataclass_fields__}, "studies": None})
    with pytest.raises(ValueError, match="no study rows"):
        forest_plot(bare)
    sub = SubgroupResult(
        groups={"cart": _three_studies(), "bsab": bare}, Qbetween=None, Qbetween_df=None, Qbetween_p=None
    )
    with pytest.raises(ValueError, match="group 'bsab' has no study rows"):
        forest_plot(sub)


@pytest.mark.parametrize(
    "change,message",
    [
        (dict(bt_pred=None), "bt_pred is None"),
        (dict(bt_ci_ub=0.35), "pooled estimate: estimate 0.4 lies outside"),
        (dict(bt_ci_ub=float("nan")), "ci_ub = nan is not a finite number"),
    ],
)
def test_inconsistent_pooled_numbers_are_errors(change, message):
    res = _three_studies()
    bad = MetaResult(**{**{f: getattr(res, f) for f in res.__dataclass_fields__}, **change})
    with pytest.raises(ValueError, match=re.escape(message)):
        forest_plot(bad)


def test_study_on_the_logit_scale_is_an_error_naming_the_study():
    s = _three_studies().studies
    rows = StudyRows(
        **{
            **{f: getattr(s, f) for f in s.__dataclass_fields__},
            "estimate": (0.0, 1.0, -0.56),
            "ci_lb": (0.0, 0.6915, -1.3),
        }
    )
    with pytest.raises(ValueError, match="study 'Gamma 2023'.*not a proportion"):
        forest_plot(_fit(rows))


def test_group_labels_may_be_a_whole_vocabulary():
    labels = {"cart": "CAR-T re-treatment", "bsab": "Bispecific antibody", "imid": "IMiD-based"}
    texts = _texts(forest_plot(_subgroups(), group_labels=labels))
    assert "CAR-T re-treatment" in texts and "IMiD-based" in texts
    assert "Bispecific antibody" not in texts and "cart" not in texts


def test_class_labels_must_differ_from_each_other_and_from_study_labels():
    with pytest.raises(ValueError, match="two groups share one label"):
        forest_plot(_subgroups(), group_labels={"cart": "Other", "imid": "other"})
    with pytest.raises(ValueError, match=r"study label\(s\) \['Smith 2024'\] equal a group label"):
        forest_plot(_subgroups(), group_labels={"imid": "Smith 2024"})


def test_k_must_match_the_study_rows():
    res = _three_studies()
    bad = MetaResult(**{**{f: getattr(res, f) for f in res.__dataclass_fields__}, "k": 4})
    with pytest.raises(ValueError, match="k = 4 but StudyRows has 3 studies"):
        forest_plot(bad)


def test_bad_percent_and_wrong_type_are_errors():
    bcg = _bcg_rr()
    with pytest.raises(ValueError, match="percent=True is only meaningful for proportion"):
        forest_plot(bcg, percent=True)
    with pytest.raises(TypeError, match=r"fit \(MetaResult, BayesResult\) or a SubgroupResult"):
        forest_plot(bcg.to_frame())


# --------------------------------------------------------------------------- real fits
def _bcg_rr():
    from metaanalysis.engine.rma import rma_effects

    return rma_effects(
        effect_sizes(case("bcg"), "RR"), method="REML", test="z", level=0.95, pi_method="metafor", transform=None
    )


def test_ratio_plot_of_a_real_fit_matches_metafor():
    ref = case("bcg")["fits"]["RR|REML|z"]
    fig = forest_plot(_bcg_rr())
    ax = _ax(fig)
    assert ax.get_xscale() == "log"
    assert _vertical_lines(ax) == [1.0]
    texts = _texts(fig)
    expected = f"Random-effects model {ref['bt_pred']:.2f} [{ref['bt_ci_lb']:.2f}, {ref['bt_ci_ub']:.2f}]"
    assert any(t.startswith(expected) for t in texts), expected
    assert f"Prediction interval [{ref['bt_pi_lb']:.2f}, {ref['bt_pi_ub']:.2f}]" in texts
    assert (
        f"Random effects (REML), heterogeneity: τ² = {ref['tau2']:.4f}; I² = {ref['I2']:.1f}%; "
        f"Q = {ref['QE']:.2f} (df = {ref['k'] - 1}), p < 0.001"
    ) in texts
    assert ax.get_xlabel() == "Risk ratio (log scale)"


def test_subgroup_plot_of_a_real_fit_matches_metafor():
    from metaanalysis.engine.subgroups import subgroups

    c = case("kearon1998_sensitivity_by_patients")
    d, e, ref = c["data"], c["effects"]["PLO"], c["subgroups"]
    sub = subgroups(
        e["yi"],
        e["vi"],
        d["group"],
        method="REML",
        test="z",
        measure="PLO",
        studies=d["study"],
        events=d["events"],
        n=d["n"],
    )
    fig = forest_plot(sub)
    texts = _texts(fig)
    for group in ("symptomatic", "asymptomatic"):
        g = ref["by_group"][group]
        assert group in texts
        mine = [i for i, x in enumerate(d["group"]) if x == group]
        totals = f"{sum(d['events'][i] for i in mine)}/{sum(d['n'][i] for i in mine)}"  # the group's totals
        assert (
            f"Random-effects model {totals} {100 * g['bt_pred']:.1f} [{100 * g['bt_ci_lb']:.1f}, "
            f"{100 * g['bt_ci_ub']:.1f}] 100.0%"
        ) in texts
        assert f"Prediction interval [{100 * g['bt_pi_lb']:.1f}, {100 * g['bt_pi_ub']:.1f}]" in texts
        assert (
            f"Random effects (REML), heterogeneity: τ² = {g['tau2']:.4f}; I² = {g['I2']:.1f}%; "
            f"Q = {g['QE']:.2f} (df = {g['k'] - 1}), p < 0.001"
        ) in texts
    assert f"Test for subgroup differences: Q = {ref['Qbetween_separate_tau2']:.2f}, df = 1, p < 0.001" in texts
    assert f"(meta-regression, common τ²: QM = {ref['QM_common_tau2']:.2f}, p < 0.001)" in texts
    # Borris et al. and Barnes et al. appear twice among the asymptomatic studies: both rows are drawn
    assert sum(t.startswith("Borris et al.") for t in texts) == 2
    assert len(_squares(_ax(fig))) == len(d["study"])


def test_glmm_plot_names_the_model_and_matches_metafor():
    from metaanalysis.engine.glmm import rma_glmm

    c = case("small_k_with_100_percent")
    d, ref = c["data"], c["glmm"]
    fig = forest_plot(rma_glmm(d["events"], d["n"], studies=d["study"], level=0.95, nAGQ=7))
    texts = _texts(fig)
    assert any(
        t.startswith(
            f"Random-effects model (GLMM) {sum(d['events'])}/{sum(d['n'])} {100 * ref['bt_pred']:.1f} "
            f"[{100 * ref['bt_ci_lb']:.1f}, {100 * ref['bt_ci_ub']:.1f}]"
        )
        for t in texts
    )
    assert f"Prediction interval [{100 * ref['bt_pi_lb']:.1f}, {100 * ref['bt_pi_ub']:.1f}]" in texts
    assert "A 11/11" in " ".join(texts)  # the 100 % study is shown
    assert "Binomial-normal GLMM (ML, nAGQ = 7), Wald CI" in " ".join(texts)


def test_mantel_haenszel_plot_matches_metafor():
    """metafor: rma.mh(ai, n1i, ci, n2i, measure = "OR") on the BCG trials (b, ci.lb, ci.ub, QE)."""
    import math

    from metaanalysis.engine.mantel_haenszel import rma_mh

    c = case("bcg")
    d, ref = c["data"], c["mh"]["OR"]
    texts = _texts(forest_plot(rma_mh(d["ai"], d["n1i"], d["ci"], d["n2i"], measure="OR", studies=d["study"])))
    expected = (
        f"Common-effect model (MH) {math.exp(ref['b']):.2f} [{math.exp(ref['ci_lb']):.2f}, "
        f"{math.exp(ref['ci_ub']):.2f}] 100.0%"
    )
    assert expected in texts
    het = next(t for t in texts if t.startswith("MH, heterogeneity"))
    assert f"Q = {ref['QE']:.2f} (df = 12)" in het and "τ²" not in het  # no tau^2 in a common-effect model
    assert "Common effect, Mantel-Haenszel." in " ".join(texts)


def test_groups_with_different_levels_are_an_error():
    res = _three_studies()
    other = MetaResult(**{**{f: getattr(res, f) for f in res.__dataclass_fields__}, "level": 0.9})
    sub = SubgroupResult(groups={"a": res, "b": other}, Qbetween=None, Qbetween_df=None, Qbetween_p=None)
    with pytest.raises(ValueError, match="different confidence levels"):
        forest_plot(sub)


def test_svg_is_byte_identical_when_an_unchanged_analysis_is_redrawn(tmp_path):
    """A living analysis re-runs often: unchanged results must not produce a diff in the figures."""
    first = save_forest(forest_plot(_subgroups(), title="ORR"), tmp_path / "a")[1].read_bytes()
    second = save_forest(forest_plot(_subgroups(), title="ORR"), tmp_path / "b")[1].read_bytes()
    assert first == second


def test_dollar_signs_in_labels_are_text_not_mathtext():
    s = _three_studies().studies
    rows = StudyRows(
        **{**{f: getattr(s, f) for f in s.__dataclass_fields__}, "study": ("Cost $5 and $10 study", "Beta", "Gamma")}
    )
    fig = forest_plot(_fit(rows), title="Costs in $ and $")
    texts = _texts(fig)
    assert "Costs in $ and $" in texts
    assert _row_text(fig, "Cost $5 and $10 study") == "Cost $5 and $10 study 0/9 0.0 [0.0, 33.6] 10.0%"
    drawn = [t for t in fig.findobj(Text) if "$" in t.get_text() and t.get_visible()]
    assert drawn and not any(t.get_parse_math() for t in drawn)


def test_a_second_model_is_drawn_beside_the_class_estimate():
    # The Bayesian binomial-normal estimate under the GLMM's (the alternative, drawn beneath), with
    # its credible interval in the table column, its own heterogeneity line, and the footnote
    # naming the model and its priors.
    from metaanalysis.engine.bayes_binomial import rma_bayes_binomial
    from metaanalysis.engine.glmm import rma_glmm

    events, n = [12, 40], [12, 47]
    glmm = rma_glmm(events, n, studies=("A 2025", "B 2024"), nAGQ=7)
    bayes = rma_bayes_binomial(events, n, studies=("A 2025", "B 2024"), tau_prior="halfnormal:0.5", shortest=False)
    sub = SubgroupResult(groups={"c": glmm}, Qbetween=None, Qbetween_df=None, Qbetween_p=None, notes=())
    fig = forest.forest_plot(sub, beside={"c": bayes})
    texts = _texts(fig)
    lb, ub, _, _ = bayes.reporting_interval()
    assert any(
        t.startswith(
            f"Bayesian binomial-normal model (alternative) {100 * bayes.estimate:.1f} [{100 * lb:.1f}, {100 * ub:.1f}]"
        )
        for t in texts
    )
    assert any("posterior median" in t and "half-normal" in t for t in texts)
    assert any(t.startswith(f"Bayesian binomial-normal model, heterogeneity: τ = {bayes.tau:.2f}") for t in texts)
    # without `beside`, no such row; a caller may name it (the run says which model is primary)
    assert not any(t.startswith("Bayesian") for t in _texts(forest.forest_plot(sub)))
    named = _texts(forest.forest_plot(sub, beside={"c": bayes}, beside_label="Bayesian model (primary, k ≤ 4)"))
    assert any(t.startswith("Bayesian model (primary, k ≤ 4) ") for t in named)


# --------------------------------------------------------------------------- any fit
def test_a_bayesian_fit_is_drawn_with_its_own_interval_heterogeneity_and_prediction():
    """forest_plot takes a BayesResult as it takes a MetaResult (one result interface): the pooled
    row is the posterior median and credible interval, the heterogeneity line the posterior tau
    with its credible interval, the bar the posterior predictive interval, all read from the fit."""
    from metaanalysis.engine.bayes import rma_bayes_effects
    from metaanalysis.engine.effects import escalc

    es = escalc("PLO", events=[33, 40, 29], n=[61, 92, 60], add=None, to="only0", studies=["A", "B", "C"])
    fit = rma_bayes_effects(es, tau_prior="halfnormal:1.0", level=0.95)
    fig = forest_plot(fit, title="Bayes")
    texts = " | ".join(_texts(fig))
    lb, ub = fit.interval()
    pi_lb, pi_ub = fit.prediction()
    assert f"{fit.estimate * 100:.1f} [{lb * 100:.1f}, {ub * 100:.1f}]" in texts
    assert f"[{pi_lb * 100:.1f}, {pi_ub * 100:.1f}]" in texts  # the posterior predictive interval
    assert "Bayesian normal-normal model" in texts
    assert (
        f"τ = {fit.tau:.2f} (posterior median; 95% credible interval {fit.tau_ci_lb:.2f} to {fit.tau_ci_ub:.2f})"
        in texts
    )
    assert "credible interval, prior half-normal(1) on τ" in texts  # the footnote names model and priors
    assert "I²" not in texts and "τ² =" not in texts  # no frequentist heterogeneity for this fit
