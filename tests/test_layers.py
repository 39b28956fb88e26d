"""The layers of docs/architecture.md, checked on the source: value types at the bottom, the
engine, scheduler and status over the store's narrow ports (never the store itself or
SQLAlchemy), and no import cycle between packages (issue 16: engine<->store, api<->runtime).

Imports are read with `ast`, module-level and inside functions alike (a lazy import is
still a dependency), except those under `if TYPE_CHECKING:`.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "reconciler"


def _module(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                found.add(child.module)
            visit(child)

    visit(tree)
    return found


def _graph() -> dict[str, set[str]]:
    return {_module(p): _imports(p) for p in PACKAGE.rglob("*.py")}


BOTTOM = ("reconciler.structs", "reconciler.ports", "reconciler.engine", "reconciler.schedule",
          "reconciler.status")


@pytest.mark.parametrize("layer", BOTTOM)
def test_layer_uses_ports_not_the_store(layer: str) -> None:
    offenders = {
        module: sorted(i for i in imports if i.startswith(("reconciler.store", "sqlalchemy")))
        for module, imports in _graph().items()
        if module == layer or module.startswith(layer + ".")
    }
    assert {m: i for m, i in offenders.items() if i} == {}


def test_structs_import_only_models_and_utilities() -> None:
    for module, imports in _graph().items():
        if module.startswith("reconciler.structs"):
            ours = {i for i in imports if i.startswith("reconciler")}
            assert all(i.startswith(("reconciler.models", "reconciler.structs", "reconciler.errors",
                                     "reconciler.redaction")) for i in ours), (module, ours)


def _package(module: str) -> str:
    return ".".join(module.split(".")[:2])


def test_no_cycle_between_packages() -> None:
    edges: dict[str, set[str]] = defaultdict(set)
    for module, imports in _graph().items():
        for target in imports:
            if target.startswith("reconciler.") and _package(target) != _package(module):
                edges[_package(module)].add(_package(target))
    cycles = sorted((a, b) for a in edges for b in edges[a] if a < b and a in edges.get(b, set()))
    assert cycles == []
