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
from metaanalysis.review.analyses import load_plan
from metaanalysis.review.pooling import excluded_table

pd.set_option("display.max_colwidth", 80)
records = load_records(STUDIES_DIR)
frame = outcome_table(records)
plan = load_plan()

# %% [markdown]
# ## How the studies were found: PRISMA 2020 flow
#
# Drawn from the search log in `review/search_log/` (every query and every record screened, with
# the decision and the reason for each exclusion; `docs/search-log.md` says how each box is
# counted). `metaanalysis run` saves the same diagram as `results/figures/prisma.png` and its
# counts as `results/prisma.csv`.

# %%
from IPython.display import Image, display

from metaanalysis.evidence.search_log import load_search_log, prisma_counts, review_beside
from metaanalysis.presentation.prisma import counts_table, png_bytes, prisma_figure

search_log = review_beside(STUDIES_DIR) / "search_log"
if search_log.is_dir():
    counts = prisma_counts(load_search_log(search_log)[0])
    display(Image(data=png_bytes(prisma_figure(counts))))
    display(counts_table(counts))
else:
    print("No search log (review/search_log/) beside the studies folder: no flow diagram.")

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
excluded_table(frame, plan.analyses)[
    ["analysis", "study", "arm", "subgroup", "regimen_class", "events", "n", "percent", "assessment", "reason"]
]
