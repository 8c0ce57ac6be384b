"""The code's layout: the collector's modules import each other in one direction (no import
cycle anywhere), and no module of the three packages runs over :data:`MAX_LINES` lines unless
its opening docstring says why, on a line starting with ``Long because:``.

Imports are read from the source (every ``import`` / ``from ... import`` of a ``collector_service``
module, including those under ``TYPE_CHECKING`` and inside functions), so a cycle fails here even
when Python would happen to import it without error.
"""

from __future__ import annotations

import ast
from pathlib import Path

import collector_service

PACKAGE = Path(collector_service.__file__).parent
PACKAGES = ("collector_service", "exchange_sim", "orderwatch_dagster")
MAX_LINES = 600
"""Over this, a module must give its reason (a split along a seam is the usual answer)."""
REASON = "Long because:"


def module_name(path: Path, package: Path) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_from(node: ast.ImportFrom, name: str, path: Path) -> str:
    """The module a ``from ... import`` in module ``name`` (file ``path``) names, relative ones
    (``from . import x``, ``from ..y import z``) resolved."""
    if not node.level:
        return node.module or ""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    base = package[: len(package) - node.level + 1]
    return ".".join([*base, node.module] if node.module else base)


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Each module of ``package`` -> the modules of the package it imports."""
    files = {module_name(path, package): path for path in package.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        targets = graph.setdefault(name, set())
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names if alias.name in files)
            elif isinstance(node, ast.ImportFrom) and (module := imported_from(node, name, path)) in files:
                for alias in node.names:  # `from pkg import module` imports the module
                    submodule = f"{module}.{alias.name}"
                    targets.add(submodule if submodule in files else module)
    return graph


def test_import_graph_reads_absolute_relative_and_function_imports(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("from . import a\n")
    (package / "a.py").write_text("from .sub import b\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "b.py").write_text("def late():\n    from ..a import x\n    import pkg.sub\n")
    assert import_graph(package) == {
        "pkg": {"pkg.a"},
        "pkg.a": {"pkg.sub.b"},
        "pkg.sub": set(),
        "pkg.sub.b": {"pkg.a", "pkg.sub"},
    }
    assert find_cycles(import_graph(package)) == [["pkg.a", "pkg.sub.b", "pkg.a"]]


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


def unexplained_long_modules(root: Path, packages: tuple[str, ...] = PACKAGES) -> list[str]:
    """The modules under ``root/<package>`` over :data:`MAX_LINES` lines whose module docstring
    has no line starting with :data:`REASON`, each as ``path: lines``."""
    found: list[str] = []
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            text = path.read_text()
            lines = len(text.splitlines())
            if lines <= MAX_LINES:
                continue
            doc = ast.get_docstring(ast.parse(text, str(path))) or ""
            if not any(line.strip().startswith(REASON) for line in doc.splitlines()):
                found.append(f"{path.relative_to(root)}: {lines}")
    return found


def test_unexplained_long_modules_are_found(tmp_path: Path) -> None:
    body = "x = 1\n" * MAX_LINES
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "short.py").write_text('"""Short."""\nx = 1\n')
    (tmp_path / "pkg" / "long.py").write_text(f'"""Long, with no reason."""\n{body}')
    (tmp_path / "pkg" / "bare.py").write_text(body + "y = 2\n")
    (tmp_path / "pkg" / "said.py").write_text(f'"""Long.\n\n{REASON} one topic.\n"""\n{body}')
    (tmp_path / "pkg" / "later.py").write_text(f'"""Long."""\n{body}# {REASON} not in the docstring\n')
    assert unexplained_long_modules(tmp_path, ("pkg",)) == [
        f"pkg/bare.py: {MAX_LINES + 1}",
        f"pkg/later.py: {MAX_LINES + 2}",
        f"pkg/long.py: {MAX_LINES + 1}",
    ]


def test_no_long_module_without_a_reason() -> None:
    assert unexplained_long_modules(PACKAGE.parent) == []
