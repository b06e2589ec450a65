"""Data sources -> scaled train / validation / test arrays, the fitted scalings and the class list.

``load_dataset(config.data, task=..., seed=...)`` is the one entry point for training::

    raw samples  --(split: test, then validation; stratified for classes)-->  train / val / test
    train split  --(fit)-->  input Scaling (and a target Scaling for regression)
    every split  --(apply)-->  float32 arrays the network reads

Sources, found by name in ``LOADERS``:

- built-in scikit-learn sets: ``digits``, ``iris``, ``wine``, ``breast_cancer``, ``diabetes``;
- synthetic generators: ``xor`` (written here, see ``make_xor``), ``moons``, ``circles``,
  ``blobs``, ``classification``, ``regression``; ``data.options`` go to the generator, checked
  against its signature, and its ``random_state`` is drawn from the seed;
- ``mnist``: the four IDX ``.gz`` files, downloaded from ``data.mirrors`` when missing and kept
  only when their SHA-256 matches;
- files: ``csv`` (a header row; string or numeric labels), ``npz`` (arrays ``x_key`` and
  ``y_key``), ``idx`` (an images file and a labels file, gzipped or not).

Labels become class indices ``0 .. K-1`` in the order of ``np.unique`` (``Dataset.classes`` maps
them back). Every randomness comes from ``np.random.default_rng(seed)``: the same config and seed
give the same arrays, bit for bit. Every problem with the data is a one-line ``DataError`` that
names the file (or the source) and what is wrong.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import http.client
import inspect
import math
import os
import re
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn import datasets as skdatasets
from sklearn.model_selection import train_test_split

from bpnn.checkpoint import readable_by_umask
from bpnn.config import DataConfig
from bpnn.errors import DataError
from bpnn.scaling import Scaling

TASKS = ("multiclass", "binary", "regression")

#: sources whose targets are real values even when they happen to be whole numbers
REGRESSION_SOURCES = ("diabetes", "regression")

#: the four MNIST files and the SHA-256 of each file's *decompressed* content
MNIST_FILES = {
    "train-images-idx3-ubyte.gz": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",  # noqa: E501
    "train-labels-idx1-ubyte.gz": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",  # noqa: E501
    "t10k-images-idx3-ubyte.gz": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte.gz": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
#: public MNIST mirrors, tried in order (base URLs; the file name is appended)
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)

Log = Callable[[str], None]


def _no_log(message: str) -> None:
    """The default ``log``: say nothing."""


# --- the data set -----------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Dataset:
    """The three splits, ready for the network, and what is needed to read new data the same way.

    ``X_*``: scaled features, shape (n, features). ``y_*``: int64 class indices, shape (n,), for
    ``multiclass`` and ``binary``; scaled float targets, shape (n, targets), for ``regression``.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    task: str
    classes: np.ndarray | None  # original labels; classes[i] is class index i; None for regression
    feature_names: list[str]
    input_scaling: Scaling  # fitted on the training split only
    target_scaling: Scaling | None  # regression targets with scale_target, else None
    source: str  # for messages: "digits", or the path of the data file
    target_name: str | None = None  # the CSV's label column (read_inputs ignores it), else None

    @property
    def n_features(self) -> int:
        return int(self.X_train.shape[1])

    @property
    def n_classes(self) -> int | None:
        return None if self.classes is None else len(self.classes)

    @property
    def n_targets(self) -> int:
        """Regression targets per sample (1 for classification)."""
        return int(self.y_train.shape[1]) if self.task == "regression" else 1

    @property
    def n_samples(self) -> tuple[int, int, int]:
        return len(self.X_train), len(self.X_val), len(self.X_test)


@dataclass
class _Raw:
    """What a loader returns: unscaled features and original labels, before any split."""

    X: np.ndarray
    y: np.ndarray
    feature_names: list[str]
    name: str
    X_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    test_name: str | None = None
    continuous: bool = False  # targets are real values by nature (regression sources)
    target_name: str | None = None


