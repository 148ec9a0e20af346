"""Execute the notebooks (stored as jupytext percent-format text, `notebooks/*.py`).

A cell tagged `parameters` holds each notebook's defaults (paths); we inject a cell after it
with the run's values (the papermill convention), so one notebook serves the real job and
the tests.

Speed (issue 11): starting a kernel and importing pandas, matplotlib and this package cost
about 3 s per notebook, more than most notebooks compute. `execute_notebooks` therefore
starts one kernel per worker (one worker per core), imports the package once in each, and
runs its share of the notebooks there one after another, clearing the namespace
(`%reset -f`), closing figures and returning to the working directory in between, so a
notebook sees what a fresh kernel would show it except the already imported modules.
The kernels run with one BLAS thread each: the notebooks' arrays are small, and with
two kernels on two cores extra BLAS threads only compete for them.
The Jupyter libraries are imported on first use: `metaanalysis run --skip-notebooks`
does not pay for them (nbformat pulls in jsonschema, about 2 s).
"""

from __future__ import annotations

import asyncio
import os
import signal
import tempfile
import threading
from pathlib import Path

KERNEL = "python3"
TIMEOUT_SECONDS = 600
# imported once per kernel before its first notebook
WARM_IMPORTS = (
    "import pandas, matplotlib, matplotlib.pyplot\nimport metaanalysis.pipeline.run, metaanalysis.presentation.tables\n"
)
_BETWEEN = (
    "%reset -f\nimport os as _os, matplotlib.pyplot as _plt\n_plt.close('all'); _os.chdir({cwd!r})\ndel _os, _plt\n"
)
_ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
# Kernels draw inline even when the parent runs with MPLBACKEND=Agg (make.py sets it for files).
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"


def kernel_config(socket_dir: str):
    """IPC sockets: a local kernel needs no TCP port, and ipykernel warns about unencrypted TCP.
    The socket path must be absolute: the kernel runs in the notebook's folder, the client here."""
    from traitlets.config import Config

    config = Config()
    if os.name != "nt":
        config.KernelManager.transport = "ipc"
        config.KernelManager.ip = os.path.join(socket_dir, "kernel")
    return config


class NotebookError(RuntimeError):
    """A notebook failed to execute; the message names the notebook and the cell."""


def read_notebook(path: Path):
    """A notebook from its text form (`.py`, percent format) or an `.ipynb`."""
    import jupytext

    return jupytext.read(path)


def inject_parameters(nb, parameters: dict):
    import nbformat

    source = "# Parameters injected by `metaanalysis run`\n" + "\n".join(
        f"{name} = {value!r}" for name, value in parameters.items()
    )
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]})
    index = next((i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])), -1)
    nb.cells.insert(index + 1, cell)
    return nb


def _client(nb, cwd: Path, km=None, socket_dir: str | None = None):
    from nbclient import NotebookClient

    config = kernel_config(socket_dir) if socket_dir else None
    return NotebookClient(
        nb,
        km=km,
        kernel_name=KERNEL,
        timeout=TIMEOUT_SECONDS,
        allow_errors=False,
        resources={"metadata": {"path": str(cwd)}},
        config=config,
    )


def execute_notebook(path: Path, parameters: dict, *, cwd: Path):
    """One notebook in a fresh kernel of its own."""
    nb = inject_parameters(read_notebook(path), parameters)
    with tempfile.TemporaryDirectory(prefix="nbk") as socket_dir:
        try:
            _client(nb, cwd, socket_dir=socket_dir).execute(env=kernel_environment())
        except Exception as exc:
            raise NotebookError(f"{path.name}: {type(exc).__name__}: {exc}") from exc
    return nb


def kernel_environment() -> dict:
    return {**_ONE_THREAD, **os.environ, "MPLBACKEND": INLINE_BACKEND}  # a user's thread setting wins


async def _run_code(kc, code: str, what: str) -> None:
    reply = await kc.execute_interactive(
        code, timeout=TIMEOUT_SECONDS, output_hook=lambda msg: None, store_history=False
    )
    content = reply["content"]
    if content.get("status") != "ok":
        raise NotebookError(f"{what}: {content.get('ename')}: {content.get('evalue')}")


