"""Layers you can see: no geocrop module imports a package above its own, and no import cycle hides anywhere.

Every ``import``/``from ... import`` of every module under ``geocrop/`` is read with `ast`, including imports
inside functions and under ``if TYPE_CHECKING:`` (a lazy or type-only import is still a dependency). The
layer order is docs/architecture.md's, bottom first; a module may import its own package and anything
below it. The known exceptions are listed in `ALLOWED_UPWARD` and `ALLOWED_CYCLES` with the reason; the
tests also fail when one of them no longer occurs, so the lists only shrink.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "geocrop"

#: Bottom first. A unit is a subpackage (``io``) or a top-level module (``geocrop.errors``, ``geocrop``
#: for the package root). ``api_types``, ``api`` and ``demo`` sit above the pipelines and below the CLI.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("geocrop.errors", "geocrop._version"),  # the version: a leaf any layer may import
    ("geocrop",),  # the lazy facade (its PEP 562 __getattr__ names modules as strings)
    ("core",),
    ("io",),
    ("data",),
    ("models",),
    ("viz",),
    ("training",),
    ("inference",),
    ("post",),  # after the map: reads map outputs (io), never the pipelines' internals
    ("sim",),  # the simulator: a test instrument only the demo and `geocrop simulate` use
    ("geocrop.api_types",),
    ("api", "geocrop.demo"),
    ("cli",),
)
LEVEL = {unit: level for level, units in enumerate(LAYERS) for unit in units}

#: Upward imports that exist today, (importer module, imported module) -> why. Remove a line when its
#: import goes; never add one.
ALLOWED_UPWARD: dict[tuple[str, str], str] = {}

#: Module-level import cycles that exist today (each as the sorted tuple of its modules) -> why.
ALLOWED_CYCLES: dict[tuple[str, ...], str] = {}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def unit_of(module: str) -> str:
    """``geocrop.io.cube`` -> ``io``; ``geocrop.errors`` -> itself; ``geocrop`` -> ``geocrop``."""
    parts = module.split(".")
    if len(parts) == 1:
        return "geocrop"
    if (ROOT / parts[1]).is_dir():
        return parts[1]
    return ".".join(parts[:2])


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _nodes(tree: ast.AST, *, skip_type_checking: bool) -> Iterator[ast.AST]:
    for node in ast.iter_child_nodes(tree):
        if skip_type_checking and _is_type_checking(node):
            continue
        yield node
        yield from _nodes(node, skip_type_checking=skip_type_checking)


def _imports(path: Path) -> Iterator[str]:
    """Every geocrop module ``path`` imports (``from a import b`` yields ``a.b`` when that is a module).

    The package root is the facade: its type-only imports name the lazily loaded API for type checkers
    and do not run, so they are not counted there (everywhere else they are).
    """
    this = module_name(path)
    package = this if path.name == "__init__.py" else this.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in _nodes(tree, skip_type_checking=this == "geocrop"):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            for alias in node.names:
                yield f"{target}.{alias.name}" if _is_module(f"{target}.{alias.name}") else target


def _is_module(name: str) -> bool:
    rel = Path(*name.split(".")[1:]) if "." in name else Path()
    return name.startswith("geocrop") and (
        (ROOT / rel).with_suffix(".py").is_file() or (ROOT / rel / "__init__.py").is_file()
    )


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for path in sorted(ROOT.rglob("*.py")):
        this = module_name(path)
        graph[this]
        for target in _imports(path):
            if (target == "geocrop" or target.startswith("geocrop.")) and target != this:
                graph[this].add(target)
    return graph


def upward_imports(graph: dict[str, set[str]]) -> set[tuple[str, str]]:
    return {
        (src, dst)
        for src, targets in graph.items()
        for dst in targets
        if LEVEL[unit_of(dst)] > LEVEL[unit_of(src)]
    }


def cycles(graph: dict[str, set[str]]) -> list[tuple[str, ...]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[tuple[str, ...]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(tuple(sorted(component)))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph()


def test_every_package_has_a_layer(graph: dict[str, set[str]]) -> None:
    missing = sorted({unit_of(m) for m in graph} - set(LEVEL))
    assert not missing, f"add {missing} to LAYERS (and to docs/architecture.md)"


def test_no_upward_import(graph: dict[str, set[str]]) -> None:
    new = sorted(upward_imports(graph) - set(ALLOWED_UPWARD))
    assert not new, "imports from a higher layer (see docs/architecture.md):\n" + "\n".join(
        f"  {src} -> {dst}" for src, dst in new
    )


def test_allowed_upward_imports_still_exist(graph: dict[str, set[str]]) -> None:
    stale = sorted(set(ALLOWED_UPWARD) - upward_imports(graph))
    assert not stale, f"these imports are gone; delete them from ALLOWED_UPWARD: {stale}"


def test_no_import_cycle(graph: dict[str, set[str]]) -> None:
    new = [c for c in cycles(graph) if c not in ALLOWED_CYCLES]
    assert not new, "import cycles:\n" + "\n".join(f"  {' <-> '.join(c)}" for c in new)


def test_allowed_cycles_still_exist(graph: dict[str, set[str]]) -> None:
    stale = sorted(set(ALLOWED_CYCLES) - set(cycles(graph)))
    assert not stale, f"these cycles are gone; delete them from ALLOWED_CYCLES: {stale}"


def test_no_cycle_between_packages(graph: dict[str, set[str]]) -> None:
    """Package level: the allowed upward imports are the only edges that close a loop."""
    edges = {
        (unit_of(s), unit_of(d))
        for s, ds in graph.items()
        for d in ds
        if unit_of(s) != unit_of(d) and (s, d) not in ALLOWED_UPWARD
    }
    packages: dict[str, set[str]] = defaultdict(set)
    for src, dst in edges:
        packages[src].add(dst)
    assert cycles(packages) == []


def test_the_checker_sees_function_level_imports() -> None:
    """The parser counts lazy imports (the usual hiding place of a cycle)."""
    graph = import_graph()
    assert "geocrop.inference.mapping" in graph["geocrop.demo"]  # imported inside run_demo
    assert "geocrop.viz.webmap" in graph["geocrop.inference.mapping"]  # imported inside _map_aoi
