"""The parallel notebook executor (presentation/notebooks.py): notebooks sharing a kernel do
not see each other's variables, every notebook comes back in the order given, and a failing
notebook is named."""

from __future__ import annotations

from pathlib import Path

import pytest

from metaanalysis.presentation.notebooks import NotebookError, execute_notebooks

HEADER = (
    "# ---\n# jupyter:\n#   kernelspec:\n#     display_name: Python 3\n#     language: python\n"
    "#     name: python3\n# ---\n\n"
)


def _notebook(folder: Path, name: str, code: str) -> Path:
    path = folder / f"{name}.py"
    path.write_text(HEADER + '# %% tags=["parameters"]\nX = 0\n\n# %%\n' + code + "\n", encoding="utf-8")
    return path


def test_one_kernel_runs_several_notebooks_without_leaking_names(tmp_path):
    first = _notebook(tmp_path, "a", "leaked = 41\nprint(X + 1)")
    second = _notebook(tmp_path, "b", "print('leaked' in globals(), X)")
    done = execute_notebooks([first, second], {"X": 7}, cwd=tmp_path, workers=1)
    out = [nb.cells[-1].outputs[0]["text"].strip() for nb in done]
    assert out == ["8", "False 7"]  # the injected parameter, and no name from the first notebook


def test_a_failing_notebook_is_named(tmp_path):
    good = _notebook(tmp_path, "good", "print(1)")
    bad = _notebook(tmp_path, "bad", "raise ValueError('broken on purpose')")
    with pytest.raises(NotebookError, match=r"(?s)bad\.py.*broken on purpose"):
        execute_notebooks([good, bad], {}, cwd=tmp_path, workers=2)
