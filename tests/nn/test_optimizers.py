"""Specification of the optimizers in bpnn.nn.optimizers.

Three kinds of evidence: steps worked out by hand in the test (always run), PyTorch as an oracle
over long gradient sequences (skipped without torch), and the contract around them (state round
trips, dtypes, validation, no allocation in the hot loop).
"""

from __future__ import annotations

import math
import tracemalloc
from collections.abc import Callable
from types import ModuleType

import numpy as np
import pytest
from helpers import through_npz

from bpnn.nn.optimizers import (
    OPTIMIZERS,
    SGD,
    Adagrad,
    Adam,
    AdamW,
    Momentum,
    Nesterov,
    Optimizer,
    RMSprop,
    make_optimizer,
)

# Option sets that switch on every branch and every state array of every rule.
CONFIGS: list[tuple[str, dict[str, float | bool]]] = [
    ("sgd", {}),
    ("momentum", {}),
    ("momentum", {"momentum": 0.8, "dampening": 0.3}),
    ("nesterov", {}),
    ("nesterov", {"momentum": 0.5}),
    ("rmsprop", {}),
    ("rmsprop", {"centered": True}),
    ("rmsprop", {"momentum": 0.9}),
    ("rmsprop", {"rho": 0.9, "eps": 1e-6, "momentum": 0.5, "centered": True}),
    ("adagrad", {}),
    ("adagrad", {"eps": 1e-6, "initial_accumulator_value": 0.1}),
    ("adam", {}),
    ("adam", {"amsgrad": True}),
    ("adam", {"beta1": 0.8, "beta2": 0.99, "eps": 1e-6}),
    ("adamw", {}),
    ("adamw", {"weight_decay": 0.1, "amsgrad": True}),
]
CONFIG_IDS = [
    f"{name}-{'-'.join(f'{k}={v}' for k, v in opts.items()) or 'defaults'}"
    for name, opts in CONFIGS
]


def gradient_sequence(steps: int, size: int, seed: int = 0) -> list[np.ndarray]:
    """Random float64 gradients whose scale changes over time (as in real training)."""
    rng = np.random.default_rng(seed)
    scales = np.geomspace(2.0, 0.05, steps)
    return [rng.normal(0.0, scale, size) for scale in scales]


def learning_rates(steps: int) -> list[float]:
    """A different learning rate for every step, so no rule can cache it."""
    return list(np.linspace(0.05, 0.005, steps))


def run(
    optimizer: Optimizer,
    w0: np.ndarray,
    gradients: list[np.ndarray],
    lrs: list[float],
    decay_slice: slice = slice(None),
) -> list[np.ndarray]:
    """The parameters after each step, starting from a fresh ``build``."""
    w = w0.copy()
    optimizer.build(w, decay_slice)
    trajectory = []
    for g, lr in zip(gradients, lrs, strict=True):
        optimizer.update_step(g, w, lr)
        trajectory.append(w.copy())
    return trajectory


# --- worked by hand ------------------------------------------------------------------------------


def test_sgd_steps_worked_by_hand() -> None:
    w = np.array([1.0, -2.0])
    opt = SGD()
    opt.build(w)
    opt.update_step(np.array([0.5, -1.0]), w, 0.1)  # w = [1 - 0.05, -2 + 0.1]
    np.testing.assert_allclose(w, [0.95, -1.9])
    opt.update_step(np.array([2.0, 4.0]), w, 0.5)  # w = [0.95 - 1, -1.9 - 2]
    np.testing.assert_allclose(w, [-0.05, -3.9])
    assert opt.iterations == 2


