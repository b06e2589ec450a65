"""``bpnn importance``: permutation importance per raw column, gradient times input, and the
refusals of bad input (bpnn/tools/importance.py, bpnn/cli/importance.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import bpnn
from bpnn.model import build_network, load_model
from bpnn.nn.layers import EVAL, BatchNorm
from bpnn.tools.importance import raw_columns
from tests.support import files_of, run_in_process, tiny_config, tiny_yaml

#: the synthetic table's columns: ``signal`` decides the label, the others are pure noise
COLUMNS = ("signal", "noise", "colour")


def write_table(path: Path, rows: int = 300, seed: int = 0) -> Path:
    """A CSV whose label is ``yes`` exactly when ``signal > 0``; ``noise`` (numbers) and
    ``colour`` (a categorical column of three values) are drawn independently of it."""
    rng = np.random.default_rng(seed)
    signal, noise = rng.normal(size=rows), rng.normal(size=rows)
    colour = rng.choice(["red", "green", "blue"], size=rows)
    lines = ["signal,noise,colour,label"]
    lines += [
        f"{s:.4f},{n:.4f},{c},{'yes' if s > 0 else 'no'}"
        for s, n, c in zip(signal, noise, colour, strict=True)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def table_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of a run trained (in this process) on ``write_table``'s CSV, with a
    validation split of 72 rows (0.3 of the 240 the test split leaves); its checkpoint is
    ``checkpoint(folder)``."""
    folder = tmp_path_factory.mktemp("importance")
    write_table(folder / "table.csv")
    config = folder / "table.yaml"
    config.write_text(
        tiny_yaml(
            name="table",
            data={"source": "csv", "path": "table.csv", "target": "label", "val_fraction": 0.3},
            optimizer={"name": "adam", "lr": 0.05},
            train={"epochs": 15, "batch_size": 32},
        ),
        encoding="utf-8",
    )
    result = run_in_process("train", config, "--out", folder / "run", "-q", cwd=folder)
    assert result.returncode == 0, result.stderr
    return folder


def checkpoint(folder: Path) -> Path:
    return folder / "run" / "checkpoints" / "best.npz"


def importance_json(folder: Path, *args: object) -> dict:
    result = run_in_process("importance", checkpoint(folder), "--json", *args, cwd=folder)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return json.loads(result.stdout)


def test_permutation_ranks_the_informative_column_above_noise(table_run: Path) -> None:
    report = bpnn.importance(checkpoint(table_run), repeats=4)
    by_name = {c.column: c for c in report.columns}
    # a categorical column (one-hot into three inputs) is one row: one row per raw column
    assert sorted(by_name) == sorted(COLUMNS)
    assert report.columns[0].column == "signal"
    assert by_name["signal"].importance > 0.2
    assert by_name["signal"].importance > by_name["noise"].importance + 0.15
    assert by_name["signal"].importance > by_name["colour"].importance + 0.15
    assert report.data == "validation split" and report.samples == 72
    assert report.score == "accuracy" and report.baseline > 0.9
    assert report.seed == 0  # the run's seed
    importances = [c.importance for c in report.columns]
    assert importances == sorted(importances, reverse=True)


def test_same_seed_same_importances_another_seed_other_shuffles(table_run: Path) -> None:
    first = bpnn.importance(checkpoint(table_run), repeats=2, seed=3)
    again = bpnn.importance(checkpoint(table_run), repeats=2, seed=3)
    other = bpnn.importance(checkpoint(table_run), repeats=2, seed=4)
    assert first.as_json() == again.as_json()
    assert [c.std for c in first.columns] != [c.std for c in other.columns]


def test_raw_columns_encode_back_to_the_same_features(table_run: Path) -> None:
    """The predictor's input is the table's raw columns: encoding them again gives the inputs
    the model was trained with, so shuffling ``colour`` moves its three inputs together."""
    model = load_model(checkpoint(table_run))
    assert model.encoding is not None and model.n_features == 5  # signal, noise, 3 colours
    X = np.array([[0.5, -1.0, 0, 1, 0], [-2.0, 0.25, 1, 0, 0], [1.0, 1.0, 0, 0, 0]])
    raw = raw_columns(model, X)
    assert list(raw.columns) == list(COLUMNS)
    assert list(raw["colour"][:2]) == ["green", "blue"]
    ignoring = type(model.encoding)(model.encoding.columns, unknown_category="ignore")
    encoded, _ = ignoring.transform(raw, "test")
    np.testing.assert_array_equal(encoded, X)


def test_gradient_method_adds_a_finite_attribution_per_column(table_run: Path) -> None:
    found = importance_json(table_run, "--method", "gradient", "--repeats", "2")
    gradients = {c["column"]: c["gradient"] for c in found["columns"]}
    assert sorted(gradients) == sorted(COLUMNS)
    assert all(np.isfinite(g) and g >= 0 for g in gradients.values())
    assert max(gradients, key=gradients.__getitem__) == "signal"


