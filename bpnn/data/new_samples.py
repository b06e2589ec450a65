"""New samples for a trained model (``bpnn predict``, ``bpnn eval --data``), read the way its data
source reads them: the source's own reader (``Source.read_new``, ``read_new_labelled``) when it
has one (``images``: an image or a folder), else the shared readers of tables, NPZ and IDX files
(``bpnn/data/files.py``). Both commands come through here, so each file gets one set of checks."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bpnn.data.files import Samples, read_labelled, read_samples
from bpnn.data.sources import SOURCES, Log
from bpnn.data.table import TableEncoding
from bpnn.errors import DataError

if TYPE_CHECKING:
    from bpnn.data.options import DataConfig


def samples_to_predict(
    config: DataConfig,
    path: Path,
    *,
    feature_names: list[str],
    n_features: int,
    target: str | Sequence[str] | None,
    encoding: TableEncoding | None,
    id_column: str | None,
    log: Log,
) -> Samples:
    """The raw features of the samples at ``path``, for a model trained on ``config``'s source
    (the other arguments are the model's, for the shared readers: ``read_samples``)."""
    features = SOURCES[config.source].read_new(config, Path(path), log=log)
    if features is None:
        return read_samples(
            path,
            feature_names=feature_names,
            n_features=n_features,
            target=target,
            encoding=encoding,
            id_column=id_column,
            log=log,
        )
    if id_column is not None:
        raise DataError(f"{path}: --id needs a table (.csv or .parquet) with that column")
    return Samples(features, len(features))


def labelled_samples(
    config: DataConfig,
    path: Path,
    *,
    feature_names: list[str],
    target: str | Sequence[str] | None,
    encoding: TableEncoding | None,
    log: Log,
) -> tuple[np.ndarray, np.ndarray]:
    """Raw features and labels (as written) of the labelled samples at ``path``, for a model
    trained on ``config``'s source (``read_labelled`` for the shared formats)."""
    labelled = SOURCES[config.source].read_new_labelled(config, Path(path), log=log)
    if labelled is not None:
        return labelled
    return read_labelled(
        path, feature_names=feature_names, target=target, encoding=encoding, log=log
    )
