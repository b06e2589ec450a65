"""The run directory: its one owner. Creating, locking, writing and reading back every file in it,
and the whole pipeline of a run (``run_training``, ``resume_training``, evaluating a checkpoint).

A run directory holds::

    .lock                 the OS lock (flock) of the process training it; holds its pid
    config.yaml           the resolved config, a readable copy (the checkpoint's is the authority)
    metrics.jsonl         one JSON object per epoch, appended, never rewritten before the last
                          checkpoint's epoch
    checkpoints/last.npz  after every epoch: weights, optimizer, schedule, RNGs, callback state
    checkpoints/best.npz  the epoch with the best monitored metric
    summary.json          the test metrics of best.npz and how the run ended
    plots/                training curves

Writes happen in an order that a kill at any point cannot make disagree: each epoch writes
``last.npz`` (temporary file, fsync, rename), then ``best.npz`` when the monitor improved, then the
metrics line; the summary (atomically) and the plots come last. ``resume`` repairs what a kill
can leave: metrics rows after the checkpoint's epoch (torn or not) are dropped and a missing row
for it is added back from the checkpoint, a ``best.npz`` behind the checkpoint's best epoch is
rewritten from ``last.npz`` (they were the same contents), and a run whose last epoch is done
but has no summary is finished. Temporary files of a killed write are removed at the next start.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import math
import os
import shutil
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from bpnn import checkpoint
from bpnn.callbacks import Callback, Checkpointer, EarlyStopping, MetricsWriter
from bpnn.config import Config, load_config, validate
from bpnn.data import Dataset, encode_labels, load_dataset, read_labelled
from bpnn.errors import CheckpointError, ConfigError, DataError, OutputError, TrainingError
from bpnn.evaluation import evaluate
from bpnn.faults import crash_point
from bpnn.health import HealthMonitor, diagnose
from bpnn.model import Model, build_network, load_model, make_seeds
from bpnn.nn.optimizers import make_optimizer
from bpnn.nn.schedules import make_schedule
from bpnn.train import Trainer

Log = Callable[[str], None]


def _no_log(message: str) -> None:
    """The default ``log``: say nothing."""


def strict_json(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None, so that it is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [strict_json(v) for v in value]
    return value


def _write_atomically(path: Path, text: str, point: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    crash_point(f"{point}:written")
    os.replace(temporary, path)
    crash_point(f"{point}:renamed")


class RunDirectory:
    """The files of one run directory, and the lock that makes one process their only writer."""

    #: the files and folders bpnn writes in a run directory (nothing else is ever touched)
    OWN_FILES = (".lock", "config.yaml", "metrics.jsonl", "summary.json")
    OWN_FOLDERS = ("checkpoints", "plots")

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock_fd: int | None = None

    # --- the files ---------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.path / "config.yaml"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def summary_path(self) -> Path:
        return self.path / "summary.json"

    @property
    def lock_path(self) -> Path:
        return self.path / ".lock"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    def checkpoint_path(self, which: str) -> Path:
        """``checkpoints/last.npz`` or ``checkpoints/best.npz``."""
        return self.checkpoints / f"{which}.npz"

    def holds_run(self) -> bool:
        """A run is here once its first epoch is checkpointed."""
        return self.checkpoint_path("last").is_file()

    # --- creating and locking ----------------------------------------------------------------
    @classmethod
    def create(cls, out: Path | None, name: str, root: Path = Path("runs")) -> RunDirectory:
        """A new, locked run directory: ``out`` (it must not exist, be empty, or hold only what
        a run that never finished its first epoch left), else ``root/NAME-YYYYmmdd-HHMMSS``.
        Creation is atomic (``mkdir``), and the lock is taken before anything is written, so two
        processes can never share one."""
        if out is None:
            stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
            for attempt in range(1, 1000):
                suffix = "" if attempt == 1 else f"-{attempt}"
                run = cls(root / f"{name}-{stamp}{suffix}")
                try:
                    run.path.mkdir(parents=True)
                except FileExistsError:
                    continue
                run.lock()
                return run
            raise OutputError(f"{root}: cannot find a free run directory name for {name}")
        run = cls(out)
        try:
            run.path.mkdir(parents=True)
        except FileExistsError:
            if not run.path.is_dir():
                raise OutputError(
                    f"{out}: exists and is not a directory; choose another --out"
                ) from None
            entries = set(os.listdir(run.path))
            if entries and ".lock" not in entries:  # not made by bpnn: never touch it
                raise OutputError(f"{out}: directory is not empty; choose another --out") from None
        run.lock()
        try:
            run._clear_unfinished()
        except BaseException:
            run.unlock()
            raise
        return run

    def _clear_unfinished(self) -> None:
        """Remove what a run that never checkpointed its first epoch left; refuse a directory
        that holds a run or anything bpnn did not write."""
        if self.holds_run():
            raise OutputError(
                f"{self.path}: already holds a run; continue it with 'bpnn resume {self.path}' "
                "or choose another --out"
            )
        foreign = sorted(
            entry
            for entry in os.listdir(self.path)
            if entry not in self.OWN_FILES + self.OWN_FOLDERS
        )
        if foreign:
            raise OutputError(
                f"{self.path}: directory is not empty ({foreign[0]}); choose another --out"
            )
        for entry in self.OWN_FILES[1:]:
            (self.path / entry).unlink(missing_ok=True)
        for folder in self.OWN_FOLDERS:
            shutil.rmtree(self.path / folder, ignore_errors=True)

    def lock(self) -> None:
        """Take the directory's OS lock (``flock`` on ``.lock``; the OS releases it when the
        process ends, even by SIGKILL). Another process holding it is an ``OutputError`` naming
        that process. The lock file is removed again by ``unlock``."""
        while True:
            try:
                fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as error:
                raise OutputError(f"{self.path}: cannot lock: {error.strerror or error}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as error:
                holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
                os.close(fd)
                if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise OutputError(f"{self.path}: cannot lock: {error.strerror}") from None
                raise OutputError(
                    f"{self.path}: in use by another bpnn process (pid {holder}); "
                    "wait for it to end or choose another directory"
                ) from None
            try:
                same_file = os.fstat(fd).st_ino == os.stat(self.lock_path).st_ino
            except FileNotFoundError:
                same_file = False
            if same_file:  # not a file its last holder removed while we opened it
                self._lock_fd = fd
                return
            os.close(fd)

    def claim(self) -> None:
        """Write this process's id into the lock file (after every check has passed)."""
        assert self._lock_fd is not None
        os.ftruncate(self._lock_fd, 0)
        os.pwrite(self._lock_fd, f"{os.getpid()}\n".encode(), 0)

    def unlock(self) -> None:
        """Remove the lock file and release the lock."""
        if self._lock_fd is None:
            return
        self.lock_path.unlink(missing_ok=True)
        os.close(self._lock_fd)
        self._lock_fd = None

    def remove_stale_temporaries(self) -> None:
        """Delete the temporary files of writes a killed process never finished."""
        for folder in (self.path, self.checkpoints):
            if folder.is_dir():
                for stale in folder.glob(".*.tmp"):
                    stale.unlink(missing_ok=True)

    def remove_unfinished(self, created: bool) -> None:
        """After a failure before the first checkpoint: remove what this run wrote (and the
        directory itself when this run created it)."""
        for entry in self.OWN_FILES[1:]:
            (self.path / entry).unlink(missing_ok=True)
        for folder in self.OWN_FOLDERS:
            shutil.rmtree(self.path / folder, ignore_errors=True)
        self.remove_stale_temporaries()
        if created:
            self.unlock()
            with contextlib.suppress(OSError):
                self.path.rmdir()

    # --- writing -----------------------------------------------------------------------------
    def write_config(self, config: Config) -> None:
        _write_atomically(self.config_path, config.to_yaml(), "config")

    def save_checkpoint(self, which: str, contents: checkpoint.CheckpointContents) -> None:
        checkpoint.save(self.checkpoint_path(which), contents)

    def append_metrics(self, logs: dict[str, Any]) -> None:
        """Append one epoch's logs as a line of strict JSON (written in two parts around a crash
        point, so the tests can leave a torn line as a full disk would)."""
        line = json.dumps(strict_json(logs), allow_nan=False) + "\n"
        half = len(line) // 2
        with self.metrics_path.open("a", encoding="utf-8") as handle:
            handle.write(line[:half])
            handle.flush()
            crash_point("metrics:torn")
            handle.write(line[half:])
        crash_point("metrics:written")

    def write_summary(self, summary: dict[str, Any]) -> None:
        text = json.dumps(strict_json(summary), indent=2, allow_nan=False) + "\n"
        _write_atomically(self.summary_path, text, "summary")

    def plot(self) -> list[Path]:
        """Draw the training curves of ``metrics.jsonl`` into ``plots/`` (and ``health.png``,
        the per-layer gradient health, when the metrics hold it)."""
        from bpnn.plots import plot_health, plot_history  # start-up: matplotlib only to draw

        history = self.read_metrics()
        folder = self.path / "plots"
        return plot_history(history, folder, self.path.name) + plot_health(
            history, folder, self.path.name
        )

    # --- reading -----------------------------------------------------------------------------
    def read_metrics(self) -> list[dict[str, Any]]:
        """The epochs of ``metrics.jsonl`` in order. Blank lines are skipped and a torn last
        line (a write cut short) is ignored; a bad line before the last is a ``DataError``."""
        return read_metrics_file(self.metrics_path)

    def read_summary(self) -> dict[str, Any] | None:
        try:
            summary = json.loads(self.summary_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return summary if isinstance(summary, dict) else None

    def repair_metrics(self, epoch: int, row: dict[str, Any]) -> None:
        """Make ``metrics.jsonl`` hold exactly epochs 1..``epoch``: rows after ``epoch`` (torn or
        not) are cut off, and the row of ``epoch`` is added back from the checkpoint when a kill
        came before it was written. Earlier rows are never rewritten."""
        keep = 0  # bytes of the file that hold rows 1..epoch
        have = 0
        if self.metrics_path.is_file():
            with self.metrics_path.open("rb") as handle:
                for raw in handle:
                    if not raw.strip():
                        keep += len(raw)
                        continue
                    try:
                        parsed = json.loads(raw)
                    except ValueError:
                        break
                    if not raw.endswith(b"\n") or parsed.get("epoch", 0) > epoch:
                        break
                    keep += len(raw)
                    have = parsed["epoch"]
            os.truncate(self.metrics_path, keep)
        if have == epoch - 1:
            self.append_metrics(row)


def read_metrics_file(path: Path) -> list[dict[str, Any]]:
    """The rows of a ``metrics.jsonl``: blank lines skipped, a torn last line ignored."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
    except FileNotFoundError:
        return []
    except OSError as error:
        raise DataError(f"{path}: cannot read: {error.strerror or error}") from None
    rows = []
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    for number, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                raise ValueError("not an object")
        except ValueError:
            if number == last:
                break  # a torn last line: the write was cut short
            raise DataError(f"{path}: line {number + 1} is not a JSON object") from None
        rows.append(row)
    return rows


# --- the pipeline ---------------------------------------------------------------------------


def load_data(config: Config, log: Log = _no_log) -> Dataset:
    """The config's data set, split and scaled, in the training dtype."""
    return load_dataset(
        config.data, task=config.task, seed=config.seed, dtype=np.dtype(config.train.dtype), log=log
    )


def build_model(config: Config, data: Dataset, rng: np.random.Generator) -> Model:
    """A fresh model for ``data`` as the config describes, initialized from ``rng``."""
    network = build_network(config, data.n_features, data.n_classes, data.n_targets, rng)
    return Model(
        network,
        config,
        input_scaling=data.input_scaling,
        target_scaling=data.target_scaling,
        classes=data.classes,
        feature_names=list(data.feature_names),
        target_name=data.target_name,
    )


def make_trainer(
    config: Config,
    model: Model,
    data: Dataset,
    shuffle_rng: np.random.Generator,
    callbacks: Sequence[Callback],
    start_epoch: int = 0,
) -> Trainer:
    """The trainer of a config: its optimizer (built over the model's parameters), schedule and
    loop settings."""
    optimizer = make_optimizer(config.optimizer.name, **config.optimizer_options())
    optimizer.build(model.network.params, model.network.weight_slice)
    schedule = make_schedule(
        config.schedule.name, config.optimizer.lr, config.train.epochs, **config.schedule.options
    )
    return Trainer(
        model,
        data,
        optimizer=optimizer,
        schedule=schedule,
        epochs=config.train.epochs,
        batch_size=config.train.batch_size,
        shuffle_rng=shuffle_rng,
        l2=config.l2_penalty(),
        grad_clip=config.train.grad_clip,
        shuffle=config.train.shuffle,
        callbacks=callbacks,
        start_epoch=start_epoch,
    )


def make_callbacks(
    config: Config,
    run: RunDirectory,
    data: Dataset,
    progress: Callback | None,
    *,
    log: Log = _no_log,
    history: Sequence[dict[str, Any]] = (),
) -> tuple[Checkpointer, EarlyStopping | None, list[Callback]]:
    """The health monitor (``train.health``; first, so the logs the others see hold its
    numbers; it says its diagnoses through ``log``, and ``history``, the epochs a resumed run
    already has, keeps it from saying them again), early stopping (so the checkpoint holds its
    new state), the checkpointer, the metrics writer (after the checkpoint: a resume can add a
    lost line back) and the progress.

    ``best.npz`` follows early stopping's monitor, mode and min_delta, so the best checkpoint
    and the weights early stopping restores are the same; else it is the lowest validation
    loss (the training loss without a validation split)."""
    stopping = config.train.early_stopping
    callbacks: list[Callback] = []
    if config.train.health:
        callbacks.append(HealthMonitor(log, history))
    early_stopping = None
    if stopping is not None:
        early_stopping = EarlyStopping(
            stopping.monitor,
            stopping.patience,
            stopping.min_delta,
            stopping.mode,
            stopping.restore_best,
        )
        callbacks.append(early_stopping)
        checkpointer = Checkpointer(run, stopping.monitor, stopping.mode, stopping.min_delta)
    else:
        checkpointer = Checkpointer(run, "val_loss" if len(data.X_val) else "train_loss")
    callbacks += [checkpointer, MetricsWriter(run)]
    if progress is not None:
        callbacks.append(progress)
    return checkpointer, early_stopping, callbacks


def _finish(
    run: RunDirectory,
    test: tuple[np.ndarray, np.ndarray],
    samples: tuple[int, int, int],
    epochs_run: int,
    best: tuple[str, float | None, int | None],
    stop_reason: str,
    seconds: float,
) -> dict[str, Any]:
    """Evaluate best.npz on the test split ``(X_test, y_test)``, write summary.json and the
    plots. It is given the test split alone: the caller lets go of the training and validation
    arrays first, so the peak memory of a run stays that of its training."""
    best_model = load_model(run.checkpoint_path("best"))
    summary: dict[str, Any] = evaluate(best_model, *test, prefix="test_")
    monitor, best_value, best_epoch = best
    n_train, n_val, n_test = samples
    summary.update(
        {
            "best_epoch": best_epoch,
            "best_" + monitor: best_value,
            "epochs_run": epochs_run,
            "stop_reason": stop_reason,
            "total_seconds": seconds,
            "train_samples": n_train,
            "val_samples": n_val,
            "test_samples": n_test,
        }
    )
    _add_diagnoses(run, summary)
    run.write_summary(summary)
    run.plot()
    return summary


def _add_diagnoses(run: RunDirectory, summary: dict[str, Any]) -> None:
    """``summary["diagnoses"]``: what ``bpnn.health.diagnose`` finds in the run's metrics (only
    when they hold health numbers, i.e. ``train.health`` was on)."""
    with contextlib.suppress(DataError):
        history = run.read_metrics()
        if any("health" in row for row in history):
            summary["diagnoses"] = [d.as_dict() for d in diagnose(history)]


def _record_failure(run: RunDirectory, error: BaseException, epochs_run: int) -> None:
    """Say in summary.json that the run failed (its checkpoints stay resumable)."""
    summary: dict[str, Any] = {
        "stop_reason": "error",
        "error": str(error) or type(error).__name__,
        "epochs_run": epochs_run,
    }
    _add_diagnoses(run, summary)
    with contextlib.suppress(OSError):
        run.write_summary(summary)


def run_training(
    config: Config,
    run_dir: Path | None = None,
    *,
    root: Path = Path("runs"),
    progress: Callback | None = None,
    log: Log = _no_log,
) -> tuple[Path, dict[str, Any]]:
    """Train ``config`` into ``run_dir`` (see ``RunDirectory.create``), by default
    ``root/NAME-TIME``, writing ``config.yaml``, ``metrics.jsonl``, ``checkpoints/``,
    ``summary.json`` and ``plots/``. A failure before the first checkpoint leaves nothing behind
    (the directory is removed if this run made it). Returns the run directory and the summary."""
    started = time.perf_counter()
    created = run_dir is None or not Path(run_dir).exists()
    run = RunDirectory.create(run_dir, config.name, root)
    try:
        run.claim()
        run.remove_stale_temporaries()
        data = load_data(config, log)
        log(f"run directory: {run.path}")
        run.write_config(config)
        init_rng, shuffle_rng = make_seeds(config.seed)
        model = build_model(config, data, init_rng)
        checkpointer, _, callbacks = make_callbacks(config, run, data, progress, log=log)
        trainer = make_trainer(config, model, data, shuffle_rng, callbacks)
        try:
            end = trainer.fit()
        except BaseException as error:
            if run.holds_run() and not isinstance(error, KeyboardInterrupt):
                _record_failure(run, error, model.epoch)
            raise
        seconds = time.perf_counter() - started
        test, samples = (data.X_test, data.y_test), data.n_samples
        del data, trainer  # the trainer is gone, so this frees the training and validation arrays
        best = (checkpointer.monitor, checkpointer.best, checkpointer.best_epoch)
        summary = _finish(run, test, samples, model.epoch, best, end["stop_reason"], seconds)
        return run.path, summary
    except BaseException:
        if not run.holds_run():
            run.remove_unfinished(created)
        raise
    finally:
        run.unlock()


# --- resume ---------------------------------------------------------------------------------


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def config_differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """The dotted keys whose values differ between two resolved configs."""
    flat_a, flat_b = _flatten(a), _flatten(b)
    return sorted(k for k in flat_a.keys() | flat_b.keys() if flat_a.get(k) != flat_b.get(k))


def _checked_config(run: RunDirectory, saved: Config, epochs: int | None) -> None:
    """Refuse a config.yaml that differs from the checkpoint's config (the authority) in any
    key; ``train.epochs`` may differ only as ``--epochs`` sets it."""
    try:
        on_disk = load_config(run.config_path)
    except ConfigError as error:
        raise TrainingError(f"{run.config_path}: {error}; not resuming") from None
    differences = config_differences(on_disk.resolved(), saved.resolved())
    if epochs is not None and on_disk.train.epochs == epochs:
        differences = [k for k in differences if k != "train.epochs"]
    if differences:
        shown = ", ".join(differences[:5]) + (" ..." if len(differences) > 5 else "")
        hint = (
            f"; to train longer pass --epochs {on_disk.train.epochs}"
            if differences == ["train.epochs"]
            else "; restore it, or start a new run with 'bpnn train'"
        )
        raise TrainingError(
            f"{run.config_path}: differs from the checkpoint's config in {shown}{hint}"
        )


def resume_training(
    run_dir: Path,
    *,
    epochs: int | None = None,
    progress: Callback | None = None,
    log: Log = _no_log,
) -> dict[str, Any]:
    """Continue the run in ``run_dir`` from ``checkpoints/last.npz``, exactly where it stopped.

    The config, model, optimizer state, learning-rate schedule, shuffling and dropout generators
    and the checkpointing and early-stopping state all come back from the checkpoint, so a run
    trained for ``k`` epochs and resumed to ``n`` gives the metrics of one ``n``-epoch run, bit
    for bit, whatever point a kill interrupted it at. Every check comes before the first write:
    a refused resume changes nothing. ``epochs`` extends the run; a schedule whose rates depend
    on the total (cosine) refuses that.
    """
    run = RunDirectory(Path(run_dir))
    if not run.path.is_dir():
        raise TrainingError(f"{run_dir}: no such run directory")
    if not run.config_path.is_file():
        raise TrainingError(f"{run_dir}: no config.yaml (not a bpnn run directory)")
    run.lock()
    try:
        if not run.holds_run():
            raise TrainingError(
                f"{run_dir}: no checkpoints/last.npz (the run never finished an epoch); "
                f"start it again with 'bpnn train CONFIG --out {run_dir}'"
            )
        started = time.perf_counter()
        contents = checkpoint.load(run.checkpoint_path("last"))
        try:
            config = validate(contents.config, source=f"{run.checkpoint_path('last')} (config)")
        except ConfigError as error:
            raise CheckpointError(str(error)) from None
        _checked_config(run, config, epochs)
        done = contents.epoch
        if epochs is not None and epochs != config.train.epochs:
            if epochs <= done:
                raise TrainingError(f"--epochs {epochs}: the run has already trained {done} epochs")
            if config.schedule.name == "cosine":
                raise TrainingError(
                    f"--epochs {epochs}: the run's cosine schedule spreads its learning rates "
                    f"over train.epochs={config.train.epochs}; extending it would change them"
                )
            config = config.model_copy(
                update={"train": config.train.model_copy(update={"epochs": epochs})}
            )
        stopped = contents.trainer.get("stopped")
        finished = stopped is not None or done >= config.train.epochs
        summary = run.read_summary()
        summary_current = (
            summary is not None
            and summary.get("epochs_run") == done
            and summary.get("stop_reason") != "error"
        )
        if finished and summary_current:
            if stopped is not None and stopped != "completed":
                raise TrainingError(f"{run_dir}: training stopped early ({stopped})")
            raise TrainingError(
                f"{run_dir}: already trained {done} of {config.train.epochs} epochs; "
                f"pass --epochs N to train on"
            )
        history = run.read_metrics()
        logged = [row.get("epoch") for row in history if row.get("epoch", 0) <= done]
        if logged != list(range(1, len(logged) + 1)) or len(logged) < done - 1:
            raise TrainingError(
                f"{run.metrics_path}: epochs {logged[:1]}..{logged[-1:]} do not lead up to "
                f"last.npz's epoch {done}; not resuming"
            )
        states = contents.trainer.get("callbacks", {})
        checkpointer_state = states.get("checkpointer", states.get("Checkpointer"))
        early_state = states.get("early_stopping", states.get("EarlyStopping"))
        if checkpointer_state is None:
            raise CheckpointError(f"{run.checkpoint_path('last')}: no checkpointer state")
        best_path = run.checkpoint_path("best")
        best_epoch = checkpointer_state["best_epoch"]
        best_current = best_path.is_file() and checkpoint.load(best_path).epoch == best_epoch
        if not best_current and best_epoch != done:
            raise TrainingError(
                f"{best_path}: is not from the run's best epoch {best_epoch}; not resuming"
            )

        # every check has passed: from here on the run directory is written
        run.claim()
        run.remove_stale_temporaries()
        if not best_current:  # killed between the two renames: the contents were the same
            shutil.copyfile(run.checkpoint_path("last"), best_path.with_name(".best.npz.tmp"))
            os.replace(best_path.with_name(".best.npz.tmp"), best_path)
        run.repair_metrics(done, contents.metrics)
        if epochs is not None:
            run.write_config(config)

        data = load_data(config, log)
        previous = (summary or {}).get("total_seconds") or 0.0
        if finished:  # killed after the last epoch, before the summary: finish it
            model = load_model(run.checkpoint_path("last"))
            best = (_monitor(config, data), checkpointer_state["best"], best_epoch)
            test, samples = (data.X_test, data.y_test), data.n_samples
            del data
            return _finish(
                run,
                test,
                samples,
                done,
                best,
                stopped or "completed",
                previous + time.perf_counter() - started,
            )

        model = load_model(run.checkpoint_path("last"))
        model.config = config
        _, shuffle_rng = make_seeds(config.seed)
        shuffle_rng.bit_generator.state = contents.trainer["shuffle_rng"]
        if model.network.dropout_rng is not None:
            model.network.dropout_rng.bit_generator.state = contents.trainer["dropout_rng"]
        checkpointer, early_stopping, callbacks = make_callbacks(
            config, run, data, progress, log=log, history=run.read_metrics()
        )
        checkpointer.load_state(checkpointer_state)
        if early_stopping is not None:
            early_stopping.load_state(early_state)
            best_network = load_model(best_path).network
            early_stopping.best_weights = (best_network.params.copy(), best_network.buffers())
        trainer = make_trainer(config, model, data, shuffle_rng, callbacks, start_epoch=done)
        trainer.optimizer.load_state_dict(contents.optimizer)
        trainer.schedule.load_state_dict(contents.schedule)
        log(f"resuming {run_dir} at epoch {done + 1} of {config.train.epochs}")
        try:
            end = trainer.fit()
        except BaseException as error:
            if not isinstance(error, KeyboardInterrupt):
                _record_failure(run, error, model.epoch)
            raise
        seconds = previous + time.perf_counter() - started
        test, samples = (data.X_test, data.y_test), data.n_samples
        del data, trainer  # frees the training and validation arrays
        best = (checkpointer.monitor, checkpointer.best, checkpointer.best_epoch)
        return _finish(run, test, samples, model.epoch, best, end["stop_reason"], seconds)
    finally:
        run.unlock()


def _monitor(config: Config, data: Dataset) -> str:
    """The metric ``best.npz`` follows (as ``make_callbacks`` chooses it)."""
    if config.train.early_stopping is not None:
        return config.train.early_stopping.monitor
    return "val_loss" if len(data.X_val) else "train_loss"


# --- evaluating a checkpoint ----------------------------------------------------------------


def evaluate_checkpoint(path: Path, log: Log = _no_log) -> dict[str, Any]:
    """Test metrics of a checkpoint on the test split of the data it was trained on, rebuilt from
    its config and seed: the keys and numbers of ``summary.json``."""
    model = load_model(path)
    config = model.config
    data = load_dataset(
        config.data, task=config.task, seed=config.seed, dtype=model.network.dtype, log=log
    )
    if data.n_features != model.n_features:
        raise DataError(
            f"{data.source}: has {data.n_features} features, "
            f"the checkpoint {path} expects {model.n_features}"
        )
    if model.classes is not None and (
        data.classes is None or list(data.classes) != list(model.classes)
    ):
        raise DataError(
            f"{data.source}: classes {data.classes} differ from the checkpoint's {model.classes}"
        )
    X_test = data.X_test
    if data.input_scaling != model.input_scaling:
        log(
            f"warning: the data of {path} changed since training; "
            "scaling with the checkpoint's own scaling"
        )
        X_test = model.input_scaling.apply(data.input_scaling.invert(X_test), model.network.dtype)
    metrics: dict[str, Any] = evaluate(model, X_test, data.y_test, prefix="test_")
    metrics["epoch"] = model.epoch
    metrics["test_samples"] = len(X_test)
    return metrics


def evaluate_file(path: Path, data_file: Path) -> dict[str, Any]:
    """Metrics of a checkpoint on a new labelled file (CSV with the target column, or NPZ with
    ``X`` and ``y``): its features are checked against the model's and its labels against the
    model's classes; the checkpoint's own scaling is applied."""
    model = load_model(path)
    X, labels = read_labelled(
        data_file, feature_names=model.feature_names, target=model.target_name
    )
    if model.classes is not None:
        y = encode_labels(labels, model.classes, str(data_file))
    else:
        y = np.asarray(labels, dtype=np.float64).reshape(len(labels), -1)
        if y.shape[1] != model.network.sizes[-1]:
            raise DataError(
                f"{data_file}: has {y.shape[1]} target columns, the model predicts "
                f"{model.network.sizes[-1]}"
            )
    metrics: dict[str, Any] = evaluate(
        model, model.input_scaling.apply(X, model.network.dtype), model.targets(y), prefix="test_"
    )
    metrics["epoch"] = model.epoch
    metrics["test_samples"] = len(X)
    return metrics
