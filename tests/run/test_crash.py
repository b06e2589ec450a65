"""A kill at any write leaves a run directory that ``bpnn resume`` continues bit for bit.

Each test kills a real process (SIGKILL, through the ``BPNN_CRASH_AT`` hook of ``bpnn.faults``)
at one point between the writes of a run directory, resumes it, and compares every file with
the run that was never interrupted. The processes are forked from the test process (the CLI
with its modules already imported), so the many kills cost milliseconds, not interpreter
start-ups; ``test_a_killed_python_m_bpnn_process_resumes_bit_for_bit`` does the same with a
fresh ``python -m bpnn``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bpnn.cli import app
from bpnn.run import RunDirectory
from tests.support import REPO

# best (val_accuracy) improves at epochs 1, 4, 5 and 8 and not at 2, 3, 6, 7; the plateau
# schedule halves the rate after epochs 3 and 7; dropout makes the RNG state matter
CONFIG = """
name: crash
data: {source: iris}
model: {hidden: [8], dropout: 0.2}
optimizer: {name: adam, lr: 0.05}
schedule: {name: reduce_on_plateau, monitor: val_accuracy, patience: 1, factor: 0.5}
train: {epochs: 8, batch_size: 16, early_stopping: {monitor: val_accuracy, patience: 4}}
"""
BEST_EPOCHS = (1, 4, 5, 8)
EPOCHS = 8


def cli(args: list[str], crash_at: str | None = None, log: Path | None = None) -> int:
    """Run ``bpnn ARGS`` in a forked child process; its return code as ``subprocess`` gives it
    (``-9`` when ``BPNN_CRASH_AT`` killed it). stdout and stderr go to ``log``."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 70
        try:
            if log is not None:
                sys.stdout = sys.stderr = open(log, "w", encoding="utf-8")  # noqa: SIM115
            os.environ.pop("BPNN_CRASH_AT", None)
            if crash_at is not None:
                os.environ["BPNN_CRASH_AT"] = crash_at
            app(args, prog_name="bpnn")
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


@pytest.fixture(scope="module")
def config_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # the slow imports once here, not in every forked child
    import matplotlib.pyplot  # noqa: F401
    import sklearn.datasets  # noqa: F401

    import bpnn.plots  # noqa: F401

    path = tmp_path_factory.mktemp("crash") / "crash.yaml"
    path.write_text(CONFIG)
    return path


@pytest.fixture(scope="module")
def reference(config_file: Path) -> Path:
    """The uninterrupted run."""
    run = config_file.parent / "reference"
    assert cli(["train", str(config_file), "--out", str(run), "--quiet"]) == 0
    rows = metric_rows(run)
    assert [row["epoch"] for row in rows] == list(range(1, EPOCHS + 1))
    improved = [e for e in range(1, EPOCHS + 1) if e in BEST_EPOCHS]
    assert json.loads((run / "summary.json").read_text())["best_epoch"] == improved[-1]
    return run