def load_dataset(
    config: DataConfig,
    *,
    task: str,
    seed: int,
    dtype: Any = np.float32,
    log: Log | None = None,
) -> Dataset:
    """Load ``config.source``, split it, fit the scalings on the training split, apply them.

    ``task`` follows from the loss: ``multiclass`` (cross_entropy), ``binary``
    (binary_cross_entropy) or ``regression`` (mse, mae, huber). ``log`` receives the messages
    meant for the user (downloads); nothing is printed.
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    log = log or _no_log
    rng = np.random.default_rng(seed)
    generator_seed, test_seed, val_seed = (int(s) for s in rng.integers(0, 2**31 - 1, size=3))

    raw = LOADERS[config.source](config, seed=generator_seed, log=log)
    _check_features(raw.X, raw.feature_names, raw.name)
    if raw.X_test is not None:
        _check_features(raw.X_test, raw.feature_names, raw.test_name or raw.name)

    # targets: class indices (and the class list), or float columns
    if task == "regression":
        classes = None
        y = _regression_targets(raw.y, raw.name)
        y_test = (
            None
            if raw.y_test is None
            else _regression_targets(raw.y_test, raw.test_name or raw.name)
        )
        strata = None
    else:
        labels = _class_labels(raw.y, raw.name, raw.continuous)
        classes = np.unique(labels)
        if task == "binary" and len(classes) != 2:
            raise DataError(
                f"binary_cross_entropy needs exactly 2 classes, but data '{raw.name}' has "
                f"{len(classes)}: {_listing(classes)}"
            )
        if len(classes) < 2:
            raise DataError(
                f"data '{raw.name}' has a single class ({_listing(classes)}); nothing to learn"
            )
        y = encode_labels(labels, classes, raw.name)
        y_test = None
        if raw.y_test is not None:
            test_labels = _class_labels(raw.y_test, raw.test_name or raw.name, raw.continuous)
            y_test = encode_labels(test_labels, classes, raw.test_name or raw.name)
        strata = y

    # splits: the explicit test set as given, else test_fraction; then val_fraction of the rest
    everything = np.arange(len(raw.X))
    if raw.X_test is not None:
        trainval, X_test = everything, raw.X_test
    else:
        trainval, test = _split(
            everything, strata, classes, config.test_fraction, test_seed, raw.name, "test"
        )
        X_test, y_test = raw.X[test], y[test]
    train, val = _split(
        trainval,
        None if strata is None else strata[trainval],
        classes,
        config.val_fraction,
        val_seed,
        raw.name,
        "validation",
    )
    X_train, X_val = raw.X[train], raw.X[val]

    method = config.scale or ("pixels" if config.source in ("mnist", "idx") else "standard")
    input_scaling = Scaling.fit(X_train, method)
    target_scaling = None
    y_train, y_val = y[train], y[val]
    if task == "regression":
        if config.scale_target is not False:
            target_scaling = Scaling.fit(y_train, "standard")
            y_train, y_val, y_test = (
                target_scaling.apply(t, dtype) for t in (y_train, y_val, y_test)
            )
        else:
            y_train, y_val, y_test = (np.asarray(t, dtype=dtype) for t in (y_train, y_val, y_test))

    return Dataset(
        X_train=input_scaling.apply(X_train, dtype),
        y_train=y_train,
        X_val=input_scaling.apply(X_val, dtype),
        y_val=y_val,
        X_test=input_scaling.apply(X_test, dtype),
        y_test=y_test,
        task=task,
        classes=classes,
        feature_names=list(raw.feature_names),
        input_scaling=input_scaling,
        target_scaling=target_scaling,
        source=raw.name,
        target_name=raw.target_name,
    )


def _split(
    indices: np.ndarray,
    strata: np.ndarray | None,
    classes: np.ndarray | None,
    fraction: float,
    seed: int,
    name: str,
    part: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Split ``indices`` into (kept, taken), ``fraction`` of them taken, stratified by ``strata``
    (class indices into ``classes``) when given."""
    if fraction == 0:
        return indices, indices[:0]
    if strata is not None and classes is not None:
        counts = np.bincount(strata, minlength=len(classes))
        if counts.min() < 2:
            label = _scalar(classes[counts.argmin()])
            raise DataError(
                f"data '{name}': class {label!r} has only {counts.min()} sample(s) for the "
                f"stratified {part} split; each class needs at least 2"
            )
    try:
        kept, taken = train_test_split(
            indices, test_size=fraction, stratify=strata, random_state=seed
        )
    except ValueError as error:
        raise DataError(
            f"data '{name}': too few samples for the stratified {part} split: {_one_line(error)}"
        ) from None
    return kept, taken


