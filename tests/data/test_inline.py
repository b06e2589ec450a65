"""Specification of what a worked example needs: inline data, runs without a test or validation
split, one-hot targets, the sum reduction, the output activation, and given initial weights."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from bpnn import checkpoint
from bpnn.config import load_config, validate
from bpnn.errors import ConfigError
from bpnn.evaluation import prediction_table
from bpnn.model import load_model
from bpnn.nn.losses import ChainRule
from bpnn.run import evaluate_checkpoint, load_data, resume_training, run_training
from tests.support import REPO

ROWS = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]


def _inline(y: list[Any], **sections: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "name": "inline",
        "data": {"source": "inline", "X": ROWS, "y": y},
        "model": {"hidden": [3]},
        "optimizer": {"name": "sgd", "lr": 0.1},
        "train": {"epochs": 2, "batch_size": 4},
    }
    for key, value in sections.items():
        raw[key] = {**raw.get(key, {}), **value} if isinstance(value, dict) else value
    return raw


def _one_line_error(raw: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        validate(raw)
    message = str(caught.value)
    assert "\n" not in message
    return message


# --- inline data --------------------------------------------------------------------------------


def test_inline_data_defaults_to_no_split_no_scaling_and_unscaled_targets() -> None:
    config = validate(_inline([[0.5], [1.5], [2.5], [3.5]], loss="mse"))
    assert config.data.test_fraction == 0
    assert config.data.val_fraction == 0
    assert config.data.scale == "none"
    assert config.data.scale_target is False
    data = load_data(config)
    assert data.n_samples == (4, 0, 0)
    np.testing.assert_array_equal(data.X_train, np.asarray(ROWS, dtype=np.float32))
    np.testing.assert_array_equal(data.y_train[:, 0], [0.5, 1.5, 2.5, 3.5])


def test_inline_rows_of_values_make_a_regression_with_several_outputs(tmp_path: Path) -> None:
    y = [[0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]
    for loss in ("mse", "mae", "huber"):
        config = validate(_inline(y, loss=loss, name=f"multi-{loss}"))
        run_dir, summary = run_training(config, tmp_path / loss)
        assert load_model(run_dir / "checkpoints" / "best.npz").network.sizes[-1] == 2
        assert summary["train_samples"] == 4 and "train_mae" in summary


def test_a_single_row_and_a_single_class_are_fine_for_inline_data(tmp_path: Path) -> None:
    one_row = validate(
        _inline([[1.0, 0.0]], loss="mse")
        | {"data": {"source": "inline", "X": [[1.0, 0.5]], "y": [[1.0, 0.0]]}}
    )
    _, summary = run_training(one_row, tmp_path / "row")
    assert summary["train_samples"] == 1
    single_class = validate(_inline(["yes"] * 4))
    _, summary = run_training(single_class, tmp_path / "class")
    assert summary["train_accuracy"] == 1.0


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"X": [[1.0, 2.0], [3.0]], "y": [0, 1]}, "data.X"),
        ({"X": [[1.0], [2.0]], "y": [0]}, "data.y"),
        ({"X": [[1.0], [2.0]], "y": [[1.0], 2.0]}, "data.y"),
        ({"X": [], "y": []}, "data.X"),
        ({"X": [[1.0], ["a"]], "y": [0, 1]}, "data.X"),
    ],
)
def test_malformed_inline_data_names_the_key(data: dict[str, Any], key: str) -> None:
    raw = {"data": {"source": "inline", **data}}
    assert key in _one_line_error(raw)


def test_inline_keys_do_not_apply_to_other_sources() -> None:
    assert "does not apply" in _one_line_error({"data": {"source": "iris", "X": [[1.0]]}})


# --- no test split, no validation split: train, eval, resume ---------------------------------


def test_run_without_test_and_validation_splits_trains_evaluates_and_resumes(
    tmp_path: Path,
) -> None:
    raw = _inline([0, 1, 1, 0], model={"hidden": [4], "activation": "tanh"})
    raw["train"]["epochs"] = 4
    config_file = tmp_path / "xor.yaml"
    config_file.write_text(yaml.safe_dump(raw), encoding="utf-8")
    whole, summary = run_training(load_config(config_file), tmp_path / "whole")
    assert summary["test_samples"] == 0 and summary["val_samples"] == 0
    assert {"train_loss", "train_accuracy"} <= set(summary)
    assert "best_train_loss" in summary  # best.npz follows the training loss
    metrics = evaluate_checkpoint(whole / "checkpoints" / "best.npz")
    assert metrics["train_loss"] == pytest.approx(summary["train_loss"])
    assert metrics["train_samples"] == 4

    raw["train"]["epochs"] = 2
    config_file.write_text(yaml.safe_dump(raw), encoding="utf-8")
    half, _ = run_training(load_config(config_file), tmp_path / "half")
    resumed = resume_training(half, epochs=4)
    assert resumed["train_loss"] == summary["train_loss"]
    rows = [json.loads(line) for line in (half / "metrics.jsonl").read_text().splitlines()]
    expected = [json.loads(line) for line in (whole / "metrics.jsonl").read_text().splitlines()]
    for row in (*rows, *expected):
        row.pop("epoch_seconds")
    assert rows == expected


def test_test_fraction_zero_means_no_test_split_for_any_source() -> None:
    config = validate({"data": {"source": "iris", "test_fraction": 0}})
    assert load_data(config).n_samples == (135, 15, 0)


# --- one-hot targets and the output activation --------------------------------------------------


def test_mse_on_class_labels_proposes_one_hot_or_cross_entropy() -> None:
    message = _one_line_error({"data": {"source": "digits"}, "loss": "mse"})
    assert "data.one_hot: true" in message and "cross_entropy" in message


def test_one_hot_squared_error_on_sigmoid_outputs_is_a_classification_run(
    tmp_path: Path,
) -> None:
    raw = {
        "data": {"source": "iris", "one_hot": True},
        "model": {"hidden": [8], "activation": "sigmoid", "output": "sigmoid"},
        "loss": {"name": "mse", "reduction": "sum"},
        "optimizer": {"name": "sgd", "lr": 0.01},
        "train": {"epochs": 3, "batch_size": 16},
    }
    config = validate(raw)
    assert config.task == "multiclass"
    assert config.data.scale_target is False
    run_dir, summary = run_training(config, tmp_path / "run")
    assert "test_accuracy" in summary
    model = load_model(run_dir / "checkpoints" / "best.npz")
    assert isinstance(model.network.loss, ChainRule)
    assert model.task == "multiclass"
    assert model.network.sizes[-1] == 3
    assert list(model.classes) == [0, 1, 2]
    assert checkpoint.load(run_dir / "checkpoints" / "best.npz").task == "multiclass"
    samples = tmp_path / "samples.csv"
    samples.write_text("x0,x1,x2,x3\n5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n", encoding="utf-8")
    table = prediction_table(run_dir / "checkpoints" / "best.npz", samples)
    assert table.splitlines()[0] == "label,p_0,p_1,p_2"


def test_one_hot_needs_binary_cross_entropy_or_a_regression_loss() -> None:
    message = _one_line_error({"data": {"source": "iris", "one_hot": True}})
    assert message.endswith(
        "data.one_hot: one-hot targets are for binary_cross_entropy and the regression losses "
        "(mse, mae, huber); 'cross_entropy' reads class labels as they are"
    )


def test_cross_entropy_refuses_an_output_that_is_not_its_own() -> None:
    message = _one_line_error({"model": {"output": "tanh"}})
    assert "model.output: 'cross_entropy' needs softmax outputs" in message
    assert validate({"model": {"output": "softmax"}}).model.output.name == "softmax"


def test_output_auto_resolves_to_the_losses_own_activation() -> None:
    assert validate({}).model.output.name == "softmax"
    assert (
        validate({"loss": "binary_cross_entropy", "data": {"source": "moons"}}).model.output.name
        == "sigmoid"
    )
    assert validate({"loss": "mse", "data": {"source": "diabetes"}}).model.output.name == "identity"


def test_unknown_output_activation_lists_the_choices() -> None:
    message = _one_line_error(
        {"loss": "mse", "data": {"source": "diabetes"}, "model": {"output": "softmaxx"}}
    )
    assert "model.output" in message and "softmax" in message


def test_sum_reduction_reports_the_summed_loss_per_sample(tmp_path: Path) -> None:
    base = _inline([[0.5], [1.5], [2.5], [3.5]], loss="mse")
    mean = run_training(validate(base), tmp_path / "mean")[1]
    summed = validate(base | {"loss": {"name": "mse", "reduction": "sum"}})
    assert summed.loss.options["reduction"] == "sum"
    # epoch 1 is one batch of all four rows, its loss measured before the step: the summed
    # loss of one output per sample is the mean's loss
    sum_dir, _ = run_training(summed, tmp_path / "sum")
    first = json.loads((sum_dir / "metrics.jsonl").read_text().splitlines()[0])
    first_mean = json.loads((tmp_path / "mean" / "metrics.jsonl").read_text().splitlines()[0])
    assert first["train_loss"] == pytest.approx(first_mean["train_loss"], rel=1e-6)
    # the step is not: the summed gradient is four times the mean's
    second = json.loads((sum_dir / "metrics.jsonl").read_text().splitlines()[1])
    second_mean = json.loads((tmp_path / "mean" / "metrics.jsonl").read_text().splitlines()[1])
    assert second["train_loss"] != pytest.approx(second_mean["train_loss"], rel=1e-3)
    assert mean["train_samples"] == 4


# --- initial weights -----------------------------------------------------------------------------

WEIGHTS = {
    "0.weight": [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]],
    "0.bias": [0.0, 0.1, 0.2],
    "1.weight": [[1.0], [-1.0], [0.5]],
    "1.bias": [0.25],
}


def _weights_config(path: str) -> dict[str, Any]:
    return _inline(
        [[0.0], [1.0], [1.0], [0.0]], loss="mse", model={"hidden": [3], "initial_weights": path}
    )


def _initial(raw: dict[str, Any]) -> dict[str, np.ndarray]:
    from bpnn.model import make_seeds
    from bpnn.run import build_model

    config = validate(raw)
    return build_model(config, load_data(config), make_seeds(0)[0]).parameters()


def test_initial_weights_from_yaml_npz_and_a_checkpoint(tmp_path: Path) -> None:
    as_yaml = tmp_path / "w.yaml"
    as_yaml.write_text(yaml.safe_dump(WEIGHTS), encoding="utf-8")
    as_npz = tmp_path / "w.npz"
    np.savez(as_npz, **{k: np.asarray(v) for k, v in WEIGHTS.items()})
    for path in (as_yaml, as_npz):
        params = _initial(_weights_config(str(path)))
        for name, value in WEIGHTS.items():
            np.testing.assert_array_equal(params[name], np.asarray(value, dtype=np.float32))
    run_dir, _ = run_training(validate(_weights_config(str(as_yaml))), tmp_path / "run")
    trained = checkpoint.load(run_dir / "checkpoints" / "last.npz").params
    params = _initial(_weights_config(str(run_dir / "checkpoints" / "last.npz")))
    for name, value in trained.items():
        np.testing.assert_array_equal(params[name], value)


def test_initial_weights_shape_mismatch_names_the_tensor_and_both_shapes(tmp_path: Path) -> None:
    wrong = tmp_path / "w.yaml"
    wrong.write_text(yaml.safe_dump({**WEIGHTS, "1.weight": [[1.0, 2.0]]}), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        _initial(_weights_config(str(wrong)))
    assert str(caught.value) == (
        f"model.initial_weights: {wrong}: 1.weight has shape (1, 2), the config's network "
        "needs (3, 1)"
    )


def test_initial_weights_missing_tensor_or_file_is_a_config_error(tmp_path: Path) -> None:
    partial = tmp_path / "w.yaml"
    partial.write_text(yaml.safe_dump({"0.weight": WEIGHTS["0.weight"]}), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"has no 0\.bias"):
        _initial(_weights_config(str(partial)))
    with pytest.raises(ConfigError, match="no such file"):
        _initial(_weights_config(str(tmp_path / "missing.npz")))


def test_initial_weights_path_is_relative_to_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "w.yaml").write_text(yaml.safe_dump(WEIGHTS), encoding="utf-8")
    config_file = tmp_path / "sub" / "c.yaml"
    config_file.write_text(yaml.safe_dump(_weights_config("w.yaml")), encoding="utf-8")
    config = load_config(config_file)
    assert config.model.initial_weights == str(tmp_path / "sub" / "w.yaml")


# --- the shipped configs ------------------------------------------------------------------------


def test_shipped_worked_example_and_textbook_configs_are_valid() -> None:
    worked = load_config(REPO / "configs" / "worked-example.yaml")
    assert worked.model.output.name == "sigmoid"
    assert worked.data.source == "inline"
    textbook = load_config(REPO / "configs" / "textbook-digits.yaml")
    assert textbook.task == "multiclass"
    assert textbook.loss.options["reduction"] == "sum"
    assert textbook.model.output.name == "sigmoid"


@pytest.mark.slow
def test_worked_example_trains_and_its_loss_falls(tmp_path: Path) -> None:
    run_dir, summary = run_training(
        load_config(REPO / "configs" / "worked-example.yaml"), tmp_path / "run"
    )
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert rows[0]["train_loss"] == pytest.approx(0.220277, rel=1e-5)  # bpnn explain's L
    assert summary["train_loss"] < rows[0]["train_loss"] / 10


# --- a binary loss on one row or one class; data.classes ----------------------------------------


def test_binary_cross_entropy_on_one_row_has_the_classes_0_and_1(tmp_path: Path) -> None:
    raw = _inline([1], loss="binary_cross_entropy")
    raw["data"] = {"source": "inline", "X": [[0.5, 1.0]], "y": [1]}
    config = validate(raw)
    data = load_data(config)
    assert list(data.classes) == [0, 1]
    np.testing.assert_array_equal(data.y_train, [1])  # class index 1 is the label 1
    run_dir, summary = run_training(config, tmp_path / "run")
    assert summary["train_samples"] == 1
    model = load_model(run_dir / "checkpoints" / "best.npz")
    assert model.network.sizes[-1] == 1 and list(model.classes) == [0, 1]


def test_binary_labels_all_0_also_have_the_classes_0_and_1() -> None:
    data = load_data(validate(_inline([0, 0, 0, 0], loss="binary_cross_entropy")))
    assert list(data.classes) == [0, 1]
    np.testing.assert_array_equal(data.y_train, [0, 0, 0, 0])


def test_data_classes_declares_the_classes_and_their_order() -> None:
    raw = _inline(["yes"] * 4, loss="binary_cross_entropy")
    raw["data"]["classes"] = ["no", "yes"]
    data = load_data(validate(raw))
    assert list(data.classes) == ["no", "yes"]
    np.testing.assert_array_equal(data.y_train, [1, 1, 1, 1])
    three = _inline(["b", "a", "b", "a"], data={"classes": ["c", "b", "a"]})
    data = load_data(validate(three))  # cross_entropy: three outputs, in the declared order
    assert list(data.classes) == ["c", "b", "a"]
    np.testing.assert_array_equal(data.y_train, [1, 2, 1, 2])


def test_one_class_of_strings_with_a_binary_loss_asks_for_both_classes() -> None:
    from bpnn.errors import DataError

    with pytest.raises(
        DataError, match=r"needs exactly 2 classes.*has 1: yes; name both in data.classes$"
    ):
        load_data(validate(_inline(["yes"] * 4, loss="binary_cross_entropy")))


@pytest.mark.parametrize(
    ("data", "loss", "expected"),
    [
        ({"classes": [0, 1, 2]}, "binary_cross_entropy", "data.classes: 'binary_cross_entropy' "),
        ({"classes": [0, 0]}, "cross_entropy", "data.classes: lists a class twice"),
        ({"classes": [0.5, 1]}, "cross_entropy", "data.classes[0]: must be a valid integer"),
        ({"classes": [0, "a"]}, "cross_entropy", "data.classes: must be a list of whole"),
        ({"classes": []}, "cross_entropy", "data.classes: must be a list of whole"),
        ({"classes": [0, 1]}, "mse", "data.classes: only applies to class labels"),
    ],
)
def test_invalid_data_classes_is_one_line_naming_the_key(
    data: dict[str, Any], loss: str, expected: str
) -> None:
    labels = [0, 1, 0, 1] if loss != "mse" else [0.5, 1.5, 0.5, 1.5]
    assert expected in _one_line_error(_inline(labels, loss=loss, data=data))


def test_a_label_outside_data_classes_is_refused_naming_it() -> None:
    from bpnn.errors import DataError

    with pytest.raises(DataError, match="label 2 is not one of the classes"):
        load_data(validate(_inline([0, 1, 2, 1], data={"classes": [0, 1]}, loss="cross_entropy")))


def test_data_classes_is_an_inline_key() -> None:
    message = _one_line_error({"data": {"source": "iris", "classes": [0, 1, 2]}})
    assert "data.classes: does not apply to source 'iris'" in message


# --- several sigmoid outputs under binary cross-entropy -----------------------------------------

LABELS = [[0, 0], [0, 1], [1, 0], [1, 1]]  # a multi-label table: x0 -> first label, x1 -> second


def test_rows_of_0_1_with_binary_cross_entropy_are_a_multilabel_run(tmp_path: Path) -> None:
    raw = _inline(LABELS, loss="binary_cross_entropy", data={"classes": ["first", "second"]})
    raw["model"] = {"hidden": [4], "activation": "tanh"}
    raw["optimizer"] = {"name": "sgd", "lr": 1.0}
    raw["train"] = {"epochs": 300, "batch_size": 4}
    config = validate(raw)
    assert config.task == "multilabel"
    run_dir, summary = run_training(config, tmp_path / "run")
    assert summary["train_label_accuracy"] == 1.0
    assert "train_accuracy" not in summary
    model = load_model(run_dir / "checkpoints" / "best.npz")
    assert model.task == "multilabel" and model.network.sizes[-1] == 2
    assert not isinstance(model.network.loss, ChainRule)  # the fused a - t
    assert list(model.classes) == ["first", "second"]
    assert checkpoint.load(run_dir / "checkpoints" / "best.npz").task == "multilabel"

    samples = tmp_path / "samples.csv"
    samples.write_text("x0,x1\n1,1\n0,0\n1,0\n", encoding="utf-8")
    table = prediction_table(run_dir / "checkpoints" / "best.npz", samples).splitlines()
    assert table[0] == "labels,p_first,p_second"
    assert [row.split(",")[0] for row in table[1:]] == ["first;second", "", "first"]
    lines = prediction_table(run_dir / "checkpoints" / "best.npz", samples, fmt="jsonl")
    assert json.loads(lines.splitlines()[0])["labels"] == ["first", "second"]

    report = evaluate_checkpoint(run_dir / "checkpoints" / "best.npz")
    assert report["train_label_accuracy"] == 1.0
    assert report["per_label"]["second"] == {
        "precision": 1.0,
        "recall": 1.0,
        "f1": 1.0,
        "support": 2,
    }
    assert report["label_confusion"][0] == [[2, 0], [0, 2]]  # [[TN, FP], [FN, TP]]


def test_label_accuracy_is_the_mean_over_samples_and_labels() -> None:
    from bpnn.evaluation import correct_count

    output = np.array([[0.9, 0.2, 0.7], [0.4, 0.6, 0.1]])
    y = np.array([[1, 0, 0], [0, 0, 0]])  # right: 2 of 3, then 2 of 3
    assert correct_count("multilabel", output, y) / 2 == pytest.approx(4 / 6)


def test_label_accuracy_can_be_monitored_and_accuracy_cannot() -> None:
    raw = _inline(LABELS, loss="binary_cross_entropy", train={"early_stopping": True})
    raw["data"]["val_fraction"] = 0.25
    raw["train"]["early_stopping"] = {"monitor": "val_label_accuracy"}
    assert validate(raw).train.early_stopping.monitor == "val_label_accuracy"
    raw["train"]["early_stopping"] = {"monitor": "val_accuracy"}
    assert "'val_accuracy' is not a metric of this run" in _one_line_error(raw)


def test_multilabel_targets_must_be_0_or_1() -> None:
    from bpnn.errors import DataError

    raw = _inline([[0, 1], [0, 2], [1, 0], [1, 1]], loss="binary_cross_entropy")
    with pytest.raises(DataError, match=r"needs 0/1 values.*has 2 in row 1, column 1"):
        load_data(validate(raw))
    names = _inline(LABELS, loss="binary_cross_entropy", data={"classes": ["a", "b", "c"]})
    assert "data.classes: names 3 labels for the 2 target columns" in _one_line_error(names)


def test_one_hot_binary_cross_entropy_is_a_classification_with_one_sigmoid_per_class(
    tmp_path: Path,
) -> None:
    raw = _inline([0, 1, 2, 1], loss="binary_cross_entropy", data={"one_hot": True})
    config = validate(raw)
    assert config.task == "multiclass"
    run_dir, summary = run_training(config, tmp_path / "run")
    assert "train_accuracy" in summary
    model = load_model(run_dir / "checkpoints" / "best.npz")
    assert model.network.sizes[-1] == 3 and model.task == "multiclass"
    assert not isinstance(model.network.loss, ChainRule)
    assert model.network.loss.output_activation == "sigmoid"
    several = _inline(LABELS, loss="binary_cross_entropy", data={"one_hot": True})
    assert "data.one_hot: one-hot rows are made from one class label" in _one_line_error(several)
