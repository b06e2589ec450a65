"""Data files: tables (CSV with a header row, Parquet), NPZ (named arrays), IDX (images and
labels, gzipped or not).

The file sources, and the readers ``bpnn predict`` and ``bpnn eval --data`` use for new
samples. Tables are read by pandas (its C parser for CSV, pyarrow for Parquet) and become
features through ``bpnn.data.table``. Every problem is a one-line ``DataError`` that names the
file, and where it helps the line and the column.
"""

from __future__ import annotations

import csv
import itertools
import math
import re
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bpnn.data.sources import (
    ALL_TASKS,
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
    scalar,
)
from bpnn.data.splits import check_features, flat_rows
from bpnn.data.table import (
    TableEncoding,
    TablePlan,
    column_counts,
    column_kinds,
    first_missing,
    missing_error,
    rows_with_any,
)
from bpnn.errors import DataError
from bpnn.memory import available_bytes, format_size

if TYPE_CHECKING:
    from bpnn.data.options import DataConfig


def check_file(path: Path) -> None:
    """A missing file, a folder or an empty file is a DataError naming it."""
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if not path.is_file():
        raise DataError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: empty file")


#: cells that mean "no value", in any case: an empty cell, NA, NaN, null, None
MISSING_TOKENS = ("", "NA", "NaN", "null", "None")


def _spellings(token: str) -> set[str]:
    return {"".join(chars) for chars in itertools.product(*[(c.lower(), c.upper()) for c in token])}


NA_CELLS = sorted(set().union(*(_spellings(t) for t in MISSING_TOKENS)))
TABLE_SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def table_kind(path: Path) -> str | None:
    """``csv`` or ``parquet`` from the file's extension, else None."""
    return TABLE_SUFFIXES.get(path.suffix.lower())


def read_table(path: Path, kind: str = "csv", *, text_columns: Sequence[str] = ()) -> Any:
    """A CSV file (a header row) or a Parquet file as a pandas DataFrame, with a compiled reader.

    CSV goes through pandas' C parser: numbers come out as float64/int64 columns, strings as
    text columns, and the cells in ``NA_CELLS`` as missing values; ``text_columns`` (an
    identifier) are kept as written. Column names are stripped; duplicates, a file without
    data rows and a row with too many fields are ``DataError``s naming the file.
    """
    check_file(path)
    if kind == "parquet":
        return _read_parquet(path)
    import pandas as pd  # start-up: loaded on use

    header = _csv_header(path)
    duplicates = sorted({c for c in header if header.count(c) > 1})
    if duplicates:
        raise DataError(f"{path}: duplicate column name(s) in the header: {listing(duplicates)}")
    try:
        table = pd.read_csv(
            path,
            engine="c",
            encoding="utf-8-sig",
            skipinitialspace=True,
            keep_default_na=False,
            na_values=NA_CELLS,
            dtype={name: str for name in text_columns if name in header} or None,
        )
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a UTF-8 text file") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: empty file") from None
    except pd.errors.ParserError as error:
        found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(error))
        if found:
            expected, line, saw = found.groups()
            raise DataError(
                f"{path}: line {line} has {saw} fields, but the header has {expected}"
            ) from None
        raise DataError(f"{path}: {one_line(error)}") from None
    except OSError as error:
        raise DataError(f"{path}: cannot read: {error.strerror or error}") from None
    table.columns = header
    if table.empty:
        raise DataError(f"{path}: no data rows, only a header")
    return table


