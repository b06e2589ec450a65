"""Tables that are hostile but fair (issue 27): Parquet columns of every Arrow type, CSV cells
beyond the csv module's field limit, rows cut short, rows dropped before the column kinds are
decided. Each refusal is one line naming the file, the line or the column, and the type or the
value; what bpnn can read honestly it reads (dictionary-encoded strings, decimals)."""

from __future__ import annotations

import datetime
import decimal
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bpnn.data import load_dataset, read_labelled, read_samples
from bpnn.data.options import DataConfig
from bpnn.data.table import ColumnEncoding, TableEncoding
from bpnn.errors import DataError
from tests.support import REPO, run_cli, run_in_process

IRIS = REPO / "examples" / "iris.csv"
ROWS = 40


def refusal(result: subprocess.CompletedProcess[str]) -> str:
    """The error line of a refused command: exit 2, the last line on stderr (after any notes of
    the run's progress), the only one that starts with ``error:``; no traceback."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert [line for line in lines if line.startswith("error")] == lines[-1:], result.stderr
    assert "Traceback" not in result.stderr
    return lines[-1]


def config_file(folder: Path, data: dict[str, object], name: str = "config.yaml") -> Path:
    """A one-epoch run of a 4-unit network on ``data``."""
    path = folder / name
    path.write_text(
        "name: hostile\nseed: 0\n"
        f"data: {data}\n"
        "model: {hidden: [4]}\n"
        "train: {epochs: 1, batch_size: 16}\n",
        encoding="utf-8",
    )
    return path


# --- Parquet: which Arrow types are read --------------------------------------------------------


def _days(n: int) -> list[datetime.date]:
    return [datetime.date(2024, 1, 1 + i % 28) for i in range(n)]


#: a column of each Arrow type bpnn refuses, and its type as the message names it
REFUSED: dict[str, Callable[[int], pa.Array]] = {
    "list": lambda n: pa.array([[1.0, 2.0]] * n, pa.list_(pa.float64())),
    "large_list": lambda n: pa.array([[1]] * n, pa.large_list(pa.int64())),
    "struct": lambda n: pa.array([{"a": 1, "b": 2.0}] * n),
    "map": lambda n: pa.array([[("k", 1)]] * n, pa.map_(pa.string(), pa.int64())),
    "timestamp": lambda n: pa.array(
        [datetime.datetime(2024, 1, 1, i % 24) for i in range(n)], pa.timestamp("ms")
    ),
    "date": lambda n: pa.array(_days(n), pa.date32()),
    "time": lambda n: pa.array([datetime.time(i % 24) for i in range(n)], pa.time64("us")),
    "duration": lambda n: pa.array([datetime.timedelta(seconds=i) for i in range(n)]),
    "binary": lambda n: pa.array([b"\x00\x01"] * n, pa.binary()),
    "fixed_size_binary": lambda n: pa.array([b"ab"] * n, pa.binary(2)),
    "dictionary of dates": lambda n: pa.array(_days(n)).dictionary_encode(),
}


def parquet_with(path: Path, column: pa.Array | list[object], rows: int = ROWS) -> Path:
    """``x`` (numbers), ``f`` (``column``) and ``y`` (0/1 labels that follow ``x``)."""
    x = np.linspace(-1.0, 1.0, rows)
    pq.write_table(pa.table({"x": x, "f": column, "y": (x > 0).astype(np.int64)}), path)
    return path


def parquet_config(path: Path, **data: object) -> DataConfig:
    return DataConfig(source="parquet", path=str(path), target="y", **data)


@pytest.mark.parametrize("kind", REFUSED)
def test_a_parquet_column_of_a_type_bpnn_does_not_read_is_named_with_its_type(
    tmp_path: Path, kind: str
) -> None:
    """Training, predict and eval --data share the one check of a Parquet file's types."""
    path = parquet_with(tmp_path / "data.parquet", REFUSED[kind](ROWS))
    written = pq.read_schema(path).field("f").type  # as the file holds it (list<element: ...>)
    expected = f"{path}: column 'f' has the Parquet type {written}, which bpnn does not read"
    with pytest.raises(DataError) as training:
        load_dataset(parquet_config(path), task="binary", seed=0)
    with pytest.raises(DataError) as predicting:
        read_samples(path, feature_names=["x", "f"], n_features=2, target="y")
    with pytest.raises(DataError) as evaluating:
        read_labelled(path, feature_names=["x", "f"], target="y")
    for error in (training, predicting, evaluating):
        assert str(error.value).startswith(expected), str(error.value)
        assert str(error.value).endswith(", or leave it out")


