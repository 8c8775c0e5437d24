"""The layers, read from the source: which package imports which, and what the diagnosis core may load.

tuner (commands, Ray, MLflow, the core) sits on search_spaces, which sits on trainables (models, data, the
training loop, the vocabulary). Nothing points back up, and the core imports none of the heavy frameworks.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("tuner", "trainables", "search_spaces")
ORDER = {"trainables": 0, "search_spaces": 1, "tuner": 2}  # a package imports only packages at or below it
HEAVY = ("torch", "ray", "optuna", "mlflow")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, top_level_only: bool = False) -> set[str]:
    """Absolute module names `path` imports (every level, or only at module level)."""
    tree = ast.parse(path.read_text(), str(path))
    nodes = tree.body if top_level_only else ast.walk(tree)
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.If) and top_level_only and not _is_type_checking(node):
            found.update(_imports_in(node.body))
    return found


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def _imports_in(body: list[ast.stmt]) -> set[str]:
    module = ast.Module(body=body, type_ignores=[])
    return {a.name for n in ast.walk(module) if isinstance(n, ast.Import) for a in n.names} | {
        n.module for n in ast.walk(module) if isinstance(n, ast.ImportFrom) and n.module and n.level == 0}


def _sources() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


SOURCES = _sources()
CORE = tuple(name for name in SOURCES if name.startswith("tuner.core."))  # the diagnosis core, tuner/core/


def _edges() -> list[tuple[str, str, str]]:
    """(importing module, its package, imported package) for every import between gantune's packages."""
    return [(name, name.split(".")[0], target.split(".")[0]) for name, path in SOURCES.items()
            for target in _imports(path) if target.split(".")[0] in PACKAGES]


def test_no_package_imports_a_package_above_it():
    upward = sorted({(name, target) for name, pkg, target in _edges() if ORDER[target] > ORDER[pkg]})
    assert not upward, f"imports pointing up the layers (trainables < search_spaces < tuner): {upward}"


def test_the_core_imports_nothing_else_of_tuner():
    assert {"tuner.core.diagnosis", "tuner.core.signals", "tuner.core.logs", "tuner.core.stopping"} <= set(CORE)
    outside = sorted({(name, target) for name in CORE for target in _imports(SOURCES[name])
                      if target.startswith("tuner.") and not target.startswith("tuner.core")})
    assert not outside, f"the core reaching into the rest of tuner/: {outside}"


def test_only_the_commands_import_the_commands():
    """tuner/cli/ is the top: the library under it never reaches back up (no cycle between tuner's folders)."""
    upward = sorted({(name, target) for name, path in SOURCES.items() if not name.startswith("tuner.cli")
                     for target in _imports(path) if target == "tuner.cli" or target.startswith("tuner.cli.")})
    assert not upward, f"library modules importing the commands: {upward}"


def test_trainables_and_search_spaces_never_load_ray_or_mlflow():
    heavy = sorted((name, target) for name, path in SOURCES.items() if not name.startswith("tuner")
                   for target in _imports(path) if target.split(".")[0] in ("ray", "mlflow", "optuna", "tuner"))
    assert not heavy, f"the training side imports the tuning side: {heavy}"


def _loaded_at_import(module: str) -> set[str]:
    """Every module name `module` loads when imported: module-level imports, followed through gantune's own."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = SOURCES.get(name)
        if path is not None:
            todo.extend(_imports(path, top_level_only=True))
        todo.extend(".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1))  # its packages' __init__
    return seen


@pytest.mark.parametrize("module", CORE)
def test_the_core_reaches_no_heavy_framework_from_its_source(module):
    direct = {t for t in _imports(SOURCES[module]) if t.split(".")[0] in HEAVY}
    loaded = {t for t in _loaded_at_import(module) if t.split(".")[0] in HEAVY}
    assert not direct | loaded, f"{module} imports {sorted(direct | loaded)}"


def test_the_core_imports_in_a_fresh_interpreter_with_the_frameworks_blocked():
    blocked = ("import sys\n"
               "class Block:\n"
               "    def find_spec(self, name, path=None, target=None):\n"
               f"        if name.split('.')[0] in {HEAVY!r}:\n"
               "            raise ImportError('blocked: ' + name)\n"
               "sys.meta_path.insert(0, Block())\n"
               f"import {', '.join(CORE)}\n"
               "import trainables.registry, trainables.vocabulary, search_spaces.spaces, search_spaces.remedies\n")
    proc = subprocess.run([sys.executable, "-c", blocked], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr


def test_the_source_reader_sees_the_edges_it_checks():
    """The checks above are only as good as the graph: it must hold the imports gantune is known to make."""
    edges = {(name, target) for name, _, target in _edges()}
    assert ("tuner.sweep", "trainables") in edges and ("trainables.registry", "trainables") in edges
    assert "trainables.networks" not in _loaded_at_import("trainables.registry")
    assert "torch" in _loaded_at_import("trainables.networks")