# --- features and labels ----------------------------------------------------------------------


def _check_features(X: np.ndarray, names: list[str], name: str) -> None:
    """Features must be numbers, and finite."""
    if X.dtype.kind not in "biuf":
        raise DataError(f"{name}: features must be numbers, got dtype {X.dtype}")
    if len(X) == 0:
        raise DataError(f"{name}: no samples")
    if X.dtype.kind == "f":
        bad = ~np.isfinite(X)
        if bad.any():
            columns = [names[j] for j in np.flatnonzero(bad.any(axis=0))]
            raise DataError(
                f"{name}: {int(bad.sum())} NaN/inf feature value(s), in column(s) "
                f"{_listing(columns)}"
            )


def _class_labels(y: np.ndarray, name: str, continuous: bool) -> np.ndarray:
    """Labels as a 1-D array of ints or strings (never floats or objects), or a DataError."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(f"{name}: class labels must be one column, got shape {y.shape}")
    if y.dtype.kind == "S":
        y = y.astype(str)
    if y.dtype.kind == "f" and not continuous:
        continuous = not (np.all(np.isfinite(y)) and np.array_equal(y, np.round(y)))
    if continuous:
        raise DataError(f"loss needs class labels, but data '{name}' has continuous targets")
    if y.dtype.kind in "biuf":
        return y.astype(np.int64)
    if y.dtype.kind != "U":
        raise DataError(f"{name}: labels must be numbers or strings, got dtype {y.dtype}")
    return y


def _regression_targets(y: np.ndarray, name: str) -> np.ndarray:
    """Targets as float64 columns, shape (n, targets)."""
    y = np.asarray(y)
    if y.dtype.kind not in "biuf":
        example = y.ravel()[0] if y.size else ""
        raise DataError(
            f"regression loss needs numeric targets, but data '{name}' has labels like "
            f"{str(example)!r}"
        )
    y = y.astype(np.float64).reshape(len(y), -1)
    if not np.all(np.isfinite(y)):
        raise DataError(f"{name}: {int((~np.isfinite(y)).sum())} NaN/inf target value(s)")
    return y


def encode_labels(labels: np.ndarray, classes: np.ndarray, source: str) -> np.ndarray:
    """Original labels -> int64 class indices (``classes[index] == label``).

    Labels read as text ("3") are compared as numbers when the classes are numbers, and numbers
    as text when the classes are strings. A label that is not a class is a ``DataError``.
    """
    labels = np.asarray(labels)
    classes = np.asarray(classes)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.dtype.kind == "S":
        labels = labels.astype(str)
    if classes.dtype.kind in "biuf" and labels.dtype.kind == "U":
        try:
            labels = labels.astype(np.float64)
        except ValueError:
            first = next(v for v in labels if not _is_number(v))
            raise DataError(
                f"{source}: label {first!r} is not one of the classes ({_listing(classes)})"
            ) from None
    elif classes.dtype.kind == "U" and labels.dtype.kind != "U":
        labels = labels.astype(str)
    if len(classes) == 0:
        raise DataError(f"{source}: no classes to encode labels with")
    order = np.argsort(classes, kind="stable")
    sorted_classes = classes[order]
    position = np.clip(np.searchsorted(sorted_classes, labels), 0, len(classes) - 1)
    known = sorted_classes[position] == labels
    if not np.all(known):
        unknown = labels[~known]
        raise DataError(
            f"{source}: label {_scalar(unknown[0])!r} is not one of the classes "
            f"({_listing(classes)})"
            + (f"; {len(unknown)} labels are unknown" if len(unknown) > 1 else "")
        )
    return order[position].astype(np.int64)


# --- built-in and synthetic sources -----------------------------------------------------------

_BUILTIN = {
    "digits": skdatasets.load_digits,
    "iris": skdatasets.load_iris,
    "wine": skdatasets.load_wine,
    "breast_cancer": skdatasets.load_breast_cancer,
    "diabetes": skdatasets.load_diabetes,
}


def _load_builtin(config: DataConfig, *, seed: int, log: Log) -> _Raw:
    X, y = _BUILTIN[config.source](return_X_y=True)
    return _Raw(
        X,
        y,
        _generic_names(X.shape[1]),
        config.source,
        continuous=config.source in REGRESSION_SOURCES,
    )


def make_xor(
    n_samples: int = 400, noise: float = 0.0, random_state: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The XOR problem: points uniform in [-1, 1]^2, label 1 where ``x0 * x1 > 0`` (quadrants
    I and III), else 0. ``noise`` is the standard deviation of Gaussian jitter added to the points
    *after* labelling (as in ``make_moons``), so noisy points may cross the axes."""
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")
    if isinstance(noise, bool) or not isinstance(noise, int | float) or not noise >= 0:
        raise ValueError(f"noise must be a number >= 0, got {noise!r}")
    rng = np.random.default_rng(random_state)
    X = rng.uniform(-1.0, 1.0, size=(n_samples, 2))
    y = (X[:, 0] * X[:, 1] > 0).astype(np.int64)
    if noise:
        X += rng.normal(0.0, noise, size=X.shape)
    return X, y