def test_momentum_first_step_is_not_dampened_as_in_torch() -> None:
    # momentum 0.5, dampening 0.5, lr 0.1, one parameter at 1.0
    w = np.array([1.0])
    opt = Momentum(momentum=0.5, dampening=0.5)
    opt.build(w)
    opt.update_step(np.array([1.0]), w, 0.1)  # b = g = 1;  w = 1 - 0.1 * 1
    np.testing.assert_allclose(opt.state["velocity"], [1.0])
    np.testing.assert_allclose(w, [0.9])
    opt.update_step(np.array([2.0]), w, 0.1)  # b = 0.5 * 1 + 0.5 * 2 = 1.5;  w = 0.9 - 0.15
    np.testing.assert_allclose(opt.state["velocity"], [1.5])
    np.testing.assert_allclose(w, [0.75])
    opt.update_step(np.array([-1.0]), w, 0.2)  # b = 0.75 - 0.5 = 0.25;  w = 0.75 - 0.05
    np.testing.assert_allclose(w, [0.70])


def test_nesterov_steps_worked_by_hand() -> None:
    w = np.array([1.0])
    opt = Nesterov(momentum=0.5)
    opt.build(w)
    opt.update_step(np.array([1.0]), w, 0.1)  # b = 1;  w = 1 - 0.1 * (1 + 0.5 * 1) = 0.85
    np.testing.assert_allclose(w, [0.85])
    opt.update_step(np.array([2.0]), w, 0.1)  # b = 0.5 + 2 = 2.5;  w = 0.85 - 0.1 * (2 + 1.25)
    np.testing.assert_allclose(w, [0.525])


def test_rmsprop_steps_from_a_set_state_worked_by_hand() -> None:
    rho, eps = 0.9, 1e-3
    w = np.array([1.0, -1.0])
    opt = RMSprop(rho=rho, eps=eps)
    opt.build(w)
    opt.load_state_dict({"square_avg": np.array([0.5, 2.0]), "iterations": np.array(7)})
    gradients, lrs = [[0.3, -1.2], [-0.6, 0.1], [1.0, 2.0]], [0.1, 0.05, 0.01]
    v, expected = [0.5, 2.0], [1.0, -1.0]
    for g, lr in zip(gradients, lrs, strict=True):
        opt.update_step(np.array(g), w, lr)
        for i in range(2):
            v[i] = rho * v[i] + (1 - rho) * g[i] ** 2
            expected[i] -= lr * g[i] / (math.sqrt(v[i]) + eps)
        np.testing.assert_allclose(w, expected, rtol=1e-12)
    assert opt.iterations == 10


