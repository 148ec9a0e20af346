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
from metaanalysis.presentation.tables import by_method, by_variant, paper_table
from metaanalysis.review.analyses import load_plan

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
from IPython.display import Markdown, display

from metaanalysis.evidence.studies import load_records
from metaanalysis.evidence.vocabulary import regimen_labels
from metaanalysis.presentation.class_diagnostics import MIN_K, diagnose, egger_text
from metaanalysis.presentation.display import show_figure
from metaanalysis.presentation.labels import arm_labels, citation_labels
from metaanalysis.presentation.tables import analysis_title
from metaanalysis.review.pooling import pool

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
from metaanalysis.presentation.tables import analysis_title
from metaanalysis.review.pooling import pool

pooled_classes = []
for analysis in plan.analyses:
    fit = pool(frame, analysis, analysis.primary_method)
    pooled_classes.append((analysis, [c for c in fit.classes.values() if c.pooled]))
analysis, classes = max(pooled_classes, key=lambda a: sum(len(c.rows) for c in a[1]))
rows = [(c.regimen_class, r) for c in classes for _, r in c.rows.iterrows()]
es = escalc(
    "PLO",
    events=[int(r["events"]) for _, r in rows],
    n=[int(r["n"]) for _, r in rows],
    add=None,
    to="only0",
    studies=[r["label"] for _, r in rows],
)
X, levels = factor_design([cls for cls, _ in rows])
print(
    f"{analysis_title(analysis)}: {len(es.yi)} studies in "
    f"{len(levels)} classes ({', '.join(regimen_labels().get(c, c) for c in levels)})"
)
if len(levels) > 1:
    perm = permutest(es.yi, es.vi, mods=X[:, 1:], method="REML", test="z", iter=1000, seed=2026)
    print(
        f"test of class differences: QM = {perm.QM:.2f} on {len(levels) - 1} df; "
        f"permutation p = {perm.QMp:.3f} ({'all' if perm.exact else perm.iterations} label orders)"
    )

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
es_class = escalc(
    "PLO",
    events=sub["events"].astype(int).tolist(),
    n=sub["n"].astype(int).tolist(),
    add=None,
    to="only0",
    studies=list(sub["label"]),
)
subsets = gosh(es_class.yi, es_class.vi, method="REML", studies=list(sub["label"]))
biggest = sub.loc[sub["n"].idxmax(), "label"]
figure = save_gosh_plot(
    subsets,
    Path(RESULTS_DIR) / "figures" / f"gosh_{analysis.id}_{largest.regimen_class}.png",
    out=biggest,
    ylabel=f"pooled logit, {regimen_labels().get(largest.regimen_class, largest.regimen_class)}",
)
display(Image(filename=str(figure)))