def metric_rows(run: Path) -> list[dict]:
    """The rows of metrics.jsonl without their timings; every non-blank line must parse."""
    lines = (run / "metrics.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    for row in rows:
        row.pop("epoch_seconds")
    return rows


def checkpoint_arrays(path: Path) -> dict[str, object]:
    """Everything a checkpoint holds but the timing of its epoch and the bpnn version."""
    with np.load(path, allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files if k != "meta"}
        meta = json.loads(str(archive["meta"]))
    meta["metrics"].pop("epoch_seconds")
    meta.pop("bpnn_version")
    return {"meta": meta, **arrays}


def assert_same_run(run: Path, reference: Path) -> None:
    """``run`` holds what the uninterrupted ``reference`` holds (timings aside), and nothing of
    a killed write: no temporary file, no lock held. (A run killed after its summary keeps the
    killed process's .lock: the resume that finds it complete refuses, and a refused command
    changes nothing.)"""
    assert metric_rows(run) == metric_rows(reference)
    for which in ("last", "best"):
        got = checkpoint_arrays(run / "checkpoints" / f"{which}.npz")
        want = checkpoint_arrays(reference / "checkpoints" / f"{which}.npz")
        assert got.keys() == want.keys(), which
        assert got["meta"] == want["meta"], which
        for key in want:
            if key != "meta":
                np.testing.assert_array_equal(got[key], want[key], err_msg=f"{which}: {key}")
    summary = json.loads((run / "summary.json").read_text())
    expected = json.loads((reference / "summary.json").read_text())
    summary.pop("total_seconds")
    expected.pop("total_seconds")
    assert summary == expected
    assert (run / "config.yaml").read_text() == (reference / "config.yaml").read_text()
    assert [p.name for p in run.rglob("*.tmp")] == []
    lock = RunDirectory(run)
    lock.lock()  # free
    lock.unlock()


def resume_until_done(run: Path, *extra: str) -> None:
    """``bpnn resume RUN`` (a run killed after its summary is complete: resume says so)."""
    log = run.parent / f"{run.name}.resume.log"
    code = cli(["resume", str(run), "--quiet", *extra], log=log)
    if code == 0:
        assert not (run / ".lock").exists()
    else:
        assert code == 2, log.read_text()  # a refused resume: bad input
        assert "already trained" in log.read_text()


#: every write of a training run, at epochs where best.npz improves and where it does not
TRAIN_KILLS = [
    "last:written@2",
    "last:written@4",
    "last:written@8",
    "last:renamed@1",
    "last:renamed@3",
    "last:renamed@4",  # best improved here: after both renames, before the metrics row
    "last:renamed@8",
    "best:renamed@2",  # epoch 4: between the two renames, best.npz ahead of last.npz
    "best:written@2",  # epoch 4
    "best:renamed@3",  # epoch 5
    "best:renamed@4",  # epoch 8, the last
    "metrics:torn@1",
    "metrics:torn@5",
    "metrics:torn@8",
    "metrics:written@3",
    "metrics:written@8",
    "summary:written",
    "summary:renamed",
]


@pytest.mark.slow
@pytest.mark.parametrize("crash_at", TRAIN_KILLS)
def test_a_run_killed_at_any_write_resumes_bit_for_bit(
    crash_at: str, config_file: Path, reference: Path
):
    run = config_file.parent / crash_at.replace(":", "-").replace("@", "-")
    assert cli(["train", str(config_file), "--out", str(run), "--quiet"], crash_at) == -9
    resume_until_done(run)
    assert_same_run(run, reference)


#: (where the training run is killed, where the resume of it is killed)
RESUME_KILLS = [
    ("last:renamed@2", "last:written@1"),
    ("last:renamed@2", "best:renamed@1"),  # epoch 4
    ("last:renamed@4", "last:renamed@1"),  # best.npz repaired, then killed again at epoch 5
    ("last:renamed@3", "metrics:torn@2"),
    ("metrics:torn@5", "metrics:written@1"),  # the repaired row, then epoch 6
    ("last:renamed@8", "summary:written"),
    ("summary:written", "summary:renamed"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("train_crash", "resume_crash"), RESUME_KILLS)
def test_a_resume_killed_at_any_write_resumes_bit_for_bit(
    train_crash: str, resume_crash: str, config_file: Path, reference: Path
):
    run = config_file.parent / f"{train_crash}-{resume_crash}".replace(":", "-").replace("@", "-")
    assert cli(["train", str(config_file), "--out", str(run), "--quiet"], train_crash) == -9
    assert cli(["resume", str(run), "--quiet"], resume_crash) == -9
    resume_until_done(run)
    assert_same_run(run, reference)


@pytest.mark.slow
@pytest.mark.parametrize("crash_at", ["config:written", "config:renamed", "last:written@1"])
def test_a_resume_with_more_epochs_killed_while_saving_the_config_continues(
    crash_at: str, config_file: Path, reference: Path
):
    run = config_file.parent / f"extend-{crash_at}".replace(":", "-").replace("@", "-")
    args = ["train", str(config_file), "--out", str(run), "--quiet", "--set", "train.epochs=6"]
    assert cli(args) == 0
    assert cli(["resume", str(run), "--epochs", str(EPOCHS), "--quiet"], crash_at) == -9
    resume_until_done(run, "--epochs", str(EPOCHS))
    assert_same_run(run, reference)


@pytest.mark.slow
@pytest.mark.parametrize(
    "crash_at",
    ["config:written", "config:renamed", "best:written@1", "best:renamed@1", "last:written@1"],
)
def test_a_run_killed_before_its_first_checkpoint_is_refused_by_resume_and_trained_again(
    crash_at: str, config_file: Path, reference: Path
):
    run = config_file.parent / f"first-{crash_at}".replace(":", "-").replace("@", "-")
    assert cli(["train", str(config_file), "--out", str(run), "--quiet"], crash_at) == -9
    log = run.parent / f"{run.name}.log"
    assert cli(["resume", str(run)], log=log) in (1, 2)
    lines = log.read_text().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert cli(["train", str(config_file), "--out", str(run), "--quiet"], log=log) == 0, (
        log.read_text()
    )
    assert_same_run(run, reference)


@pytest.mark.slow
def test_a_killed_python_m_bpnn_process_resumes_bit_for_bit(config_file: Path, reference: Path):
    """Killed between the two checkpoint renames of epoch 4 (best improves there, and best.npz
    is written first): a real ``python -m bpnn`` process, not a fork."""
    run = config_file.parent / "python-m-bpnn"
    command = [sys.executable, "-m", "bpnn"]
    env = {**os.environ, "BPNN_CRASH_AT": "best:renamed@2"}
    train = [*command, "train", str(config_file), "--out", str(run), "--quiet"]
    killed = subprocess.run(train, cwd=REPO, env=env, capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    best = checkpoint_arrays(run / "checkpoints" / "best.npz")
    last = checkpoint_arrays(run / "checkpoints" / "last.npz")
    assert (best["meta"]["epoch"], last["meta"]["epoch"]) == (4, 3)  # last.npz not yet renamed
    env.pop("BPNN_CRASH_AT")
    resumed = subprocess.run(
        [*command, "resume", str(run), "--quiet"], cwd=REPO, env=env, capture_output=True
    )
    assert resumed.returncode == 0, resumed.stderr
    assert_same_run(run, reference)


# --- torn and blank lines ---------------------------------------------------------------------


@pytest.mark.slow
def test_plot_and_resume_accept_a_torn_last_line_of_metrics(config_file: Path, reference: Path):
    run = config_file.parent / "torn"
    assert cli(["train", str(config_file), "--out", str(run), "--quiet"], "metrics:torn@3") == -9
    text = (run / "metrics.jsonl").read_text()
    assert not text.endswith("\n") and text.count("\n") == 2  # two rows and half of the third
    log = run.parent / "torn.log"
    assert cli(["plot", str(run)], log=log) == 0, log.read_text()
    assert (run / "plots" / "loss.png").is_file()
    assert cli(["resume", str(run), "--quiet"], log=log) == 0, log.read_text()
    assert_same_run(run, reference)


@pytest.mark.slow
def test_plot_and_resume_accept_a_trailing_blank_line_of_metrics(
    config_file: Path, reference: Path
):
    run = config_file.parent / "blank"
    assert cli(["train", str(config_file), "--out", str(run), "--quiet"], "metrics:written@3") == -9
    with (run / "metrics.jsonl").open("a") as handle:
        handle.write("\n")
    log = run.parent / "blank.log"
    assert cli(["plot", str(run)], log=log) == 0, log.read_text()
    assert cli(["resume", str(run), "--quiet"], log=log) == 0, log.read_text()
    assert_same_run(run, reference)
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert all(line.strip() for line in lines)  # one JSON object per line, none blank


@pytest.mark.slow
def test_stale_temporary_files_are_removed_at_the_next_start(config_file: Path, reference: Path):
    run = config_file.parent / "stale"
    assert cli(["train", str(config_file), "--out", str(run), "--quiet"], "best:written@2") == -9
    stale = [p.name for p in run.rglob("*.tmp")]
    assert stale and all(name.startswith(".best.npz.") for name in stale)
    assert cli(["resume", str(run), "--quiet"]) == 0
    assert_same_run(run, reference)  # no .tmp left


def test_assert_same_run_tells_another_run_apart(
    config_file: Path, reference: Path, tmp_path: Path
):
    """The check the tests above rest on: a copy of the reference passes, a run of another seed
    fails."""
    copy = tmp_path / "copy"
    shutil.copytree(reference, copy)
    assert_same_run(copy, reference)
    other = tmp_path / "other"
    args = ["train", str(config_file), "--out", str(other), "--quiet", "--set", "seed=1"]
    assert cli(args) == 0
    with pytest.raises(AssertionError):
        assert_same_run(other, reference)


@pytest.mark.slow
@pytest.mark.parametrize(
    "crash_at", ["last:renamed@3", "metrics:torn@3", "metrics:written@3", "summary:written"]
)
def test_a_run_killed_in_the_epoch_early_stopping_ends_it_resumes_bit_for_bit(
    crash_at: str, config_file: Path, tmp_path: Path
):
    """val_accuracy does not improve at epochs 2 and 3: patience 2 stops the run at epoch 3."""
    stopping = ["--set", "train.early_stopping.patience=2"]
    reference = tmp_path / "reference"
    assert cli(["train", str(config_file), "--out", str(reference), "--quiet", *stopping]) == 0
    summary = json.loads((reference / "summary.json").read_text())
    assert summary["epochs_run"] == 3 and summary["stop_reason"].startswith("early_stopping")
    run = tmp_path / "run"
    args = ["train", str(config_file), "--out", str(run), "--quiet", *stopping]
    assert cli(args, crash_at) == -9
    resume_until_done(run)
    assert_same_run(run, reference)
