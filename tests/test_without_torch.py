"""The suite on a machine without PyTorch, as a newcomer runs it: the oracle tests, and only they,
are selected by ``-m torch`` (``.ci/run`` runs them once a torch wheel is installed) and skip
without torch; any other test that imports torch fails, saying which marker it lacks.

Each case runs pytest in a subprocess in which ``import torch`` fails as if it were not
installed (a plugin, ``-p no_torch``, puts a refusing finder first on ``sys.meta_path``).
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support import REPO

TESTS = REPO / "tests"

NO_TORCH = """\
import sys


class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, NoTorch())
"""


def pytest_without_torch(
    plugin_dir: Path, *args: str | Path, cwd: Path
) -> subprocess.CompletedProcess[str]:
    """``python -m pytest ARGS`` in ``cwd`` where torch cannot be imported; one process, no
    cache written."""
    (plugin_dir / "no_torch.py").write_text(NO_TORCH, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": f"{plugin_dir}{os.pathsep}{REPO}"}
    env.pop("PYTEST_ADDOPTS", None)
    env.pop("PYTEST_XDIST_WORKER", None)
    command = [sys.executable, "-m", "pytest", "-p", "no_torch", "-p", "no:cacheprovider"]
    return subprocess.run(
        [*command, "-n", "0", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def outcomes(output: str) -> dict[str, str]:
    """test name (or file, for a collection error) -> PASSED, FAILED, SKIPPED or ERROR, from
    the lines of ``-v`` and the summary of ``-rE``."""
    found = {}
    for line in output.splitlines():
        if match := re.match(r"\S+::(\S+) (PASSED|FAILED|SKIPPED|ERROR)\b", line):
            found[match.group(1)] = match.group(2)
        elif match := re.match(r"ERROR (\S+\.py) - ", line):
            found[match.group(1)] = "ERROR"
    return found


def uses_torch(path: Path) -> bool:
    """Whether a test module reaches PyTorch: imports it (``import torch``, ``from torch ...``,
    ``importorskip("torch")``), takes the ``torch`` fixture or names the ``torch`` marker. A word
    such as ``pytorch_linear`` or "PyTorch" in a docstring is not a use."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import) and any(
            alias.name.split(".")[0] == "torch" for alias in node.names
        ):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "torch":
            return True
        if isinstance(node, ast.Constant) and node.value == "torch":
            return True  # importorskip("torch"), a "torch" format case
        if isinstance(node, ast.arg) and node.arg == "torch":
            return True
        if isinstance(node, ast.Attribute) and node.attr == "torch":
            return True  # pytest.mark.torch
    return False


def test_uses_torch_tells_an_oracle_module_from_one_that_only_names_pytorch(
    tmp_path: Path,
) -> None:
    cases = {
        "import torch\n": True,
        "from torch import nn\n": True,
        "import pytest\ntorch = pytest.importorskip('torch')\n": True,
        "def test_a(torch):\n    pass\n": True,
        "import pytest\n@pytest.mark.torch\ndef test_a():\n    pass\n": True,
        'INIT = "pytorch_linear"  # PyTorch\'s default\n': False,
        '"""Compared with PyTorch, the oracle."""\n': False,
    }
    for number, (source, expected) in enumerate(cases.items()):
        path = tmp_path / f"test_{number}.py"
        path.write_text(source, encoding="utf-8")
        assert uses_torch(path) is expected, source


def test_every_module_that_uses_torch_has_its_oracle_tests_in_the_selection(
    tmp_path: Path,
) -> None:
    """``-m torch`` without torch: the whole suite collects (no module imports torch at its top),
    every selected test skips, and each test module that names torch contributes to it."""
    done = pytest_without_torch(tmp_path, "-m", "torch", "-v", "tests", cwd=REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    results = [line.split()[:2] for line in done.stdout.splitlines() if line.startswith("tests/")]
    assert results and {outcome for _, outcome in results} == {"SKIPPED"}, done.stdout
    selected = {test.split("::")[0] for test, _ in results}
    using_torch = {
        str(path.relative_to(REPO))
        for path in TESTS.rglob("test_*.py")
        if uses_torch(path) and path != Path(__file__).resolve()
    }
    assert using_torch and using_torch <= selected, sorted(using_torch - selected)


SAMPLE_TESTS = """\
import pytest
import optional_torch


def test_import_without_the_marker():
    import torch


def test_importorskip_without_the_marker():
    pytest.importorskip("torch")


def test_the_fixture(torch):
    pass


@pytest.mark.torch
def test_the_marker():
    import torch


@pytest.mark.parametrize("fmt", ["onnx", pytest.param("torch", marks=pytest.mark.torch)])
def test_a_marked_case(fmt):
    if fmt == "torch":
        import torch


def test_a_library_that_tries_torch():
    assert optional_torch.TORCH is None
"""

LIBRARY = """\
try:
    import torch as TORCH
except ImportError:
    TORCH = None
"""


def test_a_test_that_imports_torch_without_the_marker_fails_where_torch_is_missing(
    tmp_path: Path,
) -> None:
    suite = tmp_path / "suite"
    suite.mkdir()
    shutil.copy(TESTS / "conftest.py", suite / "conftest.py")
    (suite / "test_sample.py").write_text(SAMPLE_TESTS, encoding="utf-8")
    (suite / "test_top_level.py").write_text("import torch\n", encoding="utf-8")
    (tmp_path / "optional_torch.py").write_text(LIBRARY, encoding="utf-8")

    done = pytest_without_torch(tmp_path, "-v", "-rE", "--continue-on-collection-errors", cwd=suite)
    found = outcomes(done.stdout)
    assert found == {
        "test_import_without_the_marker": "FAILED",
        "test_importorskip_without_the_marker": "FAILED",
        "test_the_fixture": "SKIPPED",
        "test_the_marker": "SKIPPED",
        "test_a_marked_case[onnx]": "PASSED",
        "test_a_marked_case[torch]": "SKIPPED",
        "test_a_library_that_tries_torch": "PASSED",
        "test_top_level.py": "ERROR",
    }, done.stdout
    assert done.stdout.count("imports torch without the torch marker") >= 3, done.stdout
    assert "test_top_level.py imports torch without the torch marker" in done.stdout

    selected = pytest_without_torch(
        tmp_path, "-m", "torch", "--co", "-q", "test_sample.py", cwd=suite
    )
    assert [line for line in selected.stdout.splitlines() if "::" in line] == [
        "test_sample.py::test_the_fixture",
        "test_sample.py::test_the_marker",
        "test_sample.py::test_a_marked_case[torch]",
    ], selected.stdout
