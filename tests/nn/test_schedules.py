"""Specification of the learning-rate schedules in bpnn.nn.schedules.

Values worked out by hand (always run), torch.optim.lr_scheduler as the oracle (skipped without
torch), the warmup rule for every schedule, and the state of reduce_on_plateau across a resume.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from types import ModuleType

import numpy as np
import pytest
from helpers import through_npz
from hypothesis import given, settings
from hypothesis import strategies as st

from bpnn.nn.schedules import SCHEDULES, Schedule, make_schedule


def lrs(schedule: Schedule, epochs: int, metrics: list[float] | None = None) -> list[float]:
    """Ask for each epoch's rate as the trainer does, reporting ``metrics`` after each epoch."""
    rates = []
    for epoch in range(epochs):
        rates.append(schedule.learning_rate(epoch))
        if metrics is not None:
            monitor = schedule.options()["monitor"]
            schedule.on_epoch_end(epoch, {"loss": 0.0, str(monitor): metrics[epoch]})
    return rates


# --- worked by hand ------------------------------------------------------------------------------


def test_constant_keeps_the_base_rate() -> None:
    assert lrs(make_schedule("constant", 0.3, 5), 5) == [0.3] * 5


def test_step_multiplies_by_gamma_every_step_size_epochs() -> None:
    schedule = make_schedule("step", 1.0, 6, step_size=2, gamma=0.5)
    assert lrs(schedule, 6) == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]


def test_exponential_multiplies_by_gamma_every_epoch() -> None:
    assert lrs(make_schedule("exponential", 2.0, 4, gamma=0.5), 4) == [2.0, 1.0, 0.5, 0.25]


def test_cosine_follows_half_a_cosine_from_base_towards_min_lr() -> None:
    # T = 4: lr(k) = (1 + cos(pi k / 4)) / 2
    got = lrs(make_schedule("cosine", 1.0, 4), 4)
    assert got == pytest.approx([1.0, 0.8535533905932737, 0.5, 0.14644660940672627])
    shifted = lrs(make_schedule("cosine", 1.0, 4, min_lr=0.2), 4)
    assert shifted == pytest.approx([0.2 + 0.8 * x for x in got])


def test_cosine_stays_at_min_lr_past_the_last_epoch() -> None:
    schedule = make_schedule("cosine", 1.0, 10, min_lr=0.01)
    assert schedule.learning_rate(10) == schedule.learning_rate(25) == pytest.approx(0.01)


def test_warmup_ramps_linearly_to_base_lr_then_starts_the_schedule_fresh() -> None:
    # W = 4: lr(e) = 0.1 * (e + 1) / 4 for e < 4, then step's own epochs 0, 1, 2, ...
    schedule = make_schedule("step", 0.1, 10, warmup_epochs=4, step_size=2, gamma=0.5)
    assert lrs(schedule, 10) == pytest.approx(
        [0.025, 0.05, 0.075, 0.1, 0.1, 0.1, 0.05, 0.05, 0.025, 0.025]
    )


def test_one_warmup_epoch_starts_at_base_lr_and_delays_the_schedule() -> None:
    schedule = make_schedule("exponential", 1.0, 4, warmup_epochs=1, gamma=0.5)
    assert lrs(schedule, 4) == [1.0, 1.0, 0.5, 0.25]


def test_cosine_with_warmup_anneals_over_the_remaining_epochs() -> None:
    schedule = make_schedule("cosine", 1.0, 6, warmup_epochs=2)
    assert lrs(schedule, 6) == pytest.approx(
        [0.5, 1.0, 1.0, 0.8535533905932737, 0.5, 0.14644660940672627]
    )


