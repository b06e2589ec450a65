"""bench/mnist.py trains every framework on the same set-up, and its hand-fused NumPy loop (the
yardstick for what NumPy can do) does the same math as bpnn's engine. No timing here."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType, SimpleNamespace

import numpy as np
import pytest

from bpnn.nn.activations import ReLU
from bpnn.nn.initializers import he_normal
from bpnn.nn.losses import CrossEntropy
from bpnn.nn.network import Network
from bpnn.nn.optimizers import Adam
from tests.support import REPO

BENCH = REPO / "bench" / "mnist.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_mnist", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_bpnn_trains_the_peers_set_up_whatever_configs_mnist_yaml_says(bench: ModuleType) -> None:
    config = bench.bpnn_config(batch_size=64, epochs=3)
    assert config.model.hidden == list(bench.HIDDEN)
    assert config.model.activation.name == "relu"
    assert config.model.dropout == 0.0 and not config.model.batch_norm
    assert config.loss.name == "cross_entropy" and config.loss.options["label_smoothing"] == 0
    assert config.optimizer.name == "adam" and config.optimizer.lr == bench.LR
    assert config.optimizer.weight_decay == 0.0
    assert config.optimizer.options == {
        "beta1": bench.BETA1,
        "beta2": bench.BETA2,
        "eps": bench.EPS,
        "amsgrad": False,
    }
    assert config.schedule.name == "constant"
    assert config.train.batch_size == 64 and config.train.epochs == 3
    assert config.train.grad_clip is None and config.train.dtype == "float32"
    assert config.data.val_fraction == 0.0


def fake_data(rng: np.random.Generator, n: int = 50, features: int = 12, classes: int = 4):
    X = rng.random((n, features), dtype=np.float32)
    y = rng.integers(0, classes, n)
    return SimpleNamespace(
        X_train=X, y_train=y, X_test=X, y_test=y, n_features=features, classes=list(range(classes))
    )


def bpnn_copy(loop) -> Network:
    """A bpnn network with the loop's sizes and its current weights."""
    sizes = [loop.W[0].shape[0], *(W.shape[1] for W in loop.W)]
    network = Network(
        sizes,
        [ReLU(), ReLU()],
        CrossEntropy(),
        weight_init=he_normal,
        rng=np.random.default_rng(0),
    )
    params = network.parameters()
    for i, (W, b) in enumerate(zip(loop.W, loop.b, strict=True)):
        params[f"{i}.weight"][...] = W
        params[f"{i}.bias"][...] = b
    return network


def test_the_numpy_loop_takes_the_same_steps_as_bpnn(bench: ModuleType) -> None:
    rng = np.random.default_rng(1)
    data = fake_data(rng)
    loop = bench.NumpyLoopRunner(data, batch_size=16)
    network = bpnn_copy(loop)
    adam = Adam(beta1=bench.BETA1, beta2=bench.BETA2, eps=bench.EPS)
    adam.build(network.params, network.weight_slice)
    for start in (0, 16, 32, 48):  # the last batch is partial (2 of 16)
        X, y = data.X_train[start : start + 16], data.y_train[start : start + 16]
        loss, hits = loop.train_step(X, y)
        expected_loss = network.train_step(X, y)
        assert loss == pytest.approx(expected_loss, rel=1e-5)
        assert hits == int(np.count_nonzero(network.last_output.argmax(axis=1) == y))
        adam.update_step(network.grads, network.params, bench.LR)
        for i in range(3):
            np.testing.assert_allclose(
                loop.dW[i], network.gradients()[f"{i}.weight"], rtol=1e-4, atol=1e-7
            )
            np.testing.assert_allclose(
                loop.W[i], network.parameters()[f"{i}.weight"], rtol=1e-5, atol=1e-6
            )
            np.testing.assert_allclose(
                loop.b[i], network.parameters()[f"{i}.bias"], rtol=1e-5, atol=1e-6
            )
    np.testing.assert_allclose(
        loop.predict_proba(data.X_test), network.predict(data.X_test), rtol=1e-5, atol=1e-6
    )
