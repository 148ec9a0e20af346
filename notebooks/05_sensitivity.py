# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-all
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
from metaanalysis.presentation.tables import by_method, by_variant

frame = load_studies(STUDIES_DIR)
plan = load_plan()

# %% [markdown]
# ## GLMM vs logit vs Freeman-Tukey
#
# Every class with at least two studies, estimate in percent with its 95% CI. With two or three
# studies the Hartung-Knapp-Sidik-Jonkman interval (t with k - 1 degrees of freedom) is very wide:
# that width is honest about how little two studies say about between-study variation.

# %%
by_method(frame, plan.analyses)

# %% [markdown]
# ## Without derived counts, treatment-course units, mixed B-NHL, overlapping cohorts
#
# Primary method (GLMM). "no study left" means every study of that class was removed by the variant.

# %%
by_variant(frame, plan)

# %% [markdown]
# ## Do the regimen classes really differ? A permutation test
#
# With few studies per class, the chi-square p-value of the test for subgroup differences leans on
# large-sample theory. The permutation test (metafor's `permutest()`) asks instead how often the
# classes would look as different as they do if the class labels were shuffled among the studies:
# a meta-regression of the study logits on the class (REML), refitted for 1,000 random orders of
# the labels (the first being the real one). Shown for the analysis with the most pooled studies.

# %%
from pathlib import Path
from IPython.display import Image, display
from metaanalysis import escalc, gosh, permutest, save_gosh_plot
from metaanalysis.engine.metareg import factor_design
from metaanalysis.evidence.vocabulary import regimen_labels
from metaanalysis.living.pooling import pool
from metaanalysis.presentation.tables import analysis_title

pooled_classes = []
for analysis in plan.analyses:
    fit = pool(frame, analysis, analysis.primary_method)
    pooled_classes.append((analysis, [c for c in fit.classes.values() if c.pooled]))
analysis, classes = max(pooled_classes, key=lambda a: sum(len(c.rows) for c in a[1]))
rows = [(c.regimen_class, r) for c in classes for _, r in c.rows.iterrows()]
es = escalc("PLO", events=[int(r["events"]) for _, r in rows], n=[int(r["n"]) for _, r in rows],
            add=None, to="only0", studies=[r["label"] for _, r in rows])
X, levels = factor_design([cls for cls, _ in rows])
print(f"{analysis_title(analysis)}: {len(es.yi)} studies in "
      f"{len(levels)} classes ({', '.join(regimen_labels().get(l, l) for l in levels)})")
if len(levels) > 1:
    perm = permutest(es.yi, es.vi, mods=X[:, 1:], method="REML", test="z", iter=1000, seed=2026)
    print(f"test of class differences: QM = {perm.QM:.2f} on {len(levels) - 1} df; "
          f"permutation p = {perm.QMp:.3f} ({'all' if perm.exact else perm.iterations} label orders)")

# %% [markdown]
# ## GOSH: is one study behind the pooled estimate?
#
# A GOSH plot (Olkin, Dahabreh & Trikalinos 2012; metafor's `gosh()`) refits the model to every
# subset of the studies of a class and plots each subset's pooled logit against its I². A single
# cloud means no study decides the result; separate clouds point to the study that splits them,
# coloured here: the class's largest study. Shown for the class with the most studies.

# %%
largest = max(classes, key=lambda c: len(c.rows))
sub = largest.rows
es_class = escalc("PLO", events=sub["events"].astype(int).tolist(), n=sub["n"].astype(int).tolist(),
                  add=None, to="only0", studies=list(sub["label"]))
subsets = gosh(es_class.yi, es_class.vi, method="REML", studies=list(sub["label"]))
biggest = sub.loc[sub["n"].idxmax(), "label"]
figure = save_gosh_plot(subsets, Path(RESULTS_DIR) / "figures" / f"gosh_{analysis.id}_{largest.regimen_class}.png",
                        out=biggest, ylabel=f"pooled logit, {regimen_labels().get(largest.regimen_class, largest.regimen_class)}")
display(Image(filename=str(figure)))
