"""Execute the notebooks (stored as jupytext percent-format text, `notebooks/*.py`).

A cell tagged `parameters` holds each notebook's defaults (paths); we inject a cell after it
with the run's values (the papermill convention), so one notebook serves the real job and
the tests.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient
from traitlets.config import Config

KERNEL = "python3"
TIMEOUT_SECONDS = 600


# Kernels draw inline even when the parent runs with MPLBACKEND=Agg (make.py sets it for files).
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"


def kernel_environment() -> dict[str, str]:
    return dict(os.environ, MPLBACKEND=INLINE_BACKEND)


def kernel_config(socket_dir: str) -> Config:
    """IPC sockets: a local kernel needs no TCP port, and ipykernel warns about unencrypted TCP.
    The socket path must be absolute: the kernel runs in the notebook's folder, the client here."""
    config = Config()
    if os.name != "nt":
        config.KernelManager.transport = "ipc"
        config.KernelManager.ip = os.path.join(socket_dir, "kernel")
    return config


class NotebookError(RuntimeError):
    """A notebook failed to execute; the message names the notebook and the cell."""


def read_notebook(path: Path) -> nbformat.NotebookNode:
    """A notebook from its text form (`.py`, percent format) or an `.ipynb`."""
    return jupytext.read(path)


def inject_parameters(nb: nbformat.NotebookNode, parameters: dict) -> nbformat.NotebookNode:
    source = "# Parameters injected by `metaanalysis run`\n" + "\n".join(
        f"{name} = {value!r}" for name, value in parameters.items())
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]})
    index = next((i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])), -1)
    nb.cells.insert(index + 1, cell)
    return nb


def execute_notebook(path: Path, parameters: dict, *, cwd: Path) -> nbformat.NotebookNode:
    nb = inject_parameters(read_notebook(path), parameters)
    with tempfile.TemporaryDirectory(prefix="nbk") as socket_dir:
        client = NotebookClient(nb, kernel_name=KERNEL, timeout=TIMEOUT_SECONDS, allow_errors=False,
                                resources={"metadata": {"path": str(cwd)}}, config=kernel_config(socket_dir))
        try:
            client.execute(env=kernel_environment())
        except Exception as exc:
            raise NotebookError(f"{path.name}: {type(exc).__name__}: {exc}") from exc
    return nb