@settings(max_examples=50, deadline=None)
@given(
    name=st.sampled_from(sorted(SCHEDULES)),
    base_lr=st.floats(1e-5, 10.0),
    epochs=st.integers(2, 60),
    data=st.data(),
)
def test_warmup_rises_to_base_lr_and_hands_over_at_base_lr(
    name: str, base_lr: float, epochs: int, data: st.DataObject
) -> None:
    warmup = data.draw(st.integers(1, epochs - 1))
    rates = lrs(make_schedule(name, base_lr, epochs, warmup_epochs=warmup), warmup + 1)
    ramp = rates[:warmup]
    assert all(0 < a < b for a, b in itertools.pairwise(ramp))
    assert ramp[0] == pytest.approx(base_lr / warmup)
    assert ramp[-1] == pytest.approx(base_lr)
    assert rates[warmup] == pytest.approx(base_lr)


def test_reduce_on_plateau_reduces_after_patience_bad_epochs() -> None:
    schedule = make_schedule("reduce_on_plateau", 1.0, 8, patience=1, factor=0.5)
    # e0 3 best; e1 2 best; e2, e3 no better -> 2 bad epochs > patience 1 -> halve;
    # e4 1 best; e5, e6 no better -> halve again
    got = lrs(schedule, 8, metrics=[3, 2, 2, 2, 1, 1, 1, 1])
    assert got == [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25]


def test_reduce_on_plateau_waits_out_the_cooldown_before_counting_again() -> None:
    schedule = make_schedule("reduce_on_plateau", 1.0, 9, patience=0, factor=0.5, cooldown=2)
    got = lrs(schedule, 9, metrics=[1.0] * 9)
    assert got == [1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.125]


def test_reduce_on_plateau_never_goes_below_min_lr() -> None:
    schedule = make_schedule("reduce_on_plateau", 1.0, 6, patience=0, min_lr=0.05)
    assert lrs(schedule, 6, metrics=[1.0] * 6) == pytest.approx([1.0, 1.0, 0.1, 0.05, 0.05, 0.05])


def test_reduce_on_plateau_counts_improvements_below_the_relative_threshold_as_bad() -> None:
    schedule = make_schedule("reduce_on_plateau", 1.0, 4, patience=1, threshold=0.1)
    # 0.95 and 0.91 are within 10% of the best 1.0: two bad epochs, so the rate drops
    assert lrs(schedule, 4, metrics=[1.0, 0.95, 0.91, 0.5]) == pytest.approx([1.0, 1.0, 1.0, 0.1])


def test_reduce_on_plateau_in_max_mode_wants_the_metric_to_rise() -> None:
    schedule = make_schedule(
        "reduce_on_plateau", 1.0, 5, monitor="val_accuracy", mode="max", patience=0
    )
    assert lrs(schedule, 5, metrics=[0.5, 0.6, 0.6, 0.7, 0.65]) == pytest.approx(
        [1.0, 1.0, 1.0, 0.1, 0.1]
    )


def test_reduce_on_plateau_ignores_metrics_during_warmup() -> None:
    schedule = make_schedule("reduce_on_plateau", 1.0, 7, warmup_epochs=3, patience=0)
    # warmup epochs report a low loss that would otherwise become the best value to beat
    got = lrs(schedule, 7, metrics=[0.0, 0.0, 0.0, 5.0, 4.0, 4.0, 4.0])
    assert got == pytest.approx([1 / 3, 2 / 3, 1.0, 1.0, 1.0, 1.0, 0.1])


def test_reduce_on_plateau_names_a_missing_metric() -> None:
    schedule = make_schedule("reduce_on_plateau", 1.0, 3)
    with pytest.raises(ValueError, match=r"monitors 'val_loss'.*logged metrics: accuracy, loss"):
        schedule.on_epoch_end(0, {"loss": 1.0, "accuracy": 0.5})


def test_stateless_schedules_ignore_epoch_end() -> None:
    schedule = make_schedule("exponential", 1.0, 3, gamma=0.5)
    schedule.on_epoch_end(0, {})
    assert lrs(schedule, 3) == [1.0, 0.5, 0.25]


# --- PyTorch as the oracle -----------------------------------------------------------------------


def torch_lrs(
    torch, make_scheduler: Callable, base_lr: float, epochs: int, metrics: list[float] | None = None
) -> list[float]:
    """The rate torch's SGD holds before each epoch, stepping the scheduler after each one."""
    p = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.SGD([p], lr=base_lr)
    scheduler = make_scheduler(optimizer)
    rates = []
    for epoch in range(epochs):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        if metrics is None:
            scheduler.step()
        else:
            scheduler.step(metrics[epoch])
    return rates


