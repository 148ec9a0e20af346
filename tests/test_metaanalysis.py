"""The package as a whole: tests laid out like the code, and no test module importing another."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
PACKAGE = TESTS.parent / "metaanalysis"
BENCHMARKS = TESTS.parent / "benchmarks"  # tests/benchmarks/test_<script>.py for its scripts
HELPERS = {"conftest", "helpers", "reference"}  # shared by every test module; they test nothing themselves


def _test_modules() -> list[Path]:
    return sorted(p for p in TESTS.rglob("test_*.py") if "fixtures" not in p.parts)


def test_every_test_module_is_named_after_the_module_it_tests():
    """tests/<layer>/test_<module>[_<aspect>].py for metaanalysis/<layer>/<module>.py (and
    tests/benchmarks/test_<script>.py for benchmarks/<script>.py)."""
    wrong = []
    for path in _test_modules():
        rel = path.relative_to(TESTS)
        if rel == Path("test_metaanalysis.py"):
            continue
        layer, name = rel.parts[0], path.stem.removeprefix("test_")
        folder = BENCHMARKS if layer == "benchmarks" else PACKAGE / layer
        modules = {m.stem for m in folder.glob("*.py") if m.stem != "__init__"}
        if (
            len(rel.parts) != 2
            or not folder.is_dir()
            or not any(name == m or name.startswith(m + "_") for m in modules)
        ):
            wrong.append(str(rel))
    assert not wrong, f"test modules not named after a library module (tests/<layer>/test_<module>.py): {wrong}"


def test_the_grid_of_test_folders_follows_the_package():
    layers = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    folders = {p.name for p in TESTS.iterdir() if p.is_dir() and any(p.glob("test_*.py"))}
    assert folders <= layers | {"benchmarks"}, f"test folders without a layer: {folders - layers}"
    assert {"engine", "evidence", "review", "presentation", "pipeline", "cli"} <= folders


def test_no_test_module_imports_another():
    """Shared code lives in conftest.py, helpers.py or reference.py, never in a test module."""
    tests = {p.stem for p in _test_modules()}
    offenders = []
    for path in _test_modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.relative_to(TESTS)} imports {n}" for n in names if n.split(".")[-1] in tests]
    assert not offenders, offenders
    assert {p.stem for p in TESTS.glob("*.py")} - {"test_metaanalysis"} <= HELPERS | {"__init__"}


# -- the layers: cli -> pipeline -> presentation -> review -> engine -> evidence ---------------
LAYERS = ("evidence", "engine", "review", "presentation", "pipeline", "cli")


def _imports() -> dict[str, set[str]]:
    """module -> the metaanalysis modules it imports (anywhere in it, functions included)."""
    graph = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("metaanalysis")}
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("metaanalysis"):
                found.add(node.module)
                found |= {f"{node.module}.{a.name}" for a in node.names}
        graph[name] = found
    known = set(graph)
    return {m: {i for i in found if i in known and i != m} for m, found in graph.items()}


def _layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else None


def test_no_import_runs_back_up_the_layers():
    upward = []
    for module, imports in _imports().items():
        here = _layer(module)
        if here is None:  # the package root: __version__ and the lazy public names
            continue
        for target in imports:
            there = _layer(target)
            if there is not None and there > here:
                upward.append(f"{module} ({LAYERS[here]}) imports {target} ({LAYERS[there]})")
    assert not upward, "imports that run back up: " + "; ".join(sorted(upward))


def test_the_import_graph_has_no_circle():
    graph = _imports()
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if nxt.count(".") < 2:  # a subpackage's __init__ re-exports nothing here
                continue
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*path[path.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles: " + "; ".join(cycles)


def test_the_layer_test_can_fail():
    """The check above reads what it should: a made-up upward import is found."""
    assert _layer("metaanalysis.engine.rma") < _layer("metaanalysis.presentation.forest")
    graph = _imports()
    assert "metaanalysis.engine.results" in graph["metaanalysis.engine.rma"]


def test_importing_any_module_leaves_matplotlibs_backend_as_it_was():
    """Only entry points choose a backend (the `run` command picks Agg when none is set)."""
    import os
    import subprocess
    import sys

    modules = sorted(m for m in _imports() if not m.endswith("__main__"))
    code = (
        "import importlib, matplotlib\n"
        f"for m in {modules!r}:\n"
        "    importlib.import_module(m)\n"
        "print(matplotlib.get_backend())\n"
    )
    env = {**os.environ, "MPLBACKEND": "svg"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().lower() == "svg", f"the backend became {out.stdout.strip()!r}"
    assert len(modules) > 60
