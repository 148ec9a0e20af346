#!/usr/bin/env python3
"""Set up and run the project on a machine that has only Python 3.11+ and pip.

    python3 make.py run    # virtual environment, then the main job (`metaanalysis run`)
    python3 make.py test   # virtual environment, then the whole test suite
    python3 make.py lab    # virtual environment, then JupyterLab on notebooks/

Standard library only: this file runs before anything is installed. The
virtual environment lives in `.venv/` and is reinstalled whenever
`pyproject.toml` changes (a stamp file holds the hash it was built from).
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".pyproject.sha256"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")


def _python() -> Path:
    return BIN / ("python.exe" if os.name == "nt" else "python")


def ensure_venv() -> None:
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text().strip() == digest and _python().exists():
        return
    if sys.version_info < (3, 11):
        sys.exit(f"Python 3.11 or newer is needed; this is {sys.version.split()[0]}")
    print(f"Setting up {VENV} ...", flush=True)
    venv.EnvBuilder(with_pip=True, clear=not STAMP.exists() and VENV.exists()).create(VENV)
    pip = [str(_python()), "-m", "pip", "install", "--disable-pip-version-check", "--quiet"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-e", f"{ROOT}[test]"], check=True)
    STAMP.write_text(digest)


def _exec(args: list[str]) -> int:
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONHASHSEED="0")
    # One BLAS thread unless the user asks otherwise: the engine's linear algebra is sums over
    # studies and p x p solves, where threads gain nothing, while two notebook kernels (or other
    # jobs) on a 2-core machine make a second BLAS thread per process fight for the cores
    # (small dense fits measured 8x slower with 2 threads; notes/profile-2026-11.md).
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(name, "1")
    return subprocess.run(args, cwd=ROOT, env=env).returncode


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"run", "test", "lab", "setup"}:
        print(__doc__)
        return 2
    ensure_venv()
    command, rest = argv[0], argv[1:]
    if command == "setup":
        return 0
    if command == "run":
        return _exec([str(BIN / "metaanalysis"), "run", *rest])
    if command == "test":
        return _exec([str(_python()), "-m", "pytest", *rest])
    return _exec([str(BIN / "jupyter"), "lab", "--notebook-dir", str(ROOT / "notebooks"), *rest])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
