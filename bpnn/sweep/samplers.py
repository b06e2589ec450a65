"""Optuna's samplers and distributions for a sweep's search space (optuna imported here)."""

from __future__ import annotations

from typing import Any

import numpy as np
import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from bpnn.sweep.spec import Choices, SweepSpec


class AskAndTellGridSampler(optuna.samplers.GridSampler):
    """Optuna's grid sampler without its ``after_trial``, which calls ``study.stop()`` once the
    grid is covered: that works only inside ``study.optimize``, and the sweep loop stops by
    counting the grid itself."""

    def after_trial(self, *args: Any, **kwargs: Any) -> None:
        return None


def distributions(spec: SweepSpec) -> dict[str, BaseDistribution]:
    """The search space as Optuna distributions; a list is categorical over JSON strings."""
    out: dict[str, BaseDistribution] = {}
    for key, dimension in spec.space.items():
        if isinstance(dimension, Choices):
            out[key] = CategoricalDistribution(dimension.encoded())
        elif dimension.kind == "int":
            out[key] = IntDistribution(int(dimension.low), int(dimension.high))
        else:
            log = dimension.kind == "log_uniform"
            out[key] = FloatDistribution(dimension.low, dimension.high, log=log)
    return out


def make_sampler(spec: SweepSpec, number: int) -> optuna.samplers.BaseSampler:
    """The sampler that asks for trial ``number``. Random and tpe are seeded from ``(seed,
    number)``: a trial's values do not depend on how many were asked before it in this process
    (a resumed sweep goes on as an uninterrupted one would)."""
    if spec.method == "grid":
        # the grid's order is a permutation by the sweep's seed (Optuna shuffles it), and trial
        # n takes point n of it: the same seed for every trial, or the points would repeat
        space = {key: d.encoded() for key, d in spec.space.items() if isinstance(d, Choices)}
        return AskAndTellGridSampler(space, seed=spec.seed)
    seed = int(np.random.SeedSequence([spec.seed, number]).generate_state(1)[0])
    if spec.method == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    # Optuna's default of 10 random start-up trials, but at most half of a small budget
    startup = min(10, max(1, spec.total_trials() // 2))
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup)
