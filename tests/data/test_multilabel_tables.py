"""Specification of multi-label data from files: several yes/no labels per sample with
``binary_cross_entropy`` (one sigmoid output per label, the fused delta ``a - t``).

- A table (CSV, Parquet) names its label columns in ``data.target`` (a list); each cell is 0/1
  or true/false, anything else is refused in one line naming the column, the value and the line.
  The label names are the column names: the per-label report of ``bpnn eval``, the ``labels``
  and ``p_<label>`` columns of ``bpnn predict`` (which sets the target columns aside when a file
  has them), the exported copies.
- An npz with a 2-D 0/1 ``y`` is multi-label too; its labels are 0 .. k-1.
- Multi-label targets are split without stratification (no one class per sample).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner, Result

from bpnn.cli import app
from bpnn.model import load_model

LABELS = ["warm", "big", "odd"]


def bpnn_cli(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


def table(rows: int = 160, seed: int = 0) -> pd.DataFrame:
    """Two numeric features and a string one; three labels that follow from them, written
    three ways: 0/1 numbers, true/false words, True/False."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=rows), rng.normal(size=rows)
    color = rng.choice(["red", "green", "blue"], size=rows)
    return pd.DataFrame(
        {
            "a": a.round(4),
            "color": color,
            "b": b.round(4),
            "warm": (color == "red").astype(int),
            "big": np.where(a > 0, "true", "false"),
            "odd": np.where(b > 0.3, "True", "False"),
        }
    )


def truth(frame: pd.DataFrame) -> np.ndarray:
    words = {"true": 1, "false": 0}
    return np.stack(
        [
            frame["warm"].to_numpy(),
            frame["big"].str.lower().map(words).to_numpy(),
            frame["odd"].str.lower().map(words).to_numpy(),
        ],
        axis=1,
    )


def write_config(folder: Path, data: dict, epochs: int = 60) -> Path:
    config = {
        "name": "labels",
        "seed": 0,
        "data": data,
        "model": {"hidden": [16]},
        "loss": "binary_cross_entropy",
        "optimizer": {"name": "adam", "lr": 0.02},
        "train": {"epochs": epochs, "batch_size": 16},
    }
    path = folder / "labels.yaml"
    path.write_text(json.dumps(config))  # JSON is YAML
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Result]:
    """``bpnn train`` on a CSV with three label columns: (csv, run directory, result)."""
    folder = tmp_path_factory.mktemp("multilabel")
    csv = folder / "labels.csv"
    table().to_csv(csv, index=False)
    config = write_config(folder, {"source": "csv", "path": str(csv), "target": LABELS})
    result = bpnn_cli("train", config, "--out", folder / "run")
    assert result.exit_code == 0, result.stderr
    return csv, folder / "run", result


def checkpoint(run: Path) -> Path:
    return run / "checkpoints" / "best.npz"


def test_train_on_three_label_columns_reports_label_accuracy(trained) -> None:
    _, run, result = trained
    assert "targets: 3 label columns (0/1, multi-label)" in result.stderr + result.stdout
    summary = json.loads((run / "summary.json").read_text())
    assert summary["test_label_accuracy"] > 0.85  # warm and big follow from one feature each
    model = load_model(checkpoint(run))
    assert model.task == "multilabel"
    assert model.classes.tolist() == LABELS
    assert model.target_names == LABELS
    assert model.network.sizes[-1] == 3
    assert model.feature_names[:1] == ["a"] and len(model.feature_names) == 5  # 2 + 3 colors


def test_eval_prints_a_table_per_label_and_json_names_the_labels(trained) -> None:
    _, run, _ = trained
    text = bpnn_cli("eval", checkpoint(run))
    assert text.exit_code == 0, text.stderr
    assert "per label" in text.stdout
    for name in LABELS:
        assert name in text.stdout
    report = json.loads(bpnn_cli("eval", checkpoint(run), "--json").stdout)
    assert report["labels"] == LABELS
    assert list(report["per_label"]) == LABELS
    assert len(report["label_confusion"]) == 3


