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
import itertools
import os
import shutil
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from bpnn import checkpoint
from bpnn.config import Config, load_config, short
from bpnn.errors import ConfigError, DataError, OutputError
from bpnn.faults import crash_point
from bpnn.outputs import appended, atomic_file, json_text, truncate
from bpnn.readers import parse_json, read_json_file
from bpnn.run.lock import FolderLock

Log = Callable[[str], None]


def no_log(message: str) -> None:
    """The default ``log``: say nothing."""


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
    #: what a kill in the middle of ``atomic_file`` leaves beside them
    OWN_TEMPORARIES = (".config.yaml.tmp", ".summary.json.tmp")

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = FolderLock(self.path)
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
        """Take the directory's OS lock (``FolderLock``: another process holding it is an
        ``OutputError`` naming that process)."""
        self._lock.acquire()

    def claim(self) -> None:
        """Write this process's id into the lock file (after every check has passed)."""
        self._lock.claim()

    def unlock(self) -> None:
        """Release the lock, and remove the lock file if this process created or claimed it."""
        self._lock.release()

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
        with atomic_file(self.config_path, point="config") as handle:
            handle.write(config.to_yaml())

    def save_checkpoint(self, which: str, contents: checkpoint.CheckpointContents) -> None:
        checkpoint.save(self.checkpoint_path(which), contents)

    def append_metrics(self, logs: dict[str, Any]) -> None:
        """Append one epoch's logs as a line of strict JSON (written in two parts around a crash
        point, so the tests can leave a torn line as a full disk would)."""
        line = json_text(logs) + "\n"
        half = len(line) // 2
        with appended(self.metrics_path) as handle:
            handle.write(line[:half])
            handle.flush()
            crash_point("metrics:torn")
            handle.write(line[half:])
        crash_point("metrics:written")

    def _own_file(self, name: str) -> Path:
        """The run's file ``name``: a plain file name, never a path out of the directory."""
        if not name or name in (".", "..") or Path(name).name != name:
            raise ValueError(f"not a plain file name: {name!r}")
        return self.path / name

    def write_file(self, name: str, text: str) -> None:
        """Replace the run's file ``name`` with ``text`` (atomically: a temporary file, then a
        rename); what a callback of ``train.callbacks`` writes."""
        with atomic_file(self._own_file(name)) as handle:
            handle.write(text)

    def append_file(self, name: str, text: str) -> None:
        """Append ``text`` to the run's file ``name``."""
        with appended(self._own_file(name)) as handle:
            handle.write(text)

    def write_summary(self, summary: dict[str, Any]) -> None:
        text = json_text(summary, indent=2) + "\n"
        with atomic_file(self.summary_path, point="summary") as handle:
            handle.write(text)

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
    def require_metrics(self) -> None:
        """A ``DataError`` unless this folder has the ``metrics.jsonl`` of a run."""
        if not self.metrics_path.is_file():
            raise DataError(f"{self.path}: no metrics.jsonl (not a run directory)")

    def read_metrics(self) -> list[dict[str, Any]]:
        """The epochs of ``metrics.jsonl`` in order. Blank lines are skipped and a torn last
        line (a write cut short) is ignored; a bad line before the last is a ``DataError``."""
        return read_metrics_file(self.metrics_path)

    def read_summary(self) -> dict[str, Any] | None:
        """``summary.json``, or None when there is none or it is not one (``summary_problem``
        says why): it is written again when the run finishes, so a damaged one is as good as
        none."""
        summary, problem = self._summary()
        return None if problem else summary

    def summary_problem(self) -> str | None:
        """Why ``read_summary`` finds no summary (``'missing'``, not JSON, or the first key
        whose value is not one a run writes), or None when it is one."""
        return self._summary()[1]

    def _summary(self) -> tuple[Any, str | None]:
        if not self.summary_path.is_file():
            return None, "missing"
        try:
            summary = read_json_file(self.summary_path, limit=1 << 20)
        except DataError as error:
            return None, str(error).removeprefix(f"{self.summary_path}: ")
        return summary, _summary_problem(summary)

    def repair_metrics(self, epoch: int, row: dict[str, Any]) -> None:
        """Make ``metrics.jsonl`` hold exactly epochs 1..``epoch``: rows after ``epoch`` and a
        torn last line are cut off, a last row whole but for its newline gets it, and the row of
        ``epoch`` is added back from the checkpoint when a kill came before it was written.
        Earlier rows are never rewritten. The file is read as ``read_metrics`` reads it (a row
        that cannot be read is a ``DataError``, found by resume's checks before it writes)."""
        kept = list(
            itertools.takewhile(
                lambda line: line[0]["epoch"] <= epoch, metrics_lines(self.metrics_path)
            )
        )
        have = kept[-1][0]["epoch"] if kept else 0
        if self.metrics_path.is_file():
            keep = kept[-1][1] + kept[-1][2] if kept else 0  # with its newline, if it has one
            truncate(self.metrics_path, keep)
            if kept and not kept[-1][2]:  # whole, but its newline was never written
                with appended(self.metrics_path) as handle:
                    handle.write("\n")
        if have == epoch - 1:
            self.append_metrics(row)