_GENERATORS: dict[str, Callable[..., Any]] = {
    "xor": make_xor,
    "moons": skdatasets.make_moons,
    "circles": skdatasets.make_circles,
    "blobs": skdatasets.make_blobs,
    "classification": skdatasets.make_classification,
    "regression": skdatasets.make_regression,
}
#: generator arguments that are not user options: the seed gives random_state, the rest would
#: change what the generator returns
_NOT_OPTIONS = ("random_state", "return_centers", "return_X_y", "coef")


def generator_options(source: str) -> list[str]:
    """The ``data.options`` a synthetic source accepts (its generator's keyword arguments)."""
    parameters = inspect.signature(_GENERATORS[source]).parameters
    return [p for p in parameters if p not in _NOT_OPTIONS]


def _load_synthetic(config: DataConfig, *, seed: int, log: Log) -> _Raw:
    source = config.source
    valid = generator_options(source)
    for option in config.options:
        if option == "random_state":
            raise DataError(
                f"data.options.random_state: not an option of '{source}'; it comes from the seed"
            )
        if option not in valid:
            raise DataError(
                f"data.options.{option}: unknown option of '{source}'; valid: {', '.join(valid)}"
            )
    try:
        X, y = _GENERATORS[source](**config.options, random_state=seed)[:2]
    except (ValueError, TypeError) as error:
        raise DataError(f"data.options: '{source}' refused them: {_one_line(error)}") from None
    return _Raw(X, y, _generic_names(X.shape[1]), source, continuous=source in REGRESSION_SOURCES)


# --- MNIST ------------------------------------------------------------------------------------


def default_mnist_dir() -> Path:
    """``$BPNN_DATA_DIR/mnist`` when the variable is set, else ``~/.cache/bpnn/mnist``."""
    base = os.environ.get("BPNN_DATA_DIR")
    return Path(base).expanduser() / "mnist" if base else Path.home() / ".cache" / "bpnn" / "mnist"


def _load_mnist(config: DataConfig, *, seed: int, log: Log) -> _Raw:
    folder = Path(config.path) if config.path else default_mnist_dir()
    missing = [name for name in MNIST_FILES if not (folder / name).is_file()]
    if missing:
        log(f"MNIST: {len(missing)} of 4 files missing in {folder}; downloading")
        download_mnist(
            folder, missing, MNIST_MIRRORS if config.mirrors is None else config.mirrors, log
        )
    X, y = _idx_pair(folder / "train-images-idx3-ubyte.gz", folder / "train-labels-idx1-ubyte.gz")
    X_test, y_test = _idx_pair(
        folder / "t10k-images-idx3-ubyte.gz", folder / "t10k-labels-idx1-ubyte.gz"
    )
    return _Raw(X, y, _pixel_names(X.shape[1]), "mnist", X_test, y_test, "mnist (t10k)")