def _csv_header(path: Path) -> list[str]:
    """The first non-blank row of a CSV file, each name stripped."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as file:
            for row in csv.reader(file, skipinitialspace=True):
                if any(cell.strip() for cell in row):
                    return [cell.strip() for cell in row]
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a UTF-8 text file") from None
    except OSError as error:
        raise DataError(f"{path}: cannot read: {error.strerror or error}") from None
    except csv.Error as error:
        raise DataError(f"{path}: line 1: {one_line(error)}") from None
    raise DataError(f"{path}: empty file")


def _read_parquet(path: Path) -> Any:
    try:
        import pyarrow.parquet as pq  # start-up: loaded on use
    except ImportError:
        raise DataError(
            f"{path}: reading Parquet needs pyarrow: pip install 'bpnn[parquet]'"
        ) from None
    try:
        table = pq.read_table(path).to_pandas()
    except (OSError, ValueError) as error:  # pyarrow's ArrowInvalid is a ValueError
        raise DataError(f"{path}: not a readable Parquet file ({one_line(error)})") from None
    table.columns = [str(c).strip() for c in table.columns]
    for name in table.columns:  # text cells that mean "no value", as the CSV reader reads them
        column = table[name]
        if column.dtype.kind not in "biufcmM":
            text = column.astype(str).str.strip().str.lower()
            gone = text.isin({t.lower() for t in MISSING_TOKENS}) & column.notna()
            if gone.any():
                table[name] = column.where(~gone, None)
    if table.empty:
        raise DataError(f"{path}: no data rows")
    return table


def row_locator(path: Path, kind: str) -> Callable[[int], str]:
    """``where(row)``: "line N" of a CSV data row (found by reading the file again, only when a
    message needs it), "row N" of a Parquet file."""
    if kind != "csv":
        return lambda row: f"row {row + 1}"

    def where(row: int) -> str:
        with path.open(newline="", encoding="utf-8-sig") as file:
            reader = csv.reader(file, skipinitialspace=True)
            seen = -1  # the header is row -1
            for cells in reader:
                if any(cell.strip() for cell in cells):
                    if seen == row:
                        return f"line {reader.line_num}"
                    seen += 1
        return f"row {row + 1}"

    return where


def pick_columns(
    path: Path, header: Sequence[str], needed: Sequence[str], ignored: Sequence[str], log: Log
) -> None:
    """The one rule ``predict`` and ``eval --data`` apply to a table's columns: a missing
    ``needed`` column is a ``DataError`` naming them; extra columns (beyond ``needed`` and
    ``ignored``) are left out, listed once through ``log``."""
    missing = [c for c in needed if c not in header]
    if missing:
        hint = (
            " (the first row must be a header naming the columns)"
            if all(map(is_number, header))
            else ""
        )
        raise DataError(
            f"{path}: missing column(s) {listing(missing)} the model needs "
            f"(columns: {listing(header)}){hint}"
        )
    extra = [c for c in header if c not in needed and c not in ignored]
    if extra:
        log(f"{path}: ignoring column(s) the model does not use: {listing(extra)}")


def table_labels(column: Any) -> np.ndarray:
    """A target column as labels: int64 when every value is a whole number, float64 for other
    numbers, stripped strings otherwise (the same rule as for labels read as text)."""
    if column.dtype.kind in "biuf":
        y = column.to_numpy(dtype=np.float64)
    else:
        labels = column.astype(str).str.strip().to_numpy(dtype=str)
        try:
            y = labels.astype(np.float64)
        except ValueError:
            return labels
    whole = np.all(np.isfinite(y)) and np.array_equal(y, np.round(y))
    return y.astype(np.int64) if whole else y


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
    or values, ``data.features`` (default: every other column) the features, which may be
    numbers or strings (categorical) and have missing values (``bpnn.data.table``)."""

    name = "csv"
    keys = SPLIT_KEYS | {
        "path",
        "test_path",
        "target",
        "features",
        "categorical",
        "unknown_category",
        "missing",
        "impute",
    }
    required = ("path",)
    tabular = True

    tasks = (*ALL_TASKS, "multilabel")  # several target columns of 0/1 labels

    def check(self, config: DataConfig) -> None:
        if isinstance(config.target, list):
            if not config.target:
                raise ValueError("data.target: an empty list; name one column or several")
            twice = sorted({c for c in config.target if config.target.count(c) > 1})
            if twice:
                raise ValueError(f"data.target: lists column(s) twice: {listing(twice)}")

    def target_columns(self, config: DataConfig) -> int:
        """The columns named in ``data.target`` (a list: several 0/1 labels), else 1."""
        return len(config.target) if isinstance(config.target, list) else 1

    def load(self, config: DataConfig, *, seed: int, log: Log) -> Raw:
        path = Path(config.path)  # type: ignore[arg-type]
        table = read_table(path, self.name)
        header = list(table.columns)
        targets = target_list(config.target, header)
        absent = [c for c in targets if c not in header]
        if absent:
            raise DataError(f"{path}: no target {_named(absent)} (columns: {listing(header)})")
        features = (
            config.features
            if config.features is not None
            else [c for c in header if c not in targets]
        )
        listed = [c for c in targets if c in features]
        if listed:
            raise DataError(f"{path}: the target {_named(listed)} is also listed in data.features")
        if not features:
            raise DataError(f"{path}: no feature columns besides the {_targets(targets)}")
        missing = [c for c in features if c not in header]
        if missing:
            raise DataError(
                f"{path}: missing column(s) {listing(missing)} (columns: {listing(header)})"
            )
        where = row_locator(path, self.name)
        table, y, counts = _labelled_rows(
            path, table, features, targets, config.missing, log, where
        )
        kinds = column_kinds(table, features, config.categorical, str(path), where)
        plan = TablePlan(kinds, config.missing, config.impute, config.unknown_category, counts)
        target_name = targets[0] if len(targets) == 1 else targets
        raw = Raw(
            None, y, list(features), str(path), target_name=target_name, table=table, plan=plan
        )
        raw.target_defaulted = config.target is None
        raw.where = where
        if config.test_path is not None:
            test_path = Path(config.test_path)
            test_table = read_table(test_path, self.name)
            absent = [c for c in [*features, *targets] if c not in test_table.columns]
            if absent:
                raise DataError(
                    f"{test_path}: missing column(s) {listing(absent)} "
                    f"(columns: {listing(test_table.columns)})"
                )
            raw.test_where = row_locator(test_path, self.name)
            raw.table_test, raw.y_test, test_counts = _labelled_rows(
                test_path, test_table, features, targets, config.missing, log, raw.test_where
            )
            if config.missing == "error":
                missing_error(
                    str(test_path), test_counts, first_missing(raw.table_test, raw.test_where)
                )
            raw.test_name = str(test_path)
        return raw


