# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-all
#     notebook_metadata_filter: -jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Response by regimen class
#
# Overall response (ORR) and complete response (CR), pooled by regimen class. Each class is shown
# with its primary estimate, as the run decided it by the rule in `analyses.yaml`: for two to four
# studies the Bayesian normal-normal model on the logit scale (half-normal(1) prior on τ; chosen by
# a coverage simulation, `docs/methods-small-k.md`), with its credible interval, posterior τ and
# posterior predictive interval; for five or more the binomial-normal GLMM (R meta's default for
# single-arm proportions). On the forest plots the GLMM is drawn beneath a Bayesian estimate as
# the named alternative, with its own heterogeneity. A class with one study is shown, not pooled.
# The logit and Freeman-Tukey inverse-variance models are on the sensitivity page.

# %% tags=["parameters"]
RESULTS_DIR = "../results"
STUDIES_DIR = "../extracted_studies"

# %%
from metaanalysis.presentation.pages import RESPONSE, open_review, outcome_page

review = open_review(RESULTS_DIR, STUDIES_DIR)
outcome_page(review, RESULTS_DIR, RESPONSE)
