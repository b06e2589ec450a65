"""New samples for a trained model (``bpnn predict``, ``bpnn eval --data``), read the way its data
source reads them, with one set of checks for every source.

Which source reads a file: the model's own source when its samples come in a form of its own
(``Source.reads_own_samples``: ``images`` reads an image or a folder), else the source whose
format the file's name has (``Source.reads``: ``.csv``, ``.parquet``, ``.npz``, IDX). That
source's ``read_new`` / ``read_new_labelled`` gives raw features; the checks below (the model's
width, numbers, finite) are the same for all, so each file gets one set of checks and messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bpnn.data.sources import (
    LABELLED_FILES,
    SOURCES,
    Log,
    ModelInputs,
    Samples,
    Source,
    generic_names,
)
from bpnn.data.splits import check_features, check_width
from bpnn.data.table import TableEncoding
from bpnn.errors import DataError


def _no_log(message: str) -> None:
    """The default ``log``: say nothing."""


def reader_for(model: ModelInputs, path: Path) -> Source | None:
    """The source that reads new samples at ``path`` for ``model`` (see the module's text),
    None when no source knows the file's format."""
    own = SOURCES.get(model.config.source) if model.config is not None else None
    if own is not None and own.reads_own_samples:
        return own
    return next((source for source in SOURCES.values() if source.reads(path)), None)


def checked(X: np.ndarray, model: ModelInputs, path: Path, encoded: bool) -> np.ndarray:
    """Raw features as the model takes them, float64: its width, numbers, finite values (a
    ``DataError`` naming the file and the columns). ``encoded``: the columns of a table, named
    by its encoding."""
    X = check_width(X, model.n_features, str(path))
    if encoded:
        names = model.table_encoding.feature_names
    elif len(model.feature_names) == X.shape[1]:
        names = model.feature_names
    else:
        names = generic_names(X.shape[1])
    check_features(X, names, str(path))
    return X.astype(np.float64, copy=False)


def samples_to_predict(
    model: ModelInputs, path: Path, *, id_column: str | None = None, log: Log = _no_log
) -> Samples:
    """The raw features of the samples at ``path`` for ``model``, with which rows of the file
    they are and the ``id_column`` (a table's) copied through."""
    path = Path(path)
    source = reader_for(model, path)
    if source is None:
        kinds = [source.file_kind for source in SOURCES.values() if source.file_kind]
        raise DataError(
            f"{path}: unknown input file type; use {', '.join(kinds[:-1])} or {kinds[-1]}"
        )
    if id_column is not None and not source.tabular:
        raise DataError(f"{path}: --id needs a table (.csv or .parquet) with that column")
    samples = source.read_new(path, model, id_column=id_column, log=log)
    samples.X = checked(samples.X, model, path, encoded=source.tabular)
    return samples


def labelled_samples(
    model: ModelInputs, path: Path, *, log: Log = _no_log
) -> tuple[np.ndarray, np.ndarray]:
    """Raw float64 features and the labels or values (as written) of the labelled samples at
    ``path``; the caller maps labels to the model's classes (``encode_labels``)."""
    path = Path(path)
    source = reader_for(model, path)
    if source is None:
        raise DataError(f"{path}: {LABELLED_FILES}")
    X, y = source.read_new_labelled(path, model, log=log)
    return checked(X, model, path, encoded=source.tabular), y


# --- by a model's facts alone (the file's format says how to read it) ---------------------


def read_samples(
    path: Path,
    *,
    feature_names: list[str],
    n_features: int,
    target: str | Sequence[str] | None,
    encoding: TableEncoding | None = None,
    id_column: str | None = None,
    log: Log = _no_log,
) -> Samples:
    """``samples_to_predict`` for a model of these features, target and encoding."""
    model = ModelInputs(feature_names, n_features, target, encoding)
    return samples_to_predict(model, path, id_column=id_column, log=log)


def read_inputs(
    path: Path,
    *,
    feature_names: list[str],
    n_features: int,
    target: str | Sequence[str] | None,
) -> np.ndarray:
    """Raw (unscaled) float64 features, shape (n, n_features): ``read_samples`` without an
    encoding (every table column numeric)."""
    return read_samples(path, feature_names=feature_names, n_features=n_features, target=target).X


def read_labelled(
    path: Path,
    *,
    feature_names: list[str],
    target: str | Sequence[str] | None,
    encoding: TableEncoding | None = None,
    log: Log = _no_log,
) -> tuple[np.ndarray, np.ndarray]:
    """``labelled_samples`` for a model of these features, target and encoding."""
    width = encoding.n_features if encoding is not None else len(feature_names)
    model = ModelInputs(feature_names, width, target, encoding)
    return labelled_samples(model, path, log=log)
