"""Suite-wide test hooks and fixtures: how many workers run the tests; the ``torch`` marker of
the PyTorch oracle tests; the shared fixtures (``shared_mnist``, ``tiny_config_file``,
``run_cli``, over ``tests/support.py``, which holds what a module needs when it is collected).

``python -m pytest`` runs in parallel (``-n auto`` in pyproject.toml): one worker per core this
process may use, at most 8, and none on one core (see ``pytest_xdist_auto_num_workers``); with
two or more, each worker and the commands it runs use one BLAS thread (``pytest_configure``).

PyTorch is only a test oracle, and optional. A test that compares with it takes the ``torch``
fixture (the module), or carries ``@pytest.mark.torch`` when it reaches torch through a helper
(a parametrized case: ``pytest.param(..., marks=pytest.mark.torch)``). Such a test gets the
marker ``torch`` and is skipped when PyTorch is not installed, so ``python -m pytest -m torch``
runs exactly the oracle tests (``.ci/run`` does, once a torch wheel is installed).

Where PyTorch is not installed, a test module or a test without the marker that imports torch
fails with a message saying so (``TorchImportGuard``) instead of skipping or failing on the
import: a test that needs torch cannot stay out of the oracle selection unnoticed.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType, ModuleType

import pytest

from bpnn.sweep.executors import ONE_THREAD_ENV
from tests import support

TESTS = Path(__file__).resolve().parent
#: beyond this many workers the minute-long end-to-end tests bound the wall time anyway, and
#: each worker holds its own half GB of imported modules and module-scoped fixtures
MAX_WORKERS = 8


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """``-n auto``: one worker per core this process may run on, at most ``MAX_WORKERS``; on
    one core none (0: the tests run in the pytest process, a worker would only add its start-up).
    ``PYTEST_XDIST_AUTO_NUM_WORKERS``, when set, decides instead."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None
    if hasattr(os, "sched_getaffinity"):
        cores = len(os.sched_getaffinity(0))
    else:
        cores = os.cpu_count() or 1
    return 0 if cores <= 1 else min(cores, MAX_WORKERS)


#: frames between an ``import torch`` and the code that asked for it
IMPORT_MACHINERY = ("<frozen importlib", "importlib/__init__.py", "_pytest/outcomes.py")


def _torch_is_installed() -> bool:
    try:
        return importlib.util.find_spec("torch") is not None
    except ImportError:  # a finder that refuses torch outright
        return False


TORCH_INSTALLED = _torch_is_installed()


class UnmarkedTorchImportError(Exception):
    """Not an ``ImportError``, so that ``pytest.importorskip`` cannot turn it into a skip."""


class TorchImportGuard:
    """A ``sys.meta_path`` finder that refuses ``import torch`` from the tests' own code while
    no test marked ``torch`` runs. Active only where PyTorch is not installed: there every
    import of torch reaches the finders (nothing has imported it), so no test is missed."""

    def __init__(self) -> None:
        self.current: pytest.Item | None = None

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name != "torch":
            return None
        asking = _test_file_asking(sys._getframe(1))
        if asking is None:
            return None  # a library's optional import of torch: not ours to judge
        if self.current is not None and self.current.get_closest_marker("torch"):
            return None  # torch is simply missing: the marker's skip says so
        where = self.current.nodeid if self.current is not None else asking.name
        raise UnmarkedTorchImportError(
            f"{where} imports torch without the torch marker: take the `torch` fixture or mark "
            "it @pytest.mark.torch (see tests/conftest.py), so `pytest -m torch` selects it"
        )


def _test_file_asking(frame: FrameType | None) -> Path | None:
    """The file of the first frame outside the import machinery, if it is under tests/."""
    while frame is not None and any(part in frame.f_code.co_filename for part in IMPORT_MACHINERY):
        frame = frame.f_back
    if frame is None:
        return None
    path = Path(frame.f_code.co_filename).resolve()
    return path if path.is_relative_to(TESTS) else None


GUARD = TorchImportGuard()
if not TORCH_INSTALLED:
    sys.meta_path.insert(0, GUARD)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "torch: compares with PyTorch, the oracle (skipped where it is not installed)"
    )
    workers = config.getoption("numprocesses", None)
    if isinstance(workers, int) and workers > 1 and not hasattr(config, "workerinput"):
        # the workers are the parallelism: one BLAS thread each, as for a sweep's trials (two
        # workers of two spinning OpenBLAS threads on two cores cost up to 5 times the CPU).
        # Set here, before the workers start, so they and every process they run inherit it
        for name, value in ONE_THREAD_ENV.items():
            os.environ.setdefault(name, value)


@pytest.fixture
def torch() -> ModuleType:
    """PyTorch, the oracle; the test is skipped where it is not installed."""
    return pytest.importorskip("torch", reason="PyTorch is not installed")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "torch" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.torch)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    GUARD.current = item
    try:
        return (yield)
    finally:
        GUARD.current = None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("torch") and not TORCH_INSTALLED:
        pytest.skip("PyTorch is not installed")


# --- shared fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def shared_mnist() -> Path:
    """The folder of the shared MNIST files (read-only); the test is skipped where they are not
    all there."""
    if not support.HAVE_SHARED_MNIST:
        pytest.skip(f"shared MNIST files not found in {support.SHARED_MNIST}")
    return support.SHARED_MNIST


@pytest.fixture
def tiny_config_file(tmp_path: Path) -> Callable[..., Path]:
    """``tiny_config_file(name="tiny.yaml", **sections)`` writes the tiny iris config, with
    ``sections`` merged in (``support.tiny_raw``), to ``tmp_path / name`` and returns its path."""

    def write(name: str = "tiny.yaml", **sections: object) -> Path:
        path = tmp_path / name
        path.write_text(support.tiny_yaml(**sections), encoding="utf-8")
        return path

    return write


@pytest.fixture
def run_cli(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``run_cli(*args, cwd=tmp_path, timeout=None, env=None)``: ``python -m bpnn ARGS`` in a
    subprocess with this worktree's bpnn (``support.run_cli``), by default in the test's own
    folder so that no run lands in the repository."""

    def run(
        *args: object, cwd: Path | None = None, **options: object
    ) -> subprocess.CompletedProcess[str]:
        return support.run_cli(*args, cwd=tmp_path if cwd is None else cwd, **options)

    return run
