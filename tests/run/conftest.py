"""Fixtures of the run-directory tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def trained_run(tmp_path: Path, tiny_config_file, run_cli) -> Path:
    """A finished run of the tiny config (4 epochs) at ``tmp_path / "run"``, trained through the
    CLI, to damage or plant things in."""
    config = tiny_config_file(train={"epochs": 4})
    run = tmp_path / "run"
    result = run_cli("train", config, "--out", run, "-q")
    assert result.returncode == 0, result.stderr
    return run
