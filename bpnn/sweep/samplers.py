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


def finish_asking(study: optuna.Study, spec: SweepSpec, frozen: Any) -> optuna.trial.Trial:
    """The trial a killed sweep had created but not yet given all its values (``study.ask``
    writes the trial first and its values one by one): ask the sampler for the missing ones
    through the public ``suggest_*`` calls, as ``ask`` would have."""
    sampler = make_sampler(spec, frozen.number)
    study.sampler = sampler
    if isinstance(sampler, optuna.samplers.GridSampler) and "grid_id" not in frozen.system_attrs:
        sampler.before_trial(study, frozen)  # picks the trial's grid point
    trial = optuna.trial.Trial(study, frozen._trial_id)
    for name, distribution in distributions(spec).items():
        if name in frozen.params:
            continue
        if isinstance(distribution, CategoricalDistribution):
            trial.suggest_categorical(name, distribution.choices)
        elif isinstance(distribution, IntDistribution):
            trial.suggest_int(name, distribution.low, distribution.high)
        else:
            trial.suggest_float(name, distribution.low, distribution.high, log=distribution.log)
    return trial
