"""Checkpoints: one ``.npz`` file that loads without pickle, written atomically.

Layout of the archive (every entry a plain numeric or unicode array)::

    format            "bpnn-checkpoint"          (0-d unicode)
    meta              JSON text: format_version, bpnn_version, epoch, task, feature_names,
                      target_name (the label column of a CSV; a list: its label columns,
                      multi-label), table (the fitted table
                      encoding of a CSV/Parquet source: each column's kind, categories and
                      imputed value, as ``bpnn.data.table.TableEncoding.to_dict`` writes it;
                      absent in checkpoints of other sources and of bpnn before it),
                      config (the resolved config), metrics (the epoch's logs), trainer state
                      (RNG states, early-stopping counters) for resuming
    param/{name}      every parameter, e.g. param/0.weight (fan_in, fan_out), param/0.bias
    buffer/{name}     batch-norm running statistics
    scaling/input_offset, scaling/input_factor     x' = (x - offset) * factor
    scaling/target_offset, scaling/target_factor   (regression with target scaling)
    classes           the class labels in index order (classification)
    optimizer/{key}   optimizer state (moments, step count) for resuming
    schedule/{key}    learning-rate schedule state (reduce_on_plateau)

The file is written to a temporary name in the same folder, flushed to disk, then renamed over
the target, so a crash never leaves a half-written checkpoint behind.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bpnn.errors import CheckpointError, short
from bpnn.outputs import atomic_file, own_folder, uninterrupted
from bpnn.readers import parse_json, read_npz

FORMAT = "bpnn-checkpoint"
FORMAT_VERSION = 1


@dataclass
class CheckpointContents:
    """Everything a checkpoint holds, as arrays and plain data."""

    config: dict[str, Any]
    epoch: int
    task: str
    params: dict[str, np.ndarray]
    buffers: dict[str, np.ndarray] = field(default_factory=dict)
    input_offset: np.ndarray | None = None
    input_factor: np.ndarray | None = None
    target_offset: np.ndarray | None = None
    target_factor: np.ndarray | None = None
    classes: np.ndarray | None = None
    feature_names: list[str] = field(default_factory=list)
    target_name: str | list[str] | None = None  # a list: a multi-label table's columns
    table: dict[str, Any] | None = None  # the table encoding (TableEncoding.to_dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    optimizer: dict[str, np.ndarray] = field(default_factory=dict)
    schedule: dict[str, np.ndarray] = field(default_factory=dict)
    trainer: dict[str, Any] = field(default_factory=dict)


def save(path: str | Path, contents: CheckpointContents) -> None:
    """Write ``contents`` to ``path`` atomically (temporary file, fsync, rename)."""
    from bpnn.version import __version__

    path = Path(path)
    meta = {
        "format_version": FORMAT_VERSION,
        "bpnn_version": __version__,
        "epoch": contents.epoch,
        "task": contents.task,
        "feature_names": contents.feature_names,
        "target_name": contents.target_name,
        "config": contents.config,
        "metrics": contents.metrics,
        "trainer": contents.trainer,
    }
    if contents.table is not None:
        meta["table"] = contents.table
    arrays: dict[str, np.ndarray] = {"format": np.array(FORMAT), "meta": np.array(json.dumps(meta))}
    arrays.update({f"param/{k}": v for k, v in contents.params.items()})
    arrays.update({f"buffer/{k}": v for k, v in contents.buffers.items()})
    for key in ("input_offset", "input_factor", "target_offset", "target_factor"):
        value = getattr(contents, key)
        if value is not None:
            arrays[f"scaling/{key}"] = value
    if contents.classes is not None:
        classes = np.asarray(contents.classes)
        if classes.dtype == object:
            classes = classes.astype(str)
        arrays["classes"] = classes
    arrays.update({f"optimizer/{k}": np.asarray(v) for k, v in contents.optimizer.items()})
    arrays.update({f"schedule/{k}": np.asarray(v) for k, v in contents.schedule.items()})

    own_folder(path.parent)
    # held signals: a SIGTERM is acted on once the archive is whole and in place
    with uninterrupted(), atomic_file(path, point=path.stem, binary=True, unique=True) as handle:
        np.savez(handle, allow_pickle=False, **arrays)


#: bpnn writes checkpoints uncompressed: an entry that inflates more than this is refused unread
MAX_INFLATION = 100

#: the groups of arrays that hold numbers (a tampered file may hold anything)
NUMERIC_GROUPS = ("param/", "buffer/", "scaling/", "optimizer/", "schedule/")


def load(path: str | Path) -> CheckpointContents:
    """Read a checkpoint written by ``save``; anything else is a one-line ``CheckpointError``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    arrays = read_npz(path, CheckpointError, what="checkpoint", max_inflation=MAX_INFLATION)
    if "format" not in arrays or str(arrays["format"]) != FORMAT or "meta" not in arrays:
        raise CheckpointError(f"{path}: not a bpnn checkpoint")
    meta = parse_json(str(arrays["meta"]), f"{path}: corrupt metadata", CheckpointError)
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: corrupt metadata (not a JSON object)")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {meta.get('format_version')} is not supported "
            f"(this bpnn reads version {FORMAT_VERSION})"
        )

    for key, value in arrays.items():
        if key.startswith(NUMERIC_GROUPS) and value.dtype.kind not in "biuf":
            raise CheckpointError(f"{path}: {key} holds {value.dtype} values, not numbers")
    classes = arrays.get("classes")
    if classes is not None and (classes.ndim != 1 or classes.dtype.kind not in "biufU"):
        raise CheckpointError(
            f"{path}: classes has shape {classes.shape} and dtype {classes.dtype}, "
            "expected a list of labels"
        )

    def group(prefix: str) -> dict[str, np.ndarray]:
        return {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}

    _check_meta(meta, path)
    scaling = group("scaling/")
    return CheckpointContents(
        config=meta["config"],
        epoch=meta["epoch"],
        task=meta["task"],
        params=group("param/"),
        buffers=group("buffer/"),
        input_offset=scaling.get("input_offset"),
        input_factor=scaling.get("input_factor"),
        target_offset=scaling.get("target_offset"),
        target_factor=scaling.get("target_factor"),
        classes=arrays.get("classes"),
        feature_names=list(meta.get("feature_names", [])),
        target_name=meta.get("target_name"),
        table=meta.get("table"),
        metrics=meta.get("metrics", {}),
        optimizer=group("optimizer/"),
        schedule=group("schedule/"),
        trainer=meta.get("trainer", {}),
    )