def _is_number(value: Any) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def _row_problem(row: Any) -> str | None:
    """What is wrong with a parsed ``metrics.jsonl`` row, or None: a JSON object with an
    integer ``epoch``, numbers (or null) as values, and ``health`` (when there) a mapping of
    layer indices to mappings of measures to numbers (``bpnn.training.health``)."""
    if not isinstance(row, dict):
        return " is not a JSON object of metrics"
    epoch = row.get("epoch")
    if isinstance(epoch, bool) or not isinstance(epoch, int):
        return " has no integer 'epoch'"
    for key, value in row.items():
        if key == "health":
            if not isinstance(value, dict):
                return f": 'health' is {short(value)}, not a mapping of layers"
            for layer, measures in value.items():
                if not layer.isdigit() or not isinstance(measures, dict):
                    return (
                        f": 'health' has {short(layer)}: {short(measures)}, not a layer's measures"
                    )
                for measure, number in measures.items():
                    if not _is_number(number):
                        where = f"health.{short(layer)}.{short(measure)}"
                        return f": {where} is {short(number)}, not a number"
        elif not _is_number(value):
            return f": {short(key)} is {short(value)}, not a number"
    return None


def _summary_problem(summary: Any) -> str | None:
    """What is wrong with a parsed ``summary.json``, or None: a mapping of numbers (or null),
    ``stop_reason`` and ``error`` text, ``diagnoses`` a list of mappings (``bpnn.run.pipeline``)."""
    if not isinstance(summary, dict):
        return "not a JSON object"
    for key, value in summary.items():
        if key in ("stop_reason", "error"):
            valid = isinstance(value, str)
        elif key == "diagnoses":
            valid = isinstance(value, list) and all(isinstance(d, dict) for d in value)
        else:
            valid = _is_number(value)
        if not valid:
            return f"{short(key)} is {short(value)}"
    return None


def _row(raw: bytes, path: Path, number: int) -> dict[str, Any]:
    """Line ``number`` of a ``metrics.jsonl`` as its row (``_row_problem`` says what one is);
    anything else (an edited file) is a ``DataError`` naming the line."""
    row = parse_json(raw, f"{path}: line {number}")
    problem = _row_problem(row)
    if problem is not None:
        raise DataError(f"{path}: line {number}{problem}")
    return row


def metrics_lines(path: Path) -> list[tuple[dict[str, Any], int, bool]]:
    """``(row, byte offset of its end, whether a newline follows)`` of each row of a
    ``metrics.jsonl``, in order: blank lines skipped, and a torn last line (a write cut short:
    no newline after it, and not a whole row) left out. Any other line that is not a row is a
    ``DataError`` naming it (``_row``). The one reading of the file, for ``read_metrics_file``
    and ``RunDirectory.repair_metrics`` alike."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as error:
        raise DataError(f"{path}: cannot read: {error.strerror or error}") from None
    rows = []
    segments = data.split(b"\n")
    offset = 0
    for index, raw in enumerate(segments):
        end, newline = offset + len(raw), index < len(segments) - 1
        offset = end + 1
        if not raw.strip():
            continue
        try:
            rows.append((_row(raw, path, index + 1), end, newline))
        except DataError:
            if newline:
                raise
            break  # the last line, torn
    return rows


def read_metrics_file(path: Path) -> list[dict[str, Any]]:
    """The rows of a ``metrics.jsonl`` (``metrics_lines``)."""
    return [row for row, _, _ in metrics_lines(path)]
