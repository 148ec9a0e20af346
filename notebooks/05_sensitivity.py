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
# 1. The model for proportions: Bayesian normal-normal (the primary model for two to four studies)
#    vs binomial-normal GLMM vs inverse variance on the logit scale vs Freeman-Tukey double arcsine
#    (both REML with Hartung-Knapp-Sidik-Jonkman intervals).
# 2. The evidence: without derived counts, treatment-course units, mixed B-NHL populations,
#    overlapping cohorts, prior-exposure cohorts, low-confidence records or congress abstracts.
# 3. Influence, small-study effects, the order of evidence, and whether the classes really differ.
#
# Every number on this page was computed once, by the run; the page reads it.

# %% tags=["parameters"]
RESULTS_DIR = "../results"
STUDIES_DIR = "../extracted_studies"

# %%
from metaanalysis.presentation.pages import diagnostics_section, open_review, resampling_section
from metaanalysis.presentation.style import paper_table
from metaanalysis.presentation.tables import by_method, by_variant

review = open_review(RESULTS_DIR, STUDIES_DIR)

# %% [markdown]
# ## One class, every model
#
# Every class with at least two studies, estimate in percent with its 95 % interval (credible
# interval for the Bayesian model), under every model fitted; "(primary)" marks the estimate each
# page leads with. With two or three studies the Hartung-Knapp-Sidik-Jonkman interval (t with
# k - 1 degrees of freedom) is very wide: that width is honest about how little two studies say
# about between-study variation. The Freeman-Tukey back-transformation with studies of different
# sizes can shift the estimate and give intervals reaching 0 or 100 % (Schwarzer et al. 2019, Res
# Synth Methods 10:476): read that column as a check, not as an estimate.

# %%
paper_table(by_method(review), numeric=("k",))

# %% [markdown]
# ## The same classes under each sensitivity variant
#
# Each cell is the class's primary estimate in that variant (the method its number of studies
# calls for there, named in the cell). "no study left" means the variant removed every study of
# that class.

# %%
paper_table(by_variant(review))

# %% [markdown]
# ## Influence, small-study effects and the order of evidence
#
# For every class with at least three studies, from its inverse-variance fit on the logit scale
# (influence diagnostics are defined for such models, as in metafor): the fit printed as metafor
# prints it; leave-one-out (each study removed in turn, estimate back-transformed to percent);
# influence diagnostics as metafor's `influence()`; Egger's regression test and the funnel plot
# with its line; the Baujat plot; and the cumulative meta-analysis by publication year, the view
# a living review is read by. With fewer than ten studies, funnel plots and Egger's test cannot
# separate small-study effects from chance.

# %%
diagnostics_section(review)

# %% [markdown]
# ## Do the regimen classes really differ? Two tests, side by side
#
# With few studies per class, the chi-square p-value of the test for subgroup differences leans on
# large-sample theory. The permutation test (metafor's `permutest()`) asks instead how often the
# classes would look as different as they do if the class labels were shuffled among the studies:
# a meta-regression of the study logits on the class (REML), refitted for 1,000 random orders of
# the labels (the first being the real one). Shown for the analysis with the most pooled studies;
# the forest plot of every analysis prints both. Below: a GOSH plot (Olkin, Dahabreh & Trikalinos
# 2012; metafor's `gosh()`) of that analysis's largest class, every subset of its studies refitted,
# the subsets holding its largest study in red: one cloud means no single study decides the result.

# %%
resampling_section(review)
