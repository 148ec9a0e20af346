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

# %% [markdown]
# ## Influence, small-study effects and the order of evidence
#
# For every class with at least three studies, from its inverse-variance fit on the logit scale
# (influence diagnostics are defined for such models, as in metafor): the fit printed as metafor
# prints it; leave-one-out (each study removed in turn, estimate back-transformed to percent);
# influence diagnostics as metafor's `influence()` (studentized deleted residuals, DFFITS, Cook's
# distance, covariance ratio, τ² and Q without the study, hat values; "influential" as metafor
# flags it); Egger's regression test and the funnel plot with its line; the Baujat plot; and the
# cumulative meta-analysis by publication year, the view a living review is read by. With fewer
# than ten studies, funnel plots and Egger's test cannot separate small-study effects from chance.

# %%
from metaanalysis.evidence.studies import load_records
from metaanalysis.evidence.vocabulary import regimen_labels
from metaanalysis.living.pooling import pool
from metaanalysis.presentation.class_diagnostics import MIN_K, diagnose, egger_text
from metaanalysis.presentation.display import show_figure
from metaanalysis.presentation.labels import arm_labels, citation_labels
from metaanalysis.presentation.tables import analysis_title
from IPython.display import Markdown

records = load_records(STUDIES_DIR)
citations, arms = citation_labels(records), arm_labels(records)
shown = 0
for analysis in plan.analyses:
    fit = pool(frame, analysis, "PLO")
    for cls, class_fit in fit.classes.items():
        title = f"{analysis_title(analysis)}, {regimen_labels().get(cls, cls).lower()}"
        d = diagnose(class_fit, analysis, title, citations, arms)
        if d is None:
            continue
        shown += 1
        display(Markdown(f"### {title}"))
        print(d.summary)
        display(paper_table(d.leave_one_out, caption="Leave-one-out"))
        display(paper_table(d.influence, caption="Influence diagnostics (metafor's influence())"))
        display(Markdown(egger_text(d.egger)))
        for name, figure in d.figures.items():
            show_figure(figure, alt=f"{name} plot: {title}")
if not shown:
    display(Markdown(f"No class has {MIN_K} or more studies yet."))
