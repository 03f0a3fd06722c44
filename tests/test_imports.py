"""Static checks on the package's import graph: no import cycles, no private names across modules.

The graph is built from the source with ``ast`` (nothing is imported), so a cycle is reported
even when it only closes through a lazy import inside a function: those still run, and still
deadlock or half-initialise a module, at run time. Imports under ``if TYPE_CHECKING:`` never
run, so they are left out.
"""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Iterator
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "pipelines"


def module_files(root: Path, package: str) -> dict[str, Path]:
    """Dotted module name -> file, for every ``*.py`` under ``root`` (the package's directory)."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join((package, *parts))] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_imports(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement at any depth, except those only run under TYPE_CHECKING."""
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        yield node
    # The else branch of ``if TYPE_CHECKING:`` does run, so only its body is skipped.
    is_guard = isinstance(node, ast.If) and _is_type_checking(node.test)
    for child in node.orelse if is_guard else ast.iter_child_nodes(node):
        yield from _runtime_imports(child)


def import_records(root: Path, package: str) -> Iterator[tuple[str, str, ast.AST, str | None]]:
    """(importer, imported module, statement, imported name or None) for imports in ``package``."""
    modules = module_files(root, package)
    for name, path in modules.items():
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        except FileNotFoundError:  # moved away while we walked: the tree is being refactored
            continue
        here = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in _runtime_imports(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield name, alias.name, node, None
                continue
            if node.level:  # relative: climb level-1 packages up from the importer's package
                base = ".".join(here.split(".")[: len(here.split(".")) - node.level + 1])
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            for alias in node.names:
                yield name, source, node, alias.name


def _inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """Module -> the package modules it imports at run time (implied parent packages included)."""
    modules = module_files(root, package)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for importer, source, _node, name in import_records(root, package):
        if not _inside(source, package):
            continue  # third-party or stdlib
        # ``from pkg import name`` loads the submodule ``pkg.name`` when there is one.
        target = f"{source}.{name}" if name and f"{source}.{name}" in modules else source
        edges = {target}
        # Loading a.b.c runs a/__init__ and a/b/__init__ first, unless the importer is inside
        # that package already (else every re-exporting __init__ would be a "cycle").
        parts = target.split(".")
        for i in range(1, len(parts)):
            parent = ".".join(parts[:i])
            if not _inside(importer, parent):
                edges.add(parent)
        graph[importer] |= {m for m in edges if m in modules and m != importer}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The shortest cycle through every module on one, each once (rotated to its least name)."""
    cycles = set()
    for start in graph:
        # Breadth-first from start's imports back to start gives the shortest cycle through it.
        parent: dict[str, str] = {}
        queue = deque()
        for nxt in sorted(graph[start]):
            parent.setdefault(nxt, start)
            queue.append(nxt)
        while queue and start not in parent:
            node = queue.popleft()
            for nxt in sorted(graph.get(node, ())):
                if nxt not in parent:
                    parent[nxt] = node
                    queue.append(nxt)
        if start in parent:
            path, node = [start], parent[start]
            while node != start:
                path.append(node)
                node = parent[node]
            path.reverse()  # now start -> ... -> last, where last imports start
            cycle = [start, *path[:-1]]
            k = cycle.index(min(cycle))
            cycles.add(tuple(cycle[k:] + cycle[:k]))
    return [list(c) for c in sorted(cycles)]


def _format(cycle: list[str]) -> str:
    return " -> ".join([*cycle, cycle[0]])


def test_the_package_has_no_import_cycles():
    cycles = find_cycles(import_graph(PACKAGE_DIR, "pipelines"))
    assert not cycles, "import cycles:\n" + "\n".join(map(_format, cycles))


def test_cycle_finder_finds_a_cycle(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from .a import f\n")  # re-export: not a cycle
    (pkg / "a.py").write_text("from . import c\n\ndef f():\n    import pkg.b\n    return pkg.b\n")
    (pkg / "b.py").write_text("import os\nfrom . import a\n")
    # c and d import back only for type checkers, so a -> c and e -> d close no cycle.
    (pkg / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import a\n"
    )
    (pkg / "d.py").write_text("import typing\nif typing.TYPE_CHECKING:\n    from . import e\n")
    (pkg / "e.py").write_text("from .d import x\n")
    graph = import_graph(pkg, "pkg")
    assert graph["pkg.c"] == graph["pkg.d"] == set()
    cycles = find_cycles(graph)
    assert cycles == [["pkg.a", "pkg.b"]], cycles
    assert _format(cycles[0]) == "pkg.a -> pkg.b -> pkg.a"


def test_no_private_names_imported_across_modules():
    offences = []
    for importer, source, node, name in import_records(PACKAGE_DIR, "pipelines"):
        dunder = name is not None and name.startswith("__") and name.endswith("__")
        private = name is not None and name.startswith("_") and not dunder
        if private and importer != source and _inside(source, "pipelines"):
            offences.append(f"{importer}:{node.lineno}: from {source} import {name}")
    assert not offences, "private names imported across modules:\n" + "\n".join(offences)


def test_no_module_name_is_used_twice():
    """A module's name says what it holds wherever it is imported from: no two modules of the
    package share one (``__init__`` and ``__main__`` aside)."""
    seen: dict[str, list[str]] = {}
    for name in module_files(PACKAGE_DIR, "pipelines"):
        leaf = name.rpartition(".")[2]
        if (PACKAGE_DIR / Path(*name.split(".")[1:])).is_dir() or leaf == "__main__":
            continue  # a package's __init__
        seen.setdefault(leaf, []).append(name)
    twice = {leaf: names for leaf, names in seen.items() if len(names) > 1}
    assert not twice, f"module names used twice: {twice}"