def _is_names(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(name, str) for name in value)


#: the fields of a checkpoint's metadata: required or not, and the values each may hold
_META_FIELDS: dict[str, tuple[bool, str, Any]] = {
    "config": (True, "a mapping", lambda v: isinstance(v, dict)),
    "epoch": (
        True,
        "a whole number of epochs",
        lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
    ),
    "task": (True, "a task name", lambda v: isinstance(v, str)),
    "feature_names": (False, "a list of names", _is_names),
    "target_name": (
        False,
        "a column name or a list of them",
        lambda v: v is None or isinstance(v, str) or _is_names(v),
    ),
    "table": (False, "a mapping", lambda v: v is None or isinstance(v, dict)),
    "metrics": (False, "a mapping", lambda v: isinstance(v, dict)),
    "trainer": (False, "a mapping", lambda v: isinstance(v, dict)),
}


def _check_meta(meta: dict[str, Any], path: Path) -> None:
    """A ``CheckpointError`` naming the first field of the metadata that is missing or holds
    a value of the wrong kind (an epoch of ``Infinity``, a config that is a list)."""
    for key, (required, kind, valid) in _META_FIELDS.items():
        if key not in meta:
            if required:
                raise CheckpointError(f"{path}: incomplete checkpoint (missing '{key}')")
            continue
        if not valid(meta[key]):
            raise CheckpointError(
                f"{path}: corrupt metadata: '{key}' is {short(meta[key])}, expected {kind}"
            )
