"""The run directory: its one owner. Creating, locking, writing and reading back every file in it,
and the whole pipeline of a run (``run_training``, ``resume_training``, evaluating a checkpoint).

A run directory holds::

    .lock                 the OS lock (flock) of the process training it; holds its pid
    config.yaml           the resolved config, a readable copy (the checkpoint's is the authority)
    metrics.jsonl         one JSON object per epoch, appended, never rewritten before the last
                          checkpoint's epoch
    checkpoints/last.npz  every train.checkpoint_every epochs and at the end: weights,
                          optimizer, schedule, RNGs, callback state
    checkpoints/best.npz  the epoch with the best monitored metric
    summary.json          the test metrics of best.npz and how the run ended
    plots/                training curves (and the test set's confusion matrix)

Writes happen in an order that a kill at any point cannot make disagree: every epoch appends its
metrics line; at a checkpoint epoch (every ``train.checkpoint_every``, and when training ends,
however it ends) ``best.npz`` is written first when the monitor improved since it was last
written, then ``last.npz`` (each to a temporary file, fsync, rename), before that epoch's
metrics line; the summary (atomically) and the plots come last. ``resume`` repairs what a kill
can leave: metrics rows after the checkpoint's epoch (torn or not) are dropped and a missing row
for it is added back from the checkpoint, a ``best.npz`` from after the checkpoint's epoch (a
kill between the two writes) is kept, as the resumed run writes it again bit for bit, a
``best.npz`` behind the checkpoint's best epoch (the order of older versions) is rewritten from
``last.npz``, and a run whose last epoch is done but has no summary is finished. Temporary
files of a killed write are removed at the next start.
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
from bpnn.config import Config, load_config, memory_limit, short, validate
from bpnn.data import SOURCES, Dataset, encode_labels, load_dataset, read_labelled
from bpnn.errors import (
    BpnnError,
    CheckpointError,
    ConfigError,
    DataError,
    OutputError,
    ResumeError,
    naming,
)
from bpnn.evaluation import report
from bpnn.faults import crash_point
from bpnn.health import HealthMonitor, diagnose
from bpnn.memory import check_fits, optimizer_buffers, training_bytes
from bpnn.model import Model, build_network, load_model, make_seeds, set_initial_weights
from bpnn.nn.losses import make_loss
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
    try:
        with naming(path), temporary.open("w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    crash_point(f"{point}:written")
    os.replace(temporary, path)
    crash_point(f"{point}:renamed")


def _missing_parents(path: Path) -> list[Path]:
    """The folders above ``path`` that do not exist yet, innermost first."""
    missing = []
    parent = path.parent
    while parent != parent.parent and not parent.exists() and not parent.is_symlink():
        missing.append(parent)
        parent = parent.parent
    return missing


class RunDirectory:
    """The files of one run directory, and the lock that makes one process their only writer."""

    #: the files and folders bpnn writes in a run directory (nothing else is ever touched)
    OWN_FILES = (".lock", "config.yaml", "metrics.jsonl", "summary.json")
    OWN_FOLDERS = ("checkpoints", "plots")
    #: what a kill in the middle of ``_write_atomically`` leaves beside them
    OWN_TEMPORARIES = (".config.yaml.tmp", ".summary.json.tmp")

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock_fd: int | None = None
        self._owns_lock_file = False  # created or claimed by this process: unlock removes it
        #: the folders above ``path`` that ``create`` made (removed again with an unfinished run)
        self._made_parents: list[Path] = []

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
                missing = _missing_parents(run.path)
                try:
                    run.path.mkdir(parents=True)
                except FileExistsError:
                    continue
                run._made_parents = missing
                run.lock()
                return run
            raise OutputError(f"{root}: cannot find a free run directory name for {name}")
        run = cls(out)
        missing = _missing_parents(run.path)
        try:
            run.path.mkdir(parents=True)
            run._made_parents = missing
        except FileExistsError:
            if run.path.is_symlink() and not run.path.exists():
                raise OutputError(
                    f"{out}: a symbolic link to a missing target; choose another --out"
                ) from None
            if not run.path.is_dir():
                raise OutputError(
                    f"{out}: exists and is not a directory; choose another --out"
                ) from None
            entries = set(os.listdir(run.path))
            if entries and ".lock" not in entries:  # a finished run, or not made by bpnn
                if run.holds_run():
                    raise run._holds_a_run() from None
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
            raise self._holds_a_run()
        foreign = sorted(
            entry
            for entry in os.listdir(self.path)
            if entry not in self.OWN_FILES + self.OWN_FOLDERS + self.OWN_TEMPORARIES
        )
        if foreign:
            raise OutputError(
                f"{self.path}: directory is not empty ({foreign[0]}); choose another --out"
            )
        for entry in self.OWN_FILES[1:] + self.OWN_TEMPORARIES:
            (self.path / entry).unlink(missing_ok=True)
        for folder in self.OWN_FOLDERS:
            shutil.rmtree(self.path / folder, ignore_errors=True)

    def _holds_a_run(self) -> OutputError:
        return OutputError(
            f"{self.path}: already holds a run; continue it with 'bpnn resume {self.path}' "
            "or choose another --out"
        )

    def lock(self) -> None:
        """Take the directory's OS lock (``flock`` on ``.lock``; the OS releases it when the
        process ends, even by SIGKILL). Another process holding it is an ``OutputError`` naming
        that process. ``unlock`` removes the lock file again if this process created or claimed
        it; a refused command leaves the one a killed process left (and with it the directory)
        as it found it."""
        while True:
            try:
                fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
                created = True
            except FileExistsError:
                try:
                    fd = os.open(self.lock_path, os.O_RDWR)
                except FileNotFoundError:  # its holder removed it just now: try again
                    continue
                except OSError as error:
                    raise OutputError(
                        f"{self.path}: cannot lock: {error.strerror or error}"
                    ) from None
                created = False
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
                self._owns_lock_file = created
                return
            os.close(fd)

    def claim(self) -> None:
        """Write this process's id into the lock file (after every check has passed)."""
        assert self._lock_fd is not None
        self._owns_lock_file = True
        os.ftruncate(self._lock_fd, 0)
        os.pwrite(self._lock_fd, f"{os.getpid()}\n".encode(), 0)

    def unlock(self) -> None:
        """Release the lock, and remove the lock file if this process created or claimed it."""
        if self._lock_fd is None:
            return
        if self._owns_lock_file:
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
                for parent in self._made_parents:  # e.g. runs/, made for this run alone
                    parent.rmdir()

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
        with naming(self.metrics_path), self.metrics_path.open("a", encoding="utf-8") as handle:
            handle.write(line[:half])
            handle.flush()
            crash_point("metrics:torn")
            handle.write(line[half:])
        crash_point("metrics:written")

    def write_summary(self, summary: dict[str, Any]) -> None:
        text = json.dumps(strict_json(summary), indent=2, allow_nan=False) + "\n"
        _write_atomically(self.summary_path, text, "summary")

    def plot(self) -> list[Path]:
        """Draw the training curves of ``metrics.jsonl`` into ``plots/``, titled with the
        config's name, the best epoch of ``summary.json`` marked (and ``health.png``, the
        per-layer gradient health, when the metrics hold it)."""
        from bpnn.plots import plot_health, plot_history  # start-up: matplotlib only to draw

        summary = self.read_summary() or {}
        try:  # the config's name titles the plots; the folder's name if config.yaml is unreadable
            name = load_config(self.config_path).name
        except ConfigError:
            name = self.path.name
        history = self.read_metrics()
        folder = self.path / "plots"
        return plot_history(
            history, folder, name, best_epoch=summary.get("best_epoch")
        ) + plot_health(history, folder, name)

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
        came before it was written. Blank lines after the last kept row go too, so that the
        rows appended next follow it directly. Earlier rows are never rewritten."""
        read = 0  # bytes of the file read so far
        keep = 0  # bytes of the file up to the end of row ``have``
        have = 0
        if self.metrics_path.is_file():
            with self.metrics_path.open("rb") as handle:
                for raw in handle:
                    read += len(raw)
                    if not raw.strip():
                        continue
                    try:
                        parsed = json.loads(raw)
                    except ValueError:
                        break
                    if not isinstance(parsed, dict):
                        break
                    if not raw.endswith(b"\n") or parsed.get("epoch", 0) > epoch:
                        break
                    keep = read
                    have = parsed["epoch"]
            os.truncate(self.metrics_path, keep)
        if have == epoch - 1:
            self.append_metrics(row)


def _leaves(row: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """``(dotted key, value)`` of every value of a row, nested sections (``health``) included."""
    leaves: list[tuple[str, Any]] = []
    for key, value in row.items():
        if isinstance(value, dict):
            leaves += _leaves(value, f"{prefix}{key}.")
        else:
            leaves.append((f"{prefix}{key}", value))
    return leaves


def read_metrics_file(path: Path) -> list[dict[str, Any]]:
    """The rows of a ``metrics.jsonl``: blank lines skipped, a torn last line ignored. Each row
    is a JSON object with an integer ``epoch`` and numbers (or null) as values, sections of
    them nested (``health``: per layer, per measure); anything else (an edited file) is a
    ``DataError`` naming the line."""
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
        epoch = row.get("epoch")
        if isinstance(epoch, bool) or not isinstance(epoch, int):
            raise DataError(f"{path}: line {number + 1} has no integer 'epoch'")
        for key, value in _leaves(row):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float)
            ):
                raise DataError(
                    f"{path}: line {number + 1}: {short(key)} is {short(value)}, not a number"
                )
        rows.append(row)
    return rows


# --- the pipeline ---------------------------------------------------------------------------


def load_data(config: Config, log: Log = _no_log) -> Dataset:
    """The config's data set, split and scaled, in the training dtype."""
    return load_dataset(
        config.data, task=config.task, seed=config.seed, dtype=np.dtype(config.train.dtype), log=log
    )


