"""``data.weight: COLUMN`` (issue 28): a table's column of row weights, used by the loss and the
metrics and never a feature. Checked against the weighted means of ``bpnn predict``'s own
probabilities on an explicit test file, where each row's weight is known."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score, log_loss

from tests.support import run_in_process


def weighted_table(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 2))
    label = np.where(x[:, 0] + 0.5 * rng.normal(size=rows) > 0, "yes", "no")
    weight = rng.choice([0.5, 1.0, 4.0], rows)
    return pd.DataFrame({"x1": x[:, 0], "x2": x[:, 1], "w": weight, "label": label})


def write_config(tmp_path: Path, name: str = "weighted", **data: Any) -> Path:
    weighted_table(160, 0).to_csv(tmp_path / "train.csv", index=False)
    weighted_table(60, 1).to_csv(tmp_path / "test.csv", index=False)
    section = {"source": "csv", "path": "train.csv", "test_path": "test.csv", "target": "label"}
    config = {
        "name": "weighted",
        "data": {**section, "weight": "w", **data},
        "model": {"hidden": [4]},
        "train": {"epochs": 3},
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


def test_the_test_metrics_are_weighted_by_the_column(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    result = run_in_process("train", config, "--out", tmp_path / "run", "-q", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text(encoding="utf-8"))
    predicted = run_in_process(
        "predict",
        tmp_path / "run" / "checkpoints" / "best.npz",
        tmp_path / "test.csv",
        cwd=tmp_path,
    )
    assert predicted.returncode == 0, predicted.stderr
    assert "w" in predicted.stderr  # the weight column is no input: left out, and said so
    rows = [line.split(",") for line in predicted.stdout.strip().splitlines()]
    header, cells = rows[0], rows[1:]
    assert header == ["label", "p_no", "p_yes"]
    test = pd.read_csv(tmp_path / "test.csv")
    truth = (test["label"] == "yes").to_numpy().astype(int)
    p_yes = np.array([float(row[2]) for row in cells])
    guess = np.array([row[0] == "yes" for row in cells]).astype(int)
    w = test["w"].to_numpy()
    both = np.column_stack([1 - p_yes, p_yes])
    assert summary["test_loss"] == pytest.approx(log_loss(truth, both, sample_weight=w), rel=1e-5)
    assert summary["test_accuracy"] == pytest.approx(np.average(guess == truth, weights=w))
    assert summary["test_f1_macro"] == pytest.approx(
        f1_score(truth, guess, average="macro", sample_weight=w)
    )
    unweighted = np.mean(guess == truth)
    assert summary["test_accuracy"] != pytest.approx(unweighted)  # the weights changed it
    saved = (tmp_path / "run" / "config.yaml").read_text(encoding="utf-8")
    assert "weight: w" in saved


def test_weights_change_the_training_and_are_no_feature(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    plain = write_config(tmp_path, "plain", weight=None)
    for path, out in ((config, "weighted"), (plain, "plain")):
        result = run_in_process("train", path, "--out", tmp_path / out, "-q", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    weighted_rows = (tmp_path / "weighted" / "metrics.jsonl").read_text(encoding="utf-8")
    plain_rows = (tmp_path / "plain" / "metrics.jsonl").read_text(encoding="utf-8")
    first = [json.loads(rows.splitlines()[0])["train_loss"] for rows in (weighted_rows, plain_rows)]
    assert first[0] != first[1]
    # the plain run reads w as a feature (3 inputs), the weighted one does not (2)
    from bpnn.model import load_model

    weighted = load_model(tmp_path / "weighted" / "checkpoints" / "best.npz")
    unweighted = load_model(tmp_path / "plain" / "checkpoints" / "best.npz")
    assert (weighted.n_features, unweighted.n_features) == (2, 3)


@pytest.mark.parametrize(
    ("cell", "fragment"),
    [("0", "holds 0"), ("-1", "holds -1"), ("heavy", "holds 'heavy'"), ("", "holds no value")],
)
def test_a_weight_that_is_no_positive_number_is_one_line_naming_its_line(
    tmp_path: Path, cell: str, fragment: str
) -> None:
    config = write_config(tmp_path)
    table = pd.read_csv(tmp_path / "train.csv", dtype=str)
    table.loc[5, "w"] = cell
    table.to_csv(tmp_path / "train.csv", index=False)
    result = run_in_process("train", config, "--out", tmp_path / "run", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: ") and "train.csv: line 7: the weight column 'w'" in line
    assert fragment in line and "a weight is a number above 0" in line
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"weight": "mass"}, "no weight column 'mass' (columns: x1, x2, w, label)"),
        ({"weight": "label"}, "the weight column 'label' is the target"),
        ({"features": ["x1", "w"]}, "the weight column 'w' is also listed in data.features"),
    ],
)
def test_a_weight_column_that_cannot_be_one_is_one_line(
    tmp_path: Path, data: dict, message: str
) -> None:
    config = write_config(tmp_path, **data)
    result = run_in_process("train", config, "--out", tmp_path / "run", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1].endswith(message)


def test_importance_scores_the_weighted_validation_split(tmp_path: Path) -> None:
    """``bpnn importance``'s baseline is the weighted accuracy the run logged for best.npz."""
    config = write_config(tmp_path)
    assert (
        run_in_process("train", config, "--out", tmp_path / "run", "-q", cwd=tmp_path).returncode
        == 0
    )
    summary = json.loads((tmp_path / "run" / "summary.json").read_text(encoding="utf-8"))
    rows = (tmp_path / "run" / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    logged = json.loads(rows[summary["best_epoch"] - 1])["val_accuracy"]
    best = tmp_path / "run" / "checkpoints" / "best.npz"
    result = run_in_process("importance", best, "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["baseline"] == pytest.approx(logged)
