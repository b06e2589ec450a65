"""One trial, as a worker process (local or on a Dask worker) runs it.

``run_trial(task)`` loads the base config with the trial's overrides, trains it into the
trial's run directory (an ordinary run directory: ``eval``, ``plot``, ``runs`` and ``diagnose``
work on it), and returns a ``TrialResult``. It never raises for a failing trial: a bad value
or a diverging loss is a result with status ``failed`` and a one-line error. It never touches
the Optuna storage; the parent process asks for trials and tells their results.

An interrupted trial (``task.resume``) continues from ``checkpoints/last.npz`` when its run
directory has one, and otherwise starts again in an emptied directory.

Pruning (``task.pruning``): the parent hands the worker a snapshot of the study's finished
trials taken when the trial was dispatched; the worker reports the metric after each epoch to
an in-memory copy of that study and asks Optuna's ``MedianPruner`` whether to stop, so the
rule is Optuna's own (the trial's best value so far is worse than the median of the completed
trials at the same epoch). Trials that finish while this one runs are not seen by it.
"""

from __future__ import annotations

import math
import shutil
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bpnn.callbacks import Callback
from bpnn.config import short
from bpnn.errors import BpnnError, CheckpointError, DataError, ResumeError

# the one place the sweep reaches the run directory's owner (re-point it when run.py lands)
from bpnn.run import RunDirectory, read_metrics_file, resume_training, run_training

#: a finished trial's status, best first (the order the ranking sorts them in)
STATUSES = ("completed", "pruned", "failed")


@dataclass(frozen=True)
class PruningSnapshot:
    """What a worker needs to apply Optuna's median pruner to its trial."""

    direction: str
    finished_trials: list[Any]  # optuna FrozenTrial, picklable
    warmup_epochs: int
    startup_trials: int


@dataclass(frozen=True)
class TrialTask:
    """Everything a worker needs to run one trial (picklable, paths absolute)."""

    number: int
    overrides: dict[str, Any]
    base: str
    run_dir: str
    metric: str
    direction: str
    resume: bool = False
    pruning: PruningSnapshot | None = None


@dataclass
class TrialResult:
    """One line of sweep.jsonl, plus the per-epoch values of the metric for the study."""

    trial: int
    overrides: dict[str, Any]
    status: str  # one of STATUSES
    metric: float | None
    seconds: float
    run_dir: str
    error: str | None = None
    epoch_values: dict[int, float] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        return {
            "trial": self.trial,
            "overrides": self.overrides,
            "status": self.status,
            "metric": self.metric,
            "seconds": round(self.seconds, 3),
            "run_dir": self.run_dir,
            "error": self.error,
        }


class MedianPruning(Callback):
    """Reports ``metric`` after each epoch to an in-memory copy of the study and stops training
    when Optuna's ``MedianPruner`` says so."""

    def __init__(self, snapshot: PruningSnapshot, metric: str, earlier: dict[int, float]) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.metric = metric
        self.pruned_at: int | None = None
        self.study = optuna.create_study(
            direction=snapshot.direction,
            pruner=optuna.pruners.MedianPruner(
                n_startup_trials=snapshot.startup_trials,
                n_warmup_steps=snapshot.warmup_epochs,
            ),
        )
        self.study.add_trials(snapshot.finished_trials)
        self.trial = self.study.ask()
        for epoch, value in earlier.items():  # a resumed trial's epochs before the interruption
            self.trial.report(value, epoch)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        if self.metric not in logs:
            return
        self.trial.report(float(logs[self.metric]), epoch)
        if self.trial.should_prune():
            self.pruned_at = epoch
            self.trainer.stop(f"pruned: {self.metric} below the median of earlier trials")