def test_a_column_of_any_type_the_run_does_not_use_is_not_read(tmp_path: Path) -> None:
    """data.features leaves a timestamp out of training; predict leaves out what the model does
    not use, and an --id column of timestamps is copied through as text."""
    path = parquet_with(tmp_path / "data.parquet", REFUSED["timestamp"](ROWS))
    data = load_dataset(parquet_config(path, features=["x"]), task="binary", seed=0)
    assert data.feature_names == ["x"]
    samples = read_samples(path, feature_names=["x"], n_features=1, target="y", id_column="f")
    assert samples.X.shape == (ROWS, 1)
    assert samples.ids is not None and samples.ids[1] == "2024-01-01 01:00:00.000"


def test_dictionary_encoded_strings_are_read_as_the_strings(tmp_path: Path) -> None:
    colours = ["red", "green", "blue", "green"] * (ROWS // 4)
    plain = parquet_with(tmp_path / "plain.parquet", pa.array(colours))
    encoded = parquet_with(tmp_path / "encoded.parquet", pa.array(colours).dictionary_encode())
    expected = load_dataset(parquet_config(plain), task="binary", seed=0)
    data = load_dataset(parquet_config(encoded), task="binary", seed=0)
    assert data.feature_names == ["x", "f=blue", "f=green", "f=red"] == expected.feature_names
    assert np.array_equal(data.X_train, expected.X_train)


def test_decimals_are_read_as_numbers(tmp_path: Path) -> None:
    values = [decimal.Decimal(f"{v:.2f}") for v in np.linspace(-5.0, 5.0, ROWS)]
    floats = parquet_with(tmp_path / "floats.parquet", [float(v) for v in values])
    decimals = parquet_with(tmp_path / "decimals.parquet", pa.array(values, pa.decimal128(6, 2)))
    expected = load_dataset(parquet_config(floats), task="binary", seed=0)
    data = load_dataset(parquet_config(decimals), task="binary", seed=0)
    assert data.feature_names == ["x", "f"]
    assert np.array_equal(data.X_train, expected.X_train)


def test_a_parquet_string_column_of_digits_stays_categorical(tmp_path: Path) -> None:
    """A Parquet file declares its types: strings of digits (codes) are categories, whereas a
    CSV column is numeric when every value used is a number (see the short rows below)."""
    path = parquet_with(tmp_path / "codes.parquet", ["01", "02"] * (ROWS // 2))
    data = load_dataset(parquet_config(path), task="binary", seed=0)
    assert data.feature_names == ["x", "f=01", "f=02"]


def test_a_parquet_row_is_named_by_its_place_not_by_an_index_pandas_stored(
    tmp_path: Path,
) -> None:
    frame = pd.DataFrame({"x": np.linspace(-1.0, 1.0, ROWS + 5)})
    frame["f"] = [str(v) for v in range(ROWS + 5)]
    frame["y"] = (frame["x"] > 0).astype(np.int64)
    frame.loc[5, "f"] = "n/a"  # the first row of the slice: a typo among numbers
    path = tmp_path / "slice.parquet"
    frame.iloc[5:].to_parquet(path)  # pandas stores the index, which starts at 5
    with pytest.raises(DataError, match=r"row 1, column 'f': 'n/a' is not a number"):
        load_dataset(parquet_config(path), task="binary", seed=0)


@pytest.fixture(scope="module")
def parquet_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model trained on ``x`` and ``f``, two numeric Parquet columns."""
    folder = tmp_path_factory.mktemp("parquet")
    path = parquet_with(folder / "data.parquet", list(np.linspace(0.0, 1.0, ROWS)))
    config = config_file(folder, {"source": "parquet", "path": str(path), "target": "y"})
    result = run_in_process("train", config, "--out", folder / "run", "-q", cwd=folder)
    assert result.returncode == 0, result.stderr
    return folder / "run" / "checkpoints" / "last.npz"


@pytest.mark.parametrize(
    ("command", "kind"),
    [("train", "list"), ("predict", "timestamp"), ("eval --data", "struct")],
)
def test_train_predict_and_eval_refuse_a_parquet_type_in_one_line(
    tmp_path: Path, parquet_checkpoint: Path, command: str, kind: str
) -> None:
    path = parquet_with(tmp_path / "data.parquet", REFUSED[kind](ROWS))
    written = pq.read_schema(path).field("f").type
    if command == "train":
        config = config_file(tmp_path, {"source": "parquet", "path": str(path), "target": "y"})
        args: list[object] = ["train", config, "--out", tmp_path / "run"]
    else:
        args = [*command.split()[:1], parquet_checkpoint, *command.split()[1:], path]
    run_bpnn = run_cli if command == "train" else run_in_process  # one through the real CLI
    line = refusal(run_bpnn(*args, cwd=tmp_path))
    assert f"{path}: column 'f' has the Parquet type {written}, which bpnn" in line


# --- CSV cells longer than the csv module's limit -------------------------------------------------

#: longer than Python's csv.field_size_limit() (131,072 characters)
HUGE = "x" * 140_000


def iris_with(path: Path, lines: dict[int, str], notes: bool = False) -> Path:
    """iris.csv with ``lines`` put in at those line numbers (1: the header) of the new file;
    ``notes``: with a last column ``notes``, empty in iris's own rows."""
    rows = IRIS.read_text(encoding="utf-8").splitlines()
    if notes:
        rows = [f"{rows[0]},notes", *(f"{row}," for row in rows[1:])]
    for number in sorted(lines):
        rows.insert(number - 1, lines[number])
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def iris_config(path: Path, **data: object) -> DataConfig:
    return DataConfig(source="csv", path=str(path), target="species", **data)


def test_a_huge_cell_is_named_by_its_line_and_shown_cut_short(tmp_path: Path) -> None:
    path = iris_with(tmp_path / "huge.csv", {61: f"5.0,{HUGE},1.4,0.2,setosa"})
    with pytest.raises(DataError) as error:
        load_dataset(iris_config(path), task="multiclass", seed=0)
    message = str(error.value)
    assert message.startswith(f"{path}: line 61, column 'sepal_width': 'xxx")
    assert "... (140000 characters) is not a number" in message and len(message) < 400


def test_predict_finds_the_line_of_a_bad_row_after_a_huge_cell(tmp_path: Path) -> None:
    """The line of a bad row is found by reading the file again with the csv module, which
    must read a huge cell of a column the model does not use on the way."""
    folder = tmp_path / "train"
    folder.mkdir()
    config = config_file(folder, {"source": "csv", "path": str(IRIS), "target": "species"})
    assert (
        run_in_process("train", config, "--out", folder / "run", "-q", cwd=folder).returncode == 0
    )
    rows = {3: f'4.9,3.0,1.4,0.2,setosa,"{HUGE}"', 10: "5.0,abc,1.4,0.2,setosa,"}
    path = iris_with(tmp_path / "new.csv", rows, notes=True)
    checkpoint = folder / "run" / "checkpoints" / "last.npz"
    line = refusal(run_cli("predict", checkpoint, path, cwd=tmp_path))
    assert line == f"error: {path}: line 10, column 'sepal_width': 'abc' is not a number"


def test_the_line_of_a_bad_row_counts_a_row_of_empty_cells(tmp_path: Path) -> None:
    """pandas reads a row of empty cells as a row (of missing values), and so does the search
    for a row's line."""
    path = iris_with(tmp_path / "gap.csv", {10: ",,,,", 20: "5.0,abc,1.4,0.2,setosa"})
    with pytest.raises(DataError, match=r"line 20, column 'sepal_width': 'abc' is not a number"):
        load_dataset(iris_config(path, missing="drop"), task="multiclass", seed=0)


def test_a_huge_cell_in_a_column_left_out_trains(tmp_path: Path) -> None:
    path = iris_with(tmp_path / "notes.csv", {5: f'4.9,3.0,1.4,0.2,setosa,"{HUGE}"'}, notes=True)
    features = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    data = load_dataset(iris_config(path, features=features), task="multiclass", seed=0)
    assert data.n_features == 4


# --- short rows, and rows dropped before the column kinds are decided -----------------------------

#: one field short: its last feature is where the label should be, and it has no label
SHORT = "5.0,3.3,1.4,setosa"
#: no label, and text where petal_width's number should be
NO_TARGET = "5.0,3.3,1.4,oops,"


def test_a_short_row_is_an_error_naming_its_line(tmp_path: Path) -> None:
    path = iris_with(tmp_path / "short.csv", {40: SHORT, 90: "6.1,2.8"})
    with pytest.raises(DataError) as error:
        load_dataset(iris_config(path), task="multiclass", seed=0)
    assert str(error.value) == (
        f"{path}: line 40 has 4 fields, but the header has 5 (2 rows are short); with "
        "data.missing: drop such rows are left out"
    )


def test_a_row_of_empty_cells_is_not_short(tmp_path: Path) -> None:
    path = iris_with(tmp_path / "empty.csv", {20: ",,,,"})
    data = load_dataset(iris_config(path, missing="drop"), task="multiclass", seed=0)
    assert sum(data.n_samples) == 150


def test_rows_dropped_decide_no_column_kind(tmp_path: Path) -> None:
    """A row without a label (text in petal_width) and, with data.missing: drop, a short row:
    both dropped, the data set is iris's own, petal_width numeric."""
    expected = load_dataset(iris_config(IRIS, missing="drop"), task="multiclass", seed=0)
    path = iris_with(tmp_path / "dropped.csv", {30: SHORT, 100: NO_TARGET})
    data = load_dataset(iris_config(path, missing="drop"), task="multiclass", seed=0)
    assert data.feature_names == expected.feature_names
    assert data.encoding is not None and data.encoding.columns[3].kind == "numeric"
    assert np.array_equal(data.X_train, expected.X_train)
    alone = iris_with(tmp_path / "no-target.csv", {100: NO_TARGET})  # data.missing: error
    assert load_dataset(iris_config(alone), task="multiclass", seed=0).n_features == 4


def test_train_keeps_petal_width_numeric_and_refuses_a_short_row_by_default(
    tmp_path: Path,
) -> None:
    path = iris_with(tmp_path / "iris.csv", {30: SHORT, 100: NO_TARGET})
    data = {"source": "csv", "path": str(path), "target": "species", "missing": "drop"}
    kept = run_in_process("train", config_file(tmp_path, data), "--out", "run", cwd=tmp_path)
    assert kept.returncode == 0, kept.stderr
    assert "features: 4 columns -> 4 inputs" in kept.stderr
    assert "  petal_width   numeric" in kept.stderr
    data["missing"] = "error"
    config = config_file(tmp_path, data, "error.yaml")
    short = run_cli("train", config, "--out", "run2", cwd=tmp_path)
    assert refusal(short).startswith(f"error: {path}: line 30 has 4 fields, but the header has 5")


def test_a_short_row_to_predict_is_named_or_left_empty_with_missing_drop(tmp_path: Path) -> None:
    names = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    path = iris_with(tmp_path / "new.csv", {3: "5.0,3.3,1.4"})
    with pytest.raises(DataError, match=rf"^{path}: line 3 has 3 fields, but the header has 5"):
        read_samples(path, feature_names=names, n_features=4, target="species")
    dropping = TableEncoding(tuple(ColumnEncoding(n, "numeric") for n in names), missing="drop")
    samples = read_samples(
        path, feature_names=names, n_features=4, target="species", encoding=dropping
    )
    assert samples.n_rows == 151 and samples.kept is not None
    assert not samples.kept[1] and samples.kept.sum() == 150


# --- column names in messages ------------------------------------------------------------------

LONG_NAME = "c" * 100_000


@pytest.mark.parametrize(
    ("column", "expected"),
    [
        (["1.0", "abc"] * (ROWS // 2), "is not a number"),  # a typo among numbers
        (pa.array([[1.0]] * ROWS), "has the Parquet type"),  # a type bpnn does not read
        ([None] * ROWS, "missing values in column(s)"),
    ],
    ids=["not a number", "parquet type", "no values"],
)
def test_a_long_column_name_is_cut_in_the_message(
    tmp_path: Path, column: object, expected: str
) -> None:
    """A column's name is input like its values: a name of 100,000 characters is shown cut,
    with its length, and the reason after it is whole."""
    x = np.linspace(-1.0, 1.0, ROWS)
    if isinstance(column, list) and column[0] == "1.0":
        column = [str(v) for v in x[: ROWS - 1]] + ["abc"]
    path = tmp_path / "long.parquet"
    table = pa.table({"x": x, LONG_NAME: column, "y": (x > 0).astype(np.int64)})
    pq.write_table(table, path)
    with pytest.raises(DataError) as error:
        load_dataset(parquet_config(path), task="binary", seed=0)
    message = str(error.value)
    assert expected in message and "(100000 characters)" in message, message[:300]
    assert len(message) < 400 + len(str(path)), message[:300]
