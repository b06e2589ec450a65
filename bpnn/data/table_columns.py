"""A table's columns before and around the encoding (``bpnn.data.table``): each feature column's
kind (``column_kinds``, ``TablePlan``), the cells as categories or numbers, the passes over many
columns a chunk of rows at a time (``CELLS_AT_ONCE``: their temporaries stay small however wide
the table), and the messages that name a column and a row."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from bpnn.data.sources import listing, quoted
from bpnn.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

MISSING_SETTINGS = ("error", "drop", "impute")
IMPUTE_STRATEGIES = ("mean", "median", "most_frequent")
UNKNOWN_SETTINGS = ("error", "ignore")


def category_text(value: Any) -> str:
    """A cell as a category: strings stripped; whole numbers without ``.0`` (``4``, not ``4.0``,
    whether the column was read as integers or, having blanks, as floats)."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    number = float(value)
    return str(int(number)) if number.is_integer() else repr(number)


def factorized(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    """A column as ``codes`` (int64 per row, -1 where missing) into ``texts`` (the category text
    of each distinct value): the text work is done once per distinct value, not per row."""
    import pandas as pd

    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    return np.asarray(codes, dtype=np.int64), [category_text(u) for u in uniques]


def missing_mask(column: pd.Series) -> np.ndarray:
    """Where a column has no value (NaN or None: the reader turned blanks and ``NA`` into them)."""
    return column.isna().to_numpy()


#: cells taken at once by the passes over many columns (2 MB of float64): their temporaries
#: stay small however wide the table
CELLS_AT_ONCE = 1 << 18


def rows_at_once(width: int) -> int:
    """How many rows of ``width`` columns make ``CELLS_AT_ONCE`` cells (at least one)."""
    return max(1, CELLS_AT_ONCE // max(width, 1))


def row_chunks(frame: pd.DataFrame) -> Iterator[tuple[int, np.ndarray]]:
    """``(first row, float64 matrix)`` of ``rows_at_once`` rows of ``frame`` at a time, NaN
    where a value is missing: a view of pandas' own block where it holds the columns as one
    block of floats, else converted a chunk at a time (integers, nullable types, one block per
    column). Never a copy of every row; read only."""
    step = rows_at_once(frame.shape[1])
    for start in range(0, len(frame), step):
        chunk = frame.iloc[start : start + step]
        yield start, chunk.to_numpy(dtype=np.float64, na_value=np.nan)


def column_counts(frame: pd.DataFrame, test: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """How many cells of each (numeric) column of ``frame`` pass ``test``, which must be
    ``np.isnan`` or ``np.isinf`` (or another test only non-finite values pass): one pass,
    ``CELLS_AT_ONCE`` cells at a time."""
    counts = np.zeros(frame.shape[1], dtype=np.int64)
    for _, chunk in row_chunks(frame):
        # a NaN or an infinity makes its column's sum NaN or infinite: only such columns (or
        # ones whose sum overflowed) are tested cell by cell
        with np.errstate(over="ignore", invalid="ignore"):
            suspect = ~np.isfinite(chunk.sum(axis=0))
        if suspect.any():
            counts[suspect] += test(chunk[:, suspect]).sum(axis=0)
    return counts


def rows_with_any(frame: pd.DataFrame, test: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Which rows of ``frame`` (numeric columns) have a cell that passes ``test``."""
    found = np.zeros(len(frame), dtype=bool)
    for start, chunk in row_chunks(frame):
        found[start : start + len(chunk)] = test(chunk).any(axis=1)
    return found


def complete_numeric_columns(table: pd.DataFrame, names: Sequence[str]) -> set[str]:
    """The columns among ``names`` that pandas holds as numbers and that have no missing value
    (one pass over them all)."""
    typed = [name for name in names if is_numeric(table[name])]
    gaps = column_counts(table[typed], np.isnan)
    return {name for name, gap in zip(typed, gaps, strict=True) if not gap}


def is_numeric(column: pd.Series) -> bool:
    from pandas.api import types

    return types.is_numeric_dtype(column.dtype) and not types.is_bool_dtype(column.dtype)


#: a categorical column with more categories than this is refused (one input per category)
MAX_CATEGORIES = 1000


def check_category_count(name: str, n_categories: int, n_rows: int, source: str) -> None:
    """A column with a category for (nearly) every row is an identifier or free text, not a
    category: refuse it before it becomes thousands of inputs."""
    if n_categories > MAX_CATEGORIES or (n_categories > 20 and n_categories > n_rows / 2):
        raise DataError(
            f"{source}: column {quoted(name)} has {n_categories} distinct values in {n_rows} "
            "training rows, too many to one-hot encode (an identifier or free text?); leave it "
            "out with data.features"
        )


def placer(table: pd.DataFrame, where: Callable[[int], str] | None) -> Callable[[int], str]:
    """``place(position)``: where the row at ``position`` of ``table`` is in its file. Tables
    read by bpnn keep the file's row numbers as their index, through any rows dropped."""
    where = where or (lambda row: f"row {row + 1}")

    def place(position: int) -> str:
        label = table.index[position]
        return where(int(label) if isinstance(label, int | np.integer) else position)

    return place


def column_numbers(
    values: pd.Series, gone: np.ndarray, name: str, source: str, place: Callable[[int], str]
) -> np.ndarray:
    """A numeric column as float64 (NaN where missing); a cell that is not a number is a
    ``DataError`` naming its place and column."""
    import pandas as pd

    if is_numeric(values):
        return values.to_numpy(dtype=np.float64, na_value=np.nan)
    numbers = pd.to_numeric(values.astype(object).where(~gone, None), errors="coerce")
    bad = np.flatnonzero(numbers.isna().to_numpy() & ~gone)
    if len(bad):
        raise DataError(
            f"{source}: {place(int(bad[0]))}, column {quoted(name)}: "
            f"{quoted(str(values.iloc[bad[0]]))} is not a number"
        )
    return numbers.to_numpy(dtype=np.float64, na_value=np.nan)


def missing_error(source: str, counts: dict[str, int], first: str | None = None) -> None:
    """Raise the ``data.missing: error`` message, naming each column and how many rows (and
    where the first one is, when known)."""
    found = {name: n for name, n in counts.items() if n}
    if not found:
        return
    items = [f"{quoted(name)} ({n} row{'s' if n > 1 else ''})" for name, n in found.items()]
    columns = ", ".join(items[:10]) + (f", ... ({len(items)} in all)" if len(items) > 10 else "")
    raise DataError(
        f"{source}: missing values in column(s) {columns}"
        + (f", the first at {first}" if first else "")
        + "; set data.missing: drop to leave those rows out, or data.missing: impute to fill "
        "them in"
    )


def first_missing(table: pd.DataFrame, where: Callable[[int], str] | None) -> str | None:
    """Where the first row with a missing value is (``where`` as in ``transform``), or None."""
    rows = np.flatnonzero(table.isna().to_numpy().any(axis=1))
    return placer(table, where)(int(rows[0])) if len(rows) else None


@dataclass
class TablePlan:
    """What a table source decided before the split: each feature column's kind, the policies,
    and the missing values it found (the encoding is fitted after the split)."""

    kinds: dict[str, str]
    missing: str = "error"
    impute: str = "mean"
    unknown_category: str = "error"
    missing_counts: dict[str, int] = field(default_factory=dict)


def column_kinds(
    table: pd.DataFrame,
    features: Sequence[str],
    categorical: str | Sequence[str],
    source: str,
    where: Callable[[int], str],
    inferred: bool = False,
) -> dict[str, str]:
    """Each feature column's kind, from the rows of ``table`` (the rows kept for training):
    columns of strings are categorical, numbers numeric, and the columns listed in
    ``categorical`` (when it is a list) categorical whatever they hold.

    ``inferred``: the reader guessed each column's type from all of the file's cells (CSV), so
    a column read as text whose values here are all numbers is numeric: its other cells were
    in rows since dropped (no target, ``data.missing: drop``). A file that declares its types
    (Parquet) keeps a column of strings categorical, digits or not.

    A column of strings where most values are numbers is a typing slip, not a category: it is a
    ``DataError`` naming the first value that is not a number."""
    import pandas as pd

    listed = [] if categorical == "auto" else list(categorical)
    unknown = [name for name in listed if name not in features]
    if unknown:
        raise DataError(
            f"{source}: data.categorical names {listing(unknown)}, not among the feature "
            f"columns ({listing(features)})"
        )
    kinds = {}
    for name in features:
        column = table[name]
        if name in listed:
            kinds[name] = "categorical"
        elif is_numeric(column):
            kinds[name] = "numeric"
        else:
            codes, uniques = pd.factorize(column, use_na_sentinel=True)
            as_text = pd.Series(uniques, dtype=object).astype(str)
            is_number = pd.to_numeric(as_text, errors="coerce").notna().to_numpy()
            counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
            not_numbers = int(counts[~is_number].sum())
            if not_numbers > 0 and not_numbers * 2 < counts.sum():
                row = int(np.flatnonzero((codes >= 0) & ~is_number[codes])[0])
                raise DataError(
                    f"{source}: {placer(table, where)(row)}, column {quoted(name)}: "
                    f"{quoted(as_text.iloc[codes[row]])} is not a number (the column's other "
                    "values are; list it in data.categorical to treat it as categories)"
                )
            numbers = inferred and not_numbers == 0 and counts.sum() > 0
            kinds[name] = "numeric" if numbers else "categorical"
    return kinds


def numbers_as_numbers(table: pd.DataFrame, kinds: dict[str, str]) -> pd.DataFrame:
    """``table`` with each numeric column that pandas holds as text (``column_kinds`` with
    ``inferred``: every value of it a number) held as numbers, as the encoding expects of the
    columns it is fitted on."""
    import pandas as pd

    numeric = [name for name, kind in kinds.items() if kind == "numeric"]
    text = [name for name in numeric if not is_numeric(table[name])]
    if not text:
        return table
    return table.assign(**{name: pd.to_numeric(table[name]) for name in text})