def test_json_shape(table_run: Path) -> None:
    found = importance_json(table_run, "--repeats", "2", "--seed", "7")
    assert set(found) == {
        "checkpoint",
        "data",
        "from_file",
        "samples",
        "score",
        "baseline",
        "repeats",
        "seed",
        "method",
        "columns",
    }
    assert (found["repeats"], found["seed"], found["method"]) == (2, 7, "permutation")
    assert [set(c) for c in found["columns"]] == [{"column", "importance", "std"}] * 3


def test_data_file_and_plots(table_run: Path, tmp_path: Path) -> None:
    data = write_table(tmp_path / "new.csv", rows=120, seed=1)
    out = tmp_path / "importance.png"
    result = run_in_process(
        "importance", checkpoint(table_run), "--data", data, "--plots", out, "--json", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert (found["data"], found["from_file"], found["samples"]) == (str(data), True, 120)
    assert found["columns"][0]["column"] == "signal"
    assert out.read_bytes().startswith(b"\x89PNG")
    assert f"wrote {out}" in result.stderr
    again = run_in_process("importance", checkpoint(table_run), "--plots", out, cwd=tmp_path)
    assert again.returncode == 2
    assert again.stderr.strip().splitlines()[-1] == (
        f"error: {out}: already exists; choose another --plots"
    )


def test_bad_inputs_are_one_line(table_run: Path, tmp_path: Path) -> None:
    best = checkpoint(table_run)
    no_noise = tmp_path / "no_noise.csv"
    rows = (table_run / "table.csv").read_text(encoding="utf-8").splitlines()
    no_noise.write_text(
        "\n".join(",".join(r.split(",")[:1] + r.split(",")[2:]) for r in rows) + "\n",
        encoding="utf-8",
    )
    cases = {
        (tmp_path / "none.npz",): "none.npz: no such checkpoint file",
        (best, "--repeats", "0"): "--repeats: must be at least 1, got 0",
        (best, "--method", "shap"): "--method: 'shap' is none of permutation, gradient",
        (best, "--data", no_noise): "no_noise.csv: missing column(s) noise the model needs",
    }
    before = files_of(tmp_path)
    for args, message in cases.items():
        result = run_in_process("importance", *args, cwd=tmp_path)
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert result.returncode == 2, (args, result.stderr)
        assert len(errors) == 1 and message in errors[0], (args, result.stderr)
        assert "Traceback" not in result.stderr
        assert result.stdout == ""
    assert files_of(tmp_path) == before


def test_input_gradient_matches_central_differences_with_batch_norm() -> None:
    """``Network.input_gradient``: the gradient of the chosen logits with respect to the inputs
    in evaluation mode (batch norm on its running statistics), against central differences
    in float64."""
    config = tiny_config(model={"hidden": [6, 5], "batch_norm": True}, train={"dtype": "float64"})
    network = build_network(config, 4, ["a", "b", "c"], 1, np.random.default_rng(1))
    rng = np.random.default_rng(2)
    for _, layer in network.layers:
        if isinstance(layer, BatchNorm):
            layer.running_mean[...] = rng.normal(size=layer.features)
            layer.running_var[...] = rng.uniform(0.5, 2.0, size=layer.features)
    X = rng.normal(size=(7, 4))
    chosen = np.eye(3)[rng.integers(3, size=7)]

    def logits(inputs: np.ndarray) -> np.ndarray:
        return (network.forward(inputs, EVAL) * chosen).sum(axis=1)

    expected = np.zeros_like(X)
    step = 1e-6
    for j in range(X.shape[1]):
        shift = np.zeros_like(X)
        shift[:, j] = step
        expected[:, j] = (logits(X + shift) - logits(X - shift)) / (2 * step)
    np.testing.assert_allclose(network.input_gradient(X, chosen), expected, rtol=1e-6, atol=1e-9)


def test_a_regression_on_an_array_source_is_scored_by_r2(tmp_path: Path) -> None:
    """Without a table encoding the predictor takes the feature matrix: one row per feature,
    the score R², the gradient of the (scaled) output."""
    config = tmp_path / "diabetes.yaml"
    config.write_text(
        tiny_yaml(name="diabetes", data={"source": "diabetes"}, loss="mse", train={"epochs": 5}),
        encoding="utf-8",
    )
    result = run_in_process("train", config, "--out", tmp_path / "run", "-q", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = bpnn.importance(checkpoint(tmp_path), repeats=2, method="gradient")
    model = load_model(checkpoint(tmp_path))
    assert report.score == "r2" and np.isfinite(report.baseline)
    assert sorted(c.column for c in report.columns) == sorted(model.feature_names)
    assert all(np.isfinite(c.gradient) and c.gradient >= 0 for c in report.columns)