def download_mnist(
    folder: Path, names: list[str], mirrors: tuple[str, ...] | list[str], log: Log
) -> None:
    """Download each of ``names`` into ``folder`` from the first mirror that serves it intact.

    Each download is written to a temporary file in ``folder`` while its decompressed bytes are
    hashed; it is renamed to its final name only when the SHA-256 matches ``MNIST_FILES``, and
    deleted otherwise, so a bad file is never kept. All mirrors failing is a ``DataError``.
    """
    if not mirrors:
        raise DataError(f"mnist: {', '.join(names)} missing in {folder}, and data.mirrors is empty")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DataError(f"mnist: cannot create {folder}: {error.strerror or error}") from None
    for name in names:
        tried = []
        for base in mirrors:
            url = base.rstrip("/") + "/" + name
            log(f"downloading {name} from {url}")
            problem = _download_verified(url, folder / name, MNIST_FILES[name])
            if problem is None:
                log(f"saved {folder / name} (SHA-256 verified)")
                break
            log(f"{url}: {problem}")
            tried.append(f"{url} ({problem})")
        else:
            raise DataError(f"mnist: could not download {name}; tried: {'; '.join(tried)}")


def _download_verified(url: str, target: Path, sha256: str) -> str | None:
    """Download ``url`` (a gzip file) to ``target`` if its decompressed SHA-256 is ``sha256``.
    Returns None on success, else what went wrong (and nothing is left on disk)."""
    try:
        handle, temporary = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.name}.", suffix=".part"
        )
    except OSError as error:
        raise DataError(
            f"mnist: cannot write in {target.parent}: {error.strerror or error}"
        ) from None
    try:
        digest = hashlib.sha256()
        inflate = zlib.decompressobj(wbits=31)  # 31: expect a gzip header
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
            while chunk := response.read(1 << 20):
                out.write(chunk)
                digest.update(inflate.decompress(chunk))
        if not inflate.eof:
            return "truncated gzip stream"
        if digest.hexdigest() != sha256:
            got = digest.hexdigest()
            return f"checksum mismatch (SHA-256 {got[:12]}..., expected {sha256[:12]}...)"
        readable_by_umask(temporary)
        os.replace(temporary, target)
        return None
    except urllib.error.HTTPError as error:
        return f"HTTP {error.code} {error.reason}"
    except urllib.error.URLError as error:
        return _one_line(error.reason)
    except zlib.error as error:
        return f"not a valid gzip file ({_one_line(error)})"
    except (OSError, http.client.HTTPException, ValueError) as error:
        return _one_line(error) or type(error).__name__
    finally:
        Path(temporary).unlink(missing_ok=True)


# --- files ------------------------------------------------------------------------------------


def _check_file(path: Path) -> None:
    """A missing file, a folder or an empty file is a DataError naming it."""
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if not path.is_file():
        raise DataError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: empty file")


def _load_csv(config: DataConfig, *, seed: int, log: Log) -> _Raw:
    path = Path(config.path)  # type: ignore[arg-type]
    header, cells, lines = _read_csv(path)
    target = config.target if config.target is not None else header[-1]
    if target not in header:
        raise DataError(f"{path}: no target column '{target}' (columns: {_listing(header)})")
    features = (
        config.features if config.features is not None else [c for c in header if c != target]
    )
    if target in features:
        raise DataError(f"{path}: the target column '{target}' is also listed in data.features")
    if not features:
        raise DataError(f"{path}: no feature columns besides the target '{target}'")
    X, y = _csv_columns(path, header, cells, lines, features, target)
    raw = _Raw(X, y, list(features), str(path), target_name=target)
    if config.test_path is not None:
        test_path = Path(config.test_path)
        t_header, t_cells, t_lines = _read_csv(test_path)
        raw.X_test, raw.y_test = _csv_columns(
            test_path, t_header, t_cells, t_lines, features, target
        )
        raw.test_name = str(test_path)
    return raw


