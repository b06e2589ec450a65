"""Specification of ``bpnn export`` for models trained on tables: each copy takes the raw rows
``bpnn predict`` takes (strings, blanks and all) and answers what it answers, to 1e-5.

- ONNX: one input per raw column, ``(batch, 1)``, float32 for a numeric column (NaN where
  missing) and a string tensor for a categorical one (the cell's text; a blank is ``""`` or
  ``NA``...); a row ``bpnn predict`` refuses answers NaN.
- scikit-learn: a ``Pipeline`` whose first step, a ``ColumnTransformer``, takes the
  ``DataFrame`` that ``pd.read_csv`` reads; saved with skops, loaded with skops' defaults.
- torch: the printed Python defines ``encode(rows)`` (a DataFrame or a list of dicts).

The reference is always the CLI: ``bpnn predict CHECKPOINT RAW.csv`` on the same file.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner, Result

import bpnn
from bpnn.cli import app
from bpnn.config import validate
from bpnn.run import run_training
from tests.support import REPO

PENGUINS = REPO / "examples" / "penguins.csv"
TOLERANCE = 1e-5
OUT = {"onnx": "model.onnx", "torch": "model.safetensors", "sklearn": "model.skops"}


def bpnn_cli(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


def bpnn_predict(checkpoint: Path, raw: Path) -> np.ndarray:
    """What ``bpnn predict`` prints for ``raw``: the probabilities or values, NaN in a row it
    leaves empty."""
    result = bpnn_cli("predict", checkpoint, raw)
    assert result.exit_code == 0, result.stderr
    table = pd.read_csv(io.StringIO(result.stdout))
    columns = [c for c in table.columns if c.startswith(("p_", "value"))]
    return table[columns].to_numpy(dtype=np.float64)


def export(checkpoint: Path, fmt: str, folder: Path) -> tuple[Path, Result]:
    out = folder / OUT[fmt]
    result = bpnn_cli("export", checkpoint, "--format", fmt, "--out", out)
    assert result.exit_code == 0, result.stderr
    return out, result


def raw_cells(raw: Path) -> list[dict[str, str]]:
    """The rows of a CSV file as written: every cell its text."""
    with raw.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def onnx_feeds(session: Any, raw: Path) -> dict[str, np.ndarray]:
    """The raw file as the ONNX graph takes it: a string column's cells as written (blanks as
    ``NA`` or ``""``, as in the file), a numeric column's numbers with NaN where missing."""
    rows = raw_cells(raw)
    numbers = pd.read_csv(raw)
    feeds = {}
    for graph_input in session.get_inputs():
        name = graph_input.name
        assert graph_input.shape[1:] == [1]
        if graph_input.type == "tensor(string)":
            feeds[name] = np.array([row[name] for row in rows], dtype=object).reshape(-1, 1)
        else:
            assert graph_input.type == "tensor(float)"
            feeds[name] = numbers[name].to_numpy(dtype=np.float32).reshape(-1, 1)
    return feeds


def run_onnx(out: Path, raw: Path) -> np.ndarray:
    import onnxruntime  # in the test extra: never skipped

    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    return session.run(None, onnx_feeds(session, raw))[0]


#: the one type of a table model's skops file that skops does not trust by default, where the
#: model fills blanks (SimpleImputer's recorded dtype); docs/export.md gives this list
SKOPS_TRUSTED = ["numpy.dtype"]


def load_skops(out: Path, model: Any) -> Any:
    """The pipeline in ``out``, loaded with exactly the ``trusted=`` list docs/export.md gives:
    ``SKOPS_TRUSTED`` where the model fills blanks, none otherwise; nothing else may appear."""
    import skops.io  # in the test extra: never skipped

    fills = any(column.fill is not None for column in model.encoding.columns)
    trusted = SKOPS_TRUSTED if fills else []
    assert skops.io.get_untrusted_types(file=out) == trusted
    return skops.io.load(out, trusted=trusted)


def test_the_trusted_list_is_the_one_the_exporter_and_docs_name() -> None:
    from bpnn.export.sklearn_format import SKOPS_TRUSTED as EXPORTED

    assert EXPORTED == SKOPS_TRUSTED
    docs = (REPO / "docs" / "export.md").read_text(encoding="utf-8")
    assert f"trusted={SKOPS_TRUSTED!r}".replace("'", '"') in docs