class ParquetSource(CsvSource):
    """A Parquet file (pyarrow: ``pip install 'bpnn[parquet]'``), with the keys of ``csv``."""

    name = "parquet"


def target_list(target: str | Sequence[str] | None, header: Sequence[str]) -> list[str]:
    """The target column(s) of a table: ``data.target`` (one name or a list of them), by
    default the last column."""
    if target is None:
        return [header[-1]]
    return [target] if isinstance(target, str) else list(target)


def _named(targets: Sequence[str]) -> str:
    """``column 'y'`` for one target column, ``columns 'a', 'b'`` for several (messages)."""
    quoted = ", ".join(f"'{c}'" for c in targets)
    return f"column {quoted}" if len(targets) == 1 else f"columns {quoted}"


def _targets(targets: Sequence[str]) -> str:
    """``target 'y'``, or ``targets 'a', 'b'`` (messages)."""
    quoted = ", ".join(f"'{c}'" for c in targets)
    return f"target {quoted}" if len(targets) == 1 else f"targets {quoted}"


def _rows_with_target(path: Path, table: Any, targets: Sequence[str], log: Log) -> Any:
    """The rows of ``table`` that have a value in every target column; how many were dropped
    goes to ``log``, and a table with none left is a ``DataError``."""
    no_target = table[list(targets)].isna().to_numpy().any(axis=1)
    if no_target.any():
        log(
            f"{path}: dropped {int(no_target.sum())} row(s) with no value in the "
            f"{_targets(targets)}"
        )
        table = table[~no_target]
        if table.empty:
            raise DataError(f"{path}: no row has a value in the target {_named(targets)}")
    return table


#: how a multi-label table may write a label's no and yes (case does not matter)
LABEL_CELLS = {"0": 0, "1": 1, "0.0": 0, "1.0": 1, "false": 0, "true": 1}


def table_label_columns(
    table: Any, path: Path, where: Callable[[int], str] | None = None
) -> np.ndarray:
    """Several target columns of a table as int64 0/1 columns, shape (rows, labels): each cell
    0 or 1 (a number), or true/false (a boolean, or written so in any case). Any other cell is a
    ``DataError`` naming the column, the value and (``where``) its row."""
    columns = []
    for name, column in table.items():
        if column.dtype.kind in "biuf":
            values = column.to_numpy(dtype=np.float64)
            bad = ~((values == 0) | (values == 1))
        else:
            text = column.astype(str).str.strip().str.lower()
            values = text.map(LABEL_CELLS).to_numpy(dtype=np.float64)
            bad = np.isnan(values)
        if bad.any():
            row = int(np.argmax(bad))
            place = ""
            if where is not None:  # the row's place in the file (rows may have been dropped)
                place = f" ({where(int(table.index[row]))})"
            raise DataError(
                f"{path}: target column '{name}' holds {scalar(column.iloc[row])!r}{place}; "
                "each label column takes 0/1 or true/false"
            )
        columns.append(values.astype(np.int64))
    return np.stack(columns, axis=1)


