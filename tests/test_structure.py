"""The layout's rules, read from the source (CONTRIBUTING.md, "The layout"): imports point one
way, so that the packages of bpnn form no circle; the engine imports nothing of bpnn outside
``bpnn/nn``; no module outside the engine grows past 500 lines unless CONTRIBUTING.md says why it
is one concern.

Every import counts, wherever it is written: at the top of a module, inside a function (the lazy
imports that keep ``bpnn --help`` fast) and under ``if TYPE_CHECKING:``: a circle hidden in a
function is still a circle for the reader.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import PACKAGE, REPO

#: the longest a module outside the engine may be before CONTRIBUTING.md must say why
MAX_LINES = 500


def module_name(path: Path) -> str:
    """``bpnn/data/files.py`` -> ``bpnn.data.files``; a package's ``__init__.py`` -> its name."""
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported_modules(name: str, path: Path) -> Iterator[str]:
    """The bpnn modules that the module ``name`` (at ``path``) imports, anywhere in it."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            # `from bpnn import checkpoint` imports the module bpnn.checkpoint, not bpnn's
            # __init__; `from bpnn.config import Config` imports bpnn.config
            candidates = [
                f"{source}.{alias.name}" if f"{source}.{alias.name}" in MODULES else source
                for alias in node.names
            ]
        else:
            continue
        for candidate in candidates:
            while candidate not in MODULES and "." in candidate:
                candidate = candidate.rsplit(".", 1)[0]
            if candidate in MODULES and candidate != name:
                yield candidate


def unit(name: str) -> str:
    """The part of bpnn a module belongs to: its top-level package (``bpnn.data``) or, for a
    module at the top (``bpnn.checkpoint``), itself; ``bpnn`` is the public API."""
    return ".".join(name.split(".")[:2])


def unit_graph() -> dict[str, dict[str, list[str]]]:
    """``{unit: {imported unit: ["importing module -> imported module", ...]}}``."""
    graph: dict[str, dict[str, list[str]]] = {unit(name): {} for name in MODULES}
    for name, path in MODULES.items():
        for imported in imported_modules(name, path):
            if unit(imported) != unit(name):
                graph[unit(name)].setdefault(unit(imported), []).append(f"{name} -> {imported}")
    return graph


def circles(graph: dict[str, dict[str, list[str]]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    lowlink: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = lowlink[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for neighbour in graph.get(node, {}):
            if neighbour not in index:
                visit(neighbour)
                lowlink[node] = min(lowlink[node], lowlink[neighbour])
            elif neighbour in on_stack:
                lowlink[node] = min(lowlink[node], index[neighbour])
        if lowlink[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_parts_of_bpnn_import_each_other_in_one_direction() -> None:
    graph = unit_graph()
    problems = []
    for component in circles(graph):
        members = set(component)
        edges = [
            line
            for source in component
            for target, lines in graph[source].items()
            if target in members
            for line in lines
        ]
        problems.append(f"circle {' <-> '.join(component)}: " + "; ".join(sorted(edges)))
    assert problems == []


def test_the_circle_check_finds_a_circle() -> None:
    """The check itself can fail: two parts that import each other are one circle."""
    graph = {"a": {"b": ["a -> b"]}, "b": {"c": ["b -> c"]}, "c": {"a": ["c -> a"]}, "d": {}}
    assert circles(graph) == [["a", "b", "c"]]
    assert circles({"a": {"b": []}, "b": {}}) == []


def test_imports_under_type_checking_and_in_functions_count(tmp_path: Path) -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from bpnn.config import Config\n"
        "def f():\n    from bpnn import checkpoint\n    from ..errors import DataError\n"
    )
    module = tmp_path / "example_module.py"
    module.write_text(source, encoding="utf-8")
    found = set(imported_modules("bpnn.data.example_module", module))
    assert found == {"bpnn.config", "bpnn.checkpoint", "bpnn.errors"}


def test_the_engine_imports_nothing_of_bpnn_outside_it() -> None:
    outside = [
        f"{name} imports {imported}"
        for name, path in MODULES.items()
        if name.startswith("bpnn.nn")
        for imported in imported_modules(name, path)
        if not imported.startswith("bpnn.nn")
    ]
    assert outside == []


def modules_explained_in_contributing() -> set[str]:
    """The modules CONTRIBUTING.md's section "Modules over 500 lines" names (``bpnn/...py``)."""
    text = (REPO / "CONTRIBUTING.md").read_text(encoding="utf-8")
    match = re.search(r"^## Modules over 500 lines\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    return set(re.findall(r"`(bpnn/[\w/]+\.py)`", match.group(1))) if match else set()


@pytest.mark.parametrize(
    "path",
    [path for path in MODULES.values() if not path.is_relative_to(PACKAGE / "nn")],
    ids=lambda path: str(path.relative_to(REPO)),
)
def test_a_module_outside_the_engine_is_at_most_500_lines(path: Path) -> None:
    relative = path.relative_to(REPO).as_posix()
    lines = len(path.read_text(encoding="utf-8").splitlines())
    if relative in modules_explained_in_contributing():
        return
    assert lines <= MAX_LINES, (
        f"{relative} has {lines} lines: split it by concern, or say in CONTRIBUTING.md "
        f"('## Modules over 500 lines') why it is one"
    )


def test_the_tests_take_the_repository_path_from_one_place() -> None:
    """``tests/support.py`` says where the repository is (``REPO``); a test module that works it
    out again from its own path breaks when it moves between the folders that mirror bpnn's."""
    again = [
        str(path.relative_to(REPO))
        for path in sorted((REPO / "tests").rglob("*.py"))
        if path.name != "support.py"
        and re.search(r"Path\(__file__\)\.resolve\(\)\.parents\[", path.read_text("utf-8"))
    ]
    assert again == [], "import REPO from tests.support instead"
