"""``csv``: the run's metrics as ``metrics.csv`` too, one row per epoch, for a spreadsheet."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any, Literal

from bpnn.callbacks.base import CallbackContext, NamedCallback

#: the file, in the run directory
FILE_NAME = "metrics.csv"


def flat(row: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A metrics row with its nested values flattened: ``{"health": {"0": {"grad_norm": x}}}``
    becomes ``{"health.0.grad_norm": x}``."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


class CsvLog(NamedCallback):
    """``metrics.csv`` in the run directory: every epoch of ``metrics.jsonl`` as a row, a column
    per metric (nested values flattened: ``health.0.grad_norm``), numbers as Python writes them
    (every digit), an empty cell where an epoch has no value. ``delimiter``: ``,`` or, for
    spreadsheets that read ``,`` as the decimal mark, ``;`` or a tab.

    The file is written whole when a resumed run begins (from the epochs it keeps, so it never
    holds an epoch that ``metrics.jsonl`` dropped) and whenever a row brings a new column (the
    first row always does); otherwise each epoch appends its row."""

    name = "csv"

    def __init__(self, context: CallbackContext, delimiter: Literal[",", ";", "\t"] = ",") -> None:
        super().__init__(context)
        self.delimiter = delimiter
        self.rows = [flat(row) for row in context.history]
        self.columns: list[str] = []

    def _text(self, rows: Iterable[dict[str, Any]], header: bool) -> str:
        buffer = io.StringIO()
        writer = csv.DictWriter(
            buffer, self.columns, delimiter=self.delimiter, lineterminator="\n", restval=""
        )
        if header:
            writer.writeheader()
        writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
        return buffer.getvalue()

    def _rewrite(self) -> None:
        self.columns = list(dict.fromkeys(key for row in self.rows for key in row))
        self.context.run.write_file(FILE_NAME, self._text(self.rows, header=True))

    def on_train_begin(self, logs: dict[str, Any]) -> None:
        if self.rows:  # a resumed run: the epochs it keeps, and none that it dropped
            self._rewrite()  # (a new run writes the file with its first row, header and all)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        row = flat(logs)
        self.rows.append(row)
        if any(key not in self.columns for key in row):
            self._rewrite()
        else:
            self.context.run.append_file(FILE_NAME, self._text([row], header=False))
