#!/usr/bin/env python3
"""Set up and run the project on a machine that has only Python 3.11+ and pip.

    python3 make.py run          # virtual environment, then the main job (`metaanalysis run`)
    python3 make.py test         # virtual environment (and chromium, as root), then lint, format
                                 # and type checks, then the whole test suite on all cores
    python3 make.py test-lowest  # a second environment with the lowest versions pyproject.toml
                                 # accepts, then the engine, evidence and reading tests
    python3 make.py lab          # virtual environment, then JupyterLab on notebooks/

Standard library only: this file runs before anything is installed. The
virtual environment lives in `.venv/` and is reinstalled whenever
`pyproject.toml` changes (a stamp file holds the hash it was built from).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
LOWEST = ROOT / ".venv-lowest"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")

# What `test-lowest` runs: the layers whose numbers and error messages depend on numpy, scipy,
# pandas, statsmodels and PyYAML (the presentation layer is exercised on the newest versions).
LOWEST_TESTS = ["tests/engine", "tests/evidence", "tests/review"]


def _bin(env: Path) -> Path:
    return env / ("Scripts" if os.name == "nt" else "bin")


def _python(env: Path = VENV) -> Path:
    return _bin(env) / ("python.exe" if os.name == "nt" else "python")


def lowest_constraints() -> str:
    """`name==version` for every `name>=version` in pyproject.toml's dependencies and test extra:
    the lowest versions we claim, so that a claim nobody tests cannot stand in the file."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    block = text[text.index("dependencies = [") : text.index("[project.scripts]")]
    pins = re.findall(r'"([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?>=([0-9][^",;\s]*)', block)
    return "".join(f"{name}=={version}\n" for name, version in pins)


def ensure_venv(env: Path = VENV, constraints: str | None = None) -> None:
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    stamp = env / ".pyproject.sha256"
    if stamp.exists() and stamp.read_text().strip() == digest and _python(env).exists():
        return
    if sys.version_info < (3, 11):  # noqa: UP036 - this file runs under whatever python3 the user has
        sys.exit(f"Python 3.11 or newer is needed; this is {sys.version.split()[0]}")
    print(f"Setting up {env} ...", flush=True)
    venv.EnvBuilder(with_pip=True, clear=env.exists()).create(env)
    pip = [str(_python(env)), "-m", "pip", "install", "--disable-pip-version-check", "--quiet"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    if constraints is None:
        subprocess.run([*pip, "-e", f"{ROOT}[test]"], check=True)
    else:
        (env / "constraints.txt").write_text(constraints, encoding="utf-8")
        subprocess.run([*pip, "-c", str(env / "constraints.txt"), "-e", f"{ROOT}[test]"], check=True)
    stamp.write_text(digest)


CHROMIUM = Path("/usr/bin/chromium")


def ensure_chromium() -> None:
    """The browser test (tests/test_browser.py) opens the report in Debian's headless Chromium.
    Installed here with apt-get when missing and we are root; otherwise say how."""
    if CHROMIUM.exists() or os.environ.get("CHROMIUM"):
        return
    if getattr(os, "geteuid", lambda: 1)() == 0 and shutil.which("apt-get"):
        print("Installing chromium for the browser test (apt-get install chromium) ...", flush=True)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        quiet = dict(stdout=subprocess.DEVNULL, env=env)
        if subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "chromium"], **quiet).returncode:
            subprocess.run(["apt-get", "update"], **quiet)
            subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "chromium"], **quiet)
    if not CHROMIUM.exists():
        print(
            f"{CHROMIUM} is missing: the browser test will be skipped (run `apt-get install chromium` as root, "
            "or set CHROMIUM to a Chromium binary).",
            flush=True,
        )


def _exec(args: list[str], **env_overrides: str) -> int:
    # Agg: `run` and the tests write files and need no display. Kernels started for notebooks
    # set their own inline backend (presentation/notebooks.py), JupyterLab's through `lab`.
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONHASHSEED": "0", **env_overrides}
    # One BLAS thread unless the user asks otherwise: the engine's linear algebra is sums over
    # studies and p x p solves, where threads gain nothing, while two notebook kernels (or other
    # jobs) on a 2-core machine make a second BLAS thread per process fight for the cores
    # (small dense fits measured 8x slower with 2 threads; notes/profile-2026-11.md).
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(name, "1")
    return subprocess.run(args, cwd=ROOT, env=env).returncode


LAB_SETTINGS = ROOT / "jupyterlab" / "overrides.json"


def install_lab_settings(env: Path = VENV) -> Path:
    """The project's JupyterLab settings (jupyterlab/overrides.json: a double click opens
    notebooks/*.py as a Jupytext notebook) as the environment's application overrides, where
    JupyterLab reads them (<prefix>/share/jupyter/lab/settings/overrides.json). Settings already
    there for other plugins are kept."""
    target = env / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    ours = json.loads(LAB_SETTINGS.read_text(encoding="utf-8"))
    merged = json.loads(target.read_text(encoding="utf-8")) if target.is_file() else {}
    for plugin, values in ours.items():
        merged.setdefault(plugin, {}).update(values)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(merged, indent=2) + "\n", encoding="utf-8")
    return target


def lab(rest: list[str]) -> int:
    """JupyterLab on notebooks/; options after `lab` go to JupyterLab (--ip, --port, --IdentityProvider.token)."""
    install_lab_settings()
    args = [str(BIN / "jupyter"), "lab", "--notebook-dir", str(ROOT / "notebooks")]
    if hasattr(os, "geteuid") and os.geteuid() == 0 and "--allow-root" not in rest:
        args.append("--allow-root")  # containers often run as root; JupyterLab refuses root without it
    return _exec([*args, *rest], MPLBACKEND="module://matplotlib_inline.backend_inline")


def checks() -> int:
    """ruff lint (with import order), ruff format, mypy: the same checks as .pre-commit-config.yaml."""
    for args in (["ruff", "check", "."], ["ruff", "format", "--check", "."], ["mypy"]):
        print(f"$ {' '.join(args)}", flush=True)
        if code := _exec([str(BIN / args[0]), *args[1:]]):
            return code
    return 0


def test(rest: list[str]) -> int:
    ensure_chromium()
    if code := checks():
        return code
    # -n auto: one worker per core; --dist loadgroup keeps the tests that share one expensive
    # end-to-end run (marked xdist_group) on one worker, so the run is built once.
    return _exec([str(_python()), "-m", "pytest", "-n", "auto", "--dist", "loadgroup", *rest])


def test_lowest(rest: list[str]) -> int:
    ensure_venv(LOWEST, lowest_constraints())
    versions = subprocess.run(
        [str(_python(LOWEST)), "-m", "pip", "freeze", "--disable-pip-version-check"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    wanted = {line.split("==")[0].lower() for line in lowest_constraints().split()}
    print("Lowest versions:", " ".join(v for v in versions if v.split("==")[0].lower() in wanted), flush=True)
    return _exec([str(_python(LOWEST)), "-m", "pytest", "-n", "auto", *LOWEST_TESTS, *rest])


def main(argv: list[str]) -> int:
    commands = {"run", "test", "test-lowest", "lab", "setup"}
    if not argv or argv[0] not in commands:
        print(__doc__)
        return 2
    command, rest = argv[0], argv[1:]
    if command == "test-lowest":
        return test_lowest(rest)
    ensure_venv()
    if command == "setup":
        return 0
    if command == "run":
        return _exec([str(BIN / "metaanalysis"), "run", *rest])
    if command == "test":
        return test(rest)
    return lab(rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