STATELESS_CASES = [
    ("step", {}),
    ("step", {"step_size": 7, "gamma": 0.5}),
    ("exponential", {}),
    ("exponential", {"gamma": 0.8}),
    ("cosine", {}),
    ("cosine", {"min_lr": 0.01}),
]


def torch_scheduler(torch, name: str, options: dict, t_max: int) -> Callable:
    sched = torch.optim.lr_scheduler
    if name == "step":
        return lambda opt: sched.StepLR(
            opt, step_size=options.get("step_size", 10), gamma=options.get("gamma", 0.1)
        )
    if name == "exponential":
        return lambda opt: sched.ExponentialLR(opt, gamma=options.get("gamma", 0.95))
    assert name == "cosine"
    return lambda opt: sched.CosineAnnealingLR(opt, T_max=t_max, eta_min=options.get("min_lr", 0.0))


@pytest.mark.parametrize("warmup", [0, 5])
@pytest.mark.parametrize(("name", "options"), STATELESS_CASES)
def test_schedule_after_warmup_matches_torch(
    name: str, options: dict, warmup: int, torch: ModuleType
) -> None:
    epochs, base_lr = 30, 0.1
    ours = lrs(make_schedule(name, base_lr, epochs, warmup_epochs=warmup, **options), epochs)
    after = epochs - warmup
    theirs = torch_lrs(torch, torch_scheduler(torch, name, options, after), base_lr, after)
    np.testing.assert_allclose(ours[warmup:], theirs, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("warmup", [2, 5])
def test_warmup_matches_torch_linear_lr(warmup: int, torch: ModuleType) -> None:
    # LinearLR's factor 1/W + (1 - 1/W) * e / (W - 1) equals (e + 1) / W
    theirs = torch_lrs(
        torch,
        lambda opt: torch.optim.lr_scheduler.LinearLR(
            opt, start_factor=1 / warmup, end_factor=1.0, total_iters=warmup - 1
        ),
        0.1,
        warmup,
    )
    ours = lrs(make_schedule("constant", 0.1, 20, warmup_epochs=warmup), warmup)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)


# A loss curve with improvements, plateaus, tiny gains under the threshold and a rebound.
PLATEAU_METRICS = [
    1.0, 0.8, 0.7, 0.7, 0.69999, 0.71, 0.75, 0.6, 0.55, 0.55,
    0.55, 0.56, 0.549, 0.55, 0.55, 0.4, 0.41, 0.42, 0.43, 0.44,
    0.45, 0.39, 0.39, 0.39, 0.39, 0.39, 0.38, 0.38, 0.38, 0.38,
    0.38, 0.38, 0.38, 0.38, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2,
]  # fmt: skip
PLATEAU_CASES = [
    ({"patience": 2}, PLATEAU_METRICS),
    ({"patience": 1, "factor": 0.5, "cooldown": 2, "min_lr": 0.02}, PLATEAU_METRICS),
    ({"patience": 3, "threshold": 0.05, "factor": 0.3}, PLATEAU_METRICS),
    ({"mode": "max", "patience": 1, "threshold": 0.01}, [-x for x in PLATEAU_METRICS]),
    ({"mode": "max", "patience": 0, "cooldown": 1}, [1 - x for x in PLATEAU_METRICS]),
]


