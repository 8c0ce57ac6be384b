"""The collector's modules import each other in one direction: no import cycle anywhere.

Read from the source (every ``import`` / ``from ... import`` of a ``collector_service`` module,
including those under ``TYPE_CHECKING`` and inside functions), so a cycle fails here even when
Python would happen to import it without error.
"""

from __future__ import annotations

import ast
from pathlib import Path

import collector_service

PACKAGE = Path(collector_service.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Each module -> the collector_service modules it imports."""
    files = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        targets = graph.setdefault(name, set())
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names if alias.name in files)
            elif isinstance(node, ast.ImportFrom) and node.module in files:
                for alias in node.names:  # `from pkg import module` imports the module
                    submodule = f"{node.module}.{alias.name}"
                    targets.add(submodule if submodule in files else node.module)
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle a depth-first walk meets (each as its path, first module repeated at the end)."""
    cycles: list[list[str]] = []
    done: set[str] = set()
    path: list[str] = []

    def visit(name: str) -> None:
        path.append(name)
        for target in sorted(graph.get(name, ())):
            if target in path:
                cycles.append([*path[path.index(target):], target])
            elif target not in done:
                visit(target)
        path.pop()
        done.add(name)

    for name in sorted(graph):
        if name not in done:
            visit(name)
    return cycles


def test_find_cycles_reports_a_circle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []


def test_collector_has_no_import_cycle() -> None:
    graph = import_graph()
    assert "collector_service.pipeline" in graph["collector_service.sources.polling"]  # the walk sees imports
    assert find_cycles(graph) == []


def test_events_build_on_nothing_above_them() -> None:
    """The pure logic the pipeline and the sources share imports neither of them."""
    above = ("collector_service.pipeline", "collector_service.sources")
    for name, targets in import_graph().items():
        if name.startswith("collector_service.events"):
            assert not [t for t in targets if t.startswith(above)], name
