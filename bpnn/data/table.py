"""The table encoding: from a table's raw columns (numbers, strings, blanks) to the float matrix
the network reads, fitted on the training split and saved in checkpoints without pickle.

Each raw feature column is one of two kinds:

- **numeric**: the column as float64; a missing value becomes ``fill`` (the imputer's statistic:
  mean, median or most frequent value of the training split) when ``data.missing: impute``;
- **categorical** (a column of strings, or one listed in ``data.categorical``): one-hot encoded,
  one input per category of the training split, ``name=category``. A value outside the
  categories is an error (``data.unknown_category: error``) or all zeros (``ignore``); a missing
  value becomes the most frequent category (``impute``).

scikit-learn fits it (``OneHotEncoder`` finds the categories, ``SimpleImputer`` the statistics);
the fitted state is kept as plain lists and numbers (``to_dict``/``from_dict``: JSON in the
checkpoint) and applied here with NumPy, giving exactly what the fitted scikit-learn objects
give (``tests/data/test_tables.py`` checks it). Input scaling then applies to the encoded matrix as
to any other, one-hot inputs included.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from bpnn.data import table_columns
from bpnn.data.sources import listing, quoted
from bpnn.data.table_columns import (
    check_category_count,
    column_numbers,
    complete_numeric_columns,
    factorized,
    first_missing,
    is_numeric,
    missing_error,
    missing_mask,
    placer,
)
from bpnn.errors import DataError

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class ColumnEncoding:
    """One raw column: its kind, its categories (categorical) and its fill value (imputed)."""

    name: str
    kind: str  # "numeric" or "categorical"
    categories: tuple[str, ...] = ()
    fill: float | str | None = None  # what a missing value becomes; None: not imputed
    missing: int = 0  # missing values found in the data it was fitted with (for the report)

    @property
    def feature_names(self) -> list[str]:
        """The inputs it becomes: its own name, or ``name=category`` for each category."""
        if self.kind == "numeric":
            return [self.name]
        return [f"{self.name}={c}" for c in self.categories]


@dataclass(frozen=True)
class TableEncoding:
    """Every raw feature column's encoding, in input order, and the two policies it applies."""

    columns: tuple[ColumnEncoding, ...]
    missing: str = "error"  # data.missing: what a missing value does at predict time
    unknown_category: str = "error"  # data.unknown_category
    impute: str = "mean"  # data.impute (for the report)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def feature_names(self) -> list[str]:
        return [name for c in self.columns for name in c.feature_names]

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    @classmethod
    def numeric(cls, names: Sequence[str]) -> TableEncoding:
        """Every column numeric, nothing imputed: what a model without a saved encoding (an old
        checkpoint, or one trained on an NPZ file) reads a table with."""
        return cls(tuple(ColumnEncoding(name, "numeric") for name in names))

    # --- fitting ------------------------------------------------------------------------------

    @classmethod
    def fit(
        cls,
        table: pd.DataFrame,
        kinds: dict[str, str],
        *,
        rows: np.ndarray | None = None,
        missing: str = "error",
        impute: str = "mean",
        unknown_category: str = "error",
        missing_counts: dict[str, int] | None = None,
        source: str = "data",
    ) -> TableEncoding:
        """Fit the encoding of ``kinds`` (column name -> ``numeric``/``categorical``) to the rows
        of ``table`` (``rows``: the positions of the training split; default every row):
        categories with ``OneHotEncoder``, fill values with ``SimpleImputer`` (``impute`` for
        numbers, ``most_frequent`` for categories). Columns are taken one at a time, so the
        training rows are never copied as a whole table."""
        from sklearn.impute import SimpleImputer  # start-up: loaded on use
        from sklearn.preprocessing import OneHotEncoder

        counts = missing_counts or {}
        numeric = [name for name, kind in kinds.items() if kind == "numeric"]
        # a complete numeric column has values in any (non-empty) split and, unless imputing,
        # needs no statistic: nothing to fit
        shortcut = missing != "impute" and len(table) > 0 and (rows is None or len(rows) > 0)
        complete = complete_numeric_columns(table, numeric) if shortcut else set()
        columns = []
        for name, kind in kinds.items():
            if name in complete:
                columns.append(ColumnEncoding(name, kind, missing=counts.get(name, 0)))
                continue
            values = table[name] if rows is None else table[name].iloc[rows]
            absent = missing_mask(values)
            if absent.all():
                raise DataError(
                    f"{source}: column {quoted(name)} has no values in the training split"
                )
            fill: float | str | None = None
            if kind == "numeric":
                numbers = values.to_numpy(dtype=np.float64, na_value=np.nan).reshape(-1, 1)
                if missing == "impute":
                    imputer = SimpleImputer(strategy=impute).fit(numbers)
                    fill = float(imputer.statistics_[0])
                columns.append(ColumnEncoding(name, kind, fill=fill, missing=counts.get(name, 0)))
                continue
            codes, texts = factorized(values)
            if missing == "impute":
                cells = np.array([*texts, None], dtype=object)[codes].reshape(-1, 1)
                imputer = SimpleImputer(strategy="most_frequent", missing_values=None)
                fill = str(imputer.fit(cells).statistics_[0])
            # the categories of the training rows: fitting on each distinct value once gives
            # the same sorted categories_ as fitting on every row
            seen = np.array([texts[i] for i in np.unique(codes[codes >= 0])], dtype=object)
            encoder = OneHotEncoder(handle_unknown="ignore").fit(seen.astype(str).reshape(-1, 1))
            categories = tuple(str(c) for c in encoder.categories_[0])
            check_category_count(name, len(categories), len(values), source)
            columns.append(
                ColumnEncoding(name, kind, categories, fill=fill, missing=counts.get(name, 0))
            )
        return cls(tuple(columns), missing, unknown_category, impute)

    # --- applying -----------------------------------------------------------------------------

    def transform(
        self,
        table: pd.DataFrame,
        source: str,
        *,
        where: Callable[[int], str] | None = None,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """The encoded float64 matrix of ``table``'s rows, and which rows it holds.

        Rows with a missing value: filled in (``impute``), left out (``drop``: the second value
        is the boolean mask of the rows kept, else ``None``), or a ``DataError`` naming the
        columns and counts (``error``). ``where(row)`` says where a row is, for messages."""
        absent = self._absent(table, source, where)
        keep = None
        if self.missing == "drop":
            keep = ~np.logical_or.reduce([*absent.values(), np.zeros(len(table), dtype=bool)])
            keep = None if keep.all() else keep
        rows = np.arange(len(table)) if keep is None else np.flatnonzero(keep)
        [X] = self._encode(table, absent, [rows], source, placer(table, where))
        return X, keep

    def transform_parts(
        self,
        table: pd.DataFrame,
        parts: Sequence[np.ndarray],
        source: str,
        *,
        where: Callable[[int], str] | None = None,
    ) -> list[np.ndarray]:
        """One encoded float64 matrix per part (row positions: the splits of a training run),
        written straight from the table's columns: no matrix of every row, no copy to split.
        Missing values as in ``transform``; a table source has dropped its incomplete rows
        already when ``data.missing`` is ``drop``."""
        absent = self._absent(table, source, where)
        if self.missing == "drop" and any(a.any() for a in absent.values()):
            raise ValueError("transform_parts: rows with missing values were not dropped")
        return self._encode(table, absent, parts, source, placer(table, where))

    def _absent(
        self, table: pd.DataFrame, source: str, where: Callable[[int], str] | None
    ) -> dict[str, np.ndarray]:
        """Each column's missing cells; a ``DataError`` when the encoding cannot fill them."""
        numeric = [c.name for c in self.columns if c.kind == "numeric"]
        complete = complete_numeric_columns(table, numeric)
        no_gaps = np.zeros(len(table), dtype=bool)  # shared by the complete columns
        no_gaps.flags.writeable = False
        absent = {
            c.name: no_gaps if c.name in complete else missing_mask(table[c.name])
            for c in self.columns
        }
        unfilled = any(c.fill is None and absent[c.name].any() for c in self.columns)
        if self.missing == "error" or (self.missing == "impute" and unfilled):
            missing_error(
                source,
                {name: int(a.sum()) for name, a in absent.items()},
                first_missing(table[self.column_names], where),
            )
        return absent

    def _encode(
        self,
        table: pd.DataFrame,
        absent: dict[str, np.ndarray],
        parts: Sequence[np.ndarray],
        source: str,
        place: Callable[[int], str],
    ) -> list[np.ndarray]:
        """The encoded rows of each part (C order: rows contiguous, the layout every split has
        always had, so the scaling's sums come out bit for bit). Columns are checked in their
        order (a cell that is not a number, an unknown category: the first one is named);
        the numeric columns pandas holds as numbers, which need no check, are then gathered
        together, ``CELLS_AT_ONCE`` cells at a time."""
        outs = [np.empty((len(rows), self.n_features), dtype=np.float64) for rows in parts]
        widths = [1 if c.kind == "numeric" else len(c.categories) for c in self.columns]
        starts = np.cumsum([0, *widths])[:-1]
        typed = []  # the numeric columns pandas holds as numbers, by position
        for i, column in enumerate(self.columns):
            values, gone = table[column.name], absent[column.name]
            if column.kind == "numeric" and is_numeric(values):
                typed.append(i)
            elif column.kind == "numeric":  # read as text: each cell must be a number
                numbers = column_numbers(values, gone, column.name, source, place)
                if column.fill is not None and gone.any():
                    numbers = np.where(gone, column.fill, numbers)
                for out, rows in zip(outs, parts, strict=True):
                    out[:, starts[i]] = numbers[rows]
            else:
                categories = self._categories(column, values, parts, source, place)
                for out, rows in zip(outs, parts, strict=True):
                    # one-hot: -1 (unknown, encoded as all zeros) matches no category
                    np.equal(
                        categories[rows][:, None],
                        np.arange(widths[i]),
                        out=out[:, starts[i] : starts[i] + widths[i]],
                        casting="unsafe",
                    )
        if typed:
            self._gather_numbers(table, typed, starts, absent, parts, outs)
        return outs

    def _gather_numbers(
        self,
        table: pd.DataFrame,
        typed: list[int],
        starts: np.ndarray,
        absent: dict[str, np.ndarray],
        parts: Sequence[np.ndarray],
        outs: list[np.ndarray],
    ) -> None:
        """Write the numeric columns at positions ``typed`` (held as numbers by pandas) into
        ``outs``: each part's rows taken from pandas ``CELLS_AT_ONCE`` cells at a time, missing
        values filled in, adjacent columns copied as one slice. ``table`` is never written to."""
        columns = [self.columns[i] for i in typed]
        frame = table[[c.name for c in columns]]
        # runs of adjacent columns: (first input, first column of frame, length)
        runs: list[list[int]] = []
        for k, i in enumerate(typed):
            if runs and typed[k - 1] == i - 1:
                runs[-1][2] += 1
            else:
                runs.append([int(starts[i]), k, 1])
        fills = [
            (k, c.fill, absent[c.name])
            for k, c in enumerate(columns)
            if c.fill is not None and absent[c.name].any()
        ]
        for out, rows in zip(outs, parts, strict=True):
            # every row in order (transform of a whole table): slices of pandas' block, no take
            in_order = len(rows) > 0 and np.array_equal(
                rows, np.arange(rows[0], rows[0] + len(rows))
            )
            step = table_columns.rows_at_once(len(columns))
            for start in range(0, len(rows), step):
                some = rows[start : start + step]
                taken = frame.iloc[some[0] : some[-1] + 1] if in_order else frame.iloc[some]
                chunk = taken.to_numpy(dtype=np.float64, na_value=np.nan)
                if fills and (in_order or not chunk.flags.writeable):  # never the caller's data
                    chunk = chunk.copy()
                for k, fill, gone in fills:
                    chunk[gone[some], k] = fill
                for first, k, length in runs:
                    out[start : start + len(some), first : first + length] = chunk[
                        :, k : k + length
                    ]

    def _categories(
        self,
        column: ColumnEncoding,
        values: pd.Series,
        parts: Sequence[np.ndarray],
        source: str,
        place: Callable[[int], str],
    ) -> np.ndarray:
        """Each row's category index (-1: unknown, encoded as all zeros when ``ignore``); an
        unknown value in ``parts`` is a ``DataError`` naming it with ``error``."""
        codes, texts = factorized(values)
        index = {category: i for i, category in enumerate(column.categories)}
        missing_code = -2 if column.fill is None else index.get(column.fill, -1)
        # each distinct value's category index (-1: unknown); the last entry is for missing
        lookup = np.array([*(index.get(t, -1) for t in texts), missing_code], dtype=np.int64)
        categories = lookup[codes]
        # a value outside the categories is possible only if a distinct value maps to -1
        if self.unknown_category == "error" and (lookup[:-1] == -1).any():
            in_parts = np.zeros(len(codes), dtype=bool)
            for rows in parts:
                in_parts[rows] = True
            unknown = np.flatnonzero(in_parts & (categories == -1))
            if len(unknown):
                first = int(unknown[0])
                raise DataError(
                    f"{source}: {place(first)}, column {quoted(column.name)}: unknown category "
                    f"{quoted(texts[codes[first]])} (known: {listing(column.categories)})"
                    + (f"; {len(unknown)} values are unknown" if len(unknown) > 1 else "")
                    + "; train with data.unknown_category: ignore to encode them as all zeros"
                )
        return categories

    # --- the checkpoint form ------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (the checkpoint's ``meta.table``)."""
        return {
            "missing": self.missing,
            "unknown_category": self.unknown_category,
            "impute": self.impute,
            "columns": [
                {
                    "name": c.name,
                    "kind": c.kind,
                    "categories": list(c.categories),
                    "fill": c.fill,
                    "missing": c.missing,
                }
                for c in self.columns
            ],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TableEncoding:
        columns = tuple(
            ColumnEncoding(
                str(c["name"]),
                str(c["kind"]),
                tuple(str(v) for v in c.get("categories", [])),
                c.get("fill"),
                int(c.get("missing", 0)),
            )
            for c in data["columns"]
        )
        if any(c.kind not in ("numeric", "categorical") for c in columns):
            raise ValueError("table: a column kind is neither numeric nor categorical")
        return cls(
            columns,
            str(data.get("missing", "error")),
            str(data.get("unknown_category", "error")),
            str(data.get("impute", "mean")),
        )

    # --- the report -----------------------------------------------------------------------------

    def describe(self) -> list[str]:
        """One line per raw column: kind, categories, missing values found and what was done."""
        width = max(len(c.name) for c in self.columns)
        lines = [f"features: {len(self.columns)} columns -> {self.n_features} inputs"]
        for c in self.columns:
            text = (
                "numeric"
                if c.kind == "numeric"
                else f"categorical, {len(c.categories)} categories: {listing(c.categories)}"
            )
            if c.missing:
                if self.missing == "drop":
                    text += f"; {c.missing} missing, rows dropped"
                else:
                    how = (
                        f"the {self.impute}"
                        if c.kind == "numeric" and self.impute != "most_frequent"
                        else "the most frequent"
                    )
                    fill = f"{c.fill:.6g}" if isinstance(c.fill, float) else repr(c.fill)
                    text += f"; {c.missing} missing, imputed with {how} ({fill})"
            lines.append(f"  {c.name:<{width}}  {text}")
        return lines
