"""`bpnn eval`: per-class precision, recall, F1 and support and the confusion matrix for a
classifier (worked out by hand here), RMSE for regression, and --plots."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from bpnn.cli import app
from bpnn.evaluation import classification_report
from tests.support import REPO

runner = CliRunner()


def test_classification_report_of_a_case_worked_out_by_hand() -> None:
    y = np.array([0, 0, 0, 1, 1, 2])
    predicted = np.array([0, 1, 0, 1, 1, 0])
    report = classification_report(["a", "b", "c"], y, predicted)
    # rows: true a, b, c; columns: predicted a, b, c
    assert report["confusion_matrix"] == [[2, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert report["classes"] == ["a", "b", "c"]
    a, b, c = (report["per_class"][name] for name in "abc")
    # a: TP 2, FP 1 (the c predicted a), FN 1 (the a predicted b)
    assert a == pytest.approx({"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3, "support": 3})
    # b: TP 2, FP 1, FN 0 -> F1 = 2 * (2/3) * 1 / (2/3 + 1) = 0.8
    assert b == pytest.approx({"precision": 2 / 3, "recall": 1.0, "f1": 0.8, "support": 2})
    # c: never predicted, its one sample missed: 0 where a denominator is 0
    assert c == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}


@pytest.fixture(scope="module")
def iris_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("iris") / "run"
    args = ["train", str(REPO / "examples" / "iris.yaml"), "--out", str(out), "-q"]
    args += ["--set", "train.epochs=3"]  # an unfinished model, so that some samples are wrong
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return out / "checkpoints" / "best.npz"


def test_eval_json_carries_the_per_class_report_and_the_confusion_matrix(
    iris_checkpoint: Path,
) -> None:
    data = REPO / "examples" / "iris.csv"
    result = runner.invoke(app, ["eval", str(iris_checkpoint), "--data", str(data), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)

    predicted = runner.invoke(app, ["predict", str(iris_checkpoint), str(data)])
    guesses = [row["label"] for row in csv.DictReader(io.StringIO(predicted.stdout))]
    truths = [row["species"] for row in csv.DictReader(data.open())]
    classes = report["classes"]
    assert classes == ["setosa", "versicolor", "virginica"]
    counts = [[0] * 3 for _ in classes]
    for truth, guess in zip(truths, guesses, strict=True):
        counts[classes.index(truth)][classes.index(guess)] += 1
    assert report["confusion_matrix"] == counts
    assert sum(map(sum, counts)) == report["test_samples"] == 150
    for i, name in enumerate(classes):
        tp = counts[i][i]
        predicted_as = sum(row[i] for row in counts)
        precision = tp / predicted_as if predicted_as else 0.0
        recall = tp / sum(counts[i])
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        assert report["per_class"][name] == pytest.approx(
            {"precision": precision, "recall": recall, "f1": f1, "support": sum(counts[i])}
        )
    assert report["test_accuracy"] == pytest.approx(sum(counts[i][i] for i in range(3)) / 150)


def test_eval_prints_the_per_class_table_and_the_matrix(iris_checkpoint: Path) -> None:
    result = runner.invoke(app, ["eval", str(iris_checkpoint)])
    assert result.exit_code == 0, result.output
    for text in ("per class", "precision", "recall", "f1", "support", "confusion matrix"):
        assert text in result.stdout
    assert "versicolor" in result.stdout


def test_eval_plots_the_confusion_matrix_and_never_overwrites_it(
    iris_checkpoint: Path, tmp_path: Path
) -> None:
    plots = tmp_path / "report"
    result = runner.invoke(app, ["eval", str(iris_checkpoint), "--plots", str(plots)])
    assert result.exit_code == 0, result.output
    names = ("confusion_matrix.png", "roc.png", "precision_recall.png", "reliability.png")
    for name in names:  # issue 28: ROC and precision-recall curves, the reliability diagram
        assert (plots / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert f"wrote {plots / name}" in result.stderr
    before = {name: (plots / name).read_bytes() for name in names}
    (plots / "confusion_matrix.png").unlink()  # one figure is free, the others are taken
    again = runner.invoke(app, ["eval", str(iris_checkpoint), "--plots", str(plots)])
    assert again.exit_code == 2
    assert "roc.png: already exists" in again.stderr
    assert not (plots / "confusion_matrix.png").exists()  # refused before the first is drawn
    assert all((plots / n).read_bytes() == before[n] for n in names[1:])


def test_training_draws_the_test_confusion_matrix_into_the_run(iris_checkpoint: Path) -> None:
    plots = iris_checkpoint.parents[1] / "plots"
    assert {"loss.png", "accuracy.png", "lr.png", "confusion_matrix.png"} <= {
        p.name for p in plots.iterdir()
    }


def test_regression_eval_adds_rmse_and_plots_predicted_against_true(tmp_path: Path) -> None:
    config = tmp_path / "reg.yaml"
    config.write_text(
        "data: {source: diabetes}\nmodel: {hidden: [8]}\nloss: mse\ntrain: {epochs: 2}\n"
    )
    run = tmp_path / "run"
    assert runner.invoke(app, ["train", str(config), "--out", str(run), "-q"]).exit_code == 0
    best = run / "checkpoints" / "best.npz"
    result = runner.invoke(app, ["eval", str(best), "--json", "--plots", str(tmp_path / "p")])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["test_rmse"] >= report["test_mae"] > 0  # RMSE >= MAE always
    assert "per_class" not in report and "confusion_matrix" not in report
    assert (tmp_path / "p" / "predictions.png").is_file()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["test_rmse"] == report["test_rmse"]


def test_eval_runs_one_forward_pass_and_predict_scales_once(
    iris_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``report`` computes the loss, the metrics and the per-class report from one pass over
    the test split, and ``predict`` scales its inputs once (it checked them, then scaled again)."""
    from bpnn.evaluation import prediction_table
    from bpnn.model import Model
    from bpnn.nn.network import Network
    from bpnn.run import evaluate_checkpoint

    calls = {"forward passes": 0, "scalings": 0}
    evaluate, predict, inputs = Network.evaluate, Network.predict, Model._inputs

    def counted(name: str, function: object) -> object:
        def wrapper(*args: object, **kwargs: object) -> object:
            calls[name] += 1
            return function(*args, **kwargs)  # type: ignore[operator]

        return wrapper

    monkeypatch.setattr(Network, "evaluate", counted("forward passes", evaluate))
    monkeypatch.setattr(Network, "predict", counted("forward passes", predict))
    monkeypatch.setattr(Model, "_inputs", counted("scalings", inputs))
    evaluate_checkpoint(iris_checkpoint)
    assert calls["forward passes"] == 1
    rows = tmp_path / "rows.csv"
    header = "sepal_length,sepal_width,petal_length,petal_width\n"
    rows.write_text(header + "5.1,3.5,1.4,0.2\n6.3,3.3,6.0,2.5\n", encoding="utf-8")
    calls.update({"forward passes": 0, "scalings": 0})
    prediction_table(iris_checkpoint, rows)
    assert calls == {"forward passes": 1, "scalings": 1}
