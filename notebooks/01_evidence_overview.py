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
# the sentence it was read from. The page shows the study records exactly as the run read them.

# %% tags=["parameters"]
RESULTS_DIR = "../results"
STUDIES_DIR = "../extracted_studies"

# %%
import pandas as pd
from IPython.display import display

from metaanalysis.evidence.studies import outcome_table
from metaanalysis.presentation.display import show_saved_figure
from metaanalysis.presentation.pages import open_review
from metaanalysis.presentation.prisma import counts_table, prisma_figure

pd.set_option("display.max_colwidth", 80)
review = open_review(RESULTS_DIR, STUDIES_DIR)
frame = outcome_table(list(review.records))

# %% [markdown]
# ## How the studies were found: PRISMA 2020 flow
#
# Drawn from the search log in `review/search_log/` (every query and every record screened, with
# the decision and the reason for each exclusion; `docs/search-log.md` says how each box is
# counted). The run saves the diagram as `results/figures/prisma.png` and its counts as
# `results/prisma.csv`.

# %%
if review.prisma is not None:
    show_saved_figure(RESULTS_DIR, "prisma", lambda: prisma_figure(review.prisma), alt="PRISMA 2020 flow diagram")
    display(counts_table(review.prisma))
else:
    print("No search log (review/search_log/) beside the studies folder: no flow diagram.")

# %% [markdown]
# ## Studies and their characteristics

# %%
review.studies

# %% [markdown]
# ## Provenance: printed or derived
#
# A derived count was computed by us from a printed percentage (or a sum/difference); the rule is
# kept next to it. A percentage printed without a denominator stays a percentage.

# %%
frame.groupby("study").agg(
    rows=("outcome", "size"), derived=("derived", "sum"), without_denominator=("n", lambda s: int(s.isna().sum()))
)

# %%
frame.loc[frame["derived"], ["study", "arm", "outcome", "events", "n", "percent", "derivation"]]

# %% [markdown]
# ## How response was read
#
# ORR and CR are pooled as best response (`best`, or `not_stated` when the paper does not say); a
# response read at a fixed day (`fixed_timepoint`, e.g. day 30) is another outcome and is listed
# below, not pooled with them. `selection` says whether the patients failed the prior therapy and
# then received this one (`after_failure`) or were only exposed to it at some time
# (`prior_exposure`, e.g. a trial's "prior CAR-T" subgroup).

# %%
frame.loc[
    frame["outcome_kind"] == "response",
    ["study", "arm", "subgroup", "outcome", "events", "n", "assessment", "timepoint_days", "selection"],
]

# %% [markdown]
# ## What cannot be pooled, and why
#
# For every declared analysis: the candidate rows that did not enter a model. Two arms of one
# study in the same class enter as one cohort (summed); the arms are listed here with that reason.

# %%
review.excluded_table()[
    ["analysis", "study", "arm", "subgroup", "regimen_class", "events", "n", "percent", "assessment", "reason"]
]
