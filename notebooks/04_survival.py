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
from metaanalysis.evidence.studies import load_time_to_event
from metaanalysis.living.analyses import load_plan
from metaanalysis.living.landmarks import pool_landmarks

pd.set_option("display.max_colwidth", 60)
tte = load_time_to_event(STUDIES_DIR)

# %% [markdown]
# ## Medians (months)

# %%
tte[tte["kind"] == "median"]

# %% [markdown]
# ## Landmark rates

# %%
tte[tte["kind"] == "landmark"]

# %%
pool_landmarks(tte, load_plan().landmarks)

# %% [markdown]
# ## Hazard ratios

# %%
tte[tte["kind"] == "hazard_ratio"]
