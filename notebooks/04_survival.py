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
STUDIES_DIR = "../extracted_studies"
RESULTS_DIR = "../results"

# %%
from pathlib import Path

import pandas as pd
from IPython.display import Image, Markdown, display

from metaanalysis.evidence.studies import load_records
from metaanalysis.presentation.survival_figures import (
    draw_survival,
    readable_hazard_ratios,
    readable_landmarks,
    readable_medians,
)
from metaanalysis.review.analyses import load_plan
from metaanalysis.review.survival import survival_tables

pd.set_option("display.max_colwidth", 90)
tables = survival_tables(load_records(STUDIES_DIR), load_plan())
figures = {p.stem: p for p in draw_survival(tables, Path(RESULTS_DIR) / "figures") if p.suffix == ".png"}
medians = tables["survival_medians.csv"]


def show(name):
    display(Image(filename=str(figures[name]), width=900))


# %% [markdown]
# ## Median overall survival after CAR-T failure, all cohorts

# %%
whole = medians[medians["analysis"] == "os_median_after_cart"]
readable_medians(whole)

# %%
show("survival_os_median_after_cart")

# %% [markdown]
# ## By the time from CAR-T infusion to failure
#
# Each paper splits its cohort at its own time points; the strata below group those splits
# (declared in `analyses.yaml`). A split no stratum uses is listed with that reason.

# %%
timing = medians[medians["analysis"] == "os_median_after_cart_by_timing"]
readable_medians(timing)

# %%
show("survival_os_median_after_cart_by_timing")

# %% [markdown]
# ## Median PFS, and medians by salvage class

# %%
for analysis in ("pfs_median_after_cart", "os_median_after_cart_by_class", "pfs_median_after_cart_by_class"):
    part = medians[medians["analysis"] == analysis]
    if len(part):
        display(Markdown(f"### {part['label'].iloc[0]}"))
        display(readable_medians(part))
        show(f"survival_{analysis}")

# %% [markdown]
# ## Hazard ratios
#
# A hazard ratio below 1 favours the first-named group. Single studies are shown as printed.

# %%
readable_hazard_ratios(tables["survival_hazard_ratios.csv"])

# %%
if "survival_hazard_ratios" in figures:
    show("survival_hazard_ratios")

# %% [markdown]
# ## Landmark rates
#
# Rates printed without a CI or a cohort size are listed, not pooled: no variance is invented.

# %%
readable_landmarks(tables["landmarks.csv"])
