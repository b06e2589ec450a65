"""Run directories side by side: what ``bpnn runs`` lists.

Each run directory found is read through ``RunDirectory`` (``config.yaml``, ``summary.json``,
``metrics.jsonl`` and the ``.lock``) into one flat record. Its ``status``:

``running``      its ``.lock`` is held (``flock``) by a live process;
``completed``    a summary whose stop reason is ``completed``;
``early-stopped`` a summary whose stop reason is early stopping's;
``failed``       a summary with ``stop_reason: error`` (training raised after a checkpoint);
``interrupted``  no summary and no live lock (killed, Ctrl-C): ``bpnn resume`` continues it.

Nothing is written and no lock is taken for more than the instant of the test.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from bpnn.config import validate
from bpnn.config.reading import read_yaml_file
from bpnn.errors import BpnnError, ConfigError, OutputError
from bpnn.metrics import metric_names
from bpnn.outputs import open_regular
from bpnn.run import RunDirectory

#: the keys of a record, in column order (``--json`` objects have exactly these)
COLUMNS = (
    "name",
    "status",
    "started",
    "data",
    "architecture",
    "optimizer",
    "lr",
    "epochs",
    "best_metric",
    "best_value",
    "test_metrics",
    "stop_reason",
    "seconds",
    "path",
)


def is_locked(run: RunDirectory) -> bool:
    """Whether a live process holds the run directory's lock (a shared ``flock`` attempt that
    would block). A ``.lock`` left by a killed process is not held: the OS released it."""
    try:
        fd = open_regular(run.lock_path, os.O_RDONLY)
    except (OSError, OutputError):  # none, or not a lock bpnn made (a link, a FIFO)
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as error:
        return error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def find_runs(folders: Sequence[Path]) -> list[RunDirectory]:
    """The run directories among ``folders`` (a folder that holds ``config.yaml`` is one; else
    its sub-folders that do are), in name order."""
    found: list[RunDirectory] = []
    for folder in folders:
        if (folder / "config.yaml").is_file():
            found.append(RunDirectory(folder))
        elif folder.is_dir():
            found += [
                RunDirectory(child)
                for child in sorted(folder.iterdir())
                if child.is_dir() and (child / "config.yaml").is_file()
            ]
    return found


def _status(run: RunDirectory, summary: dict[str, Any] | None) -> str:
    if is_locked(run):
        return "running"
    if summary is None:
        return "interrupted"
    reason = str(summary.get("stop_reason"))
    if reason == "error":
        return "failed"
    if reason.startswith("early_stopping"):
        return "early-stopped"
    return "completed"


def _architecture(model: dict[str, Any]) -> str:
    """``16-16 relu``, ``8x16 sigmoid`` (``+bn``, ``+dropout``): the hidden layers and their
    activations."""
    sizes = [str(n) for n in model.get("hidden") or []]
    hidden = "-".join(sizes) or "none"
    if len(sizes) > 2 and len(set(sizes)) == 1:
        hidden = f"{len(sizes)}x{sizes[0]}"
    activations = model.get("activations") or [model.get("activation")]
    names = sorted({a["name"] if isinstance(a, dict) else str(a) for a in activations if a})
    text = f"{hidden} {'/'.join(names)}".strip()
    if model.get("batch_norm"):
        text += " +bn"
    dropout = model.get("dropout")
    if dropout and (any(dropout) if isinstance(dropout, list) else dropout > 0):
        text += " +dropout"
    return text


def _data(data: dict[str, Any]) -> str:
    source = str(data.get("source", "?"))
    return f"{source}:{Path(data['path']).name}" if data.get("path") else source


def _run_config(run: RunDirectory) -> dict[str, Any]:
    """The run's ``config.yaml`` read and checked as the config loader does (its limits, its
    schema), resolved; ``{}`` when it is not a valid config (the columns it fills show ``?``)."""
    try:
        return validate(read_yaml_file(run.config_path), str(run.config_path)).resolved()
    except BpnnError:
        return {}


def read_run(run: RunDirectory) -> dict[str, Any]:
    """One run's record (the keys of ``COLUMNS``; None where the run does not say)."""
    config = _run_config(run)
    summary = run.read_summary()
    optimizer, train = config.get("optimizer", {}), config.get("train", {})
    status = _status(run, summary)
    epochs_run = (summary or {}).get("epochs_run")
    if epochs_run is None:
        with contextlib.suppress(Exception):
            epochs_run = len(run.read_metrics())
    best_key = next(
        (k for k in (summary or {}) if k.startswith("best_") and k != "best_epoch"), None
    )
    started = None
    with contextlib.suppress(OSError):
        started = datetime.fromtimestamp(run.config_path.stat().st_mtime).strftime(
            "%Y-%m-%d %H:%M:%S"
        )
    tests = metric_names(splits=("test",))
    return {
        "name": run.path.name,
        "status": status,
        "started": started,
        "data": _data(config["data"]) if config else None,
        "architecture": _architecture(config["model"]) if config else None,
        "optimizer": optimizer.get("name"),
        "lr": optimizer.get("lr"),
        "epochs": f"{epochs_run if epochs_run is not None else '?'}/{train.get('epochs', '?')}",
        "best_metric": best_key[len("best_") :] if best_key else None,
        "best_value": (summary or {}).get(best_key) if best_key else None,
        "test_metrics": {k: summary[k] for k in tests if summary and summary.get(k) is not None},
        "stop_reason": (summary or {}).get("stop_reason"),
        "seconds": (summary or {}).get("total_seconds"),
        "path": str(run.path),
    }


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (2, 0)
    if isinstance(value, int | float):
        return (0, value)
    return (1, str(value))


def select(
    records: Iterable[dict[str, Any]], filters: Sequence[str] = (), sort: str | None = None
) -> list[dict[str, Any]]:
    """Records whose ``KEY`` equals ``VALUE`` for every ``KEY=VALUE`` filter (as text; a test
    metric by its name, ``test_accuracy=0.95``), sorted by ``sort`` (``-KEY``: descending)."""
    rows = list(records)
    for item in filters:
        key, sep, wanted = item.partition("=")
        if not sep:
            raise ConfigError(f"--filter {item}: expected KEY=VALUE")
        rows = [row for row in rows if _text(_value(row, key)) == wanted]
    if sort:
        key = sort.lstrip("-")
        _value({}, key)  # checks the key
        rows.sort(key=lambda row: _sort_key(_value(row, key)), reverse=sort.startswith("-"))
        if sort.startswith("-"):  # keep missing values last
            rows.sort(key=lambda row: _value(row, key) is None)
    return rows


def _value(row: dict[str, Any], key: str) -> Any:
    tests = metric_names(splits=("test",))
    if key in tests:
        return (row.get("test_metrics") or {}).get(key)
    if key not in COLUMNS:
        known = ", ".join([*COLUMNS, *tests])
        raise ConfigError(f"{key}: not a column of 'bpnn runs' (columns: {known})")
    return row.get(key)


def _text(value: Any) -> str:
    return "" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def list_runs(
    folders: Sequence[Path] = (Path("runs"),),
    filters: Sequence[str] = (),
    sort: str | None = None,
) -> list[dict[str, Any]]:
    """The records of every run directory in ``folders`` (or those folders themselves), kept by
    ``filters`` and sorted by ``sort`` (``select``)."""
    return select([read_run(run) for run in find_runs(folders)], filters, sort)
