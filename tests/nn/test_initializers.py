"""Specification of the weight initializers in bpnn.nn.initializers.

Each initializer is ``(rng, shape, fan_in, fan_out, **options) -> float64 array``. Evidence: the
documented distribution recovered from a large draw (mean, standard deviation, support and the
share within one standard deviation, which tells a normal from a uniform of the same spread),
determinism under a seed, and that no draw touches NumPy's global random state.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from bpnn.nn.initializers import INITIALIZERS, normal, uniform

FAN_IN, FAN_OUT = 250, 400  # a 100 000-entry draw: std estimates good to ~0.5 %

# name -> (distribution, its scale: std for "normal", limit for "uniform") from the docstrings
EXPECTED: dict[str, tuple[str, float]] = {
    "he_normal": ("normal", math.sqrt(2 / FAN_IN)),
    "he_uniform": ("uniform", math.sqrt(6 / FAN_IN)),
    "xavier_normal": ("normal", math.sqrt(2 / (FAN_IN + FAN_OUT))),
    "xavier_uniform": ("uniform", math.sqrt(6 / (FAN_IN + FAN_OUT))),
    "lecun_normal": ("normal", math.sqrt(1 / FAN_IN)),
    "normal": ("normal", 0.05),
    "uniform": ("uniform", 0.05),
    "pytorch_linear": ("uniform", 1 / math.sqrt(FAN_IN)),
    "constant": ("zeros", 0.0),  # its default value is 0
    "zeros": ("zeros", 0.0),
}
RANDOM = [name for name, (kind, _) in EXPECTED.items() if kind != "zeros"]


def _draw(name: str, seed: int = 0, **options: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return INITIALIZERS[name](rng, (FAN_IN, FAN_OUT), FAN_IN, FAN_OUT, **options)


def _assert_distribution(w: np.ndarray, kind: str, scale: float) -> None:
    n = w.size
    if kind == "zeros":
        np.testing.assert_array_equal(w, 0.0)
        return
    std = scale if kind == "normal" else scale / math.sqrt(3)
    assert abs(w.mean()) < 5 * std / math.sqrt(n)
    assert w.std() == pytest.approx(std, rel=0.02)
    share_within_one_std = np.mean(np.abs(w) < std)
    if kind == "normal":
        assert share_within_one_std == pytest.approx(0.6827, abs=0.01)
        assert np.abs(w).max() > 3.5 * std
    else:
        assert share_within_one_std == pytest.approx(1 / math.sqrt(3), abs=0.01)
        assert np.abs(w).max() <= scale
        assert np.abs(w).max() > 0.999 * scale


def test_expectation_table_covers_every_registered_initializer() -> None:
    assert set(EXPECTED) == set(INITIALIZERS)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_draw_has_documented_distribution(name: str) -> None:
    w = _draw(name)
    assert w.shape == (FAN_IN, FAN_OUT)
    assert w.dtype == np.float64
    _assert_distribution(w, *EXPECTED[name])


@pytest.mark.parametrize(
    ("initializer", "options", "kind", "scale"),
    [(normal, {"std": 0.3}, "normal", 0.3), (uniform, {"limit": 0.2}, "uniform", 0.2)],
)
def test_fixed_scale_initializers_honour_their_option(
    initializer, options: dict[str, float], kind: str, scale: float
) -> None:
    w = initializer(np.random.default_rng(1), (FAN_IN, FAN_OUT), FAN_IN, FAN_OUT, **options)
    _assert_distribution(w, kind, scale)


@pytest.mark.parametrize(
    ("initializer", "options", "key"),
    [
        (normal, {"std": 0.0}, "std"),
        (normal, {"std": -1.0}, "std"),
        (uniform, {"limit": 0.0}, "limit"),
        (uniform, {"limit": -0.5}, "limit"),
    ],
)
def test_invalid_scale_raises_value_error_naming_it(
    initializer, options: dict[str, float], key: str
) -> None:
    with pytest.raises(ValueError, match=key):
        initializer(np.random.default_rng(0), (2, 2), 2, 2, **options)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_same_seed_gives_same_array(name: str) -> None:
    np.testing.assert_array_equal(_draw(name, seed=7), _draw(name, seed=7))


@pytest.mark.parametrize("name", RANDOM)
def test_different_seeds_give_different_arrays(name: str) -> None:
    assert not np.array_equal(_draw(name, seed=7), _draw(name, seed=8))


@pytest.mark.parametrize("name", RANDOM)
def test_draws_advance_the_passed_generator(name: str) -> None:
    rng = np.random.default_rng(3)
    before = rng.bit_generator.state
    INITIALIZERS[name](rng, (3, 4), 3, 4)
    assert rng.bit_generator.state != before


@pytest.mark.parametrize("name", list(EXPECTED))
def test_no_initializer_touches_the_global_numpy_random_state(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = np.random.get_state()

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("global np.random used")

    for function in ("normal", "uniform", "rand", "randn", "random", "standard_normal", "seed"):
        monkeypatch.setattr(np.random, function, forbidden)
    _draw(name)
    monkeypatch.undo()
    after = np.random.get_state()
    assert state[0] == after[0]
    np.testing.assert_array_equal(state[1], after[1])
    assert state[2:] == after[2:]


@pytest.mark.parametrize("name", list(EXPECTED))
def test_bias_shaped_draw_has_requested_shape(name: str) -> None:
    b = INITIALIZERS[name](np.random.default_rng(0), (FAN_OUT,), FAN_IN, FAN_OUT)
    assert b.shape == (FAN_OUT,)
    assert b.dtype == np.float64
