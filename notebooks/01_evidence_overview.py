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
# # The evidence base
#
# Every study in `extracted_studies/`, what it reports, and which of its numbers can and cannot be
# pooled, with the reason. Every number here is read from a study record, and every record carries
# the sentence it was read from.

# %% tags=["parameters"]
STUDIES_DIR = "../extracted_studies"
RESULTS_DIR = "../results"

# %%
import pandas as pd
from metaanalysis.evidence.studies import load_records, outcome_table, study_table
from metaanalysis.living.analyses import load_plan
from metaanalysis.living.pooling import excluded_table

pd.set_option("display.max_colwidth", 80)
records = load_records(STUDIES_DIR)
frame = outcome_table(records)
plan = load_plan()

# %% [markdown]
# ## Studies and their characteristics

# %%
study_table(records)

# %% [markdown]
# ## Provenance: printed or derived
#
# A derived count was computed by us from a printed percentage (or a sum/difference); the rule is
# kept next to it. A percentage printed without a denominator stays a percentage.

# %%
frame.groupby("study").agg(rows=("outcome", "size"), derived=("derived", "sum"),
                           without_denominator=("n", lambda s: int(s.isna().sum())))

# %%
frame.loc[frame["derived"], ["study", "arm", "outcome", "events", "n", "percent", "derivation"]]

# %% [markdown]
# ## What cannot be pooled, and why
#
# For every declared analysis: the candidate rows that did not enter a model.

# %%
excluded_table(frame, plan.analyses)[["analysis", "study", "arm", "regimen_class", "events", "n", "percent", "reason"]]