def torch_namespace(source: str) -> dict[str, Any]:
    pytest.importorskip("torch", reason="PyTorch is not installed")
    namespace: dict[str, Any] = {}
    exec(source, namespace)
    return namespace


def run_torch(source: str, rows: Any) -> np.ndarray:
    import torch

    namespace = torch_namespace(source)
    with torch.no_grad():
        return namespace["model"](namespace["encode"](rows)).numpy()


def assert_same(model: Any, exported: np.ndarray, expected: np.ndarray) -> None:
    """To 1e-5 absolute in the network's output units (regression: target standard
    deviations, as ``tests/export/test_export.py``)."""
    exported = np.asarray(exported, dtype=np.float64).reshape(expected.shape)
    if model.task == "regression" and model.target_scaling is not None:
        exported = model.target_scaling.apply(exported, np.float64)
        expected = model.target_scaling.apply(expected, np.float64)
    np.testing.assert_allclose(exported, expected, rtol=0, atol=TOLERANCE)


# --- penguins: strings, blanks and all ------------------------------------------------------


@pytest.fixture(scope="module")
def penguins(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """examples/penguins.yaml (island and sex strings, 11 rows with NA cells), 5 epochs."""
    out = tmp_path_factory.mktemp("penguins") / "run"
    config = REPO / "examples" / "penguins.yaml"
    result = bpnn_cli("train", config, "--out", out, "--quiet", "--set", "train.epochs=5")
    assert result.exit_code == 0, result.stderr
    return out / "checkpoints" / "best.npz"


@pytest.fixture(scope="module")
def penguins_predicted(penguins: Path) -> np.ndarray:
    return bpnn_predict(penguins, PENGUINS)


def test_penguins_onnx_takes_each_raw_column_and_predicts_what_bpnn_predict_does(
    penguins: Path, penguins_predicted: np.ndarray, tmp_path: Path
) -> None:
    import onnx

    out, _ = export(penguins, "onnx", tmp_path)
    proto = onnx.load(out)
    inputs = {i.name: i.type.tensor_type.elem_type for i in proto.graph.input}
    string, number = onnx.TensorProto.STRING, onnx.TensorProto.FLOAT
    assert inputs == {
        "island": string,
        "bill_length_mm": number,
        "bill_depth_mm": number,
        "flipper_length_mm": number,
        "body_mass_g": number,
        "sex": string,
        "year": number,
    }
    assert pd.read_csv(PENGUINS)["sex"].isna().any()  # the blanks are in the file
    model = bpnn.load_checkpoint(penguins)
    assert_same(model, run_onnx(out, PENGUINS), penguins_predicted)


def test_penguins_sklearn_pipeline_takes_the_raw_dataframe(
    penguins: Path, penguins_predicted: np.ndarray, tmp_path: Path
) -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer

    out, _ = export(penguins, "sklearn", tmp_path)
    model = bpnn.load_checkpoint(penguins)
    pipeline = load_skops(out, model)
    assert isinstance(pipeline.steps[0][1], ColumnTransformer)
    # the blanks filled by SimpleImputers holding bpnn's fill values (a category: its index)
    filled = [column for column in model.encoding.columns if column.fill is not None]
    assert filled  # penguins.csv has blanks in numeric and string columns
    for column in filled:
        step = pipeline["encoding"].named_transformers_[column.name]
        imputer = step if column.kind == "numeric" else step["fill"]
        assert isinstance(imputer, SimpleImputer)
        fill = column.fill if column.kind == "numeric" else column.categories.index(column.fill)
        assert imputer.statistics_.tolist() == [fill]
    frame = pd.read_csv(PENGUINS)  # species (the target) too: left alone
    assert_same(model, pipeline.predict_proba(frame), penguins_predicted)
    labels = model.classes[penguins_predicted.argmax(axis=1)]
    np.testing.assert_array_equal(pipeline.predict(frame), labels)


@pytest.mark.torch
def test_penguins_torch_encode_takes_a_dataframe_or_the_raw_rows(
    penguins: Path, penguins_predicted: np.ndarray, tmp_path: Path
) -> None:
    pytest.importorskip("torch", reason="PyTorch is not installed")
    _, result = export(penguins, "torch", tmp_path)
    model = bpnn.load_checkpoint(penguins)
    assert_same(model, run_torch(result.stdout, pd.read_csv(PENGUINS)), penguins_predicted)
    assert_same(model, run_torch(result.stdout, raw_cells(PENGUINS)), penguins_predicted)


def unknown_island(tmp_path: Path) -> Path:
    """penguins.csv with a penguin from an island the model has never seen, in row 3."""
    rows = PENGUINS.read_text(encoding="utf-8").splitlines()
    rows[3] = rows[3].replace("Torgersen", "Atlantis")
    path = tmp_path / "atlantis.csv"
    path.write_text("\n".join(rows[:6]) + "\n", encoding="utf-8")
    return path


def test_an_unknown_category_is_refused_by_every_copy_as_by_bpnn_predict(
    penguins: Path, tmp_path: Path
) -> None:
    raw = unknown_island(tmp_path)
    result = bpnn_cli("predict", penguins, raw)  # data.unknown_category: error
    assert result.exit_code == 2 and "unknown category 'Atlantis'" in result.stderr

    onnx_out, _ = export(penguins, "onnx", tmp_path)
    answered = run_onnx(onnx_out, raw)
    assert np.isnan(answered[2]).all()  # the graph cannot stop: that row is NaN
    assert np.isfinite(np.delete(answered, 2, axis=0)).all()

    pipeline = load_skops(export(penguins, "sklearn", tmp_path)[0], bpnn.load_checkpoint(penguins))
    with pytest.raises(ValueError, match="unknown categories"):
        pipeline.predict_proba(pd.read_csv(raw))


@pytest.mark.torch
def test_torch_encode_refuses_an_unknown_category_naming_row_and_column(
    penguins: Path, tmp_path: Path
) -> None:
    pytest.importorskip("torch", reason="PyTorch is not installed")
    _, result = export(penguins, "torch", tmp_path)
    encode = torch_namespace(result.stdout)["encode"]
    with pytest.raises(ValueError, match=r"^row 3, column 'island': unknown category 'Atlantis'"):
        encode(raw_cells(unknown_island(tmp_path)))


def test_table_metadata_carries_the_raw_columns(penguins: Path) -> None:
    from bpnn.export import to_onnx

    model = bpnn.load_checkpoint(penguins)
    meta = {p.key: p.value for p in to_onnx(model).metadata_props}
    assert model.encoding is not None
    assert json.loads(meta["table_encoding"]) == model.encoding.to_dict()


def test_onnx_refuses_a_column_named_like_its_output_and_writes_nothing(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {"probabilities": np.arange(40.0) % 7, "colour": ["red", "blue"] * 20, "label": [0, 1] * 20}
    )
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    checkpoint = train(path, tmp_path / "run", {"target": "label"}, {"hidden": [4]}, "multiclass")
    out = tmp_path / "m.onnx"
    result = bpnn_cli("export", checkpoint, "--format", "onnx", "--out", out)
    assert result.exit_code == 2
    assert result.stderr == (
        "error: onnx: the input column 'probabilities' has the name of the model's output; "
        "rename the column and train again, or export to torch or sklearn\n"
    )
    assert not out.exists()


# --- random tables: numbers, categories, integer codes, booleans, blanks --------------------


def train(path: Path, out: Path, data: dict[str, Any], model: dict[str, Any], task: str) -> Path:
    """Train a tiny network on the CSV at ``path`` for three epochs."""
    loss = {"multiclass": "cross_entropy", "binary": "binary_cross_entropy"}.get(task, "mse")
    config = validate(
        {
            "name": "table",
            "seed": 0,
            "data": {"source": "csv", "path": str(path), **data},
            "model": model,
            "loss": loss,
            "optimizer": {"name": "adam", "lr": 0.01},
            "train": {"epochs": 3, "batch_size": 16},
        }
    )
    run_dir, _ = run_training(config, out)
    return run_dir / "checkpoints" / "last.npz"


#: the cells pandas' default reader and bpnn both read as missing
BLANKS = ("", "NA", "NaN", "null", "None", "nan")


def random_columns(rng: np.random.Generator) -> list[tuple[str, list[Any] | None]]:
    """Feature columns of random kinds: numbers (``None``), words, integer codes (listed in
    ``data.categorical``), booleans; each with the values it draws from."""
    columns: list[tuple[str, list[Any] | None]] = []
    for i in range(int(rng.integers(2, 6))):
        kind = str(rng.choice(["number", "word", "code", "flag"]))
        if kind == "number":
            columns.append((f"number{i}", None))
        elif kind == "word":
            columns.append((f"word{i}", ["ant", "bee", "cat", "dog", "eel"][: rng.integers(2, 6)]))
        elif kind == "code":  # numbers as categories: text order 10 < 5 < 9, not 5 < 9 < 10
            columns.append((f"code{i}", [5, 9, 10]))
        else:
            columns.append((f"flag{i}", [True, False]))
    return columns


def random_rows(
    columns: list[tuple[str, list[Any] | None]], rng: np.random.Generator, rows: int
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            name: np.round(rng.normal(10.0, 5.0, rows), 2)
            if values is None
            else rng.choice(np.array(values, dtype=object), rows)
            for name, values in columns
        }
    )


