"""The fused kernels take the same steps as the NumPy reference, bit for bit, and step aside
where they cannot run or do not pay."""

from __future__ import annotations

import sys
from collections.abc import Callable

import numpy as np
import pytest

from bpnn.nn import kernels
from bpnn.nn.activations import ReLU
from bpnn.nn.initializers import he_normal
from bpnn.nn.losses import CrossEntropy
from bpnn.nn.network import Network
from bpnn.nn.optimizers import Adam, AdamW, make_optimizer


@pytest.fixture
def small_buffers_fused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let the kernels take buffers of any size, so the tests can stay small."""
    monkeypatch.setattr(kernels, "MIN_FUSED_SIZE", 0)
    monkeypatch.delenv("BPNN_FUSED", raising=False)


def run_steps(
    optimizer_name: str,
    dtype: type,
    fused: bool,
    monkeypatch: pytest.MonkeyPatch,
    steps: int = 60,
    **options: float,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Parameters and optimizer state after ``steps`` updates with varied gradients and rates."""
    monkeypatch.setenv("BPNN_FUSED", "1" if fused else "0")
    rng = np.random.default_rng(7)
    w = rng.standard_normal(1001).astype(dtype)
    optimizer = make_optimizer(optimizer_name, **options)
    optimizer.build(w, slice(0, 800))
    for t in range(steps):
        g = (rng.standard_normal(w.size) * 10.0 ** rng.uniform(-7, 2)).astype(dtype)
        g[::5] = 0  # units that get no gradient (dead ReLUs, blank pixels)
        optimizer.update_step(g, w, 1e-3 * (1 + t % 4))
    return w, optimizer.state_dict()


@pytest.mark.usefixtures("small_buffers_fused")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("adam", {}),
        ("adam", {"beta1": 0.5, "beta2": 0.9, "eps": 1e-3}),
        ("adamw", {"weight_decay": 0.1}),
    ],
)
def test_the_fused_adam_equals_the_numpy_reference_bit_for_bit(
    name: str, options: dict[str, float], dtype: type, monkeypatch: pytest.MonkeyPatch
) -> None:
    fused_w, fused_state = run_steps(name, dtype, True, monkeypatch, **options)
    reference_w, reference_state = run_steps(name, dtype, False, monkeypatch, **options)
    assert fused_w.dtype == dtype
    np.testing.assert_array_equal(fused_w, reference_w)
    assert fused_state.keys() == reference_state.keys()
    for key in fused_state:
        np.testing.assert_array_equal(fused_state[key], reference_state[key], err_msg=key)


@pytest.mark.usefixtures("small_buffers_fused")
def test_the_fused_path_really_runs_where_it_can() -> None:
    w = np.zeros(10, np.float32)
    assert kernels.adam_kernel(w, w.copy(), w.copy(), w.copy()) is not None


def test_small_buffers_stay_with_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BPNN_FUSED", raising=False)
    small = np.zeros(kernels.MIN_FUSED_SIZE - 1, np.float32)
    big = np.zeros(kernels.MIN_FUSED_SIZE, np.float32)
    assert kernels.adam_kernel(small, small, small, small) is None
    assert kernels.adam_kernel(big, big, big, big) is not None


@pytest.mark.usefixtures("small_buffers_fused")
@pytest.mark.parametrize(
    "odd_one",
    [
        np.zeros(20, np.float32)[::2],  # not contiguous
        np.zeros((2, 5), np.float32),  # not 1-D
        np.zeros(10, np.float64),  # another dtype than the parameters
    ],
)
def test_buffers_the_kernel_cannot_take_stay_with_numpy(odd_one: np.ndarray) -> None:
    w = np.zeros(10, np.float32)
    assert kernels.adam_kernel(w, odd_one, w.copy(), w.copy()) is None


@pytest.mark.usefixtures("small_buffers_fused")
def test_integer_and_half_buffers_stay_with_numpy() -> None:
    for dtype in (np.int64, np.float16):
        w = np.zeros(10, dtype)
        assert kernels.adam_kernel(w, w, w, w) is None


@pytest.mark.usefixtures("small_buffers_fused")
def test_bpnn_fused_0_turns_the_kernels_off(monkeypatch: pytest.MonkeyPatch) -> None:
    w = np.zeros(10, np.float32)
    monkeypatch.setenv("BPNN_FUSED", "0")
    assert kernels.adam_kernel(w, w, w, w) is None


@pytest.mark.usefixtures("small_buffers_fused")
@pytest.mark.parametrize("problem", ["missing", "broken", "disabled", "failing"])
def test_without_a_working_numba_adam_runs_the_reference(
    problem: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import numba

    if problem == "missing":
        monkeypatch.setitem(sys.modules, "numba", None)  # import numba raises ImportError
    elif problem == "broken":  # llvmlite's library does not load: import numba raises OSError
        monkeypatch.delitem(sys.modules, "numba")
        monkeypatch.setattr("builtins.__import__", refusing_numba(OSError("libllvmlite.so")))
    elif problem == "disabled":
        monkeypatch.setattr(numba.config, "DISABLE_JIT", True)
    else:

        def failing_njit(**options: object) -> object:
            raise RuntimeError("cannot compile")

        monkeypatch.setattr(numba, "njit", failing_njit)
    kernels._fused_adam.cache_clear()
    try:
        w = np.ones(10, np.float32)
        assert kernels.adam_kernel(w, w.copy(), w.copy(), w.copy()) is None
        adam = Adam()
        adam.build(w)
        adam.update_step(np.full(10, 0.5, np.float32), w, 0.1)
        np.testing.assert_allclose(w, 0.9, rtol=1e-6)  # the first Adam step is lr * sign(g)
    finally:
        monkeypatch.undo()
        kernels._fused_adam.cache_clear()


def refusing_numba(error: Exception) -> Callable[..., object]:
    """An ``__import__`` that raises ``error`` for numba and imports everything else."""
    import builtins

    real_import = builtins.__import__

    def importer(name: str, *args: object, **kwargs: object) -> object:
        if name == "numba" or name.startswith("numba."):
            raise error
        return real_import(name, *args, **kwargs)

    return importer


def test_training_a_big_network_gives_the_same_bits_with_and_without_the_kernel(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A network above MIN_FUSED_SIZE, as training uses it: forward, backward, AdamW."""

    def train(fused: bool) -> np.ndarray:
        monkeypatch.setenv("BPNN_FUSED", "1" if fused else "0")
        rng = np.random.default_rng(3)
        network = Network([300, 256, 10], [ReLU()], CrossEntropy(), weight_init=he_normal, rng=rng)
        assert network.params.size >= kernels.MIN_FUSED_SIZE
        optimizer = AdamW(weight_decay=0.01)
        optimizer.build(network.params, network.weight_slice)
        X = rng.random((64, 300), dtype=np.float32)
        y = rng.integers(0, 10, 64)
        for start in (0, 32, 0, 32, 0):
            network.train_step(X[start : start + 32], y[start : start + 32])
            optimizer.update_step(network.grads, network.params, 1e-3)
        return network.params.copy()

    fused = train(True)
    assert kernels.adam_kernel(fused, fused, fused, fused) is not None
    np.testing.assert_array_equal(fused, train(False))