@pytest.mark.parametrize("warmup", [0, 4])
@pytest.mark.parametrize(("options", "metrics"), PLATEAU_CASES)
def test_reduce_on_plateau_matches_torch_on_a_fixed_metric_sequence(
    options: dict, metrics: list[float], warmup: int, torch: ModuleType
) -> None:
    base_lr = 0.1
    epochs = len(metrics) + warmup
    ours = lrs(
        make_schedule("reduce_on_plateau", base_lr, epochs, warmup_epochs=warmup, **options),
        epochs,
        metrics=[0.0] * warmup + metrics,
    )
    torch_options = {
        "mode": options.get("mode", "min"),
        "factor": options.get("factor", 0.1),
        "patience": options.get("patience", 10),
        "threshold": options.get("threshold", 1e-4),
        "cooldown": options.get("cooldown", 0),
        "min_lr": options.get("min_lr", 0.0),
    }
    theirs = torch_lrs(
        torch,
        lambda opt: torch.optim.lr_scheduler.ReduceLROnPlateau(opt, **torch_options),
        base_lr,
        len(metrics),
        metrics,
    )
    assert len(set(theirs)) >= 3, "the sequence should make torch reduce at least twice"
    np.testing.assert_allclose(ours[warmup:], theirs, rtol=1e-12)


# --- state ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("stop_after", [3, 6, 11, 20])
def test_reduce_on_plateau_resumes_exactly_from_its_state_dict(stop_after: int) -> None:
    options = {"warmup_epochs": 2, "patience": 1, "factor": 0.5, "cooldown": 1}
    epochs = len(PLATEAU_METRICS)
    uninterrupted = lrs(
        make_schedule("reduce_on_plateau", 0.1, epochs, **options), epochs, PLATEAU_METRICS
    )

    first = make_schedule("reduce_on_plateau", 0.1, epochs, **options)
    before = lrs(first, stop_after, PLATEAU_METRICS)
    resumed = make_schedule("reduce_on_plateau", 0.1, epochs, **options)
    resumed.load_state_dict(through_npz(first.state_dict()))
    after = []
    for epoch in range(stop_after, epochs):
        after.append(resumed.learning_rate(epoch))
        resumed.on_epoch_end(epoch, {"val_loss": PLATEAU_METRICS[epoch]})
    assert before + after == uninterrupted


def test_reduce_on_plateau_state_is_plain_numbers() -> None:
    schedule = make_schedule("reduce_on_plateau", 0.1, 5)
    state = schedule.state_dict()
    assert set(state) == {"best", "bad_epochs", "cooldown_counter", "lr"}
    assert all(a.shape == () and a.dtype.kind in "if" for a in state.values())
    assert float(state["best"]) == math.inf


def test_load_state_dict_rejects_state_of_another_schedule() -> None:
    plateau_state = make_schedule("reduce_on_plateau", 0.1, 5).state_dict()
    with pytest.raises(ValueError, match=r"cosine schedule state does not match.*unexpected"):
        make_schedule("cosine", 0.1, 5).load_state_dict(plateau_state)
    with pytest.raises(ValueError, match=r"missing keys \['bad_epochs', 'best'"):
        make_schedule("reduce_on_plateau", 0.1, 5).load_state_dict({})
    with pytest.raises(ValueError, match="'lr' must be a scalar"):
        make_schedule("reduce_on_plateau", 0.1, 5).load_state_dict(
            {**plateau_state, "lr": np.array([0.1])}
        )
    assert make_schedule("step", 0.1, 5).state_dict() == {}
    make_schedule("step", 0.1, 5).load_state_dict({})


# --- registry, options, validation --------------------------------------------------------------


def test_registry_finds_every_schedule_by_its_name() -> None:
    assert list(SCHEDULES) == ["constant", "step", "exponential", "cosine", "reduce_on_plateau"]
    for name, cls in SCHEDULES.items():
        assert cls.name == name
        assert isinstance(make_schedule(name, 0.1, 10), cls)


def test_options_are_resolved_with_their_defaults() -> None:
    def options(name: str) -> dict:
        return make_schedule(name, 0.1, 10).options()

    assert options("constant") == {"warmup_epochs": 0}
    assert options("step") == {"warmup_epochs": 0, "step_size": 10, "gamma": 0.1}
    assert options("exponential") == {"warmup_epochs": 0, "gamma": 0.95}
    assert options("cosine") == {"warmup_epochs": 0, "min_lr": 0.0}
    assert options("reduce_on_plateau") == {
        "warmup_epochs": 0,
        "monitor": "val_loss",
        "mode": "min",
        "factor": 0.1,
        "patience": 10,
        "min_lr": 0.0,
        "threshold": 1e-4,
        "cooldown": 0,
    }


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_options_rebuild_the_same_schedule(name: str) -> None:
    schedule = make_schedule(name, 0.1, 12, warmup_epochs=3)
    rebuilt = make_schedule(name, 0.1, 12, **schedule.options())
    assert rebuilt.options() == schedule.options()
    assert lrs(rebuilt, 12) == lrs(schedule, 12)