def _target_values(
    path: Path, table: Any, targets: Sequence[str], where: Callable[[int], str] | None = None
) -> np.ndarray:
    """One target column as labels (``table_labels``), several as 0/1 columns."""
    if len(targets) == 1:
        return table_labels(table[targets[0]])
    return table_label_columns(table[list(targets)], path, where)


def _labelled_rows(
    path: Path,
    table: Any,
    features: Sequence[str],
    targets: Sequence[str],
    missing: str,
    log: Log,
    where: Callable[[int], str] | None = None,
) -> tuple[Any, np.ndarray, dict[str, int]]:
    """The feature columns and labels of the rows that have a target value (several target
    columns: 0/1 labels, ``table_label_columns``); with
    ``missing: drop``, only the rows with every feature value too. Also the missing values
    found in each feature column (with ``missing: error``, ``load_dataset`` raises when there
    are any, after it has said which column is the target)."""
    table = _rows_with_target(path, table, targets, log)
    labels = table[list(targets)]
    table = table[list(features)]
    # missing values are NaN here: only infinities are errors. The float columns are counted
    # in one pass (a view of pandas' block where it holds them as one), a chunk of rows at a time
    floats = [name for name, column in table.items() if column.dtype.kind == "f"]
    float_set = set(floats)
    others = [name for name in table.columns if name not in float_set]
    infinite = dict(zip(floats, column_counts(table[floats], np.isinf).tolist(), strict=True))
    if any(infinite.values()):
        columns = [name for name, n in infinite.items() if n]
        raise DataError(
            f"{path}: {sum(infinite.values())} infinite feature value(s), in column(s) "
            f"{listing(columns)}"
        )
    other_gaps = table[others].isna().to_numpy()
    found = {
        **dict(zip(floats, column_counts(table[floats], np.isnan).tolist(), strict=True)),
        **dict(zip(others, other_gaps.sum(axis=0).tolist(), strict=True)),
    }
    counts = {name: int(found[name]) for name in table.columns}
    if missing == "drop" and any(counts.values()):
        complete = ~(rows_with_any(table[floats], np.isnan) | other_gaps.any(axis=1))
        log(
            f"{path}: dropped {int((~complete).sum())} row(s) with missing feature values "
            "(data.missing: drop)"
        )
        table, labels = table[complete], labels[complete]
        if table.empty:
            raise DataError(f"{path}: every row has a missing feature value")
    return table, _target_values(path, labels, targets, where), counts


class NpzSource(Source):
    """An ``.npz`` archive with arrays ``data.x_key`` (features) and ``data.y_key`` (targets)."""

    name = "npz"
    keys = SPLIT_KEYS | {"path", "test_path", "x_key", "y_key"}
    required = ("path",)
    tasks = (*ALL_TASKS, "multilabel")  # a 2-D y of 0/1 columns with binary_cross_entropy

    def target_columns(self, config: DataConfig) -> int:
        """The columns of a 2-D ``data.y_key`` array (read from its header, not its data):
        several make binary cross-entropy a multi-label run. 1 for a 1-D array, and when the
        file cannot be read (``load`` says why)."""
        try:
            path = Path(config.path)  # type: ignore[arg-type]
            with zipfile.ZipFile(path) as archive, archive.open(f"{config.y_key}.npy") as member:
                version = np.lib.format.read_magic(member)
                read_header = (
                    np.lib.format.read_array_header_1_0
                    if version == (1, 0)
                    else np.lib.format.read_array_header_2_0
                )
                shape = read_header(member)[0]
        except (OSError, KeyError, ValueError, TypeError, zipfile.BadZipFile):
            return 1
        return int(shape[1]) if len(shape) == 2 else 1

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


for _source in (CsvSource(), ParquetSource(), NpzSource(), IdxSource()):
    register(_source)


# --- new inputs for predict and eval --------------------------------------------------------


def _no_log(message: str) -> None:
    """The default ``log``: say nothing."""


