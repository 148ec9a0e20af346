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
# # Safety by regimen class
#
# Cytokine release syndrome grade 3 or more, ICANS (any grade and grade 3 or more) and infections
# grade 3 or more, pooled by regimen class wherever a study reports them with a denominator, each
# class with its primary estimate as on the response page. A class with one study is shown, not
# pooled. A declared outcome that no study row can enter (no denominator, or a record superseded by
# a later report of the same cohort) is listed below the table with the reason.
# Then the two-arm comparison from the Tongji cohort (second CAR-T infusion vs other salvage) as
# odds ratios and risk differences.

# %% tags=["parameters"]
RESULTS_DIR = "../results"
STUDIES_DIR = "../extracted_studies"

# %%
from metaanalysis.presentation.pages import RESPONSE, comparisons_section, open_review, outcome_page

review = open_review(RESULTS_DIR, STUDIES_DIR)
outcome_page(review, RESULTS_DIR, RESPONSE, exclude=True)

# %% [markdown]
# ## Second CAR-T infusion vs other salvage (Tongji)
#
# Patients were not randomised; the comparison is confounded by indication and is shown as reported.

# %%
comparisons_section(review, RESULTS_DIR)
