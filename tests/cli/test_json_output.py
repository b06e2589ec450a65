"""Every ``--json`` is strict JSON, printed one way (``bpnn.outputs.print_json``)."""

from __future__ import annotations

import ast
import json
import math

import pytest

from bpnn.outputs import print_json
from tests.support import PACKAGE


def test_print_json_writes_a_non_finite_number_as_null(capsys: pytest.CaptureFixture[str]) -> None:
    print_json({"loss": math.nan, "rows": [1.5, math.inf, -math.inf], "name": "a"})
    line = capsys.readouterr().out
    assert json.loads(line) == {"loss": None, "rows": [1.5, None, None], "name": "a"}
    assert "NaN" not in line and "Infinity" not in line


@pytest.mark.parametrize("path", sorted((PACKAGE / "cli").glob("*.py")), ids=lambda path: path.name)
def test_no_command_prints_json_but_through_print_json(path: object) -> None:
    """``json.dumps`` in a command would let a NaN through as ``NaN`` (not JSON): eval,
    gradcheck, explain and sweep did so."""
    tree = ast.parse(path.read_text(encoding="utf-8"))  # type: ignore[attr-defined]
    dumps = [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr == "dumps"
    ]
    assert dumps == [], f"{path}: json.dumps at lines {dumps}; use bpnn.outputs.print_json"
