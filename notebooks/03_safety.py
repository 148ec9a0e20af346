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
# Cytokine release syndrome grade 3 or more, ICANS, and infections grade 3 or more, pooled by
# regimen class (the primary method for the class's number of studies, as on the response page),
# with the two-arm comparison from the Tongji cohort (second CAR-T infusion vs
# other salvage) as odds ratios and risk differences.

# %% tags=["parameters"]
STUDIES_DIR = "../extracted_studies"
RESULTS_DIR = "../results"

# %%
from IPython.display import display

from metaanalysis.evidence.studies import load_records, outcome_table
from metaanalysis.presentation.display import show_saved_figure
from metaanalysis.presentation.figures import analysis_forest, comparison_forests
from metaanalysis.presentation.labels import arm_labels, citation_labels
from metaanalysis.presentation.summary import primary_rows
from metaanalysis.presentation.tables import comparison_table, paper_table, readable
from metaanalysis.review.analyses import load_plan
from metaanalysis.review.comparisons import compare_arms
from metaanalysis.review.pooling import pool, pooled_table

records = load_records(STUDIES_DIR)
frame = outcome_table(records)
citations, arms = citation_labels(records), arm_labels(records)
plan = load_plan()
safety = [a for a in plan.analyses if a.outcome not in ("ORR", "CR")]

# %%
paper_table(readable(primary_rows(pooled_table(frame, safety)), citations, arms), numeric=("k", "N"))

# %% [markdown]
# ## Forest plots
#
# The figures `metaanalysis run` saved in `results/figures/` (drawn here only when they are missing
# or older than the study records).


# %%
def draw(analysis):  # None where no study reports this outcome in this population yet
    return analysis_forest(pool(frame, analysis, analysis.primary_method), citations, arms)


for analysis in safety:
    show_saved_figure(RESULTS_DIR, analysis.id, lambda analysis=analysis: draw(analysis), inputs=[STUDIES_DIR])

# %% [markdown]
# ## Second CAR-T infusion vs other salvage (Tongji)
#
# Patients were not randomised; the comparison is confounded by indication and is shown as reported.

# %%
for comparison in plan.comparisons:
    result = compare_arms(frame, comparison)
    names = (arms[(comparison.study, comparison.experimental)], arms[(comparison.study, comparison.control)])
    display(paper_table(comparison_table(result.table, names), caption=result.title))
    for measure in result.by_measure:
        show_saved_figure(
            RESULTS_DIR,
            f"{result.id}_{measure}",
            inputs=[STUDIES_DIR],
            draw=lambda result=result, measure=measure: comparison_forests(result, citations, arms)[measure],
        )
