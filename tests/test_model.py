"""Specification of the public Python API: ``bpnn.load_checkpoint(path) -> Model``.

A ``Model`` takes raw features (as in the data set), answers in the data's own terms
(probabilities, or values in the target's units), names its parameters ``"{i}.weight"`` and
``"{i}.bias"``, and computes the data loss and its gradients without side effects.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn import datasets

import bpnn
from bpnn.config import validate
from bpnn.errors import CheckpointError
from bpnn.run import run_training


def train(folder: Path, raw: dict[str, Any]) -> Path:
    """Train ``raw`` (a config mapping) into ``folder``; return its best checkpoint."""
    folder.mkdir(parents=True)
    run_training(validate(raw), folder)
    return folder / "checkpoints" / "best.npz"


BASE: dict[str, Any] = {
    "seed": 0,
    "optimizer": {"name": "adam", "lr": 0.01},
    "train": {"epochs": 2, "batch_size": 32},
}


@pytest.fixture(scope="module")
def iris_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    raw = {**BASE, "name": "iris", "data": {"source": "iris"}, "model": {"hidden": [8]}}
    return train(tmp_path_factory.mktemp("iris") / "run", raw)


@pytest.fixture(scope="module")
def binary_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    raw = {
        **BASE,
        "name": "cancer",
        "data": {"source": "breast_cancer"},
        "model": {"hidden": [6]},
        "loss": "binary_cross_entropy",
    }
    return train(tmp_path_factory.mktemp("binary") / "run", raw)


@pytest.fixture(scope="module")
def regression_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    raw = {
        **BASE,
        "name": "diabetes",
        "data": {"source": "diabetes"},
        "model": {"hidden": [8]},
        "loss": "mse",
    }
    return train(tmp_path_factory.mktemp("regression") / "run", raw)


@pytest.fixture(scope="module")
def batch_norm_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """float64, tanh (no kinks), batch norm and dropout: every side effect there could be."""
    raw = {
        **BASE,
        "name": "bn",
        "data": {"source": "iris"},
        "model": {
            "hidden": [6, 5],
            "activation": "tanh",
            "init": "xavier_normal",
            "batch_norm": True,
            "dropout": 0.3,
        },
        "train": {**BASE["train"], "dtype": "float64"},
    }
    return train(tmp_path_factory.mktemp("bn") / "run", raw)


def iris_features() -> np.ndarray:
    return datasets.load_iris(return_X_y=True)[0]


# --- loading ----------------------------------------------------------------------------------


def test_load_checkpoint_returns_a_model(iris_checkpoint: Path) -> None:
    model = bpnn.load_checkpoint(iris_checkpoint)
    assert isinstance(model, bpnn.Model)
    assert model.task == "multiclass"
    assert model.n_features == 4
    assert list(model.classes) == [0, 1, 2]
    assert model.epoch in (1, 2)
    assert model.config.model.hidden == [8]
    assert "4 -> 8 -> 3" in repr(model)


def test_load_checkpoint_accepts_a_string_path(iris_checkpoint: Path) -> None:
    assert bpnn.load_checkpoint(str(iris_checkpoint)).n_features == 4


def test_load_checkpoint_of_a_missing_file_is_a_checkpoint_error(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        bpnn.load_checkpoint(tmp_path / "nope.npz")


def test_checkpoint_whose_parameters_do_not_fit_its_config_is_refused(
    iris_checkpoint: Path, tmp_path: Path
) -> None:
    from bpnn import checkpoint

    contents = checkpoint.load(iris_checkpoint)
    contents.params["0.weight"] = contents.params["0.weight"][:, :5]
    broken = tmp_path / "broken.npz"
    checkpoint.save(broken, contents)
    with pytest.raises(CheckpointError, match=r"0\.weight has shape \(4, 5\)") as caught:
        bpnn.load_checkpoint(broken)
    assert str(broken) in str(caught.value)


# --- predict ----------------------------------------------------------------------------------


def test_multiclass_predict_returns_probabilities_summing_to_one(iris_checkpoint: Path) -> None:
    probabilities = bpnn.load_checkpoint(iris_checkpoint).predict(iris_features())
    assert probabilities.shape == (150, 3)
    assert np.all(probabilities >= 0) and np.all(probabilities <= 1)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_binary_predict_returns_two_columns_of_probabilities(binary_checkpoint: Path) -> None:
    X, _ = datasets.load_breast_cancer(return_X_y=True)
    model = bpnn.load_checkpoint(binary_checkpoint)
    assert model.task == "binary"
    probabilities = model.predict(X[:20])
    assert probabilities.shape == (20, 2)
    assert np.all(probabilities >= 0) and np.all(probabilities <= 1)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_binary_predict_labels_agree_with_the_larger_probability(
    binary_checkpoint: Path,
) -> None:
    X, _ = datasets.load_breast_cancer(return_X_y=True)
    model = bpnn.load_checkpoint(binary_checkpoint)
    labels = model.predict_labels(X)
    np.testing.assert_array_equal(labels, model.classes[model.predict(X).argmax(axis=1)])
    assert set(labels) <= {0, 1}


def test_predict_takes_raw_features_and_applies_the_saved_scaling(iris_checkpoint: Path) -> None:
    model = bpnn.load_checkpoint(iris_checkpoint)
    X = iris_features()[:10]
    scaled = (X - model.input_scaling.offset) * model.input_scaling.factor
    expected = model.network.predict(scaled.astype(np.float32))
    np.testing.assert_allclose(model.predict(X), expected, rtol=1e-5, atol=1e-6)


def test_regression_predicts_in_the_targets_units(regression_checkpoint: Path) -> None:
    X, y = datasets.load_diabetes(return_X_y=True)
    model = bpnn.load_checkpoint(regression_checkpoint)
    assert model.task == "regression"
    assert model.classes is None
    predicted = model.predict(X)
    assert predicted.shape == (len(X), 1)
    # targets run 25..346 (mean 152, std 77); a network output of a few units is far from them
    assert abs(predicted.mean() - y.mean()) < y.std()
    assert predicted.min() > 0
    scaled = model.network.predict(model.input_scaling.apply(X, np.float32))
    np.testing.assert_allclose(predicted, model.target_scaling.invert(scaled), rtol=1e-6)


def test_predict_labels_of_a_regression_model_is_refused(regression_checkpoint: Path) -> None:
    X, _ = datasets.load_diabetes(return_X_y=True)
    with pytest.raises(ValueError, match="classification"):
        bpnn.load_checkpoint(regression_checkpoint).predict_labels(X)


def test_predict_refuses_inputs_of_the_wrong_width(iris_checkpoint: Path) -> None:
    with pytest.raises(ValueError, match=r"\(n, 4\)"):
        bpnn.load_checkpoint(iris_checkpoint).predict(np.zeros((3, 5)))


def test_predict_of_a_loaded_model_matches_the_test_metrics(iris_checkpoint: Path) -> None:
    """The model behind best.npz is the one the summary's test metrics were computed from."""
    import json

    from bpnn.data import load_dataset
    from bpnn.evaluation import evaluate

    model = bpnn.load_checkpoint(iris_checkpoint)
    config = model.config
    data = load_dataset(config.data, task=config.task, seed=config.seed)
    summary = json.loads((iris_checkpoint.parent.parent / "summary.json").read_text())
    metrics = evaluate(model, data.X_test, data.y_test, prefix="test_")
    assert metrics["test_loss"] == summary["test_loss"]
    assert metrics["test_accuracy"] == summary["test_accuracy"]