@dataclass
class Samples:
    """New samples read for ``bpnn predict``: raw float64 features of the rows kept, which rows
    of the file they are, and the identifier column asked for."""

    X: np.ndarray
    n_rows: int  # rows in the file
    kept: np.ndarray | None = None  # rows with features (data.missing: drop); None: every row
    ids: np.ndarray | None = None  # the --id column as written, one per row of the file


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
    """The samples of a file for ``bpnn predict``.

    The kind follows from the name: a table (``.csv`` with a header, ``.parquet``) has the
    model's raw columns picked by name and encoded with its ``encoding`` (without one: every
    column numeric), the ``target`` column(s) and the ``id_column`` set aside, any other column left
    out (listed once through ``log``); ``.npz`` (array ``X``, or the only array with a row per
    sample) and IDX images (``.gz``, ``.idx``, ``-ubyte``) hold features already.
    """
    path = Path(path)
    kind = table_kind(path)
    if kind is not None:
        encoding = encoding or TableEncoding.numeric(feature_names)
        table = read_table(path, kind, text_columns=[id_column] if id_column else [])
        needed = [*encoding.column_names, *([id_column] if id_column else [])]
        ignored = [] if target is None else [target] if isinstance(target, str) else list(target)
        pick_columns(path, list(table.columns), needed, ignored, log)
        X, kept = encoding.transform(table, str(path), where=row_locator(path, kind))
        X = _same_width(X, n_features, str(path))
        check_features(X, encoding.feature_names, str(path))
        ids = None if id_column is None else table[id_column].fillna("").to_numpy(dtype=str)
        return Samples(X, len(table), kept, ids)
    if id_column is not None:
        raise DataError(f"{path}: --id needs a table (.csv or .parquet) with that column")
    return Samples(_array_inputs(path, feature_names, n_features), 0)


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


def _array_inputs(path: Path, feature_names: list[str], n_features: int) -> np.ndarray:
    name = path.name.lower()
    if name.endswith(".npz"):
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
            f"{path}: unknown input file type; use .csv, .parquet, .npz or IDX (.gz, .idx, -ubyte)"
        )
    X = _same_width(X, n_features, str(path))
    check_features(
        X,
        feature_names if len(feature_names) == X.shape[1] else generic_names(X.shape[1]),
        str(path),
    )
    return X.astype(np.float64, copy=False)


def read_labelled(
    path: Path,
    *,
    feature_names: list[str],
    target: str | Sequence[str] | None,
    encoding: TableEncoding | None = None,
    log: Log = _no_log,
) -> tuple[np.ndarray, np.ndarray]:
    """Raw float64 features and the labels or values of a labelled file, for ``bpnn eval --data``.

    A table (``.csv``, ``.parquet``): the model's raw columns by name, encoded as in
    ``read_samples`` (the same rule for missing and extra columns), and the ``target`` column
    (default: the last column; a list: every one of them, as 0/1 columns of a multi-label
    model, ``table_label_columns``); rows without a target, and with ``data.missing: drop`` rows
    with a missing feature, are left out and counted through ``log``. ``.npz``: arrays ``X`` and
    ``y``. Labels come back as they are in the file; the caller maps them to the model's
    classes with ``encode_labels``.
    """
    path = Path(path)
    kind = table_kind(path)
    if kind is not None:
        encoding = encoding or TableEncoding.numeric(feature_names)
        table = read_table(path, kind)
        header = list(table.columns)
        targets = target_list(target or None, header)
        pick_columns(path, header, [*encoding.column_names, *targets], [], log)
        table = _rows_with_target(path, table, targets, log)
        where = row_locator(path, kind)
        X, kept = encoding.transform(table, str(path), where=where)
        labelled = table if kept is None else table[kept]
        y = _target_values(path, labelled, targets, where)
        if kept is not None:
            log(f"{path}: left out {int((~kept).sum())} row(s) with missing feature values")
        check_features(X, encoding.feature_names, str(path))
        return X, y
    if path.name.lower().endswith(".npz"):
        X, y = _npz_pair(path, "X", "y")
        X = flat_rows(X)
    else:
        raise DataError(
            f"{path}: labelled data must be a table (.csv, .parquet: with the target column) "
            "or .npz"
        )
    X = _same_width(X, len(feature_names), str(path))
    check_features(X, feature_names, str(path))
    return X.astype(np.float64, copy=False), y
