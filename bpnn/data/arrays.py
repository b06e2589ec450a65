"""``source: npz`` (named arrays) and ``source: idx`` (MNIST's images and labels files): samples
that are arrays already, for training and for the new samples ``predict`` and ``eval --data``
read from such files."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from bpnn.data.formats import idx_pair, npz_pair, read_idx, read_npz
from bpnn.data.sources import (
    ALL_TASKS,
    Log,
    ModelInputs,
    Raw,
    Samples,
    Source,
    generic_names,
    listing,
    pixel_names,
    register,
)
from bpnn.data.splits import check_width, flat_rows
from bpnn.errors import BpnnError, DataError
from bpnn.readers import npz_headers

if TYPE_CHECKING:
    from bpnn.data.options import DataConfig


class NpzSource(Source):
    """An ``.npz`` archive with arrays ``data.x_key`` (features) and ``data.y_key`` (targets)."""

    name = "npz"
    path_keys = ("path", "test_path")
    fields: ClassVar[dict[str, tuple[Any, Any]]] = {"x_key": (str, "X"), "y_key": (str, "y")}
    required = ("path",)
    suffixes = (".npz",)
    file_kind = ".npz"
    tasks = (*ALL_TASKS, "multilabel")  # a 2-D y of 0/1 columns with binary_cross_entropy

    def target_columns(self, config: DataConfig) -> int:
        """The columns of a 2-D ``data.y_key`` array (read from its header, not its data):
        several make binary cross-entropy a multi-label run. 1 for a 1-D array, and when the
        file cannot be read (``load`` says why)."""
        try:
            headers = npz_headers(Path(config.path))  # type: ignore[arg-type]
            shape = headers[config.y_key][0]
        except (BpnnError, OSError, KeyError):
            return 1
        return int(shape[1]) if len(shape) == 2 else 1

    def load(self, config: DataConfig, *, seed: int, log: Log) -> Raw:
        path = Path(config.path)  # type: ignore[arg-type]
        X, y = npz_pair(path, config.x_key, config.y_key)
        raw = Raw(X, y, generic_names(X.shape[1]), str(path))
        if config.test_path is not None:
            X_test, raw.y_test = npz_pair(Path(config.test_path), config.x_key, config.y_key)
            raw.X_test = check_width(X_test, X.shape[1], config.test_path)
            raw.test_name = config.test_path
        return raw

    def read_new(
        self, path: Path, model: ModelInputs, *, id_column: str | None, log: Log
    ) -> Samples:
        """Array ``X``, or the only array with a row per sample, one row per sample."""
        arrays = read_npz(path)
        if "X" in arrays:
            X = arrays["X"]
        else:
            candidates = [k for k, a in arrays.items() if a.ndim >= 2]
            if len(candidates) != 1:
                raise DataError(
                    f"{path}: no array 'X' and not exactly one 2-D array to use instead "
                    f"(it has: {listing(sorted(arrays)) or 'none'})"
                )
            X = arrays[candidates[0]]
        if X.ndim < 2:
            raise DataError(f"{path}: inputs must have a row per sample (2-D), got shape {X.shape}")
        return Samples(flat_rows(X), 0)

    def read_new_labelled(
        self, path: Path, model: ModelInputs, *, log: Log
    ) -> tuple[np.ndarray, np.ndarray]:
        """Arrays ``X`` and ``y``."""
        return npz_pair(path, "X", "y")


class IdxSource(Source):
    """An IDX images file and its IDX labels file (MNIST's format), gzipped or not."""

    name = "idx"
    path_keys = ("path", "labels_path", "test_path", "test_labels_path")
    default_scale = "pixels"
    required = ("path", "labels_path")
    suffixes = (".gz", ".idx", "-ubyte", ".ubyte")
    file_kind = "IDX (.gz, .idx, -ubyte)"

    def check(self, config: DataConfig) -> None:
        if (config.test_path is None) != (config.test_labels_path is None):
            raise ValueError(
                "data.test_path: goes with data.test_labels_path (idx), set both or neither"
            )

    def load(self, config: DataConfig, *, seed: int, log: Log) -> Raw:
        X, y = idx_pair(Path(config.path), Path(config.labels_path))  # type: ignore[arg-type]
        raw = Raw(X, y, pixel_names(X.shape[1]), config.path)  # type: ignore[arg-type]
        if config.test_path is not None:
            X_test, raw.y_test = idx_pair(
                Path(config.test_path),
                Path(config.test_labels_path),  # type: ignore[arg-type]
            )
            raw.X_test = check_width(X_test, X.shape[1], config.test_path)
            raw.test_name = config.test_path
        return raw

    def reads(self, path: Path) -> bool:
        """The IDX names: ``.gz``, ``.idx``, ``-ubyte``, and ``.idx3`` and the like."""
        return super().reads(path) or re.search(r"\.idx\d$", path.name.lower()) is not None

    def read_new(
        self, path: Path, model: ModelInputs, *, id_column: str | None, log: Log
    ) -> Samples:
        """An IDX images file, one flattened image per row."""
        X = read_idx(path)
        if X.ndim < 2:
            raise DataError(
                f"{path}: expected IDX images (3-D), got a {X.ndim}-D file of shape {X.shape}"
            )
        return Samples(flat_rows(X), 0)


register(NpzSource())
register(IdxSource())