async def _worker(queue: asyncio.Queue, done: dict, parameters: dict, cwd: Path, on_done=None) -> None:
    from jupyter_client.manager import AsyncKernelManager

    socket_dir = tempfile.TemporaryDirectory(prefix="nbk")
    km = AsyncKernelManager(kernel_name=KERNEL, config=kernel_config(socket_dir.name))
    await km.start_kernel(cwd=str(cwd), env=kernel_environment())
    kc = km.client()
    kc.start_channels()
    try:
        await kc.wait_for_ready(timeout=TIMEOUT_SECONDS)
        await _run_code(kc, WARM_IMPORTS, "warm-up imports")
        while True:
            try:
                path = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            await _run_code(kc, _BETWEEN.format(cwd=str(cwd)), f"{path.name}: resetting the kernel")
            nb = inject_parameters(read_notebook(path), parameters)
            client = _client(nb, cwd, km=km)
            client.kc = kc
            try:
                await client.async_execute(cleanup_kc=False)
            except Exception as exc:
                raise NotebookError(f"{path.name}: {type(exc).__name__}: {exc}") from exc
            done[path] = nb
            if on_done is not None:
                on_done(path)
    finally:
        kc.stop_channels()
        try:
            await km.shutdown_kernel(now=True)
        except Exception:  # noqa: BLE001 - already stopped (e.g. by nbclient's signal handler)
            pass
        socket_dir.cleanup()


async def _execute_all(paths: list[Path], parameters: dict, cwd: Path, workers: int, on_done=None) -> dict:
    queue: asyncio.Queue = asyncio.Queue()
    for p in paths:
        queue.put_nowait(p)
    done: dict = {}
    tasks = [asyncio.create_task(_worker(queue, done, parameters, cwd, on_done)) for _ in range(workers)]
    try:
        await asyncio.gather(*tasks)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return done


def execute_notebooks(
    paths: list[Path], parameters: dict, *, cwd: Path, workers: int | None = None, on_done=None
) -> list:
    """Execute every notebook (see the module docstring); the executed notebooks in the
    order given. `workers`: kernels running at once (default: one per CPU, at most one per
    notebook). `on_done(path)` is called as each notebook finishes (progress)."""
    paths = list(paths)
    if not paths:
        return []
    # the walkthrough notebook runs the pipeline on a small copy: the longest, so it starts first
    queue_order = sorted(paths, key=lambda p: "pipeline.run import" not in p.read_text(encoding="utf-8"))
    n = workers or min(len(paths), os.cpu_count() or 1)
    coroutine = _execute_all(queue_order, parameters, cwd, max(1, n), on_done)
    main_thread = threading.current_thread() is threading.main_thread()
    if not main_thread or not hasattr(asyncio, "SelectorEventLoop") or os.name != "posix":
        done = asyncio.run(coroutine)  # no signal handlers can be set here: nbclient's own try and give up
    else:
        done = _run_holding_signals(coroutine)
    return [done[p] for p in paths]


_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _SignalsOwnedLoop(asyncio.SelectorEventLoop):
    """The event loop of the notebook run, whose SIGINT/SIGTERM handlers nothing else replaces.

    nbclient sets its own handlers on the running loop for every notebook and answers a signal by
    shutting its kernel down; the notebook then fails with an unrelated error and no one can tell
    which signal came (SIGTERM looked like Ctrl-C). nbclient treats a RuntimeError from
    `add_signal_handler` as "not the main thread" and goes on without, so that is what it gets."""

    owned = False

    def add_signal_handler(self, sig, callback, *args):
        if self.owned and sig in _SIGNALS:
            raise RuntimeError("SIGINT and SIGTERM are handled by metaanalysis while notebooks run")
        return super().add_signal_handler(sig, callback, *args)

    def remove_signal_handler(self, sig):
        if self.owned and sig in _SIGNALS:
            return False
        return super().remove_signal_handler(sig)


def _run_holding_signals(coroutine) -> dict:
    """Run the notebooks; on SIGINT or SIGTERM cancel them (each worker shuts its kernel down), put
    the caller's handlers back and raise the same signal again, so the caller answers it as it
    answers that signal anywhere else (`metaanalysis run`: one line, exit 130 or 143)."""
    handlers = {s: signal.getsignal(s) for s in _SIGNALS}
    received: list[int] = []
    loop = _SignalsOwnedLoop()
    task = loop.create_task(coroutine)

    def stop(sig: int) -> None:
        received.append(sig)
        task.cancel()

    for sig in _SIGNALS:
        loop.add_signal_handler(sig, stop, sig)
    loop.owned = True
    done: dict = {}
    try:
        asyncio.set_event_loop(loop)
        done = loop.run_until_complete(task)
    except (asyncio.CancelledError, Exception):
        if not received:
            raise
    finally:
        loop.owned = False
        for sig in _SIGNALS:
            loop.remove_signal_handler(sig)
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()
            for sig, handler in handlers.items():
                if handler is not None:
                    signal.signal(sig, handler)
    if not received:
        return done
    # Whatever the notebooks raised meanwhile (a kernel interrupted by the same Ctrl-C) is a
    # consequence of the signal, not a notebook error.
    signal.raise_signal(received[0])
    raise NotebookError(f"notebook execution stopped by {signal.Signals(received[0]).name}")


__all__ = [
    "NotebookError",
    "read_notebook",
    "inject_parameters",
    "execute_notebook",
    "execute_notebooks",
    "kernel_config",
    "kernel_environment",
]
