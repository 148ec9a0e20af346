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
# Overall response (ORR) and complete response (CR), pooled by regimen class. The table shows each
# class's primary estimate: for two to four studies the Bayesian normal-normal model on the logit
# scale (half-normal(1) prior on τ; chosen by a coverage simulation, `docs/methods-small-k.md`),
# for five or more the binomial-normal GLMM (R meta's default for single-arm proportions). The
# forest plots show the GLMM with the Bayesian estimate beneath it. A class with one study is
# shown, not pooled. The logit and Freeman-Tukey inverse-variance models are in the sensitivity
# notebook.

# %% tags=["parameters"]
STUDIES_DIR = "../extracted_studies"
RESULTS_DIR = "../results"

# %%
from metaanalysis.evidence.studies import load_records, outcome_table
from metaanalysis.presentation.display import show_saved_figure
from metaanalysis.presentation.figures import analysis_forest
from metaanalysis.presentation.labels import arm_labels, citation_labels
from metaanalysis.presentation.summary import primary_rows
from metaanalysis.presentation.tables import paper_table, readable
from metaanalysis.review.analyses import load_plan
from metaanalysis.review.pooling import pool, pooled_table

records = load_records(STUDIES_DIR)
frame = outcome_table(records)
citations, arms = citation_labels(records), arm_labels(records)
plan = load_plan()
response = [a for a in plan.analyses if a.outcome in ("ORR", "CR")]

# %%
paper_table(readable(primary_rows(pooled_table(frame, response)), citations, arms), numeric=("k", "N"))

# %% [markdown]
# ## Forest plots
#
# The figures `metaanalysis run` saved in `results/figures/` (drawn here only when they are missing
# or older than the study records).


# %%
def draw(analysis):  # None where no study reports this outcome in this population yet
    return analysis_forest(pool(frame, analysis, analysis.primary_method), citations, arms)


for analysis in response:
    show_saved_figure(RESULTS_DIR, analysis.id, lambda analysis=analysis: draw(analysis), inputs=[STUDIES_DIR])
