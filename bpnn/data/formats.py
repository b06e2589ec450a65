"""Data file formats: tables (CSV with a header row, Parquet), NPZ (named arrays), IDX (images
and labels, gzipped or not), read for the file sources (``bpnn.data.table_files``,
``bpnn.data.arrays``) and for new samples (``bpnn.data.new_samples``).

Tables are read by pandas (its C parser for CSV, pyarrow for Parquet) and become features
through ``bpnn.data.table``. Every problem is a one-line ``DataError`` that names the file, and
where it helps the line and the column.
"""

from __future__ import annotations

import csv
import itertools
import math
import re
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from bpnn import readers
from bpnn.data.parquet import parquet_names, read_parquet
from bpnn.data.sources import Log, is_number, listing, one_line
from bpnn.data.splits import flat_rows
from bpnn.errors import DataError
from bpnn.memory import available_bytes, format_size


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


def table_header(path: Path, kind: str = "csv") -> list[str]:
    """The column names of a table file, stripped, without reading its rows: a CSV file's first
    non-blank row, a Parquet file's schema (less the index columns pandas may have stored).
    A name written twice is a ``DataError`` naming the file."""
    check_file(path)
    header = list(parquet_names(path)) if kind == "parquet" else _csv_header(path)
    duplicates = sorted({c for c in header if header.count(c) > 1})
    if duplicates:
        raise DataError(f"{path}: duplicate column name(s) in the header: {listing(duplicates)}")
    return header


def read_table(
    path: Path,
    kind: str = "csv",
    *,
    columns: Sequence[str] | None = None,
    text_columns: Sequence[str] = (),
    missing: str = "error",
) -> Any:
    """A CSV file (a header row) or a Parquet file as a pandas DataFrame of ``columns`` (names
    from ``table_header``; default every column), with a compiled reader; its index is the
    row's position among the file's data rows.

    CSV goes through pandas' C parser: numbers come out as float64/int64 columns, strings as
    text columns, and the cells in ``NA_CELLS`` as missing values; ``text_columns`` (an
    identifier) are kept as written. A file without data rows, a row with too many fields and,
    unless ``missing`` (``data.missing``) is ``drop``, a row with too few are ``DataError``s
    naming the file and the line; with ``drop`` a short row's absent cells are missing values.
    Parquet columns are read as ``_arrow_columns`` says (numbers, booleans and strings; the
    other types refused naming the column).
    """
    header = table_header(path, kind)
    if kind == "parquet":
        table = read_parquet(path, header if columns is None else columns, text_columns)
        _no_value_cells(table)
    else:
        table = _read_csv(path, header, text_columns)
        if missing != "drop":
            _refuse_short_rows(path, table, len(header))
        if columns is not None:
            table = table[list(columns)]
    if table.empty:
        raise DataError(f"{path}: no data rows" + (", only a header" if kind == "csv" else ""))
    return table


def _no_value_cells(table: Any) -> None:
    """Text cells of a Parquet table that mean "no value" (``MISSING_TOKENS``) made missing
    values, as the CSV reader reads them."""
    for name in table.columns:
        column = table[name]
        if column.dtype.kind not in "biufcmM":
            text = column.astype(str).str.strip().str.lower()
            gone = text.isin({t.lower() for t in MISSING_TOKENS}) & column.notna()
            if gone.any():
                table[name] = column.where(~gone, None)


def _read_csv(path: Path, header: list[str], text_columns: Sequence[str]) -> Any:
    import pandas as pd  # start-up: loaded on use

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
    return table


def _refuse_short_rows(path: Path, table: Any, width: int) -> None:
    """A data row with fewer fields than the header is a ``DataError`` naming its line (pandas
    fills the absent cells in as missing values, which would hide a line cut short or a field
    left out). Only the rows whose last cell is missing can be short, so a file without such
    rows is not read again; else its lines are counted, once."""
    maybe = np.flatnonzero(table.iloc[:, -1].isna().to_numpy())
    if not len(maybe):
        return
    found = _csv_rows(path, set(maybe.tolist()))
    short = [(line, fields) for line, fields in found.values() if fields < width]
    if short:
        line, fields = short[0]
        others = f" ({len(short)} rows are short)" if len(short) > 1 else ""
        raise DataError(
            f"{path}: line {line} has {fields} field{'s' if fields > 1 else ''}, but the "
            f"header has {width}{others}; with data.missing: drop such rows are left out"
        )


#: Python's csv module refuses a field longer than 131,072 characters unless told otherwise; no
#: field is longer than its file, and C's long (the limit's type) may be 32 bits
FIELD_LIMIT_MAX = 2**31 - 1


@contextmanager
def _fields_as_long_as(path: Path) -> Iterator[None]:
    """Let the csv module read fields as long as the file ``path`` (restored afterwards)."""
    before = csv.field_size_limit()
    csv.field_size_limit(min(max(before, path.stat().st_size + 1), FIELD_LIMIT_MAX))
    try:
        yield
    finally:
        csv.field_size_limit(before)


def _csv_rows(path: Path, rows: set[int]) -> dict[int, tuple[int, int]]:
    """``{row: (line, fields)}`` for the data ``rows`` of a CSV file (positions as pandas
    numbers them: blank lines skipped), read with the csv module up to the last of them;
    ``line`` is where the row ends. A row beyond the file is left out."""
    found: dict[int, tuple[int, int]] = {}
    last = max(rows, default=-1)
    try:
        with _fields_as_long_as(path), path.open(newline="", encoding="utf-8-sig") as file:
            reader = csv.reader(file, skipinitialspace=True)
            seen = -2  # the header is row -1
            try:
                for cells in reader:
                    if len(cells) > 1 or (cells and cells[0].strip()):  # not a blank line
                        seen += 1
                        if seen in rows:
                            found[seen] = (reader.line_num, len(cells))
                        if seen >= last:
                            break
            except (csv.Error, UnicodeDecodeError) as error:
                raise DataError(f"{path}: line {reader.line_num}: {one_line(error)}") from None
    except OSError as error:
        raise DataError(f"{path}: cannot read: {error.strerror or error}") from None
    return found


def _csv_header(path: Path) -> list[str]:
    """The first non-blank row of a CSV file, each name stripped."""
    try:
        with _fields_as_long_as(path), path.open(newline="", encoding="utf-8-sig") as file:
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


def row_locator(path: Path, kind: str) -> Callable[[int], str]:
    """``where(row)``: "line N" of a CSV data row (found by reading the file again, only when a
    message needs it), "row N" of a Parquet file."""
    if kind != "csv":
        return lambda row: f"row {row + 1}"

    def where(row: int) -> str:
        found = _csv_rows(path, {row}).get(row)
        return f"line {found[0]}" if found else f"row {row + 1}"

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


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """The named arrays of an .npz archive (no pickles; sizes checked from the headers before
    anything is inflated: ``bpnn.readers``)."""
    check_file(path)
    return readers.read_npz(path, DataError)


def npz_pair(path: Path, x_key: str, y_key: str) -> tuple[np.ndarray, np.ndarray]:
    arrays = read_npz(path)
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