def test_rmsprop_centered_with_momentum_worked_by_hand() -> None:
    rho, eps, mu = 0.8, 1e-2, 0.5
    w = np.array([0.5, 2.0])
    opt = RMSprop(rho=rho, eps=eps, momentum=mu, centered=True)
    opt.build(w)
    v, a, b, expected = [0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [0.5, 2.0]
    for g, lr in zip([[1.0, -2.0], [0.5, 0.5], [-1.0, 3.0]], [0.1, 0.1, 0.2], strict=True):
        opt.update_step(np.array(g), w, lr)
        for i in range(2):
            v[i] = rho * v[i] + (1 - rho) * g[i] ** 2
            a[i] = rho * a[i] + (1 - rho) * g[i]
            b[i] = mu * b[i] + g[i] / (math.sqrt(v[i] - a[i] ** 2) + eps)
            expected[i] -= lr * b[i]
        np.testing.assert_allclose(w, expected, rtol=1e-12)


def test_adagrad_steps_worked_by_hand() -> None:
    w = np.array([1.0])
    opt = Adagrad(initial_accumulator_value=1.0)
    opt.build(w)
    np.testing.assert_allclose(opt.state["sum_squares"], [1.0])
    opt.update_step(np.array([math.sqrt(3.0)]), w, 0.2)  # s = 1 + 3 = 4;  w = 1 - 0.2 * sqrt(3)/2
    np.testing.assert_allclose(w, [1 - 0.1 * math.sqrt(3.0)])
    w2 = w[0]
    opt.update_step(np.array([math.sqrt(5.0)]), w, 0.3)  # s = 9;  w -= 0.3 * sqrt(5) / 3
    np.testing.assert_allclose(w, [w2 - 0.1 * math.sqrt(5.0)])


def test_first_adam_step_has_size_lr_whatever_the_gradient_scale() -> None:
    # m_hat = g and v_hat = g^2 after one step, so the step is lr * g / (|g| + eps).
    w = np.array([0.0, 0.0, 0.0])
    opt = Adam()
    opt.build(w)
    opt.update_step(np.array([1e-3, -5.0, 300.0]), w, 0.1)
    np.testing.assert_allclose(w, [-0.1, 0.1, -0.1], rtol=1e-4)


def test_adam_steps_from_a_set_state_worked_by_hand() -> None:
    beta1, beta2, eps = 0.5, 0.75, 0.1
    w = np.array([1.0, -2.0])
    opt = Adam(beta1=beta1, beta2=beta2, eps=eps)
    opt.build(w)
    m, v = [0.2, -0.4], [0.04, 0.5]
    opt.load_state_dict({"m": np.array(m), "v": np.array(v), "iterations": np.array(2)})
    expected = [1.0, -2.0]
    for t, (g, lr) in enumerate(zip([[0.5, -1.0], [1.5, 0.25]], [0.1, 0.2], strict=True), 3):
        opt.update_step(np.array(g), w, lr)
        for i in range(2):
            m[i] = beta1 * m[i] + (1 - beta1) * g[i]
            v[i] = beta2 * v[i] + (1 - beta2) * g[i] ** 2
            m_hat = m[i] / (1 - beta1**t)
            v_hat = v[i] / (1 - beta2**t)
            expected[i] -= lr * m_hat / (math.sqrt(v_hat) + eps)
        np.testing.assert_allclose(w, expected, rtol=1e-12)
    assert opt.iterations == 4


def test_adam_amsgrad_divides_by_the_largest_second_moment_seen() -> None:
    beta1, beta2, eps = 0.9, 0.5, 1e-8
    w = np.array([1.0])
    opt = Adam(beta1=beta1, beta2=beta2, eps=eps, amsgrad=True)
    opt.build(w)
    m = v = v_max = 0.0
    expected = 1.0
    # a large gradient, then small ones: v falls but v_max keeps the large value
    for t, g in enumerate([4.0, 0.1, 0.1], 1):
        opt.update_step(np.array([g]), w, 0.1)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g**2
        v_max = max(v_max, v)
        expected -= 0.1 * (m / (1 - beta1**t)) / (math.sqrt(v_max / (1 - beta2**t)) + eps)
        np.testing.assert_allclose(w, [expected], rtol=1e-12)
    assert opt.state["v_max"][0] == pytest.approx((1 - beta2) * 16.0)
    assert opt.state["v"][0] < opt.state["v_max"][0]


def test_adamw_decays_only_the_decay_slice_before_the_adam_step() -> None:
    wd, lr = 0.5, 0.1
    w = np.array([1.0, 2.0, 3.0])
    opt = AdamW(weight_decay=wd)
    opt.build(w, decay_slice=slice(0, 2))
    g = np.array([0.0, 1.0, 1.0])
    opt.update_step(g, w, lr)
    # the first Adam step moves by lr * sign(g) (see above); decay multiplies by 1 - lr * wd
    adam_step = lr * 1.0 / (1.0 + 1e-8)
    np.testing.assert_allclose(
        w, [1.0 * (1 - lr * wd), 2.0 * (1 - lr * wd) - adam_step, 3.0 - adam_step]
    )


def test_adamw_without_weight_decay_is_adam() -> None:
    gradients, lrs = gradient_sequence(10, 5), learning_rates(10)
    w0 = np.linspace(-1, 1, 5)
    adamw = run(AdamW(weight_decay=0.0), w0, gradients, lrs)
    adam = run(Adam(), w0, gradients, lrs)
    np.testing.assert_array_equal(adamw[-1], adam[-1])


# --- PyTorch as the oracle -----------------------------------------------------------------------


def torch_factory(torch, name: str, options: dict[str, float | bool]) -> Callable:
    """The ``torch.optim`` optimizer equivalent to ``make_optimizer(name, **options)``."""
    o = dict(options)
    optim = torch.optim
    if name == "sgd":
        return lambda params: optim.SGD(params, lr=0.1)
    if name == "momentum":
        return lambda params: optim.SGD(
            params, lr=0.1, momentum=o.get("momentum", 0.9), dampening=o.get("dampening", 0.0)
        )
    if name == "nesterov":
        return lambda params: optim.SGD(
            params, lr=0.1, momentum=o.get("momentum", 0.9), nesterov=True
        )
    if name == "rmsprop":
        return lambda params: optim.RMSprop(
            params,
            lr=0.1,
            alpha=o.get("rho", 0.99),
            eps=o.get("eps", 1e-8),
            momentum=o.get("momentum", 0.0),
            centered=o.get("centered", False),
        )
    if name == "adagrad":
        return lambda params: optim.Adagrad(
            params,
            lr=0.1,
            eps=o.get("eps", 1e-10),
            initial_accumulator_value=o.get("initial_accumulator_value", 0.0),
        )
    betas = (o.get("beta1", 0.9), o.get("beta2", 0.999))
    if name == "adam":
        return lambda params: optim.Adam(
            params, lr=0.1, betas=betas, eps=o.get("eps", 1e-8), amsgrad=o.get("amsgrad", False)
        )
    assert name == "adamw"
    return lambda params: optim.AdamW(
        params,
        lr=0.1,
        betas=betas,
        eps=o.get("eps", 1e-8),
        amsgrad=o.get("amsgrad", False),
        weight_decay=o.get("weight_decay", 0.01),
    )


def run_torch(
    torch, optimizer_for: Callable, w0: np.ndarray, gradients: list[np.ndarray], lrs: list[float]
) -> list[np.ndarray]:
    """The same run in PyTorch (float64), setting the learning rate before each step."""
    p = torch.tensor(w0, dtype=torch.float64, requires_grad=True)
    opt = optimizer_for([p])
    trajectory = []
    for g, lr in zip(gradients, lrs, strict=True):
        for group in opt.param_groups:
            group["lr"] = lr
        p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        trajectory.append(p.detach().numpy().copy())
    return trajectory


@pytest.mark.parametrize(("name", "options"), CONFIGS, ids=CONFIG_IDS)
def test_optimizer_matches_torch_on_fixed_gradients(
    name: str, options: dict, torch: ModuleType
) -> None:
    steps, size = 25, 9
    gradients, lrs = gradient_sequence(steps, size, seed=1), learning_rates(steps)
    w0 = np.random.default_rng(2).normal(size=size)
    ours = run(make_optimizer(name, **options), w0, gradients, lrs)
    theirs = run_torch(torch, torch_factory(torch, name, options), w0, gradients, lrs)
    for step, (a, b) in enumerate(zip(ours, theirs, strict=True), 1):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9, err_msg=f"step {step}")