def check_network(config: Config, data: Dataset) -> None:
    """Refuse, before building it, a network that does not fit the data (class weights) or
    whose training would not fit in memory."""
    loss = make_loss(config.loss.name, **config.loss.options)
    weights = config.loss.options.get("class_weights")
    if weights is not None and data.n_classes is not None and len(weights) != data.n_classes:
        classes = ", ".join(str(c) for c in data.classes[:10])  # type: ignore[index]
        raise ConfigError(
            f"loss.class_weights: has {len(weights)} entries, but data '{data.source}' has "
            f"{data.n_classes} classes ({classes})"
        )
    sizes = [
        data.n_features,
        *config.model.hidden,
        loss.output_size(data.n_classes, data.n_targets),
    ]
    needed = training_bytes(
        sizes,
        min(config.train.batch_size, max(len(data.X_train), 1)),  # the largest batch there is
        np.dtype(config.train.dtype).itemsize,
        optimizer_buffers(config.optimizer.name, config.optimizer_options()),
        config.model.batch_norm,
    )
    arrow = " -> ".join(map(str, sizes))
    shown = arrow if len(arrow) <= 60 else arrow[:57] + "..."
    check_fits(
        needed,
        f"training the network {shown}",
        memory_limit(config),
        "make model.hidden or train.batch_size smaller",
    )


