"""The scores of issue 28 (``bpnn.evaluation.classification_scores``, ``regression_scores``):
each equal to scikit-learn's own function on fixed predictions, with and without sample
weights; the expected calibration error worked out by hand; and a metric of the one metric
table, so that early stopping, ``train.metrics`` and sweeps may name it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as sk

from bpnn.metrics import METRICS, epoch_metric_names, is_headline, metric_names
from bpnn.scores import (
    classification_scores,
    expected_calibration_error,
    regression_scores,
)
from tests import support
from tests.support import run_in_process, tiny_yaml

SCORES = ("f1_macro", "f1_weighted", "precision", "recall", "balanced_accuracy", "roc_auc")
SCORES += ("pr_auc", "log_loss", "brier", "ece")


def probabilities(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    z = rng.normal(scale=2.0, size=(n, k))
    p = np.exp(z - z.max(axis=1, keepdims=True))
    return (p / p.sum(axis=1, keepdims=True)).astype(np.float32)


def every_class(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    y = rng.integers(0, k, n)
    y[:k] = np.arange(k)  # each class present: every score is defined
    return y


def sklearn_ece(confidence: np.ndarray, correct: np.ndarray, bins: int = 15) -> float:
    """The textbook ECE, bin by bin (Guo et al. 2017), to check the vectorised one."""
    total = 0.0
    for b in range(bins):
        low, high = b / bins, (b + 1) / bins
        inside = (confidence > low) & (confidence <= high) if b else confidence <= high
        if inside.any():
            total += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return total


@settings(max_examples=40, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(6, 80), k=st.integers(3, 6))
def test_multiclass_scores_equal_scikit_learns(seed: int, n: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    p, y = probabilities(rng, n, k), every_class(rng, n, k)
    scores = classification_scores("multiclass", p, y)
    predicted = p.argmax(axis=1)
    p64 = p.astype(np.float64)
    p64 /= p64.sum(axis=1, keepdims=True)
    onehot = np.eye(k)[y]
    expected = {
        "f1_macro": sk.f1_score(y, predicted, average="macro", zero_division=0),
        "f1_weighted": sk.f1_score(y, predicted, average="weighted", zero_division=0),
        "precision": sk.precision_score(y, predicted, average="macro", zero_division=0),
        "recall": sk.recall_score(y, predicted, average="macro", zero_division=0),
        "balanced_accuracy": sk.balanced_accuracy_score(y, predicted),
        "roc_auc": sk.roc_auc_score(y, p64, multi_class="ovr", average="macro"),
        "pr_auc": sk.average_precision_score(onehot, p64, average="macro"),
        "log_loss": sk.log_loss(y, p64, labels=list(range(k))),
        "brier": np.mean(((p64 - onehot) ** 2).sum(axis=1)),
        "ece": sklearn_ece(p.max(axis=1).astype(np.float64), predicted == y),
    }
    assert set(scores) == set(SCORES)
    for name in SCORES:
        assert scores[name] == pytest.approx(expected[name], abs=1e-6), name


@settings(max_examples=40, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(4, 80), weighted=st.booleans())
def test_binary_scores_equal_scikit_learns(seed: int, n: int, weighted: bool) -> None:
    rng = np.random.default_rng(seed)
    p1 = rng.uniform(size=n).astype(np.float32)
    y = rng.integers(0, 2, n)
    y[:2] = [0, 1]
    w = rng.uniform(0.1, 3.0, size=n) if weighted else None
    scores = classification_scores("binary", p1[:, None], y, w)
    predicted = (p1 > 0.5).astype(np.int64)
    p = p1.astype(np.float64)
    both = np.column_stack([1 - p, p])
    expected = {
        "f1_macro": sk.f1_score(y, predicted, average="macro", sample_weight=w, zero_division=0),
        "f1_weighted": sk.f1_score(
            y, predicted, average="weighted", sample_weight=w, zero_division=0
        ),
        "precision": sk.precision_score(y, predicted, sample_weight=w, zero_division=0),
        "recall": sk.recall_score(y, predicted, sample_weight=w, zero_division=0),
        "balanced_accuracy": sk.balanced_accuracy_score(y, predicted, sample_weight=w),
        "roc_auc": sk.roc_auc_score(y, p, sample_weight=w),
        "pr_auc": sk.average_precision_score(y, p, sample_weight=w),
        "log_loss": sk.log_loss(y, both, sample_weight=w),
        "brier": sk.brier_score_loss(y, p, sample_weight=w),
    }
    for name, value in expected.items():
        assert scores[name] == pytest.approx(value, abs=1e-6), name
    if w is None:
        confidence = both.max(axis=1)
        assert scores["ece"] == pytest.approx(
            sklearn_ece(confidence, both.argmax(axis=1) == y), abs=1e-9
        )


@settings(max_examples=30, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 60), outputs=st.integers(1, 3))
def test_regression_scores_equal_scikit_learns(seed: int, n: int, outputs: int) -> None:
    rng = np.random.default_rng(seed)
    actual = rng.normal(size=(n, outputs)) * 10
    predicted = actual + rng.normal(size=(n, outputs))
    scores = regression_scores(actual, predicted)
    assert scores["mape"] == pytest.approx(sk.mean_absolute_percentage_error(actual, predicted))
    assert scores["median_ae"] == pytest.approx(sk.median_absolute_error(actual, predicted))


def test_the_expected_calibration_error_by_hand() -> None:
    # two bins hold samples: (0.8, 0.8667] with 4 of 5 right at 0.85 (gap 0.05), and
    # (0.9333, 1] with 1 of 1 right at 0.95 (gap 0.05): ECE = 5/6 * 0.05 + 1/6 * 0.05
    confidence = np.array([0.85] * 5 + [0.95])
    correct = np.array([1, 1, 1, 1, 0, 1], dtype=bool)
    assert expected_calibration_error(confidence, correct) == pytest.approx(0.05)
    # a perfectly calibrated model: 0; weights count a sample w times
    assert expected_calibration_error(np.array([1.0, 1.0]), np.array([True, True])) == 0
    weighted = expected_calibration_error(
        np.array([0.85, 0.85]), np.array([True, False]), np.array([4.0, 1.0])
    )
    assert weighted == pytest.approx(abs(0.8 - 0.85))


def test_an_auc_a_split_cannot_define_is_nan_not_an_error() -> None:
    p = np.array([[0.7, 0.2, 0.1], [0.6, 0.3, 0.1]], dtype=np.float32)
    scores = classification_scores("multiclass", p, np.array([0, 0]))
    assert np.isnan(scores["roc_auc"]) and np.isnan(scores["pr_auc"])
    assert scores["f1_macro"] == pytest.approx(1 / 3)  # class 0 right, 1 and 2 scored 0


def test_every_score_is_a_metric_of_the_table_on_the_held_out_splits() -> None:
    for name in SCORES:
        assert METRICS[name].splits == ("val", "test") and not METRICS[name].headline
        assert f"val_{name}" in epoch_metric_names("multiclass", True)
        assert f"test_{name}" in metric_names("binary", ("test",))
    for name in ("mape", "median_ae"):
        assert f"val_{name}" in epoch_metric_names("regression", True)
    assert is_headline("val_loss") and not is_headline("val_roc_auc")


def test_a_score_may_be_monitored_and_logged_each_epoch(tmp_path: Path) -> None:
    """Early stopping on ``val_f1_macro``, ``train.metrics: [val_roc_auc]``: both in every
    line of metrics.jsonl, and every score of the test split in summary.json. A run that asks
    for none logs none (each costs scikit-learn calls every epoch)."""
    import json

    config = tmp_path / "scores.yaml"
    config.write_text(
        tiny_yaml(
            train={
                "epochs": 3,
                "metrics": ["val_roc_auc"],
                "early_stopping": {"monitor": "val_f1_macro", "patience": 5},
            }
        ),
        encoding="utf-8",
    )
    result = run_in_process("train", config, "--out", tmp_path / "run", "-q", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = (tmp_path / "run" / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines]
    assert all({"val_f1_macro", "val_roc_auc"} <= set(row) for row in rows)
    assert all("val_brier" not in row for row in rows)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text(encoding="utf-8"))
    assert {f"test_{name}" for name in SCORES} <= set(summary)
    assert "best_val_f1_macro" in summary


def test_an_unknown_metric_in_train_metrics_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(tiny_yaml(train={"metrics": ["val_mape"]}), encoding="utf-8")
    result = run_in_process("train", config, "--out", tmp_path / "run", cwd=tmp_path)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert "train.metrics[0]: 'val_mape' is not a metric of this run" in line
    assert not (tmp_path / "run").exists()


def test_a_sweep_ranks_trials_by_a_score_each_trial_measures(tmp_path: Path) -> None:
    """``metric: val_f1_macro``: each trial measures it every epoch without being told, and the
    sweep ranks the trials by its best value."""
    import json

    (tmp_path / "tiny.yaml").write_text(tiny_yaml(train={"epochs": 3}), encoding="utf-8")
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(
        support.TWO_TRIAL_GRID.replace("metric: val_accuracy", "metric: val_f1_macro"),
        encoding="utf-8",
    )
    result = run_in_process(
        "sweep", sweep, "--out", tmp_path / "out", "--workers", "1", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in (tmp_path / "out" / "sweep.jsonl").open()]
    finished = [line for line in lines if line.get("status") == "completed"]
    assert len(finished) == 2
    for line in finished:
        text = (Path(line["run_dir"]) / "metrics.jsonl").read_text(encoding="utf-8")
        rows = [json.loads(row) for row in text.splitlines()]
        assert line["metric"] == max(row["val_f1_macro"] for row in rows)


def test_outputs_that_are_no_probabilities_score_nan_where_a_score_needs_them() -> None:
    """Squared error on identity outputs (one-hot targets): the ranking and label scores are
    defined, log loss, Brier and ECE are NaN, and nothing raises."""
    output = np.array([[1.4, -0.2, 0.1], [0.2, 0.9, -0.3], [0.0, 0.1, 1.2], [0.8, 0.3, 0.1]])
    scores = classification_scores("multiclass", output, np.array([0, 1, 2, 0]))
    assert scores["f1_macro"] == 1.0 and scores["roc_auc"] == 1.0
    assert all(np.isnan(scores[name]) for name in ("log_loss", "brier", "ece"))
    diverged = classification_scores("binary", np.array([[np.nan], [0.3]]), np.array([0, 1]))
    assert np.isnan(diverged["roc_auc"]) and np.isnan(diverged["log_loss"])
