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
# # Sensitivity analyses
#
# 1. The model for proportions: binomial-normal GLMM vs inverse variance on the logit scale vs
#    Freeman-Tukey double arcsine (both REML with Hartung-Knapp-Sidik-Jonkman intervals).
# 2. The evidence: without derived counts; without treatment-course units; without mixed B-NHL
#    populations; without overlapping cohorts.

# %% tags=["parameters"]
STUDIES_DIR = "../extracted_studies"
RESULTS_DIR = "../results"

# %%
from metaanalysis.evidence.studies import load_studies
from metaanalysis.living.analyses import load_plan
from metaanalysis.presentation.tables import by_method, by_variant, paper_table

frame = load_studies(STUDIES_DIR)
plan = load_plan()

# %% [markdown]
# ## GLMM vs logit vs Freeman-Tukey
#
# Every class with at least two studies, estimate in percent with its 95% CI. With two or three
# studies the Hartung-Knapp-Sidik-Jonkman interval (t with k - 1 degrees of freedom) is very wide:
# that width is honest about how little two studies say about between-study variation.

# %%
paper_table(by_method(frame, plan.analyses), numeric=("k",))

# %% [markdown]
# ## Without derived counts, treatment-course units, mixed B-NHL, overlapping cohorts
#
# Primary method (GLMM). "no study left" means every study of that class was removed by the variant.

# %%
paper_table(by_variant(frame, plan))
