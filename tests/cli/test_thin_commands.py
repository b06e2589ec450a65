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


def problems(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names = [node.module or ""]
        elif isinstance(node, ast.Call):
            function = node.func
            name = (
                function.attr
                if isinstance(function, ast.Attribute)
                else getattr(function, "id", "")
            )
            if name in FORBIDDEN_CALLS:
                found.append(f"line {node.lineno}: calls {name}()")
            continue
        else:
            continue
        for name in names:
            if name.split(".")[0] in FORBIDDEN_IMPORTS:
                found.append(f"line {node.lineno}: imports {name}")
    return found


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
