"""``source: csv`` and ``source: parquet``: a table of named columns, its target column(s) and
its features (numbers, categories, missing values: ``bpnn.data.table``), for training and for
the new samples ``predict`` and ``eval --data`` read from such a table."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np

from bpnn.data.formats import (
    pick_columns,
    read_table,
    row_locator,
    table_header,
    table_labels,
)
from bpnn.data.sources import (
    ALL_TASKS,
    Log,
    ModelInputs,
    Raw,
    Samples,
    Source,
    listing,
    quoted,
    register,
)
from bpnn.data.table_columns import (
    IMPUTE_STRATEGIES,
    MISSING_SETTINGS,
    UNKNOWN_SETTINGS,
    TablePlan,
    column_counts,
    column_kinds,
    first_missing,
    missing_error,
    numbers_as_numbers,
    rows_with_any,
)
from bpnn.errors import DataError

if TYPE_CHECKING:
    from bpnn.data.options import DataConfig


# --- the file sources -------------------------------------------------------------------------


class CsvSource(Source):
    """A CSV file with a header row; ``data.target`` (default: the last column) holds the labels
    or values, ``data.features`` (default: every other column) the features, which may be
    numbers or strings (categorical) and have missing values (``bpnn.data.table``)."""

    name = "csv"
    path_keys = ("path", "test_path")
    fields: ClassVar[dict[str, tuple[Any, Any]]] = {
        "target": (str | list[str] | None, None),  # several columns: 0/1 labels (multi-label)
        "features": (list[str] | None, None),
        "categorical": (Literal["auto"] | list[str], "auto"),
        "unknown_category": (Literal[UNKNOWN_SETTINGS], "error"),
        "missing": (Literal[MISSING_SETTINGS], "error"),
        "impute": (Literal[IMPUTE_STRATEGIES], "mean"),
        "weight": (str | None, None),  # a column of row weights, for the loss and the metrics
    }
    required = ("path",)
    tabular = True
    suffixes = (".csv",)
    file_kind = ".csv"

    tasks = (*ALL_TASKS, "multilabel")  # several target columns of 0/1 labels
    #: the reader infers each column's type from its cells (a CSV's text), rather than read
    #: it from the file (a Parquet schema): see ``column_kinds``
    inferred_types: ClassVar[bool] = True

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
        header = table_header(path, self.name)
        targets = target_list(config.target, header)
        absent = [c for c in targets if c not in header]
        if absent:
            raise DataError(f"{path}: no target {_named(absent)} (columns: {listing(header)})")
        weight = config.weight
        if weight is not None and weight not in header:
            raise DataError(f"{path}: no weight column '{weight}' (columns: {listing(header)})")
        if weight is not None and weight in targets:
            raise DataError(f"{path}: the weight column '{weight}' is the target")
        features = (
            config.features
            if config.features is not None
            else [c for c in header if c not in targets and c != weight]
        )
        listed = [c for c in targets if c in features]
        if listed:
            raise DataError(f"{path}: the target {_named(listed)} is also listed in data.features")
        if weight is not None and weight in features:
            raise DataError(f"{path}: the weight column '{weight}' is also listed in data.features")
        carried = [weight] if weight is not None else []
        if not features:
            raise DataError(f"{path}: no feature columns besides the {_targets(targets)}")
        missing = [c for c in features if c not in header]
        if missing:
            raise DataError(
                f"{path}: missing column(s) {listing(missing)} (columns: {listing(header)})"
            )
        columns = [*features, *targets, *carried]
        table = read_table(path, self.name, columns=columns, missing=config.missing)
        where = row_locator(path, self.name)
        table, y, counts, weights = _labelled_rows(
            path, table, features, targets, config.missing, log, where, weight
        )
        # decided from the rows kept: a row dropped (no target, data.missing: drop) that made
        # pandas read a column of numbers as text does not make it categorical
        kinds = column_kinds(
            table, features, config.categorical, str(path), where, self.inferred_types
        )
        table = numbers_as_numbers(table, kinds)
        plan = TablePlan(kinds, config.missing, config.impute, config.unknown_category, counts)
        target_name = targets[0] if len(targets) == 1 else targets
        raw = Raw(
            None, y, list(features), str(path), target_name=target_name, table=table, plan=plan
        )
        raw.target_defaulted = config.target is None
        raw.where = where
        raw.weights = weights
        if config.test_path is not None:
            test_path = Path(config.test_path)
            test_header = table_header(test_path, self.name)
            absent = [c for c in columns if c not in test_header]
            if absent:
                raise DataError(
                    f"{test_path}: missing column(s) {listing(absent)} "
                    f"(columns: {listing(test_header)})"
                )
            test_table = read_table(test_path, self.name, columns=columns, missing=config.missing)
            raw.test_where = row_locator(test_path, self.name)
            raw.table_test, raw.y_test, test_counts, raw.weights_test = _labelled_rows(
                test_path,
                test_table,
                features,
                targets,
                config.missing,
                log,
                raw.test_where,
                weight,
            )
            if config.missing == "error":
                missing_error(
                    str(test_path), test_counts, first_missing(raw.table_test, raw.test_where)
                )
            raw.test_name = str(test_path)
        return raw

    def read_new(
        self, path: Path, model: ModelInputs, *, id_column: str | None, log: Log
    ) -> Samples:
        """The model's raw columns picked by name and encoded with its encoding (without one:
        every column numeric), the target column(s) and the ``id_column`` set aside, any other
        column left out (listed once through ``log``)."""
        encoding = model.table_encoding
        ids = [id_column] if id_column else []
        needed = [*encoding.column_names, *ids]
        target = model.target
        ignored = [] if target is None else [target] if isinstance(target, str) else list(target)
        pick_columns(path, table_header(path, self.name), needed, ignored, log)
        table = read_table(
            path, self.name, columns=needed, text_columns=ids, missing=encoding.missing
        )
        X, kept = encoding.transform(table, str(path), where=row_locator(path, self.name))
        ids = None if id_column is None else table[id_column].fillna("").to_numpy(dtype=str)
        return Samples(X, len(table), kept, ids)

    def read_new_labelled(
        self, path: Path, model: ModelInputs, *, log: Log
    ) -> tuple[np.ndarray, np.ndarray]:
        """The model's raw columns by name, encoded as in ``read_new`` (the same rule for
        missing and extra columns), and the target column (default: the last column; a list:
        every one of them, as 0/1 columns of a multi-label model, ``table_label_columns``);
        rows without a target, and with ``data.missing: drop`` rows with a missing feature,
        are left out and counted through ``log``."""
        encoding = model.table_encoding
        header = table_header(path, self.name)
        targets = target_list(model.target or None, header)
        needed = [*encoding.column_names, *targets]
        pick_columns(path, header, needed, [], log)
        table = read_table(path, self.name, columns=needed, missing=encoding.missing)
        table = _rows_with_target(path, table, targets, log)
        where = row_locator(path, self.name)
        X, kept = encoding.transform(table, str(path), where=where)
        labelled = table if kept is None else table[kept]
        y = _target_values(path, labelled, targets, where)
        if kept is not None:
            log(f"{path}: left out {int((~kept).sum())} row(s) with missing feature values")
        return X, y


class ParquetSource(CsvSource):
    """A Parquet file (pyarrow: ``pip install 'bpnn[parquet]'``), with the keys of ``csv``."""

    name = "parquet"
    suffixes = (".parquet", ".pq")
    file_kind = ".parquet"
    inferred_types = False


def target_list(target: str | Sequence[str] | None, header: Sequence[str]) -> list[str]:
    """The target column(s) of a table: ``data.target`` (one name or a list of them), by
    default the last column."""
    if target is None:
        return [header[-1]]
    return [target] if isinstance(target, str) else list(target)


def _named(targets: Sequence[str]) -> str:
    """``column 'y'`` for one target column, ``columns 'a', 'b'`` for several (messages)."""
    names = listing([repr(str(c)) for c in targets])
    return f"column {names}" if len(targets) == 1 else f"columns {names}"


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
                f"{path}: target column {quoted(name)} holds {quoted(column.iloc[row])}{place}; "
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
    weight: str | None = None,
) -> tuple[Any, np.ndarray, dict[str, int], np.ndarray | None]:
    """The feature columns and labels of the rows that have a target value (several target
    columns: 0/1 labels, ``table_label_columns``); with
    ``missing: drop``, only the rows with every feature value too. Also the missing values
    found in each feature column (with ``missing: error``, ``load_dataset`` raises when there
    are any, after it has said which column is the target), and the rows' weights from the
    column ``weight`` (``row_weights``; None without one)."""
    table = _rows_with_target(path, table, targets, log)
    labels = table[list(targets)]
    weights = None if weight is None else row_weights(path, table[weight], weight, where)
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
        weights = None if weights is None else weights[np.asarray(complete)]
        if table.empty:
            raise DataError(f"{path}: every row has a missing feature value")
    return table, _target_values(path, labels, targets, where), counts, weights


def row_weights(
    path: Path, column: Any, name: str, where: Callable[[int], str] | None = None
) -> np.ndarray:
    """The values of the weight column ``name`` as float64: each a finite number above 0 (a
    row that should not count is left out of the file), or a ``DataError`` naming the first
    row that is not."""
    import pandas as pd

    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~(np.isfinite(values) & (values > 0))
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        place = where(int(column.index[first])) if where is not None else f"row {first + 1}"
        cell = column.iloc[first]
        shown = (
            "no value" if pd.isna(cell) else repr(cell) if isinstance(cell, str) else f"{cell:g}"
        )
        raise DataError(
            f"{path}: {place}: the weight column '{name}' holds {shown}; a weight is a number "
            "above 0"
        )
    return values


register(CsvSource())
register(ParquetSource())