def with_blanks(frame: pd.DataFrame, rng: np.random.Generator, rate: float) -> pd.DataFrame:
    """``frame`` as text, with about ``rate`` of its cells replaced by a spelling of missing."""
    text = frame.astype(str)
    for name in text.columns:
        gone = rng.random(len(text)) < rate
        text.loc[gone, name] = rng.choice(BLANKS, int(gone.sum()))
    return text


CASES = [
    # (seed, task, data.missing, data.unknown_category)
    (1, "multiclass", "impute", "error"),
    (2, "binary", "impute", "ignore"),
    (3, "regression", "impute", "ignore"),
    (4, "multiclass", "drop", "ignore"),
    (5, "multiclass", "impute", "ignore"),
    (6, "binary", "error", "error"),
    (7, "regression", "impute", "error"),
    (8, "multiclass", "error", "ignore"),
]


@pytest.fixture(scope="module")
def random_case(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """``case(seed, task, missing, unknown)``: a checkpoint trained on a random table, a raw
    file of new rows and what ``bpnn predict`` answers for it (each built once)."""
    built: dict[tuple[Any, ...], tuple[Path, Path, np.ndarray]] = {}

    def case(seed: int, task: str, missing: str, unknown: str) -> tuple[Path, Path, np.ndarray]:
        key = (seed, task, missing, unknown)
        if key in built:
            return built[key]
        folder = tmp_path_factory.mktemp(f"table{seed}")
        rng = np.random.default_rng(seed)
        columns = random_columns(rng)
        frame = random_rows(columns, rng, 80)
        score = sum(
            frame[name].to_numpy(dtype=np.float64)
            if values is None
            else pd.factorize(frame[name])[0] * 1.0
            for name, values in columns
        )
        if task == "regression":
            target = np.round(score, 3)
        else:
            bins = 3 if task == "multiclass" else 2
            target = np.digitize(score, np.quantile(score, np.linspace(0, 1, bins + 1)[1:-1]))
        training = with_blanks(frame, rng, 0.0 if missing == "error" else 0.08)
        training["target"] = target
        path = folder / "train.csv"
        training.to_csv(path, index=False)
        listed = [name for name, _ in columns if name.startswith("code")]
        data = {
            "target": "target",
            "categorical": listed or "auto",
            "missing": missing,
            "unknown_category": unknown,
        }
        model = {"hidden": [6], "activation": "tanh"}
        checkpoint = train(path, folder / "run", data, model, task)

        # new rows: blanks where the model fills them in, new categories where it ignores them
        new = with_blanks(random_rows(columns, rng, 30), rng, 0.1 if missing == "impute" else 0)
        if unknown == "ignore":
            for name, _ in columns:
                if name.startswith(("word", "code")):
                    new.loc[rng.random(len(new)) < 0.15, name] = "7" if name[0] == "c" else "yak"
        raw = folder / "new.csv"
        new.to_csv(raw, index=False)
        built[key] = checkpoint, raw, bpnn_predict(checkpoint, raw)
        return built[key]

    return case


@pytest.mark.parametrize("fmt", ["onnx", "sklearn", pytest.param("torch", marks=pytest.mark.torch)])
@pytest.mark.parametrize(("seed", "task", "missing", "unknown"), CASES)
def test_random_tables_export_to_copies_that_predict_the_raw_file_as_bpnn_does(
    seed: int, task: str, missing: str, unknown: str, fmt: str, random_case: Any, tmp_path: Path
) -> None:
    if fmt == "torch":
        pytest.importorskip("torch", reason="PyTorch is not installed")
    checkpoint, raw, expected = random_case(seed, task, missing, unknown)
    model = bpnn.load_checkpoint(checkpoint)
    out, result = export(checkpoint, fmt, tmp_path)
    if fmt == "onnx":
        assert_same(model, run_onnx(out, raw), expected)
    elif fmt == "sklearn":
        pipeline = load_skops(out, model)
        answer = pipeline.predict_proba if model.classes is not None else pipeline.predict
        assert_same(model, answer(pd.read_csv(raw)), expected)
    else:
        assert_same(model, run_torch(result.stdout, pd.read_csv(raw)), expected)
        assert_same(model, run_torch(result.stdout, raw_cells(raw)), expected)


def unfillable_model(tmp_path: Path) -> Path:
    """A model trained with ``data.missing: error`` (it cannot fill a blank), and for each of its
    columns ``word_last`` and ``number_last`` a raw file COLUMN.csv of 4 rows whose row 2 has a
    blank there; ``bpnn predict`` refuses each."""
    rng = np.random.default_rng(0)
    columns = random_columns(rng)
    frame = random_rows(columns, rng, 60)
    listed = [name for name, _ in columns if name.startswith("code")]
    frame["word_last"] = rng.choice(["ant", "bee"], 60)
    frame["number_last"] = rng.normal(size=60)
    frame["target"] = (frame["number_last"] > 0).astype(int)
    path = tmp_path / "train.csv"
    frame.to_csv(path, index=False)
    data = {"target": "target", "categorical": listed or "auto", "unknown_category": "ignore"}
    checkpoint = train(path, tmp_path / "run", data, {"hidden": [4]}, "multiclass")
    for column in ("word_last", "number_last"):
        new = frame.drop(columns="target").head(4).astype(str)
        new.loc[1, column] = "NA"
        raw = tmp_path / f"{column}.csv"
        new.to_csv(raw, index=False)
        result = bpnn_cli("predict", checkpoint, raw)  # data.missing: error
        assert result.exit_code == 2 and "missing values in column(s)" in result.stderr
    return checkpoint


def test_a_blank_the_model_cannot_fill_is_refused_by_onnx_and_sklearn(tmp_path: Path) -> None:
    checkpoint = unfillable_model(tmp_path)
    for column in ("word_last", "number_last"):
        raw = tmp_path / f"{column}.csv"
        folder = tmp_path / column
        folder.mkdir()
        answered = run_onnx(export(checkpoint, "onnx", folder)[0], raw)
        assert np.isnan(answered[1]).all() and np.isfinite(answered[[0, 2, 3]]).all()
        model = bpnn.load_checkpoint(checkpoint)
        pipeline = load_skops(export(checkpoint, "sklearn", folder)[0], model)
        with pytest.raises(ValueError, match="missing values"):
            pipeline.predict_proba(pd.read_csv(raw))


@pytest.mark.torch
def test_a_blank_the_model_cannot_fill_is_refused_by_torch_encode(tmp_path: Path) -> None:
    checkpoint = unfillable_model(tmp_path)
    for column in ("word_last", "number_last"):
        folder = tmp_path / column
        folder.mkdir()
        encode = torch_namespace(export(checkpoint, "torch", folder)[1].stdout)["encode"]
        with pytest.raises(ValueError, match=rf"^row 2, column '{column}': a missing value"):
            encode(raw_cells(tmp_path / f"{column}.csv"))