def test_unknown_schedule_lists_the_choices() -> None:
    with pytest.raises(ValueError, match="unknown schedule 'linear'; choose from: constant, step"):
        make_schedule("linear", 0.1, 10)


def test_unknown_option_is_named_with_the_choices() -> None:
    with pytest.raises(
        ValueError,
        match="unknown option 'gamma' for schedule 'cosine'; choose from: warmup_epochs, min_lr",
    ):
        make_schedule("cosine", 0.1, 10, gamma=0.5)


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("constant", {"base_lr": 0.0}, r"base_lr must be in \(0, inf\), got 0.0"),
        ("constant", {"base_lr": float("nan")}, "base_lr must be a number"),
        ("constant", {"epochs": 0}, r"epochs must be in \[1, inf\), got 0"),
        ("constant", {"epochs": 2.5}, "epochs must be an integer"),
        ("constant", {"warmup_epochs": 10}, r"warmup_epochs must be in \[0, 10\), got 10"),
        ("cosine", {"warmup_epochs": -1}, "warmup_epochs must be in"),
        ("step", {"step_size": 0}, "step_size must be in"),
        ("step", {"step_size": 2.5}, "step_size must be an integer"),
        ("step", {"gamma": 0.0}, r"gamma must be in \(0, 1\]"),
        ("exponential", {"gamma": 1.5}, "gamma must be in"),
        ("cosine", {"min_lr": -0.1}, "min_lr must be in"),
        ("cosine", {"min_lr": 0.5}, r"min_lr must be in \[0, 0.1\], got 0.5"),
        ("reduce_on_plateau", {"mode": "avg"}, "mode must be 'auto', 'min' or 'max', got 'avg'"),
        ("reduce_on_plateau", {"monitor": ""}, "monitor must be the name"),
        ("reduce_on_plateau", {"factor": 1.0}, "factor must be in"),
        ("reduce_on_plateau", {"patience": -1}, "patience must be in"),
        ("reduce_on_plateau", {"cooldown": 1.5}, "cooldown must be an integer"),
        ("reduce_on_plateau", {"threshold": -1e-4}, "threshold must be in"),
        ("reduce_on_plateau", {"min_lr": -1.0}, "min_lr must be in"),
    ],
)
def test_impossible_options_raise_naming_the_option(name: str, options: dict, message: str) -> None:
    arguments = {"base_lr": 0.1, "epochs": 10, **options}
    with pytest.raises(ValueError, match=message):
        make_schedule(name, **arguments)


def test_learning_rate_of_a_negative_epoch_is_an_error() -> None:
    with pytest.raises(ValueError, match="epoch must be in"):
        make_schedule("constant", 0.1, 10).learning_rate(-1)


def test_reduce_on_plateau_mode_auto_follows_the_monitor() -> None:
    from bpnn.nn.schedules import ReduceOnPlateau

    assert ReduceOnPlateau(0.1, 10, monitor="val_accuracy").mode == "max"
    assert ReduceOnPlateau(0.1, 10, monitor="val_r2").mode == "max"
    assert ReduceOnPlateau(0.1, 10, monitor="val_loss").mode == "min"
    assert ReduceOnPlateau(0.1, 10, monitor="val_mae").mode == "min"
    rising = ReduceOnPlateau(0.1, 10, monitor="val_accuracy", patience=0)
    for epoch, accuracy in enumerate([0.5, 0.6, 0.7]):
        rising.on_epoch_end(epoch, {"val_accuracy": accuracy})
    assert rising.learning_rate(3) == 0.1  # a rising accuracy is no plateau
