"""Living meta-analysis toolkit for salvage therapy in relapsed/refractory large B-cell lymphoma.

The package follows the pipeline a review runs through:

- `metaanalysis.evidence`: the study-record format, its validation and loading;
- `metaanalysis.engine`: effect sizes, tau^2 estimators, models and diagnostics (it sees
  only effect sizes, or counts for the GLMM, never study files);
- `metaanalysis.review`: the review rules: the declared analyses and which rows are pooled with which;
- `metaanalysis.pipeline`: the run that computes the review once, its staging and its history;
- `metaanalysis.presentation`: forest plots, reader-facing tables, the HTML report;
- `metaanalysis.cli`: the `metaanalysis` command.

The names most people need are importable from the top level, as in metafor or lifelines:
``from metaanalysis import load_studies, escalc, rma, rma_glmm, forest_plot``. They are loaded
on first use (PEP 562), so `import metaanalysis` stays cheap and `metaanalysis validate` never
imports matplotlib.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> module that defines it
_PUBLIC = {
    # evidence
    "load_studies": "metaanalysis.evidence.studies",
    "load_records": "metaanalysis.evidence.studies",
    "study_table": "metaanalysis.evidence.studies",
    "validate_directory": "metaanalysis.evidence.validation",
    "check_directory": "metaanalysis.evidence.validation",
    # engine
    "escalc": "metaanalysis.engine.effects",
    "EffectSizes": "metaanalysis.engine.effects",
    "log_ratio_from_ci": "metaanalysis.engine.effects",
    "rma": "metaanalysis.engine.rma",
    "rma_glmm": "metaanalysis.engine.glmm",
    "rma_bayes": "metaanalysis.engine.bayes",
    "rma_bayes_binomial": "metaanalysis.engine.bayes_binomial",
    "BayesResult": "metaanalysis.engine.bayes_result",
    "TauPrior": "metaanalysis.engine.bayes_priors",
    "MuPrior": "metaanalysis.engine.bayes_priors",
    "rma_mh": "metaanalysis.engine.mantel_haenszel",
    "rma_mods": "metaanalysis.engine.metareg",
    "subgroups": "metaanalysis.engine.subgroups",
    "leave1out": "metaanalysis.engine.diagnostics",
    "egger_test": "metaanalysis.engine.diagnostics",
    "permutest": "metaanalysis.engine.resampling",
    "gosh": "metaanalysis.engine.resampling",
    "influence": "metaanalysis.engine.influence",
    "cumulative": "metaanalysis.engine.influence",
    "estimate_tau2": "metaanalysis.engine.estimators",
    "Control": "metaanalysis.engine.estimators",
    "MetaResult": "metaanalysis.engine.results",
    "Fit": "metaanalysis.engine.results",
    "METHODS": "metaanalysis.engine.methods",
    "to_pymare": "metaanalysis.engine.pymare_dataset",
    "from_pymare": "metaanalysis.engine.pymare_dataset",
    "median_of_medians": "metaanalysis.engine.medians",
    # review rules and pipeline
    "load_plan": "metaanalysis.review.analyses",
    "compute_review": "metaanalysis.review.compute",
    "load_review": "metaanalysis.review.result_io",
    "Review": "metaanalysis.review.result",
    "run": "metaanalysis.pipeline.run",
    # presentation
    "forest_plot": "metaanalysis.presentation.forest",
    "save_forest": "metaanalysis.presentation.forest",
    "gosh_plot": "metaanalysis.presentation.gosh_plot",
    "save_gosh_plot": "metaanalysis.presentation.gosh_plot",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str):
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'metaanalysis' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
