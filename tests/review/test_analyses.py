"""The analyses declaration: adding an outcome is one entry; a bad entry is named, all at once."""

from __future__ import annotations

import pytest

from metaanalysis.evidence.vocabulary import outcomes
from metaanalysis.review.analyses import AnalysisDeclarationError, load_plan


def test_packaged_plan_declares_primary_defaults_and_known_outcomes():
    plan = load_plan()
    assert plan.analyses and plan.comparisons and plan.sensitivity and plan.landmarks
    known = outcomes()
    for a in plan.analyses:
        # 2 to 4 studies: the Bayesian binomial-normal model, normal-normal where a class holds a
        # 0 % or 100 % arm (docs/methods-small-k.md, rules 1 and 2); otherwise the GLMM, R meta's
        # default for single-arm proportions; one study: shown, not pooled
        assert [a.primary_for(k) for k in (1, 2, 4, 5, 30)] == [
            "not pooled (k = 1)",
            "BAYES-BN",
            "BAYES-BN",
            "GLMM",
            "GLMM",
        ]
        assert [a.primary_for(k, extreme_arm=True) for k in (2, 4, 5)] == ["BAYES-NN", "BAYES-NN", "GLMM"]
        assert a.inverse_variance.method == "REML" and a.inverse_variance.test == "knha"
        assert a.outcome in known, a.outcome
    for c in plan.comparisons:
        assert set(c.outcomes) <= set(known)


def test_adding_an_outcome_is_one_entry(tmp_path):
    path = tmp_path / "analyses.yaml"
    path.write_text(
        "defaults: {methods: [GLMM, PLO]}\nanalyses:\n  - {id: pr_after_cart, population: after_car_t, outcome: PR}\n"
    )
    plan = load_plan(path)
    assert [(a.id, a.outcome, a.methods) for a in plan.analyses] == [("pr_after_cart", "PR", ("GLMM", "PLO"))]


def test_every_declaration_problem_is_reported_at_once(tmp_path):
    path = tmp_path / "analyses.yaml"
    path.write_text(
        "analyses:\n"
        "  - {id: a, population: after_cart, outcome: ORR}\n"
        "  - {id: a, population: after_car_t, outcome: ORR, methds: [GLMM]}\n"
        "  - {id: b, population: after_car_t, outcome: CR, methods: [GLM]}\n"
        "comparisons:\n  - {id: c, study: s, experimental: x, control: y, outcomes: [ORR], measures: [HR]}\n"
    )
    with pytest.raises(AnalysisDeclarationError) as err:
        load_plan(path)
    text = str(err.value)
    for fragment in (
        "analyses[0].population",
        "analyses[1].id: duplicate",
        "analyses[1].methds: unknown key",
        "analyses[2].methods: unknown ['GLM']",
        "comparisons[0].measures: unknown ['HR']",
    ):
        assert fragment in text, fragment
    assert str(path) in text


def test_malformed_yaml_is_a_declaration_error_not_a_traceback(tmp_path):
    path = tmp_path / "analyses.yaml"
    path.write_text("analyses: [\n")
    with pytest.raises(AnalysisDeclarationError, match="not valid YAML"):
        load_plan(path)


def test_readable_table_formats_single_study_and_pooled_rows():
    import pandas as pd

    from metaanalysis.presentation.tables import readable

    pooled = pd.DataFrame(
        [
            dict(
                population="after_car_t",
                outcome="ORR",
                regimen_class="bispecific_antibody",
                method="GLMM",
                k=2,
                n_total=153,
                estimate=0.477,
                ci_lb=0.399,
                ci_ub=0.556,
                pi_lb=0.399,
                pi_ub=0.556,
                tau2=0.0,
                I2=0.0,
                studies="a;b",
                error=None,
            ),
            dict(
                population="after_car_t",
                outcome="CRS_grade3plus",
                regimen_class="chemotherapy",
                method="not pooled (k = 1)",
                k=1,
                n_total=27,
                estimate=0.111,
                ci_lb=0.0236,
                ci_ub=0.2916,
                pi_lb=None,
                pi_ub=None,
                tau2=None,
                I2=None,
                studies="c",
                error=None,
            ),
        ]
    )
    table = readable(pooled, {"a": "Alpha 2021", "b": "Beta 2022", "c": "Gamma 2023"})
    assert table["Estimate (95 % interval)"].tolist() == ["47.7 % (39.9-55.6)", "11.1 % (2.4-29.2)"]
    assert table["Regimen class"].tolist() == ["Bispecific antibody", "Chemotherapy"]
    assert table["Outcome"].tolist() == ["Overall response (CR + PR)", "CRS grade ≥ 3"]
    assert table["Population"].tolist() == ["After CAR-T failure", ""]  # printed once per block
    assert table["95 % prediction interval"].tolist() == ["39.9-55.6", "–"]
    assert table["Studies"].tolist() == ["Alpha 2021; Beta 2022", "Gamma 2023"]
    assert table["Method"].tolist() == ["GLMM", "single study, not pooled"]
    single = readable(pooled.iloc[1:])
    assert single["Heterogeneity"].tolist() == ["–"]
    assert table["Heterogeneity"].tolist() == ["τ² = 0.000; I² = 0 %", "–"]
    assert "NaN" not in single.to_string() and "<NA>" not in single.to_string()
