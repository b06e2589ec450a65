"""The files of a sweep folder that bpnn reads back, each through one reader that checks it.

- ``sweep.yaml``: the parsed sweep file, saved; read back as a ``SweepSpec`` (``read_saved_spec``)
  for a re-run to compare with, and for ``bpnn plot`` and ``open_study``;
- ``sweep.jsonl``: one record per finished trial (``read_records``), appended by
  ``append_record``;
- ``optuna.journal``: Optuna's log, of which only the framing is read here (``check_journal``:
  each line a JSON object); Optuna replays it.

Both append-only files are JSON lines (``json_lines``): a line that is not UTF-8, not JSON or
not an object, before the last, is a ``DataError`` naming the file and the line, as a record of
the wrong shape is; nothing is changed in the folder before it is refused. The last line, when
no newline ends it, is a write a crash cut short: readers leave it out, and only the sweep that
holds the folder's lock cuts it off (``cut_torn_tail``), so an inspection never writes.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from bpnn.config import short
from bpnn.config.reading import read_yaml_file
from bpnn.errors import ConfigError, DataError
from bpnn.outputs import appended, open_regular, truncate
from bpnn.sweep.spec import Choices, Dimension, SweepSpec, encode_value, parse_spec
from bpnn.sweep.trial import STATUSES

SPEC_FILE = "sweep.yaml"
RESULTS_FILE = "sweep.jsonl"
JOURNAL_FILE = "optuna.journal"
#: the fields of a record, as ``TrialResult.record`` writes them
RECORD_FIELDS = ("trial", "overrides", "status", "metric", "seconds", "run_dir", "error")


# --- sweep.yaml --------------------------------------------------------------------------------


def read_saved_spec(path: Path) -> SweepSpec:
    """The spec a sweep saved in its folder, checked as a sweep file is (its keys, the space);
    anything else is a ``ConfigError`` naming the file."""
    raw = read_yaml_file(path, "sweep record")
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: not the saved spec of a sweep (a mapping)")
    try:
        return parse_spec(raw, str(path))
    except ConfigError as error:
        problem = str(error).removeprefix(f"{path}: ")
        raise ConfigError(f"{path}: not the saved spec of a sweep: {problem}") from None


# --- JSON lines --------------------------------------------------------------------------------


def _read(path: Path) -> bytes | None:
    """The bytes of the file bpnn appends to at ``path``, None if it is missing; opened as it is
    written (``open_regular``: a link or a FIFO there is refused, never followed or waited on)."""
    try:
        descriptor = open_regular(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        with os.fdopen(descriptor, "rb") as handle:
            return handle.read()
    except OSError as error:
        raise DataError(f"{path}: cannot read: {error.strerror or error}") from None


def json_lines(path: Path, kind: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` of each line of the append-only ``kind`` file at ``path`` (none
    if it is missing): blank lines skipped, and the last line left out when no newline ends it
    (torn). Any other line that is not a UTF-8 JSON object is a ``DataError`` naming it."""
    data = _read(path)
    if data is None:
        return
    lines = data.split(b"\n")[:-1]  # the last piece is empty, or torn
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            value = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise DataError(f"{path}: line {number} is not UTF-8 text") from None
        except (ValueError, RecursionError):  # RecursionError: nested too deeply ([[[...)
            message = f"{path}: line {number} is not JSON, as each line of {kind} is"
            raise DataError(message) from None
        if not isinstance(value, dict):
            raise DataError(f"{path}: line {number} is {short(value)}, not a JSON object")
        yield number, value


def cut_torn_tail(path: Path) -> None:
    """Cut off the last line of an append-only file when no newline ends it: a write a crash cut
    short, which the readers leave out and the next append would otherwise run into. Only the
    process that holds the sweep folder's lock may call this."""
    data = _read(path)
    if data and not data.endswith(b"\n"):
        truncate(path, data.rfind(b"\n") + 1)


# --- sweep.jsonl -------------------------------------------------------------------------------


def read_records(
    path: Path, space: Mapping[str, Dimension] | None = None
) -> dict[int, dict[str, Any]]:
    """The records of ``sweep.jsonl`` by trial number (a torn last line left out). A record must
    have exactly the fields ``TrialResult.record`` writes, each of its type, and with ``space``
    overrides that are a point of it; anything else is a ``DataError`` naming the line."""
    records = {}
    for number, record in json_lines(path, "a sweep's records"):
        problem = record_problem(record, space)
        if problem is not None:
            raise DataError(f"{path}: line {number}: {problem}")
        records[record["trial"]] = record
    return records


def append_record(path: Path, record: dict[str, Any]) -> None:
    """Append one trial's record to ``sweep.jsonl``, on disk (fsync) before this returns."""
    with appended(path) as handle:
        handle.write(json.dumps(record) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def record_problem(record: dict[str, Any], space: Mapping[str, Dimension] | None) -> str | None:
    """What is wrong with one record of ``sweep.jsonl`` (``key: what``), None if nothing."""
    missing = [name for name in RECORD_FIELDS if name not in record]
    if missing:
        return f"not a trial's record: no '{missing[0]}'"
    unknown = sorted(set(record) - set(RECORD_FIELDS))
    if unknown:
        return f"not a trial's record: unknown field {short(unknown[0])}"
    trial, status, metric = record["trial"], record["status"], record["metric"]
    if isinstance(trial, bool) or not isinstance(trial, int) or trial < 0:
        return f"trial: {short(trial)} is not a trial number (an integer from 0)"
    if status not in STATUSES:
        return f"status: {short(status)} is not one of {', '.join(STATUSES)}"
    if metric is not None and not _is_number(metric):
        return f"metric: {short(metric)} is not a finite number or null"
    if status == "completed" and metric is None:
        return "metric: null, but the trial completed"
    if not _is_number(record["seconds"]) or record["seconds"] < 0:
        return f"seconds: {short(record['seconds'])} is not a number of seconds"
    if not isinstance(record["run_dir"], str):
        return f"run_dir: {short(record['run_dir'])} is not a path"
    if record["error"] is not None and not isinstance(record["error"], str):
        return f"error: {short(record['error'])} is not a message or null"
    overrides = record["overrides"]
    if not isinstance(overrides, dict):
        return f"overrides: {short(overrides)} is not a mapping of the searched keys"
    if space is not None:
        return _point_problem(overrides, space)
    return None


def _point_problem(overrides: dict[str, Any], space: Mapping[str, Dimension]) -> str | None:
    """What makes ``overrides`` not a point of ``space`` (a value for each searched key, one of
    its choices or in its range), None if it is one."""
    if set(overrides) != set(space):
        return f"overrides: the keys {short(sorted(overrides))} are not the searched keys"
    for key, dimension in space.items():
        value = overrides[key]
        if isinstance(dimension, Choices):
            try:
                inside = encode_value(value) in dimension.encoded()
            except (ValueError, RecursionError):  # nested beyond what JSON writes back
                inside = False
        elif dimension.kind == "int":
            inside = isinstance(value, int) and not isinstance(value, bool)
            inside = inside and dimension.low <= value <= dimension.high
        else:
            inside = _is_number(value) and dimension.low <= value <= dimension.high
        if not inside:
            return f"overrides: {key}={short(value)} is not a value the sweep searches"
    return None


# --- optuna.journal ----------------------------------------------------------------------------


def check_journal(path: Path) -> None:
    """Refuse a journal a line of which (not the torn last one) is not a JSON object, naming
    the line; Optuna's replay of it says little more than the exception it runs into."""
    for _ in json_lines(path, "an Optuna journal"):
        pass