@pytest.mark.parametrize("amsgrad", [False, True])
def test_adamw_decay_slice_matches_torch_with_a_no_decay_param_group(
    amsgrad: bool, torch: ModuleType
) -> None:
    steps, n_weights, n_biases = 25, 6, 3
    gradients, lrs = gradient_sequence(steps, n_weights + n_biases, seed=3), learning_rates(steps)
    w0 = np.random.default_rng(4).normal(size=n_weights + n_biases)
    ours = run(AdamW(weight_decay=0.2, amsgrad=amsgrad), w0, gradients, lrs, slice(0, n_weights))

    weights = torch.tensor(w0[:n_weights], dtype=torch.float64, requires_grad=True)
    biases = torch.tensor(w0[n_weights:], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.AdamW(
        [{"params": [weights], "weight_decay": 0.2}, {"params": [biases], "weight_decay": 0.0}],
        lr=0.1,
        amsgrad=amsgrad,
    )
    for step, (g, lr) in enumerate(zip(gradients, lrs, strict=True)):
        for group in opt.param_groups:
            group["lr"] = lr
        weights.grad = torch.tensor(g[:n_weights])
        biases.grad = torch.tensor(g[n_weights:])
        opt.step()
        theirs = np.concatenate([weights.detach().numpy(), biases.detach().numpy()])
        np.testing.assert_allclose(ours[step], theirs, rtol=1e-6, atol=1e-9, err_msg=f"step {step}")


# --- state, dtypes, buffers ----------------------------------------------------------------------


@pytest.mark.parametrize(("name", "options"), CONFIGS, ids=CONFIG_IDS)
def test_resuming_from_state_dict_is_bit_identical_to_an_uninterrupted_run(
    name: str, options: dict
) -> None:
    gradients, lrs = gradient_sequence(10, 7, seed=5), learning_rates(10)
    w0 = np.random.default_rng(6).normal(size=7)
    decay = slice(0, 4)
    uninterrupted = run(make_optimizer(name, **options), w0, gradients, lrs, decay)[-1]

    first = make_optimizer(name, **options)
    w = run(first, w0, gradients[:4], lrs[:4], decay)[-1]
    saved = through_npz(first.state_dict())
    assert saved["iterations"].shape == ()
    assert saved["iterations"].dtype == np.int64

    resumed = make_optimizer(name, **options)
    resumed.build(w, decay)
    resumed.load_state_dict(saved)
    for g, lr in zip(gradients[4:], lrs[4:], strict=True):
        resumed.update_step(g, w, lr)
    np.testing.assert_array_equal(w, uninterrupted)
    assert resumed.iterations == 10


def test_state_dict_is_a_snapshot_not_a_view() -> None:
    w = np.ones(3)
    opt = Adam()
    opt.build(w)
    opt.update_step(np.ones(3), w, 0.1)
    saved = opt.state_dict()
    m_then = saved["m"].copy()
    opt.update_step(np.ones(3), w, 0.1)
    np.testing.assert_array_equal(saved["m"], m_then)
    assert int(saved["iterations"]) == 1


def test_state_dict_holds_exactly_the_arrays_the_options_need() -> None:
    def keys(opt: Optimizer) -> set[str]:
        opt.build(np.zeros(2))
        return set(opt.state_dict())

    assert keys(SGD()) == {"iterations"}
    assert keys(Momentum()) == {"velocity", "iterations"}
    assert keys(RMSprop()) == {"square_avg", "iterations"}
    assert keys(RMSprop(centered=True, momentum=0.9)) == {
        "square_avg",
        "grad_avg",
        "velocity",
        "iterations",
    }
    assert keys(Adagrad()) == {"sum_squares", "iterations"}
    assert keys(Adam()) == {"m", "v", "iterations"}
    assert keys(AdamW(amsgrad=True)) == {"m", "v", "v_max", "iterations"}


def test_load_state_dict_rejects_missing_and_unexpected_keys() -> None:
    adam = Adam()
    adam.build(np.zeros(3))
    state = adam.state_dict()
    amsgrad = Adam(amsgrad=True)
    amsgrad.build(np.zeros(3))
    with pytest.raises(ValueError, match=r"missing keys \['v_max'\]"):
        amsgrad.load_state_dict(state)
    with pytest.raises(ValueError, match=r"unexpected keys \['velocity'\]"):
        adam.load_state_dict({**state, "velocity": np.zeros(3)})


def test_load_state_dict_rejects_wrong_shapes_and_kinds_and_changes_nothing() -> None:
    opt = Adam()
    w = np.zeros(3)
    opt.build(w)
    opt.update_step(np.ones(3), w, 0.1)
    before = opt.state_dict()
    good = {"m": np.ones(3), "v": np.ones(3), "iterations": np.array(5)}
    with pytest.raises(ValueError, match=r"'v' has shape \(4,\), expected \(3,\)"):
        opt.load_state_dict({**good, "v": np.ones(4)})
    with pytest.raises(ValueError, match="'iterations' must be a 0-d integer array"):
        opt.load_state_dict({**good, "iterations": np.array([5])})
    with pytest.raises(ValueError, match="'iterations' must be a 0-d integer array"):
        opt.load_state_dict({**good, "iterations": np.array(5.0)})
    with pytest.raises(ValueError, match="'m' must be floating point"):
        opt.load_state_dict({**good, "m": np.ones(3, dtype=np.int64)})
    after = opt.state_dict()
    for key in before:
        np.testing.assert_array_equal(after[key], before[key])


def test_using_an_optimizer_before_build_is_an_error() -> None:
    opt = Adam()
    with pytest.raises(RuntimeError, match="build"):
        opt.update_step(np.ones(2), np.ones(2), 0.1)
    with pytest.raises(RuntimeError, match="build"):
        opt.load_state_dict({})


def test_build_resets_state_and_iterations() -> None:
    w = np.ones(4)
    opt = RMSprop(centered=True, momentum=0.9)
    opt.build(w)
    for _ in range(3):
        opt.update_step(np.full(4, 0.5), w, 0.1)
    opt.build(w)
    assert opt.iterations == 0
    for array in opt.state.values():
        np.testing.assert_array_equal(array, 0.0)


def test_build_rejects_an_integer_buffer() -> None:
    with pytest.raises(ValueError, match="floating point"):
        SGD().build(np.zeros(3, dtype=np.int64))


@pytest.mark.parametrize(("name", "options"), CONFIGS, ids=CONFIG_IDS)
def test_float32_buffers_stay_float32(name: str, options: dict) -> None:
    gradients = [g.astype(np.float32) for g in gradient_sequence(5, 6, seed=7)]
    lrs = [np.float64(lr) for lr in learning_rates(5)]  # a float64 rate must not upcast
    w0 = np.random.default_rng(8).normal(size=6)
    opt = make_optimizer(name, **options)
    w32 = run(opt, w0.astype(np.float32), gradients, lrs, slice(0, 3))[-1]
    assert w32.dtype == np.float32
    for key, array in opt.state_dict().items():
        if key != "iterations":
            assert array.dtype == np.float32, key
    w64 = run(
        make_optimizer(name, **options),
        w0,
        [g.astype(np.float64) for g in gradients],
        lrs,
        slice(0, 3),
    )[-1]
    np.testing.assert_allclose(w32, w64, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(("name", "options"), CONFIGS, ids=CONFIG_IDS)
def test_update_step_leaves_the_gradient_untouched(name: str, options: dict) -> None:
    g = np.linspace(-1.0, 1.0, 5)
    original = g.copy()
    w = np.ones(5)
    opt = make_optimizer(name, **options)
    opt.build(w)
    for _ in range(2):
        opt.update_step(g, w, 0.1)
    np.testing.assert_array_equal(g, original)


@pytest.mark.parametrize(("name", "options"), CONFIGS, ids=CONFIG_IDS)
def test_update_step_allocates_no_buffer_sized_arrays(name: str, options: dict) -> None:
    size = 100_000  # 800 kB per float64 buffer
    w, g = np.ones(size), np.full(size, 0.01)
    opt = make_optimizer(name, **options)
    opt.build(w, slice(0, size // 2))
    opt.update_step(g, w, 0.01)
    tracemalloc.start()
    try:
        for _ in range(3):
            opt.update_step(g, w, 0.01)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < w.nbytes // 10


# --- registry, options, validation --------------------------------------------------------------


def test_registry_finds_every_optimizer_by_its_name() -> None:
    assert list(OPTIMIZERS) == [
        "sgd",
        "momentum",
        "nesterov",
        "rmsprop",
        "adagrad",
        "adam",
        "adamw",
    ]
    for name, cls in OPTIMIZERS.items():
        assert cls.name == name
        assert isinstance(make_optimizer(name), cls)


def test_options_are_resolved_with_their_defaults() -> None:
    assert make_optimizer("sgd").options() == {}
    assert make_optimizer("momentum").options() == {"momentum": 0.9, "dampening": 0.0}
    assert make_optimizer("nesterov").options() == {"momentum": 0.9}
    assert make_optimizer("rmsprop").options() == {
        "rho": 0.99,
        "eps": 1e-8,
        "momentum": 0.0,
        "centered": False,
    }
    assert make_optimizer("adagrad").options() == {"eps": 1e-10, "initial_accumulator_value": 0.0}
    assert make_optimizer("adam").options() == {
        "beta1": 0.9,
        "beta2": 0.999,
        "eps": 1e-8,
        "amsgrad": False,
    }
    assert make_optimizer("adamw", beta1=0.8).options() == {
        "beta1": 0.8,
        "beta2": 0.999,
        "eps": 1e-8,
        "amsgrad": False,
        "weight_decay": 0.01,
    }


@pytest.mark.parametrize(("name", "options"), CONFIGS, ids=CONFIG_IDS)
def test_options_rebuild_the_same_optimizer(name: str, options: dict) -> None:
    opt = make_optimizer(name, **options)
    assert make_optimizer(name, **opt.options()).options() == opt.options()


def test_unknown_optimizer_lists_the_choices() -> None:
    with pytest.raises(ValueError, match="unknown optimizer 'adamax'; choose from: sgd, momentum"):
        make_optimizer("adamax")


@pytest.mark.parametrize(
    ("name", "option", "message"),
    [
        ("sgd", "momentum", "unknown option 'momentum' for optimizer 'sgd'; choose from: (none)"),
        ("adam", "weight_decay", "choose from: beta1, beta2, eps, amsgrad"),
        ("adam", "lr", "unknown option 'lr'"),
        ("nesterov", "dampening", "unknown option 'dampening' for optimizer 'nesterov'"),
    ],
)
def test_unknown_option_is_named_with_the_choices(name: str, option: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make_optimizer(name, **{option: 0.1})


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("adam", {"beta1": 1.5}, r"beta1 must be in \[0, 1\), got 1.5"),
        ("adam", {"beta2": 1.0}, r"beta2 must be in \[0, 1\), got 1.0"),
        ("adam", {"beta1": float("nan")}, "beta1 must be a number"),
        ("adam", {"eps": 0.0}, r"eps must be in \(0, inf\), got 0.0"),
        ("adam", {"eps": True}, "eps must be a number"),
        ("adam", {"amsgrad": 1}, "amsgrad must be true or false, got 1"),
        ("adamw", {"weight_decay": -0.01}, "weight_decay must be in"),
        ("adamw", {"weight_decay": float("inf")}, "weight_decay must be in"),
        ("momentum", {"momentum": 1.0}, "momentum must be in"),
        ("momentum", {"momentum": -0.1}, "momentum must be in"),
        ("momentum", {"dampening": 1.5}, "dampening must be in"),
        ("nesterov", {"momentum": 0.0}, r"momentum must be in \(0, 1\)"),
        ("rmsprop", {"rho": 1.0}, "rho must be in"),
        ("rmsprop", {"eps": -1e-8}, "eps must be in"),
        ("rmsprop", {"momentum": "0.9"}, "momentum must be a number"),
        ("rmsprop", {"centered": "yes"}, "centered must be true or false"),
        ("adagrad", {"eps": 0.0}, "eps must be in"),
        ("adagrad", {"initial_accumulator_value": -1.0}, "initial_accumulator_value must be in"),
    ],
)
def test_impossible_options_raise_naming_the_option(name: str, options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_optimizer(name, **options)


def test_numpy_scalars_are_accepted_as_options() -> None:
    opt = make_optimizer("adam", beta1=np.float32(0.5), amsgrad=np.bool_(True))
    assert opt.options()["beta1"] == 0.5
    assert type(opt.options()["beta1"]) is float
    assert opt.options()["amsgrad"] is True
