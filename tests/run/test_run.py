"""The run directory: one process at a time (an OS lock), and a run that fails before its first
checkpoint leaves nothing that blocks using its ``--out`` again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bpnn.cli import app
from bpnn.errors import OutputError
from bpnn.run import RunDirectory
from tests.support import REPO

runner = CliRunner()

# long enough (hundreds of epochs) that the first process is still training when the second
# one starts; the tests kill it when they are done with it
LONG = """
data: {source: digits}
model: {hidden: [32]}
optimizer: {name: adam, lr: 0.001}
train: {epochs: 500, batch_size: 16}
"""
TINY = """
data: {source: iris}
model: {hidden: [4]}
train: {epochs: 2}
"""


def snapshot(run: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}


# --- the lock, in one process -------------------------------------------------------------------


def test_a_locked_run_directory_is_refused_naming_the_holders_pid(tmp_path: Path):
    first = RunDirectory(tmp_path)
    first.lock()
    first.claim()
    second = RunDirectory(tmp_path)
    with pytest.raises(OutputError, match=rf"in use by another bpnn process \(pid {os.getpid()}\)"):
        second.lock()
    first.unlock()
    second.lock()  # released: free again
    second.unlock()
    assert list(tmp_path.iterdir()) == []  # the lock file goes with the lock


def test_a_refused_lock_leaves_a_stale_lock_file_as_it_was(tmp_path: Path):
    (tmp_path / ".lock").write_text("12345\n")  # a killed process's: no lock is held on it
    run = RunDirectory(tmp_path)
    run.lock()
    run.unlock()  # never claimed: nothing written, nothing removed
    assert (tmp_path / ".lock").read_text() == "12345\n"
    run.lock()
    run.claim()
    run.unlock()
    assert not (tmp_path / ".lock").exists()


# --- two processes --------------------------------------------------------------------------------


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bpnn", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_until_training(process: subprocess.Popen[str], run: Path, epochs: int = 1) -> None:
    """Until ``process`` has trained ``epochs`` more epochs into ``run`` (it prints a line per
    epoch, after the epoch's metrics line is written): no sleeping, no polling."""
    assert process.stderr is not None
    done = 0
    while done < epochs:
        line = process.stderr.readline()
        assert line, f"{process.args} ended: {process.communicate()}"
        done += line.startswith("epoch ")
    assert (run / ".lock").read_text().strip() == str(process.pid)
    assert (run / "metrics.jsonl").read_text().count("\n") >= 1


def stop(process: subprocess.Popen[str]) -> None:
    process.kill()
    process.communicate()


def assert_consecutive_epochs(run: Path) -> None:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == list(range(1, len(rows) + 1))


@pytest.mark.slow
def test_two_trains_and_two_resumes_of_one_run_directory_never_run_at_once(tmp_path: Path):
    config = tmp_path / "long.yaml"
    config.write_text(LONG)
    run = tmp_path / "run"
    first = start("train", str(config), "--out", str(run))
    try:
        wait_until_training(first, run)
        second = subprocess.run(
            [sys.executable, "-m", "bpnn", "train", str(config), "--out", str(run), "--quiet"],
            cwd=REPO,
            capture_output=True,
            text=True,
        )
        assert second.returncode == 2
        assert second.stdout == ""
        assert second.stderr.count("\n") == 1
        assert f"in use by another bpnn process (pid {first.pid})" in second.stderr
        wait_until_training(first, run)  # the first trains on, undisturbed
    finally:
        stop(first)
    assert_consecutive_epochs(run)

    resuming = start("resume", str(run))
    try:
        wait_until_training(resuming, run)
        other = subprocess.run(
            [sys.executable, "-m", "bpnn", "resume", str(run), "--quiet"],
            cwd=REPO,
            capture_output=True,
            text=True,
        )
        assert other.returncode == 2
        assert other.stderr.count("\n") == 1
        assert f"in use by another bpnn process (pid {resuming.pid})" in other.stderr
        wait_until_training(resuming, run)
    finally:
        stop(resuming)
    assert_consecutive_epochs(run)


def test_train_into_a_directory_that_holds_a_run_is_refused_and_changes_nothing(tmp_path: Path):
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY)
    run = tmp_path / "run"
    assert runner.invoke(app, ["train", str(config), "--out", str(run), "-q"]).exit_code == 0
    before = snapshot(run)
    result = runner.invoke(app, ["train", str(config), "--out", str(run), "-q"])
    assert result.exit_code == 2
    assert "already holds a run" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert snapshot(run) == before


# --- a run that fails before its first checkpoint -----------------------------------------------


def assert_free_for_a_new_run(config: Path, run: Path) -> None:
    """``resume`` refuses ``run`` with one line, and ``train --out run`` then trains into it."""
    result = runner.invoke(app, ["resume", str(run)])
    assert result.exit_code == 2  # a refused resume
    assert len(result.output.strip().splitlines()) == 1, result.output
    result = runner.invoke(app, ["train", str(config), "--out", str(run), "-q"])
    assert result.exit_code == 0, result.output
    assert (run / "checkpoints" / "last.npz").is_file()


@pytest.mark.parametrize("existed", [False, True])
def test_a_run_whose_loss_is_nan_in_epoch_1_leaves_nothing_behind(tmp_path: Path, existed: bool):
    diverging = tmp_path / "diverging.yaml"
    diverging.write_text(TINY + "optimizer: {name: sgd, lr: 1.0e+30}\n")
    run = tmp_path / "run"
    if existed:
        run.mkdir()
    result = runner.invoke(app, ["train", str(diverging), "--out", str(run), "-q"])
    assert result.exit_code == 1
    assert "became" in result.output
    assert (sorted(run.iterdir()) == []) if existed else not run.exists()
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY)
    if not existed:
        run.mkdir()  # resume of a missing directory is another one-line error
    assert_free_for_a_new_run(config, run)


def test_a_run_whose_data_fails_after_the_directory_was_made_leaves_nothing_behind(
    tmp_path: Path,
):
    csv = tmp_path / "data.csv"
    csv.write_text("a,b,label\n1,2,x\n3,oops,y\n")
    broken = tmp_path / "broken.yaml"
    broken.write_text(f"data: {{source: csv, path: {csv}, target: label}}\ntrain: {{epochs: 2}}\n")
    run = tmp_path / "run"
    run.mkdir()
    result = runner.invoke(app, ["train", str(broken), "--out", str(run), "-q"])
    assert result.exit_code == 2
    assert list(run.iterdir()) == []
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY)
    assert_free_for_a_new_run(config, run)
