"""Data files: CSV (a header row), NPZ (named arrays), IDX (images and labels, gzipped or not).

The three file sources, and the readers ``bpnn predict`` and ``bpnn eval --data`` use for new
samples. Every problem is a one-line ``DataError`` that names the file, and where it helps the
line and the column.
"""

from __future__ import annotations

import csv
import math
import re
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bpnn.data.sources import (
    SPLIT_KEYS,
    Log,
    Raw,
    Source,
    generic_names,
    is_number,
    listing,
    one_line,
    pixel_names,
    register,
)
from bpnn.data.splits import check_features, flat_rows
from bpnn.errors import DataError
from bpnn.memory import available_bytes, format_size

if TYPE_CHECKING:
    from bpnn.config import DataConfig


def check_file(path: Path) -> None:
    """A missing file, a folder or an empty file is a DataError naming it."""
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if not path.is_file():
        raise DataError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: empty file")


def _read_csv(path: Path) -> tuple[list[str], np.ndarray, list[int]]:
    """The header, the cells as a 2-D string array, and the file line of each data row."""
    check_file(path)
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
        raise DataError(f"{path}: line {reader.line_num}: {one_line(error)}") from None
    if not rows:
        raise DataError(f"{path}: empty file")
    header = [cell.strip() for cell in rows[0]]
    duplicates = sorted({c for c in header if header.count(c) > 1})
    if duplicates:
        raise DataError(f"{path}: duplicate column name(s) in the header: {listing(duplicates)}")
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
            f"{path}: missing column(s) {listing(missing)} (columns: {listing(header)})"
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
            if not is_number(value):
                problem = "empty value" if not value.strip() else f"{str(value)!r} is not a number"
                raise DataError(f"{path}: line {lines[i]}, column '{header[column]}': {problem}")
    raise DataError(f"{path}: some feature values are not numbers")  # pragma: no cover


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """The named arrays of an .npz archive (no pickles)."""
    check_file(path)
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise DataError(f"{path}: a single .npy array, not an .npz archive of named arrays")
        with archive:
            return {key: archive[key] for key in archive.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise DataError(f"{path}: not a valid .npz file ({one_line(error)})") from None


def _npz_pair(path: Path, x_key: str, y_key: str) -> tuple[np.ndarray, np.ndarray]:
    arrays = _read_npz(path)
    for key in (x_key, y_key):
        if key not in arrays:
            raise DataError(
                f"{path}: no array '{key}' (it has: {listing(sorted(arrays)) or 'none'})"
            )
    X, y = arrays[x_key], arrays[y_key]
    if X.ndim < 2:
        raise DataError(
            f"{path}: '{x_key}' must have a row per sample (2-D or more), got shape {X.shape}"
        )
    if len(X) != len(y):
        raise DataError(f"{path}: '{x_key}' has {len(X)} rows but '{y_key}' has {len(y)}")
    return flat_rows(X), y


def idx_pair(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
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
    return flat_rows(images), labels


_IDX_TYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _idx_header(head: bytes, path: Path) -> tuple[tuple[int, ...], np.dtype, int]:
    """Shape, dtype and header length of an IDX file from its first bytes."""
    if len(head) < 4 or head[0] or head[1] or head[2] not in _IDX_TYPES or head[3] == 0:
        raise DataError(
            f"{path}: bad IDX magic number 0x{head[:4].hex()} "
            "(expected 0x0000, a type byte 08-0E and the number of dimensions)"
        )
    ndim = head[3]
    start = 4 + 4 * ndim
    if len(head) < start:
        raise DataError(f"{path}: truncated IDX file: the header of {ndim} dimensions is cut short")
    shape = tuple(int(d) for d in np.frombuffer(head, ">u4", ndim, offset=4))
    return shape, np.dtype(_IDX_TYPES[head[2]]), start


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (gzipped or not) as an array of its header's shape, without a Python loop.

    The format: two zero bytes, a type byte (0x08 uint8 ... 0x0E float64), the number of
    dimensions, each dimension as a big-endian uint32, then the values, big-endian. A gzipped
    file is decompressed only up to the size its header announces.
    """
    path = Path(path)
    data = _read_bytes(path, header_size=lambda head: _idx_size(head, path))
    shape, dtype, start = _idx_header(data[:1024], path)
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


def _idx_size(head: bytes, path: Path) -> int:
    """The whole size of an IDX file, from its header."""
    shape, dtype, start = _idx_header(head, path)
    return start + math.prod(shape) * dtype.itemsize


def _gunzip(data: bytes, path: Path, limit: int) -> bytes:
    """Decompress gzip ``data`` (every member); output beyond ``limit`` bytes is refused."""
    parts, size = [], 0
    while data:
        inflate = zlib.decompressobj(wbits=31)  # 31: a gzip header
        part = inflate.decompress(data, limit + 1 - size)
        size += len(part)
        if size > limit or inflate.unconsumed_tail:
            raise DataError(f"{path}: decompresses to more than {limit} bytes")
        if not inflate.eof:
            raise DataError(f"{path}: truncated gzip file")
        parts.append(part)
        data = inflate.unused_data
    return b"".join(parts)


def _read_bytes(path: Path, header_size: Callable[[bytes], int] | None = None) -> bytes:
    """The file's bytes, decompressed when it is gzip (recognised by its magic bytes).

    A gzip file inflates at most to the size its header announces (``header_size`` of the first
    decompressed kilobyte) and never to more than half the memory available: a "gzip bomb" of a
    few kilobytes could otherwise claim terabytes."""
    check_file(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DataError(f"{path}: cannot read: {error.strerror or error}") from None
    if data[:2] == b"\x1f\x8b":
        memory = (available_bytes() or 8 << 30) // 2
        try:
            limit = memory
            if header_size is not None:
                head = zlib.decompressobj(wbits=31).decompress(data, 1024)
                limit = min(memory, header_size(head))
            inflated = _gunzip(data, path, limit)
        except zlib.error as error:
            raise DataError(f"{path}: not a valid gzip file ({one_line(error)})") from None
        except DataError as error:
            if limit == memory and "decompresses to more" in str(error):
                raise DataError(
                    f"{path}: decompresses to more than {format_size(memory)}, half the "
                    "memory available"
                ) from None
            if "decompresses to more" in str(error):
                raise DataError(f"{path}: IDX file larger than its header says") from None
            raise
        return inflated
    if path.suffix == ".gz":
        raise DataError(f"{path}: not a gzip file, though its name ends in .gz")
    return data


def _same_width(X: np.ndarray, n_features: int, name: str) -> np.ndarray:
    if X.shape[1] != n_features:
        raise DataError(
            f"{name}: {X.shape[1]} features per sample, but the training data has {n_features}"
        )
    return X


# --- the file sources -------------------------------------------------------------------------


class CsvSource(Source):
    """A CSV file with a header row; ``data.target`` (default: the last column) holds the labels
    or values, ``data.features`` (default: every other column) the features."""

    name = "csv"
    keys = SPLIT_KEYS | {"path", "test_path", "target", "features"}
    required = ("path",)

    def load(self, config: DataConfig, *, seed: int, log: Log) -> Raw:
        path = Path(config.path)  # type: ignore[arg-type]
        header, cells, lines = _read_csv(path)
        target = config.target if config.target is not None else header[-1]
        if target not in header:
            raise DataError(f"{path}: no target column '{target}' (columns: {listing(header)})")
        features = (
            config.features if config.features is not None else [c for c in header if c != target]
        )
        if target in features:
            raise DataError(f"{path}: the target column '{target}' is also listed in data.features")
        if not features:
            raise DataError(f"{path}: no feature columns besides the target '{target}'")
        X, y = _csv_columns(path, header, cells, lines, features, target)
        raw = Raw(X, y, list(features), str(path), target_name=target)
        if config.test_path is not None:
            test_path = Path(config.test_path)
            t_header, t_cells, t_lines = _read_csv(test_path)
            raw.X_test, raw.y_test = _csv_columns(
                test_path, t_header, t_cells, t_lines, features, target
            )
            raw.test_name = str(test_path)
        return raw


class NpzSource(Source):
    """An ``.npz`` archive with arrays ``data.x_key`` (features) and ``data.y_key`` (targets)."""

    name = "npz"
    keys = SPLIT_KEYS | {"path", "test_path", "x_key", "y_key"}
    required = ("path",)

    def load(self, config: DataConfig, *, seed: int, log: Log) -> Raw:
        path = Path(config.path)  # type: ignore[arg-type]
        X, y = _npz_pair(path, config.x_key, config.y_key)
        raw = Raw(X, y, generic_names(X.shape[1]), str(path))
        if config.test_path is not None:
            X_test, raw.y_test = _npz_pair(Path(config.test_path), config.x_key, config.y_key)
            raw.X_test = _same_width(X_test, X.shape[1], config.test_path)
            raw.test_name = config.test_path
        return raw


class IdxSource(Source):
    """An IDX images file and its IDX labels file (MNIST's format), gzipped or not."""

    name = "idx"
    keys = SPLIT_KEYS | {"path", "labels_path", "test_path", "test_labels_path"}
    default_scale = "pixels"
    required = ("path", "labels_path")

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
            raw.X_test = _same_width(X_test, X.shape[1], config.test_path)
            raw.test_name = config.test_path
        return raw


for _source in (CsvSource(), NpzSource(), IdxSource()):
    register(_source)


# --- new inputs for predict and eval --------------------------------------------------------


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
                    f"(it has: {listing(sorted(arrays)) or 'none'})"
                )
            X = arrays[candidates[0]]
        if X.ndim < 2:
            raise DataError(f"{path}: inputs must have a row per sample (2-D), got shape {X.shape}")
        X = flat_rows(X)
    elif name.endswith((".gz", ".idx", "-ubyte", ".ubyte")) or re.search(r"\.idx\d$", name):
        X = read_idx(path)
        if X.ndim < 2:
            raise DataError(
                f"{path}: expected IDX images (3-D), got a {X.ndim}-D file of shape {X.shape}"
            )
        X = flat_rows(X)
    else:
        raise DataError(
            f"{path}: unknown input file type; use .csv, .npz or IDX (.gz, .idx, -ubyte)"
        )
    X = _same_width(X, n_features, str(path))
    check_features(
        X,
        feature_names if len(feature_names) == X.shape[1] else generic_names(X.shape[1]),
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
        X = flat_rows(X)
    else:
        raise DataError(f"{path}: labelled data must be a .csv (with the target column) or .npz")
    X = _same_width(X, len(feature_names), str(path))
    check_features(X, feature_names, str(path))
    return X.astype(np.float64, copy=False), y


def _csv_inputs(path: Path, feature_names: list[str], target: str | None) -> np.ndarray:
    header, cells, lines = _read_csv(path)
    missing = [c for c in feature_names if c not in header]
    extra = [c for c in header if c not in feature_names and c != target]
    if missing or extra:
        problems = []
        if missing:
            problems.append(f"missing {listing(missing)}")
        if extra:
            problems.append(f"extra {listing(extra)}")
        hint = (
            " (the first row must be a header naming the columns)"
            if all(map(is_number, header))
            else ""
        )
        raise DataError(
            f"{path}: columns do not match the model's features: {'; '.join(problems)}{hint}"
        )
    return _numbers(path, cells, [header.index(c) for c in feature_names], header, lines)
