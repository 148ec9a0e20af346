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
# # Walkthrough: adding a new study
#
# A living meta-analysis is re-run whenever a study appears. Here we copy part of the evidence base
# (the bispecific-antibody and polatuzumab cohorts after CAR-T failure, for overall and complete
# response) to a scratch folder, run the pipeline on it, add a (fictional, clearly labelled) study
# record, run it again, and read the change report: which studies were added, and which pooled
# estimates moved and by how much. The full evidence base runs the same way, only longer.
#
# For a real study: `metaanalysis new-study ID` writes a commented template; fill it in next to the
# paper, run `metaanalysis validate`, then `python3 make.py run`.

# %% tags=["parameters"]
RESULTS_DIR = "../results"
STUDIES_DIR = "../extracted_studies"
SCRATCH_DIR = None  # where the scratch copy goes; None: the system's temporary folder

# %%
import shutil
import tempfile
from pathlib import Path

from metaanalysis.cli.new_study import write_template
from metaanalysis.pipeline.demo import small_copy
from metaanalysis.pipeline.run import run
from metaanalysis.presentation.pages import open_review

# Removed at the end of the notebook, and when the kernel exits should a cell fail first
# (`metaanalysis run` sets SCRATCH_DIR inside its staging folder, which goes whatever stops it).
scratch_dir = tempfile.TemporaryDirectory(prefix="metaanalysis-walkthrough-", dir=SCRATCH_DIR)
scratch = Path(scratch_dir.name)
studies, analyses = small_copy(open_review(RESULTS_DIR), scratch)
# The baseline: the small copy pooled into the scratch folder, so that the change report below
# compares against a complete run.
baseline = run(studies, scratch / "results", analyses, log=lambda *a: None)  # not displayed: a dict of paths

# %% [markdown]
# The template a new study starts from:

# %%
template = write_template("template_preview", scratch)
print(template.read_text())

# %% [markdown]
# Now a filled-in record (a fictional cohort: it exists only in this walkthrough).

# %%
shutil.copy("example_new_study.yaml", studies / "example_new_study.yaml")
print((studies / "example_new_study.yaml").read_text())
second = run(studies, scratch / "results", analyses, log=lambda *a: None)
print(second["report"].text())

# %%
scratch_dir.cleanup()  # the scratch copy of the evidence base is not kept