def test_eval_data_reads_every_target_column_and_needs_them_all(trained, tmp_path: Path) -> None:
    csv, run, _ = trained
    result = bpnn_cli("eval", checkpoint(run), "--data", csv, "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["test_samples"] == 160
    frame = table()
    supports = [report["per_label"][name]["support"] for name in LABELS]
    assert supports == truth(frame).sum(axis=0).tolist()
    without = tmp_path / "without.csv"
    frame.drop(columns=["odd"]).to_csv(without, index=False)
    refused = bpnn_cli("eval", checkpoint(run), "--data", without)
    assert refused.exit_code == 2
    assert "missing column(s) odd" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1


def test_predict_writes_labels_and_a_probability_per_label(trained, tmp_path: Path) -> None:
    csv, run, _ = trained
    result = bpnn_cli("predict", checkpoint(run), csv)
    assert result.exit_code == 0, result.stderr
    predicted = pd.read_csv(io.StringIO(result.stdout), keep_default_na=False)
    assert list(predicted.columns) == ["labels", *[f"p_{name}" for name in LABELS]]
    p = predicted[[f"p_{name}" for name in LABELS]].to_numpy()
    sets = [";".join(n for n, yes in zip(LABELS, row > 0.5, strict=True) if yes) for row in p]
    assert predicted["labels"].tolist() == sets
    assert ((p > 0.5) == truth(table())).mean() > 0.85
    # the target columns are set aside, not features: a file without them predicts the same
    features_only = tmp_path / "features.csv"
    table().drop(columns=LABELS).to_csv(features_only, index=False)
    alone = bpnn_cli("predict", checkpoint(run), features_only)
    assert alone.exit_code == 0, alone.stderr
    assert alone.stdout == result.stdout
    assert "ignoring" not in result.stderr  # the label columns are not extra columns


def test_onnx_export_answers_each_label_as_predict_does(trained, tmp_path: Path) -> None:
    import onnxruntime  # in the test extra: never skipped

    csv, run, _ = trained
    out = tmp_path / "labels.onnx"
    exported = bpnn_cli("export", checkpoint(run), "--format", "onnx", "--out", out)
    assert exported.exit_code == 0, exported.stderr
    expected = pd.read_csv(io.StringIO(bpnn_cli("predict", checkpoint(run), csv).stdout))
    expected = expected[[f"p_{name}" for name in LABELS]].to_numpy(dtype=np.float64)
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    frame = table()
    feeds = {}
    for graph_input in session.get_inputs():
        column = frame[graph_input.name]
        if graph_input.type == "tensor(string)":
            feeds[graph_input.name] = column.to_numpy(dtype=object).reshape(-1, 1)
        else:
            feeds[graph_input.name] = column.to_numpy(dtype=np.float32).reshape(-1, 1)
    assert sorted(feeds) == ["a", "b", "color"]  # no label column is an input
    answer = np.asarray(session.run(None, feeds)[0], dtype=np.float64)
    np.testing.assert_allclose(answer.reshape(expected.shape), expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("value", ["yes", "2", "0.5"])
def test_a_label_cell_that_is_not_0_1_or_true_false_is_refused_in_one_line(
    tmp_path: Path, value: str
) -> None:
    frame = table(rows=40).astype({"big": object})
    frame.loc[6, "big"] = value
    csv = tmp_path / "bad.csv"
    frame.to_csv(csv, index=False)
    config = write_config(tmp_path, {"source": "csv", "path": str(csv), "target": LABELS}, 1)
    result = bpnn_cli("train", config, "--out", tmp_path / "run")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"error: {csv}: target column 'big' holds {value!r} (line 8); "
        "each label column takes 0/1 or true/false"
    )
    assert not (tmp_path / "run").exists()


def test_booleans_and_a_rare_label_from_parquet(tmp_path: Path) -> None:
    """Parquet keeps booleans as booleans; a label set in only one row cannot be stratified
    and needs not be: the split is unstratified."""
    pytest.importorskip("pyarrow")
    frame = table(rows=60)
    frame["big"] = frame["big"] == "true"
    frame["odd"] = 0
    frame.loc[3, "odd"] = 1  # one sample only
    path = tmp_path / "labels.parquet"
    frame.to_parquet(path)
    data = {"source": "parquet", "path": str(path), "target": LABELS}
    result = bpnn_cli("train", write_config(tmp_path, data, 2), "--out", tmp_path / "run")
    assert result.exit_code == 0, result.stderr
    model = load_model(checkpoint(tmp_path / "run"))
    assert model.classes.tolist() == LABELS
    assert model.predict(frame).shape == (60, 3)


def test_target_list_checks(tmp_path: Path) -> None:
    csv = tmp_path / "labels.csv"
    table(rows=20).to_csv(csv, index=False)
    cases = {
        "data.target: an empty list": [],
        "data.target: lists column(s) twice: big": ["big", "warm", "big"],
    }
    for message, target in cases.items():
        config = write_config(tmp_path, {"source": "csv", "path": str(csv), "target": target})
        result = bpnn_cli("config", "check", config)
        assert result.exit_code == 2
        assert message in result.stderr
    other_loss = write_config(tmp_path, {"source": "csv", "path": str(csv), "target": LABELS})
    other_loss.write_text(other_loss.read_text().replace("binary_cross_entropy", "mse"))
    result = bpnn_cli("config", "check", other_loss)
    assert result.exit_code == 2
    assert "data.target: several columns are the 0/1 labels of binary_cross_entropy" in (
        result.stderr
    )
    absent = write_config(tmp_path, {"source": "csv", "path": str(csv), "target": ["warm", "x"]})
    result = bpnn_cli("config", "check", absent)
    assert result.exit_code == 2
    assert "no target column 'x'" in result.stderr


def test_npz_with_a_2d_01_y_trains_a_multilabel_model(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(120, 4))
    y = np.stack([X[:, 0] > 0, X[:, 1] + X[:, 2] > 0], axis=1).astype(np.int64)
    data = tmp_path / "labels.npz"
    np.savez(data, X=X, y=y)
    config = write_config(tmp_path, {"source": "npz", "path": str(data)}, 40)
    result = bpnn_cli("train", config, "--out", tmp_path / "run", "--quiet")
    assert result.exit_code == 0, result.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["test_label_accuracy"] > 0.8
    report = json.loads(
        bpnn_cli("eval", checkpoint(tmp_path / "run"), "--data", data, "--json").stdout
    )
    assert report["labels"] == ["0", "1"]  # the columns' numbers
    # the checkpoint alone knows it is multi-label: the training file may be gone
    inputs = tmp_path / "inputs.npz"
    np.savez(inputs, X=X[:5])
    data.unlink()
    predicted = bpnn_cli("predict", checkpoint(tmp_path / "run"), inputs)
    assert predicted.exit_code == 0, predicted.stderr
    assert predicted.stdout.splitlines()[0] == "labels,p_0,p_1"
    # cross_entropy reads one class per sample: the same 2-D y stays refused
    np.savez(data, X=X, y=y)
    config.write_text(config.read_text().replace("binary_cross_entropy", "cross_entropy"))
    refused = bpnn_cli("train", config, "--out", tmp_path / "run2")
    assert refused.exit_code == 2
    assert "class labels must be one column" in refused.stderr
