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
# # Explore: one analysis under other choices
#
# Pick an analysis, a sensitivity variant, a pooling method, a τ² estimator (for the
# inverse-variance methods) or the scale of the half-normal prior on τ (for the Bayesian ones),
# and the table and forest plot redraw from the review the run computed. The study rows are the
# run's own; only a combination the run did not compute is fitted here, and the page then says
# that it shows an exploration, not the review's analysis.
#
# The controls work in JupyterLab (`python3 make.py lab`). The report's copy of this page shows,
# without controls, the review's primary analysis of the first outcome and the same analysis on
# the logit scale with the DerSimonian-Laird τ² estimator.

# %% tags=["parameters"]
RESULTS_DIR = "../results"
STUDIES_DIR = "../extracted_studies"

# %%
from metaanalysis.presentation.explore import Choice, explore, explorer, options, show
from metaanalysis.presentation.pages import open_review

review = open_review(RESULTS_DIR, STUDIES_DIR)
first = options(review)["analysis"][0]

# %% [markdown]
# ## The review's analysis, as the run computed it

# %%
show(explore(review, Choice(first)))

# %% [markdown]
# ## The same studies on the logit scale, DerSimonian-Laird τ²

# %%
show(explore(review, Choice(first, method="PLO", tau2="DL")))

# %% [markdown]
# ## Your choice (JupyterLab)

# %%
explorer(review, Choice(first))