def _read_csv(path: Path) -> tuple[list[str], np.ndarray, list[int]]:
    """The header, the cells as a 2-D string array, and the file line of each data row."""
    _check_file(path)
    rows, lines = [], []
    try:
        with path.open(newline="", encoding="utf-8-sig") as file:
            reader = csv.reader(file, skipinitialspace=True)
            for row in reader:
                if any(cell.strip() for cell in row):  # blank lines are skipped
                    rows.append(row)
                    lines.append(reader.line_num)
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a UTF-8 text file") from None
    except OSError as error:
        raise DataError(f"{path}: cannot read: {error.strerror or error}") from None
    except csv.Error as error:
        raise DataError(f"{path}: line {reader.line_num}: {_one_line(error)}") from None
    if not rows:
        raise DataError(f"{path}: empty file")
    header = [cell.strip() for cell in rows[0]]
    duplicates = sorted({c for c in header if header.count(c) > 1})
    if duplicates:
        raise DataError(f"{path}: duplicate column name(s) in the header: {_listing(duplicates)}")
    if len(rows) == 1:
        raise DataError(f"{path}: no data rows, only a header")
    for row, line in zip(rows[1:], lines[1:], strict=True):
        if len(row) != len(header):
            raise DataError(
                f"{path}: line {line} has {len(row)} fields, but the header has {len(header)}"
            )
    return header, np.array(rows[1:], dtype=str), lines[1:]


