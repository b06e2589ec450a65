"""Fixtures of the run-directory tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests import support


@pytest.fixture(scope="session")
def finished_tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished run of the tiny config (4 epochs), trained once per test process through the
    real command line; never changed (``trained_run`` hands out copies)."""
    folder = tmp_path_factory.mktemp("finished-tiny")
    config = folder / "tiny.yaml"
    config.write_text(support.tiny_yaml(train={"epochs": 4}), encoding="utf-8")
    result = support.run_cli("train", config, "--out", folder / "run", "-q", cwd=folder)
    assert result.returncode == 0, result.stderr
    return folder / "run"


@pytest.fixture
def trained_run(tmp_path: Path, finished_tiny_run: Path) -> Path:
    """A copy of ``finished_tiny_run`` at ``tmp_path / "run"``, to damage or plant things in."""
    run = tmp_path / "run"
    shutil.copytree(finished_tiny_run, run, symlinks=True)
    return run
