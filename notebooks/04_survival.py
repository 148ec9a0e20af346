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
# # Survival after CAR-T failure, as the papers report it
#
# Papers report survival as a median (sometimes with a 95 % CI or a range), a landmark rate
# (e.g. alive at 12 months) or a hazard ratio. Each is pooled the way its form allows:
#
# - **Medians** across cohorts as the R package *metamedian* does: **MM**, the median of the cohort
#   medians, and **WM**, the same weighted by cohort size (McGrath et al. 2019, Stat Med 38:969),
#   each with the sign-test interval; **IV**, inverse-variance pooling (REML + Hartung-Knapp) of
#   medians printed with a CI, the CI read as a Wald interval (McGrath et al. 2025). A median
#   "not reached" has no value and cannot enter any of them: it is listed, and the pooled median
#   of its group is then biased towards shorter survival. With fewer than six cohorts no interval
#   reaches 95 % coverage: the note gives the coverage of the interval shown.
# - **Hazard ratios** on the log scale, SE from the printed CI, pooled by generic inverse variance
#   (REML + Hartung-Knapp) where two or more studies compare the same thing; otherwise shown alone.
# - **Landmark rates** on the complementary log-log scale, with the variance from the printed CI,
#   else (flagged) from the cohort size by the binomial approximation; never without either.
#
# Overlapping cohorts are never pooled together (the larger is kept); superseded reports are
# listed. Clocks differ between papers (from progression, from the next therapy): see `start`
# in `survival_medians.csv`.

# %% tags=["parameters"]
RESULTS_DIR = "../results"
STUDIES_DIR = "../extracted_studies"

# %%
import pandas as pd

from metaanalysis.presentation.display import show_saved_figure
from metaanalysis.presentation.pages import open_review
from metaanalysis.presentation.survival_figures import (
    Readers,
    hazard_ratio_forest,
    median_plot,
    readable_hazard_ratios,
    readable_landmarks,
    readable_medians,
)

pd.set_option("display.max_colwidth", 90)
review = open_review(RESULTS_DIR, STUDIES_DIR)
medians = review.medians
readers = Readers.of(review)  # studies as cited, classes by name


def show(analysis):
    """The plot the run drew of one median analysis (drawn in memory if its file is missing)."""
    part = medians[medians["analysis"] == analysis]
    show_saved_figure(RESULTS_DIR, f"survival_{analysis}", lambda: median_plot(part, part["label"].iloc[0], readers))


# %% [markdown]
# ## Median overall survival after CAR-T failure, all cohorts

# %%
whole = medians[medians["analysis"] == "os_median_after_cart"]
readable_medians(whole, readers)

# %%
show("os_median_after_cart")

# %% [markdown]
# ## By the time from CAR-T infusion to failure
#
# Each paper splits its cohort at its own time points; the strata below group those splits
# (declared in `analyses.yaml`). A split no stratum uses is listed with that reason.

# %%
timing = medians[medians["analysis"] == "os_median_after_cart_by_timing"]
readable_medians(timing, readers)

# %%
show("os_median_after_cart_by_timing")

# %% [markdown]
# ## Median PFS, and medians by salvage class

# %%
from IPython.display import display

from metaanalysis.presentation.display import markdown

for analysis in ("pfs_median_after_cart", "os_median_after_cart_by_class", "pfs_median_after_cart_by_class"):
    part = medians[medians["analysis"] == analysis]
    if len(part):
        display(markdown(f"### {part['label'].iloc[0]}"))
        display(readable_medians(part, readers))
        show(analysis)

# %% [markdown]
# ## Hazard ratios
#
# A hazard ratio below 1 favours the first-named group. Single studies are shown as printed.

# %%
readable_hazard_ratios(review.hazard_ratios, readers)

# %%
if review.hazard_ratio_fits:
    show_saved_figure(RESULTS_DIR, "survival_hazard_ratios", lambda: hazard_ratio_forest(review))

# %% [markdown]
# ## Landmark rates
#
# Rates printed without a CI or a cohort size are listed, not pooled: no variance is invented.

# %%
readable_landmarks(review.landmarks, readers)
