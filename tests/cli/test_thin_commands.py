"""The commands are thin (CONTRIBUTING.md, "Adding a command"): no module of ``bpnn/cli/``
imports the math or a file format, or opens, reads or writes a file itself; that work is in the
package, and files are written through ``bpnn.outputs``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support import PACKAGE

#: what a command module never imports: the math and the file formats
FORBIDDEN_IMPORTS = {"numpy", "pandas", "pyarrow", "PIL", "yaml", "json", "csv", "pickle"}
#: what a command module never calls: opening, reading or writing a file
FORBIDDEN_CALLS = {"open", "read_text", "read_bytes", "write_text", "write_bytes", "unlink"}


def imports(path: Path) -> list[tuple[int, str]]:
    """Every module ``path`` imports (absolute imports; ``TYPE_CHECKING`` ones included), with
    its line."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            found.append((node.lineno, node.module or ""))
    return found


def problems(path: Path) -> list[str]:
    found = [
        f"line {line}: imports {name}"
        for line, name in imports(path)
        if name.split(".")[0] in FORBIDDEN_IMPORTS
    ]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            function = node.func
            name = (
                function.attr
                if isinstance(function, ast.Attribute)
                else getattr(function, "id", "")
            )
            if name in FORBIDDEN_CALLS:
                found.append(f"line {node.lineno}: calls {name}()")
    return sorted(found, key=lambda problem: int(problem.split()[1].rstrip(":")))


@pytest.mark.parametrize("path", sorted((PACKAGE / "cli").glob("*.py")), ids=lambda p: p.name)
def test_a_command_module_holds_no_math_and_no_file_format(path: Path) -> None:
    assert problems(path) == []


def test_the_check_finds_a_file_written_by_a_command(tmp_path: Path) -> None:
    module = tmp_path / "command.py"
    module.write_text(
        "import numpy as np\nfrom json import dumps\n\ndef predict(out):\n"
        "    with out.open('x') as handle:\n        handle.write('rows')\n",
        encoding="utf-8",
    )
    assert problems(module) == [
        "line 1: imports numpy",
        "line 2: imports json",
        "line 5: calls open()",
    ]


#: what a command module may import of bpnn besides the public API (``import bpnn``) and the
#: command line's own modules: the errors it raises, the file helpers, the standard streams,
#: the progress display, and the metric names and formats it prints
ALLOWED_BPNN_MODULES = {
    "bpnn.errors",
    "bpnn.outputs",
    "bpnn.streams",
    "bpnn.training.progress",
    "bpnn.metrics",
    "bpnn.examples",
}


def bpnn_imports(path: Path) -> list[str]:
    """The modules of bpnn outside the public API and ``bpnn.cli`` that ``path`` imports
    (``TYPE_CHECKING`` imports included: a name a command uses in a type is one it knows)."""
    return [
        f"line {line}: imports {module}"
        for line, module in imports(path)
        if module.startswith("bpnn.")
        and not module.startswith("bpnn.cli")
        and module not in ALLOWED_BPNN_MODULES
    ]


@pytest.mark.parametrize("path", sorted((PACKAGE / "cli").glob("*.py")), ids=lambda p: p.name)
def test_a_command_calls_the_public_api(path: Path) -> None:
    assert bpnn_imports(path) == [], "call it through bpnn/__init__.py (its _API table)"


def test_every_public_name_resolves_and_is_no_subpackage() -> None:
    import importlib
    import pkgutil

    import bpnn

    submodules = {info.name for info in pkgutil.iter_modules(bpnn.__path__)}
    assert sorted(bpnn.__all__) == sorted(["__version__", "load_checkpoint", *bpnn._API])
    for name, (module, attribute) in bpnn._API.items():
        assert name not in submodules, f"bpnn.{name} would be replaced by the subpackage"
        assert getattr(importlib.import_module(module), attribute) is getattr(bpnn, name)


def test_the_check_finds_a_command_that_goes_around_the_api(tmp_path: Path) -> None:
    module = tmp_path / "command.py"
    module.write_text(
        "import bpnn\nfrom bpnn.cli.output import Output\nfrom bpnn.errors import DataError\n"
        "def train():\n    from bpnn.run.pipeline import run_training\n",
        encoding="utf-8",
    )
    assert bpnn_imports(module) == ["line 5: imports bpnn.run.pipeline"]