# --- parameters -------------------------------------------------------------------------------


def test_parameters_are_named_by_layer_weight_and_bias(iris_checkpoint: Path) -> None:
    parameters = bpnn.load_checkpoint(iris_checkpoint).parameters()
    assert list(parameters) == ["0.weight", "0.bias", "1.weight", "1.bias"]
    assert parameters["0.weight"].shape == (4, 8)
    assert parameters["0.bias"].shape == (8,)
    assert parameters["1.weight"].shape == (8, 3)
    assert parameters["1.bias"].shape == (3,)


def test_parameters_equal_the_saved_ones(iris_checkpoint: Path) -> None:
    from bpnn import checkpoint

    saved = checkpoint.load(iris_checkpoint).params
    parameters = bpnn.load_checkpoint(iris_checkpoint).parameters()
    assert set(saved) == set(parameters)
    for name, value in parameters.items():
        np.testing.assert_array_equal(value, saved[name], err_msg=name)


def test_parameters_of_a_batch_norm_model_include_scale_and_shift(
    batch_norm_checkpoint: Path,
) -> None:
    """Batch norm's shift is the bias of the dense layer in front of it (STYLE.md, item 5)."""
    names = list(bpnn.load_checkpoint(batch_norm_checkpoint).parameters())
    assert names == [
        "0.weight",
        "0.bn_scale",
        "0.bn_shift",
        "1.weight",
        "1.bn_scale",
        "1.bn_shift",
        "2.weight",
        "2.bias",
    ]


# --- loss_and_gradients -----------------------------------------------------------------------