def describe_data(config: Config) -> list[str]:
    """What a run of ``config`` says about a table source's data before training (target,
    features after encoding, missing values and what was done), for ``bpnn config show``;
    empty for other sources. A problem with the data is one of the lines, not an error."""
    if not SOURCES[config.data.source].tabular:
        return []
    lines: list[str] = []
    try:
        load_data(config, lines.append)
    except BpnnError as error:
        lines.append(f"error: {error}")
    return lines


def build_model(config: Config, data: Dataset, rng: np.random.Generator) -> Model:
    """A fresh model for ``data`` as the config describes, initialized from ``rng`` (and then
    from ``model.initial_weights`` when it names a file). Initial weights beyond the training
    dtype's range (``normal`` with std 1e300) are a ``ConfigError``."""
    with np.errstate(over="ignore", invalid="ignore"):  # reported below, in one line
        network = build_network(config, data.n_features, data.n_classes, data.n_targets, rng)
    if not np.all(np.isfinite(network.params)):
        raise ConfigError(
            f"model.init: '{config.model.init.name}' with {short(config.model.init.options)} gives "
            f"initial weights beyond the {network.dtype.name} range; choose a smaller scale"
        )
    if config.model.initial_weights is not None:
        set_initial_weights(network, config.model.initial_weights)
    return Model(
        network,
        config,
        input_scaling=data.input_scaling,
        target_scaling=data.target_scaling,
        classes=data.classes,
        feature_names=list(data.feature_names),
        target_name=data.target_name,
        encoding=data.encoding,
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
    every = config.train.checkpoint_every
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
        checkpointer = Checkpointer(
            run, stopping.monitor, stopping.mode, stopping.min_delta, every=every
        )
    else:
        monitor = "val_loss" if len(data.X_val) else "train_loss"
        checkpointer = Checkpointer(run, monitor, every=every)
    callbacks += [checkpointer, MetricsWriter(run)]
    if progress is not None:
        callbacks.append(progress)
    return checkpointer, early_stopping, callbacks


def final_split(data: Dataset) -> tuple[np.ndarray, np.ndarray, str]:
    """The split a run's final metrics are measured on, with the prefix of their names: the test
    split (``test_``), or the training split (``train_``) when there is no test split
    (``data.test_fraction: 0``, the default for inline data)."""
    if len(data.X_test):
        return data.X_test, data.y_test, "test_"
    return data.X_train, data.y_train, "train_"


def _finish(
    run: RunDirectory,
    test: tuple[np.ndarray, np.ndarray, str],
    samples: tuple[int, int, int],
    epochs_run: int,
    best: tuple[str, float | None, int | None],
    stop_reason: str,
    seconds: float,
) -> dict[str, Any]:
    """Evaluate best.npz on the test split ``(X_test, y_test, "test_")`` (or the training split
    ``(..., "train_")`` of a run without a test split), write summary.json and the plots. It is
    given that split alone: the caller lets go of the other arrays first, so the peak memory of
    a run stays that of its training."""
    best_model = load_model(run.checkpoint_path("best"))
    X, y, prefix = test
    full = report(best_model, X, y, prefix=prefix)
    summary: dict[str, Any] = {
        k: v for k, v in full.items() if k.startswith(prefix) and not isinstance(v, list | dict)
    }
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
    if "confusion_matrix" in full and len(X):
        from bpnn.plots import plot_confusion_matrix  # start-up: matplotlib is loaded to draw

        split = "test set" if prefix == "test_" else "training set (no test split)"
        title = f"{best_model.config.name}: best.npz (epoch {best_epoch}), {split}"
        plot_confusion_matrix(
            full["confusion_matrix"],
            full["classes"],
            run.path / "plots" / "confusion_matrix.png",
            title,
        )
    return summary


def _resume_hint(run: RunDirectory) -> str:
    """What to tell a user whose run was interrupted: where it stands and how to go on."""
    try:
        epoch = checkpoint.load(run.checkpoint_path("last")).epoch
    except Exception:  # only a hint: a broken checkpoint is reported by the resume itself
        return f"continue with: bpnn resume {run.path}"
    return f"last.npz holds epoch {epoch}; continue with: bpnn resume {run.path}"


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
        check_network(config, data)
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
        test, samples = final_split(data), data.n_samples
        del data, trainer  # the trainer is gone, so this frees the training and validation arrays
        best = (checkpointer.monitor, checkpointer.best, checkpointer.best_epoch)
        summary = _finish(run, test, samples, model.epoch, best, end["stop_reason"], seconds)
        return run.path, summary
    except BaseException as error:
        if not run.holds_run():
            run.remove_unfinished(created)
        elif isinstance(error, KeyboardInterrupt):
            error.resume_hint = _resume_hint(run)  # type: ignore[attr-defined]
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
        raise ResumeError(f"{error}; not resuming") from None  # it names config.yaml
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
        raise ResumeError(
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
        raise ResumeError(f"{run_dir}: no such run directory")
    if not run.config_path.is_file():
        raise ResumeError(f"{run_dir}: no config.yaml (not a bpnn run directory)")
    run.lock()
    try:
        if not run.holds_run():
            raise ResumeError(
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
                raise ResumeError(f"--epochs {epochs}: the run has already trained {done} epochs")
            if config.schedule.name == "cosine":
                raise ResumeError(
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
                raise ResumeError(f"{run_dir}: training stopped early ({stopped})")
            raise ResumeError(
                f"{run_dir}: already trained {done} of {config.train.epochs} epochs; "
                f"pass --epochs N to train on"
            )
        history = run.read_metrics()
        logged = [row.get("epoch") for row in history if row.get("epoch", 0) <= done]
        if logged != list(range(1, len(logged) + 1)) or len(logged) < done - 1:
            raise ResumeError(
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
        best_on_disk = checkpoint.load(best_path).epoch if best_path.is_file() else None
        best_current = best_on_disk == best_epoch
        # killed between writing best.npz and last.npz: best.npz is from an epoch after
        # last.npz's, which the resumed run trains again and writes again, bit for bit
        best_ahead = best_on_disk is not None and best_on_disk > done
        if not best_current and not best_ahead and best_epoch != done:
            raise ResumeError(
                f"{best_path}: is not from the run's best epoch {best_epoch}; not resuming"
            )

        # every check has passed: from here on the run directory is written
        run.claim()
        run.remove_stale_temporaries()
        if not best_current and not best_ahead:  # a best.npz behind last.npz's best epoch
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
            test, samples = final_split(data), data.n_samples
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
            if not best_ahead:  # else the replayed epochs reach the best again before any end
                best_network = load_model(best_path).network
                early_stopping.best_weights = (best_network.params.copy(), best_network.buffers())
        trainer = make_trainer(config, model, data, shuffle_rng, callbacks, start_epoch=done)
        trainer.optimizer.load_state_dict(contents.optimizer)
        trainer.schedule.load_state_dict(contents.schedule)
        log(f"resuming {run_dir} at epoch {done + 1} of {config.train.epochs}")
        try:
            end = trainer.fit()
        except BaseException as error:
            if isinstance(error, KeyboardInterrupt):
                error.resume_hint = _resume_hint(run)  # type: ignore[attr-defined]
            else:
                _record_failure(run, error, model.epoch)
            raise
        seconds = previous + time.perf_counter() - started
        test, samples = final_split(data), data.n_samples
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


def _report(
    model: Model,
    X: np.ndarray,
    y: np.ndarray,
    plots: Path | None,
    title: str,
    prefix: str = "test_",
) -> dict[str, Any]:
    """The metrics of ``model`` (named ``prefix`` + metric) with, for classification, the
    per-class table and the confusion matrix; with ``plots``, the confusion matrix
    (classification) or the predicted values against the true ones (regression) drawn there as
    PNG (never over a file)."""
    full = report(model, X, y, prefix=prefix)
    predicted, actual = full.pop("predicted"), full.pop("actual")
    if plots is not None:
        from bpnn.plots import plot_confusion_matrix, plot_predictions  # start-up: matplotlib

        name = "confusion_matrix.png" if model.task != "regression" else "predictions.png"
        target = plots / name
        if target.exists():
            raise OutputError(f"{target}: already exists; choose another --plots folder")
        try:
            plots.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise OutputError(f"{plots}: cannot create: {error.strerror or error}") from None
        if model.task == "regression":
            plot_predictions(actual, predicted, target, title)
        else:
            plot_confusion_matrix(full["confusion_matrix"], full["classes"], target, title)
    return full


def evaluate_checkpoint(
    path: Path, log: Log = _no_log, plots: Path | None = None
) -> dict[str, Any]:
    """Test metrics of a checkpoint on the test split of the data it was trained on, rebuilt from
    its config and seed: the keys and numbers of ``summary.json`` (``train_*`` on the training
    split for a run without a test split), with the per-class report and confusion matrix of a
    classifier (see ``_report``)."""
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
    X_test, y_test, prefix = final_split(data)
    if data.input_scaling != model.input_scaling:
        log(
            f"warning: the data of {path} changed since training; "
            "scaling with the checkpoint's own scaling"
        )
        X_test = model.input_scaling.apply(data.input_scaling.invert(X_test), model.network.dtype)
    split = "test set" if prefix == "test_" else "training set (no test split)"
    metrics = _report(model, X_test, y_test, plots, f"{config.name}: {path.name}, {split}", prefix)
    return _ordered(metrics, model.epoch, len(X_test), prefix)


def _ordered(
    metrics: dict[str, Any], epoch: int, samples: int, prefix: str = "test_"
) -> dict[str, Any]:
    """The scalar metrics, ``epoch`` and ``{prefix}samples``, then the per-class report."""
    scalars = {k: v for k, v in metrics.items() if not isinstance(v, list | dict)}
    rest = {k: v for k, v in metrics.items() if k not in scalars}
    return {**scalars, "epoch": epoch, f"{prefix}samples": samples, **rest}


def evaluate_file(
    path: Path, data_file: Path, log: Log = _no_log, plots: Path | None = None
) -> dict[str, Any]:
    """Metrics of a checkpoint on a new labelled file (a table with the target column, or NPZ
    with ``X`` and ``y``): its columns are read as ``predict`` reads them (the checkpoint's
    table encoding; extra columns left out, through ``log``), its labels checked against the
    model's classes; the checkpoint's own scaling is applied."""
    model = load_model(path)
    X, labels = read_labelled(
        data_file,
        feature_names=model.feature_names,
        target=model.target_name,
        encoding=model.encoding,
        log=log,
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
    X_scaled = model.scaled_inputs(X, str(data_file))  # beyond the dtype's range: one line
    title = f"{model.config.name}: {path.name} on {data_file.name}"
    metrics = _report(model, X_scaled, model.targets(y), plots, title)
    return _ordered(metrics, model.epoch, len(X))
