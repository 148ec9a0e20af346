"""The package as a whole: tests laid out like the code, and no test module importing another."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
PACKAGE = TESTS.parent / "metaanalysis"
HELPERS = {"conftest", "helpers", "reference"}  # shared by every test module; they test nothing themselves


def _test_modules() -> list[Path]:
    return sorted(p for p in TESTS.rglob("test_*.py") if "fixtures" not in p.parts)


def test_every_test_module_is_named_after_the_module_it_tests():
    """tests/<layer>/test_<module>[_<aspect>].py for metaanalysis/<layer>/<module>.py."""
    wrong = []
    for path in _test_modules():
        rel = path.relative_to(TESTS)
        if rel == Path("test_metaanalysis.py"):
            continue
        layer, name = rel.parts[0], path.stem.removeprefix("test_")
        modules = {m.stem for m in (PACKAGE / layer).glob("*.py") if m.stem != "__init__"}
        if (
            len(rel.parts) != 2
            or not (PACKAGE / layer).is_dir()
            or not any(name == m or name.startswith(m + "_") for m in modules)
        ):
            wrong.append(str(rel))
    assert not wrong, f"test modules not named after a library module (tests/<layer>/test_<module>.py): {wrong}"


def test_the_grid_of_test_folders_follows_the_package():
    layers = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    folders = {p.name for p in TESTS.iterdir() if p.is_dir() and any(p.glob("test_*.py"))}
    assert folders <= layers, f"test folders without a layer: {folders - layers}"
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