def run_trial(task: TrialTask) -> TrialResult:
    """Run one trial to its end and describe how it went (never raises for a bad trial)."""
    from threadpoolctl import threadpool_limits

    started = time.perf_counter()
    run_dir = Path(task.run_dir)
    pruning: MedianPruning | None = None
    try:
        with threadpool_limits(limits=1):  # one BLAS thread per trial; the workers run in parallel
            if task.pruning is not None:
                earlier = epoch_values(run_dir, task.metric) if task.resume else {}
                pruning = MedianPruning(task.pruning, task.metric, earlier)
            summary = _train(task, run_dir, pruning)
        values = epoch_values(run_dir, task.metric)
        metric = trial_metric(task.metric, task.direction, values, summary)
    except BpnnError as error:  # a tampered run file included: it names the file
        return _failed(task, started, str(error))
    except Exception as error:  # a trial's crash is its result; the sweep goes on
        where = traceback.extract_tb(error.__traceback__)[-1]
        message = f"{type(error).__name__}: {error} ({Path(where.filename).name}:{where.lineno})"
        return _failed(task, started, message)
    pruned = pruning is not None and pruning.pruned_at is not None
    if metric is None and not pruned:
        return _failed(task, started, f"the run reported no {task.metric}", values)
    return TrialResult(
        trial=task.number,
        overrides=task.overrides,
        status="pruned" if pruned else "completed",
        metric=metric,
        seconds=time.perf_counter() - started,
        run_dir=task.run_dir,
        epoch_values=values,
    )


def _train(task: TrialTask, run_dir: Path, progress: Callback | None) -> dict[str, Any]:
    """Train the trial: resume an interrupted run from its checkpoint if it has one, else start
    afresh (an interrupted run without one is emptied first)."""
    from bpnn.config import load_config
    from bpnn.metrics import is_headline
    from bpnn.sweep.spec import as_assignments

    if task.resume and (run_dir / "summary.json").is_file():  # only the parent was killed
        return finished_summary(run_dir, task.metric)
    if task.resume and (run_dir / "checkpoints" / "last.npz").is_file():
        try:
            return resume_training(run_dir, progress=progress)
        except (ResumeError, CheckpointError):
            pass  # e.g. it had stopped early or was torn mid-write: train it again
    if run_dir.exists():
        shutil.rmtree(run_dir)
    config = load_config(task.base, as_assignments(task.overrides))
    if task.metric not in config.epoch_scores() and not is_headline(task.metric):
        # the sweep ranks by a score the epochs would not measure: every epoch measures it
        train = config.train.model_copy(update={"metrics": [*config.train.metrics, task.metric]})
        config = config.model_copy(update={"train": train})
    _, summary = run_training(config, run_dir, progress=progress)
    return summary


def finished_summary(run_dir: Path, metric: str) -> dict[str, Any]:
    """The summary.json of a finished run, read by its directory's owner; one that is not a
    JSON object, or whose ``metric`` is not a number, is a ``DataError`` naming it (the trial
    fails with it, its run directory kept)."""
    run = RunDirectory(run_dir)
    summary = run.read_summary()
    if summary is None:
        problem = run.summary_problem()
        raise DataError(f"{run.summary_path}: not the summary of a run: {problem}")
    value = summary.get(metric)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise DataError(f"{run.summary_path}: {metric} is {short(value)}, not a number")
    return summary


def epoch_values(run_dir: Path, metric: str) -> dict[int, float]:
    """The metric per epoch from the run's metrics.jsonl (empty if it has none), read by
    ``read_metrics_file`` (a line that is not a row of metrics, before a torn last one, is a
    ``DataError`` naming it)."""
    path = run_dir / "metrics.jsonl"
    values = {}
    for row in read_metrics_file(path):
        value = row.get(metric)
        if isinstance(value, dict):  # a section of numbers (health), never a metric's value
            raise DataError(f"{path}: epoch {row['epoch']}: {metric} is not a number")
        if value is not None:
            values[row["epoch"]] = float(value)
    return values


def trial_metric(
    metric: str, direction: str, values: dict[int, float], summary: dict[str, Any]
) -> float | None:
    """A trial's score: a test_ metric as summary.json has it (the best checkpoint on the test
    split); a per-epoch metric at its best epoch (highest or lowest by ``direction``)."""
    if metric in summary:
        value = summary[metric]
    elif values:
        value = max(values.values()) if direction == "maximize" else min(values.values())
    else:
        return None
    return float(value) if value is not None and math.isfinite(value) else None


def _failed(
    task: TrialTask, started: float, error: str, values: dict[int, float] | None = None
) -> TrialResult:
    return TrialResult(
        trial=task.number,
        overrides=task.overrides,
        status="failed",
        metric=None,
        seconds=time.perf_counter() - started,
        run_dir=task.run_dir,
        error=" ".join(error.split()),
        epoch_values=values or {},
    )
