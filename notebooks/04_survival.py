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
# # Survival as reported
#
# Medians, landmark rates and hazard ratios exactly as the papers print them. Medians are not
# pooled (different clocks, different populations); landmark rates are pooled only where a
# confidence interval was printed.

# %% tags=["parameters"]
STUDIES_DIR = "../extracted_studies"
RESULTS_DIR = "../results"

# %%
import pandas as pd
from metaanalysis.evidence.studies import load_records, time_to_event_table
from metaanalysis.living.analyses import load_plan
from metaanalysis.living.landmarks import pool_landmarks
from metaanalysis.presentation.labels import citation_labels
from metaanalysis.presentation.tables import hazard_ratio_table, landmark_table, median_table, paper_table

pd.set_option("display.max_colwidth", 60)
records = load_records(STUDIES_DIR)
tte = time_to_event_table(records)
citations = citation_labels(records)

# %% [markdown]
# ## Medians (months)

# %%
paper_table(median_table(tte, citations), numeric=("Median (months)", "Arm N"))

# %% [markdown]
# ## Landmark rates

# %%
paper_table(landmark_table(tte, citations), numeric=("At (months)", "Arm N"))

# %%
pool_landmarks(tte, load_plan().landmarks)

# %% [markdown]
# ## Hazard ratios

# %%
paper_table(hazard_ratio_table(tte, citations))
