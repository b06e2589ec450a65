"""Parquet files for the table sources (``bpnn.data.formats.read_table``): their column names
and their columns, with the one check of their Arrow types that training, ``predict`` and
``eval --data`` share.

A column of numbers (integers, floats, decimals: read as float64), booleans or strings is read
as it is, a dictionary-encoded column as its values; any other type (list, struct, map, binary,
timestamp, date, time, duration, ...) is refused in one line naming the column and its type.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bpnn.data.sources import one_line, quoted
from bpnn.errors import DataError


def _pyarrow_parquet(path: Path) -> Any:
    try:
        import pyarrow.parquet as pq  # start-up: loaded on use
    except ImportError:
        raise DataError(
            f"{path}: reading Parquet needs pyarrow: pip install 'bpnn[parquet]'"
        ) from None
    return pq


def parquet_names(path: Path) -> dict[str, str]:
    """The columns of a Parquet file: each stripped name -> its name in the file, without the
    index columns pandas stores (``to_parquet`` of a frame with an index)."""
    pq = _pyarrow_parquet(path)
    try:
        schema = pq.read_schema(path)
    except (OSError, ValueError) as error:  # pyarrow's ArrowInvalid is a ValueError
        raise DataError(f"{path}: not a readable Parquet file ({one_line(error)})") from None
    index = (schema.pandas_metadata or {}).get("index_columns", [])
    return {str(n).strip(): n for n in schema.names if n not in index}


def read_parquet(path: Path, columns: Sequence[str], text_columns: Sequence[str] = ()) -> Any:
    """The ``columns`` (stripped names, as ``parquet_names`` gives them) of a Parquet file as a
    pandas DataFrame indexed by row position (not by an index pandas may have stored), each
    column as ``_arrow_columns`` reads it."""
    import pandas as pd  # start-up: loaded on use

    pq = _pyarrow_parquet(path)
    names = parquet_names(path)
    try:
        arrow = pq.read_table(path, columns=[names[c] for c in columns])
    except (OSError, ValueError) as error:  # pyarrow's ArrowInvalid is a ValueError
        raise DataError(f"{path}: not a readable Parquet file ({one_line(error)})") from None
    # the Arrow types decide, not the dtypes pandas may have recorded: the columns come out as
    # the CSV reader's would (an integer column with blanks as float64)
    table = _arrow_columns(arrow, path, list(columns), text_columns).to_pandas(ignore_metadata=True)
    table.columns = list(columns)
    table.index = pd.RangeIndex(len(table))
    return table


#: what ``_arrow_kind`` says of the columns bpnn reads
READ = ("number", "bool", "text", "null")
#: what to do with a Parquet column of a type bpnn does not read, by ``_arrow_kind``
_ADVICE = {
    "nested": "give each value a column of its own (a feature is one number or string per row)",
    "binary": "convert it to strings",
    "temporal": "convert it to numbers first (seconds, a day of the week, ...) or to strings",
}


def _arrow_kind(kind: Any) -> str:
    """What bpnn makes of an Arrow type: ``number``, ``bool``, ``text`` and ``null`` are read
    as they are (a decimal as float64); ``nested``, ``binary``, ``temporal`` (or ``other``)
    are not."""
    import pyarrow.types as is_

    if is_.is_dictionary(kind):
        return _arrow_kind(kind.value_type)
    if is_.is_integer(kind) or is_.is_floating(kind) or is_.is_decimal(kind):
        return "number"
    text = (is_.is_string, is_.is_large_string, getattr(is_, "is_string_view", None))
    checks = {
        "bool": (is_.is_boolean,),
        "text": text,
        "null": (is_.is_null,),
        "nested": (is_.is_nested,),
        "binary": (is_.is_binary, is_.is_large_binary, is_.is_fixed_size_binary),
        "temporal": (is_.is_temporal,),
    }
    for name, tests in checks.items():
        if any(test is not None and test(kind) for test in tests):
            return name
    return "other"


def _arrow_columns(arrow: Any, path: Path, names: list[str], text_columns: Sequence[str]) -> Any:
    """The Arrow table of a Parquet file's columns as bpnn reads them: numbers (a decimal as
    float64, to the 15 or 16 significant digits of a double), booleans and strings as they are,
    a dictionary-encoded column as its values; a column of another type (list, struct, map,
    binary, timestamp, date, time, duration, ...) is a ``DataError`` naming it and its type,
    unless it is one of the ``text_columns`` (an identifier), read as strings then."""
    import pyarrow as pa

    columns, changed = [], False
    for name, field, column in zip(names, arrow.schema, arrow.columns, strict=True):
        kind = _arrow_kind(field.type)
        if kind in READ:
            if pa.types.is_dictionary(column.type):
                column = column.cast(column.type.value_type)
            if pa.types.is_decimal(column.type):
                column = column.cast(pa.float64())
        else:
            try:
                if name not in text_columns or kind == "nested":
                    raise ValueError("not read")
                column = column.cast(pa.string())
            except (ValueError, pa.ArrowException):
                advice = _ADVICE.get(kind, "convert it to numbers or strings")
                raise DataError(
                    f"{path}: column {quoted(name)} has the Parquet type {field.type}, which bpnn "
                    f"does not read; {advice}, or leave it out"
                ) from None
        changed = changed or column.type != field.type
        columns.append(column)
    return pa.Table.from_arrays(columns, names=names) if changed else arrow
