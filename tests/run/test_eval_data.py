"""`bpnn eval CHECKPOINT --data FILE`: a checkpoint meets new labelled data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from bpnn.cli import app
from tests.support import REPO

IRIS = REPO / "examples" / "iris.csv"
runner = CliRunner()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("iris") / "run"
    args = ["train", str(REPO / "examples" / "iris.yaml"), "--out", str(run), "-q"]
    result = runner.invoke(app, [*args, "--set", "train.epochs=30"])
    assert result.exit_code == 0, result.output
    return run / "checkpoints" / "best.npz"


def evaluate(checkpoint: Path, data: Path) -> tuple[int, str]:
    result = runner.invoke(app, ["eval", str(checkpoint), "--data", str(data), "--json"])
    return result.exit_code, result.output


def test_eval_on_a_labelled_csv_matches_predict(checkpoint: Path, tmp_path: Path) -> None:
    code, output = evaluate(checkpoint, IRIS)
    assert code == 0, output
    metrics = json.loads(output)
    assert metrics["test_samples"] == 150
    predicted = runner.invoke(app, ["predict", str(checkpoint), str(IRIS)]).stdout.splitlines()[1:]
    truth = [line.rsplit(",", 1)[1] for line in IRIS.read_text().splitlines()[1:]]
    agree = np.mean(
        [row.split(",")[0] == label for row, label in zip(predicted, truth, strict=True)]
    )
    assert metrics["test_accuracy"] == pytest.approx(agree)


def test_a_label_the_model_never_saw_is_a_one_line_error(checkpoint: Path, tmp_path: Path) -> None:
    lines = IRIS.read_text().splitlines()
    lines[3] = lines[3].rsplit(",", 1)[0] + ",rose"
    data = tmp_path / "new.csv"
    data.write_text("\n".join(lines) + "\n")
    code, output = evaluate(checkpoint, data)
    assert code == 2
    assert output.strip() == (
        f"error: {data}: label 'rose' is not one of the classes (setosa, versicolor, virginica)"
    )


def test_a_missing_feature_column_is_named(checkpoint: Path, tmp_path: Path) -> None:
    rows = [line.split(",") for line in IRIS.read_text().splitlines()]
    data = tmp_path / "narrow.csv"
    data.write_text("\n".join(",".join(r[:2] + r[3:]) for r in rows) + "\n")
    code, output = evaluate(checkpoint, data)
    assert code == 2
    assert "petal_length" in output and "Traceback" not in output
    assert len(output.strip().splitlines()) == 1


def test_an_npz_with_the_wrong_number_of_features_is_refused(
    checkpoint: Path, tmp_path: Path
) -> None:
    data = tmp_path / "wide.npz"
    np.savez(data, X=np.zeros((5, 7)), y=np.array(["setosa"] * 5))
    code, output = evaluate(checkpoint, data)
    assert code == 2
    assert "7" in output and "4" in output