def test_loss_and_gradients_gives_a_gradient_per_parameter(iris_checkpoint: Path) -> None:
    model = bpnn.load_checkpoint(iris_checkpoint)
    X, y = datasets.load_iris(return_X_y=True)
    loss, gradients = model.loss_and_gradients(X[::5], y[::5])
    assert isinstance(loss, float) and np.isfinite(loss) and loss > 0
    parameters = model.parameters()
    assert list(gradients) == list(parameters)
    for name, gradient in gradients.items():
        assert gradient.shape == parameters[name].shape, name
        assert np.all(np.isfinite(gradient)), name
    assert any(np.any(g != 0) for g in gradients.values())


def test_loss_is_the_data_loss_the_evaluation_reports(iris_checkpoint: Path) -> None:
    model = bpnn.load_checkpoint(iris_checkpoint)
    X, y = datasets.load_iris(return_X_y=True)
    loss, _ = model.loss_and_gradients(X, y)
    probabilities = model.predict(X).astype(np.float64)
    cross_entropy = -np.mean(np.log(probabilities[np.arange(len(y)), y]))
    assert loss == pytest.approx(cross_entropy, rel=1e-5)


def test_regression_loss_takes_targets_in_the_data_units(regression_checkpoint: Path) -> None:
    model = bpnn.load_checkpoint(regression_checkpoint)
    X, y = datasets.load_diabetes(return_X_y=True)
    loss, _ = model.loss_and_gradients(X, y)
    scaled_prediction = model.target_scaling.apply(model.predict(X), np.float64)
    scaled_target = model.target_scaling.apply(y.reshape(-1, 1), np.float64)
    # mse is mean((a - y)^2) / 2 or mean((a - y)^2): either way it is on the scaled targets
    mse = float(np.mean((scaled_prediction - scaled_target) ** 2))
    assert loss == pytest.approx(mse, rel=1e-4) or loss == pytest.approx(mse / 2, rel=1e-4)


def test_loss_and_gradients_is_deterministic_and_free_of_side_effects(
    batch_norm_checkpoint: Path,
) -> None:
    model = bpnn.load_checkpoint(batch_norm_checkpoint)
    X, y = datasets.load_iris(return_X_y=True)
    params_before = {k: v.copy() for k, v in model.parameters().items()}
    buffers_before = {k: v.copy() for k, v in model.network.buffers().items()}
    assert buffers_before, "the batch-norm model should have running statistics"
    predictions_before = model.predict(X)

    loss1, grads1 = model.loss_and_gradients(X[:40], y[:40])
    grads1_copy = {k: v.copy() for k, v in grads1.items()}
    loss2, grads2 = model.loss_and_gradients(X[:40], y[:40])

    assert loss1 == loss2
    for name in grads1:
        np.testing.assert_array_equal(grads1[name], grads2[name], err_msg=name)
        # the first result is a copy: the second call did not write into it
        np.testing.assert_array_equal(grads1[name], grads1_copy[name], err_msg=name)
    for name, value in model.parameters().items():
        np.testing.assert_array_equal(value, params_before[name], err_msg=name)
    for name, value in model.network.buffers().items():
        np.testing.assert_array_equal(value, buffers_before[name], err_msg=name)
    np.testing.assert_array_equal(model.predict(X), predictions_before)


def test_changing_returned_gradients_does_not_change_the_model(iris_checkpoint: Path) -> None:
    model = bpnn.load_checkpoint(iris_checkpoint)
    X, y = datasets.load_iris(return_X_y=True)
    loss, gradients = model.loss_and_gradients(X, y)
    for gradient in gradients.values():
        gradient[...] = 1e6
    again, fresh = model.loss_and_gradients(X, y)
    assert again == loss
    assert all(np.all(g != 1e6) for g in fresh.values())


@pytest.mark.parametrize(
    ("name", "index"),
    [
        ("0.weight", (1, 2)),
        ("1.bn_scale", (2,)),
        ("1.bn_shift", (3,)),
        ("2.weight", (4, 1)),
        ("2.bias", (1,)),
    ],
)
def test_gradient_agrees_with_a_central_finite_difference(
    batch_norm_checkpoint: Path, name: str, index: tuple[int, ...]
) -> None:
    model = bpnn.load_checkpoint(batch_norm_checkpoint)
    assert model.network.dtype == np.float64
    X, y = datasets.load_iris(return_X_y=True)
    X, y = X[::6], y[::6]
    _, gradients = model.loss_and_gradients(X, y)
    parameter = model.parameters()[name]
    original = parameter[index]
    h = 1e-6
    parameter[index] = original + h
    plus, _ = model.loss_and_gradients(X, y)
    parameter[index] = original - h
    minus, _ = model.loss_and_gradients(X, y)
    parameter[index] = original
    numerical = (plus - minus) / (2 * h)
    assert gradients[name][index] == pytest.approx(numerical, rel=1e-5, abs=1e-9)
    assert abs(numerical) > 1e-6, "pick an entry whose gradient is not zero"