def _csv_columns(
    path: Path,
    header: list[str],
    cells: np.ndarray,
    lines: list[int],
    features: list[str],
    target: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Features (float64) and labels (int64, float64 or str) by column name."""
    missing = [c for c in [*features, target] if c not in header]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {_listing(missing)} (columns: {_listing(header)})"
        )
    X = _numbers(path, cells, [header.index(c) for c in features], header, lines)
    labels = np.char.strip(cells[:, header.index(target)])
    empty = np.flatnonzero(labels == "")
    if len(empty):
        raise DataError(f"{path}: line {lines[empty[0]]}, column '{target}': empty label")
    try:
        y = labels.astype(np.float64)
    except ValueError:
        return X, labels
    whole = np.all(np.isfinite(y)) and np.array_equal(y, np.round(y))
    return X, (y.astype(np.int64) if whole else y)


def _numbers(
    path: Path, cells: np.ndarray, columns: list[int], header: list[str], lines: list[int]
) -> np.ndarray:
    """The given columns as float64; a cell that is not a number names its line and column."""
    block = cells[:, columns]
    try:
        return block.astype(np.float64)
    except ValueError:
        pass
    for j, column in enumerate(columns):
        for i, value in enumerate(block[:, j]):
            if not _is_number(value):
                problem = "empty value" if not value.strip() else f"{str(value)!r} is not a number"
                raise DataError(f"{path}: line {lines[i]}, column '{header[column]}': {problem}")
    raise DataError(f"{path}: some feature values are not numbers")  # pragma: no cover


def _load_npz(config: DataConfig, *, seed: int, log: Log) -> _Raw:
    path = Path(config.path)  # type: ignore[arg-type]
    X, y = _npz_pair(path, config.x_key, config.y_key)
    raw = _Raw(X, y, _generic_names(X.shape[1]), str(path))
    if config.test_path is not None:
        X_test, raw.y_test = _npz_pair(Path(config.test_path), config.x_key, config.y_key)
        raw.X_test, raw.test_name = (
            _same_width(X_test, X.shape[1], config.test_path),
            config.test_path,
        )
    return raw


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """The named arrays of an .npz archive (no pickles)."""
    _check_file(path)
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise DataError(f"{path}: a single .npy array, not an .npz archive of named arrays")
        with archive:
            return {key: archive[key] for key in archive.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise DataError(f"{path}: not a valid .npz file ({_one_line(error)})") from None


def _npz_pair(path: Path, x_key: str, y_key: str) -> tuple[np.ndarray, np.ndarray]:
    arrays = _read_npz(path)
    for key in (x_key, y_key):
        if key not in arrays:
            raise DataError(
                f"{path}: no array '{key}' (it has: {_listing(sorted(arrays)) or 'none'})"
            )
    X, y = arrays[x_key], arrays[y_key]
    if X.ndim < 2:
        raise DataError(
            f"{path}: '{x_key}' must have a row per sample (2-D or more), got shape {X.shape}"
        )
    if len(X) != len(y):
        raise DataError(f"{path}: '{x_key}' has {len(X)} rows but '{y_key}' has {len(y)}")
    return X.reshape(len(X), -1), y


def _load_idx(config: DataConfig, *, seed: int, log: Log) -> _Raw:
    X, y = _idx_pair(Path(config.path), Path(config.labels_path))  # type: ignore[arg-type]
    raw = _Raw(X, y, _pixel_names(X.shape[1]), config.path)  # type: ignore[arg-type]
    if config.test_path is not None:
        X_test, raw.y_test = _idx_pair(Path(config.test_path), Path(config.test_labels_path))  # type: ignore[arg-type]
        raw.X_test, raw.test_name = (
            _same_width(X_test, X.shape[1], config.test_path),
            config.test_path,
        )
    return raw


def _idx_pair(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """An IDX images file flattened to (n, h*w), and its IDX labels file (n,)."""
    images = read_idx(images_path)
    if images.ndim < 2:
        raise DataError(
            f"{images_path}: expected IDX images (3-D), got a {images.ndim}-D file "
            f"of shape {images.shape}"
        )
    labels = read_idx(labels_path)
    if labels.ndim != 1:
        raise DataError(f"{labels_path}: expected IDX labels (1-D), got shape {labels.shape}")
    if len(images) != len(labels):
        raise DataError(
            f"{images_path}: {len(images)} images, but {labels_path} has {len(labels)} labels"
        )
    return images.reshape(len(images), -1), labels


_IDX_TYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (gzipped or not) as an array of its header's shape, without a Python loop.

    The format: two zero bytes, a type byte (0x08 uint8 ... 0x0E float64), the number of
    dimensions, each dimension as a big-endian uint32, then the values, big-endian.
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4 or data[0] or data[1] or data[2] not in _IDX_TYPES or data[3] == 0:
        raise DataError(
            f"{path}: bad IDX magic number 0x{data[:4].hex()} "
            "(expected 0x0000, a type byte 08-0E and the number of dimensions)"
        )
    ndim = data[3]
    start = 4 + 4 * ndim
    if len(data) < start:
        raise DataError(f"{path}: truncated IDX file: the header of {ndim} dimensions is cut short")
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", ndim, offset=4))
    dtype = np.dtype(_IDX_TYPES[data[2]])
    expected = math.prod(shape) * dtype.itemsize
    if len(data) - start != expected:
        what = (
            "truncated IDX file"
            if len(data) - start < expected
            else "IDX file larger than its header says"
        )
        raise DataError(
            f"{path}: {what}: header says {'x'.join(map(str, shape))} {dtype.name} values "
            f"({expected} bytes) but it holds {len(data) - start} bytes"
        )
    array = np.frombuffer(data, dtype, math.prod(shape), offset=start).reshape(shape)
    return array if dtype.isnative else array.astype(dtype.newbyteorder("="))


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, decompressed when it is gzip (recognised by its magic bytes)."""
    _check_file(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DataError(f"{path}: cannot read: {error.strerror or error}") from None
    if data[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(data)
        except EOFError:
            raise DataError(f"{path}: truncated gzip file") from None
        except (OSError, zlib.error) as error:
            raise DataError(f"{path}: not a valid gzip file ({_one_line(error)})") from None
    if path.suffix == ".gz":
        raise DataError(f"{path}: not a gzip file, though its name ends in .gz")
    return data


def _same_width(X: np.ndarray, n_features: int, name: str) -> np.ndarray:
    if X.shape[1] != n_features:
        raise DataError(
            f"{name}: {X.shape[1]} features per sample, but the training data has {n_features}"
        )
    return X


LOADERS: dict[str, Callable[..., _Raw]] = {
    **{source: _load_builtin for source in _BUILTIN},
    **{source: _load_synthetic for source in _GENERATORS},
    "mnist": _load_mnist,
    "csv": _load_csv,
    "npz": _load_npz,
    "idx": _load_idx,
}


# --- new inputs for predict -------------------------------------------------------------------


def read_inputs(
    path: Path, *, feature_names: list[str], n_features: int, target: str | None
) -> np.ndarray:
    """Raw (unscaled) float64 features, shape (n, n_features), from a file for ``bpnn predict``.

    The kind follows from the name: ``.csv`` (a header; the model's ``feature_names`` are picked
    by name, the ``target`` column is ignored, any other column is an error), ``.npz`` (array
    ``X``, or the only array with a row per sample), IDX images (``.gz``, ``.idx``, ``-ubyte``).
    """
    path = Path(path)
    name = path.name.lower()
    if name.endswith(".csv"):
        X = _csv_inputs(path, feature_names, target)
    elif name.endswith(".npz"):
        arrays = _read_npz(path)
        if "X" in arrays:
            X = arrays["X"]
        else:
            candidates = [k for k, a in arrays.items() if a.ndim >= 2]
            if len(candidates) != 1:
                raise DataError(
                    f"{path}: no array 'X' and not exactly one 2-D array to use instead "
                    f"(it has: {_listing(sorted(arrays)) or 'none'})"
                )
            X = arrays[candidates[0]]
        if X.ndim < 2:
            raise DataError(f"{path}: inputs must have a row per sample (2-D), got shape {X.shape}")
        X = X.reshape(len(X), -1)
    elif name.endswith((".gz", ".idx", "-ubyte", ".ubyte")) or re.search(r"\.idx\d$", name):
        X = read_idx(path)
        if X.ndim < 2:
            raise DataError(
                f"{path}: expected IDX images (3-D), got a {X.ndim}-D file of shape {X.shape}"
            )
        X = X.reshape(len(X), -1)
    else:
        raise DataError(
            f"{path}: unknown input file type; use .csv, .npz or IDX (.gz, .idx, -ubyte)"
        )
    X = _same_width(X, n_features, str(path))
    _check_features(
        X,
        feature_names if len(feature_names) == X.shape[1] else _generic_names(X.shape[1]),
        str(path),
    )
    return X.astype(np.float64, copy=False)


def read_labelled(
    path: Path, *, feature_names: list[str], target: str | None
) -> tuple[np.ndarray, np.ndarray]:
    """Raw float64 features and the labels or values of a labelled file, for ``bpnn eval --data``.

    ``.csv``: the model's ``feature_names`` and the ``target`` column (default: the last column)
    by name; ``.npz``: arrays ``X`` and ``y``. Labels come back as they are in the file; the
    caller maps them to the model's classes with ``encode_labels``.
    """
    path = Path(path)
    name = path.name.lower()
    if name.endswith(".csv"):
        header, cells, lines = _read_csv(path)
        target = target if target is not None else header[-1]
        X, y = _csv_columns(path, header, cells, lines, feature_names, target)
    elif name.endswith(".npz"):
        X, y = _npz_pair(path, "X", "y")
        X = X.reshape(len(X), -1)
    else:
        raise DataError(f"{path}: labelled data must be a .csv (with the target column) or .npz")
    X = _same_width(X, len(feature_names), str(path))
    _check_features(X, feature_names, str(path))
    return X.astype(np.float64, copy=False), y


def _csv_inputs(path: Path, feature_names: list[str], target: str | None) -> np.ndarray:
    header, cells, lines = _read_csv(path)
    missing = [c for c in feature_names if c not in header]
    extra = [c for c in header if c not in feature_names and c != target]
    if missing or extra:
        problems = []
        if missing:
            problems.append(f"missing {_listing(missing)}")
        if extra:
            problems.append(f"extra {_listing(extra)}")
        hint = (
            " (the first row must be a header naming the columns)"
            if all(map(_is_number, header))
            else ""
        )
        raise DataError(
            f"{path}: columns do not match the model's features: {'; '.join(problems)}{hint}"
        )
    return _numbers(path, cells, [header.index(c) for c in feature_names], header, lines)


# --- small helpers ----------------------------------------------------------------------------


def _generic_names(n: int) -> list[str]:
    return [f"x{i}" for i in range(n)]


def _pixel_names(n: int) -> list[str]:
    return [f"pixel{i}" for i in range(n)]


def _is_number(text: Any) -> bool:
    try:
        float(text)
    except (TypeError, ValueError):
        return False
    return True


def _scalar(value: Any) -> Any:
    """A NumPy scalar as the plain Python value (so messages show 3, not np.int64(3))."""
    return value.item() if isinstance(value, np.generic) else value


def _listing(values: Any, limit: int = 10) -> str:
    """``a, b, c`` (at most ``limit`` items, then ``... (N in all)``)."""
    items = [str(_scalar(v)) for v in values]
    shown = ", ".join(items[:limit])
    return shown if len(items) <= limit else f"{shown}, ... ({len(items)} in all)"


def _one_line(error: Any) -> str:
    """An exception (or any object) as one line of text."""
    return " ".join(str(error).split())
