"""Learning-rate schedules: the learning rate as a function of the epoch.

Before epoch ``e = 0, 1, 2, ...`` the trainer asks ``schedule.learning_rate(e)`` and passes that
rate to every optimizer step of the epoch; after the epoch it calls
``schedule.on_epoch_end(e, logs)`` (only ``reduce_on_plateau`` listens). Each schedule matches its
``torch.optim.lr_scheduler`` counterpart, stepped once per epoch.

Linear warmup works with every schedule. With ``W = warmup_epochs > 0``::

    lr(e) = base_lr * (e + 1) / W          for e = 0 .. W-1  (base_lr/W, 2 base_lr/W, ..., base_lr)
    lr(e) = schedule(e - W)                for e >= W

so the last warmup epoch reaches ``base_lr`` and the wrapped schedule then starts fresh, its own
epoch 0 (at ``base_lr``) being epoch ``W`` of training. ``reduce_on_plateau`` ignores the metrics
of warmup epochs: it neither reduces nor records a best value during warmup.

A schedule is one class with a unique ``name``; ``SCHEDULES`` is built from the classes themselves.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from bpnn.nn.options import check_int, check_number, check_option_names, keyword_options, lookup


class Schedule:
    """The learning rate of each epoch, with optional linear warmup (see the module docstring).

    A subclass sets ``name``, takes its options as keyword-only arguments (validated) and
    implements ``_after_warmup(k)``: the rate ``k`` epochs after warmup ended.
    """

    name: ClassVar[str]

    def __init__(self, base_lr: float, epochs: int, warmup_epochs: int = 0) -> None:
        self.base_lr = check_number(
            "base_lr", base_lr, 0.0, math.inf, low_open=True, high_open=True
        )
        self.epochs = check_int("epochs", epochs, 1)
        self.warmup_epochs = check_int("warmup_epochs", warmup_epochs, 0, self.epochs)

    def learning_rate(self, epoch: int) -> float:
        """The learning rate of the 0-based ``epoch``."""
        epoch = check_int("epoch", epoch, 0)
        if epoch < self.warmup_epochs:
            return self.base_lr * (epoch + 1) / self.warmup_epochs
        return self._after_warmup(epoch - self.warmup_epochs)

    def _after_warmup(self, epoch: int) -> float:
        """The rate ``epoch`` epochs after warmup ended (epoch 0 is the first one after it)."""
        raise NotImplementedError

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        """Hook called after each epoch with its metrics; a no-op except for reduce_on_plateau."""

    def state_dict(self) -> dict[str, np.ndarray]:
        """What a resumed run needs to continue exactly; empty for the stateless schedules."""
        return {}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore a ``state_dict()``; ValueError when its keys do not match this schedule."""
        missing = sorted(set(self.state_dict()) - set(state))
        unexpected = sorted(set(state) - set(self.state_dict()))
        if missing or unexpected:
            raise ValueError(
                f"{self.name} schedule state does not match: missing keys {missing}, "
                f"unexpected keys {unexpected}"
            )

    def _options(self) -> dict[str, float | int | str]:
        return {}

    def options(self) -> dict[str, float | int | str]:
        """The resolved options with defaults filled in: ``warmup_epochs`` plus the schedule's.

        ``make_schedule(s.name, s.base_lr, s.epochs, **s.options())`` rebuilds the schedule.
        """
        return {"warmup_epochs": self.warmup_epochs, **self._options()}

    def __repr__(self) -> str:
        args = ", ".join(f"{key}={value!r}" for key, value in self.options().items())
        return f"{type(self).__name__}(base_lr={self.base_lr}, epochs={self.epochs}, {args})"


class Constant(Schedule):
    """``lr(k) = base_lr``."""

    name = "constant"

    def _after_warmup(self, epoch: int) -> float:
        return self.base_lr


class Step(Schedule):
    """``lr(k) = base_lr * gamma ^ floor(k / step_size)`` (``torch.optim.lr_scheduler.StepLR``).

    The rate drops by the factor ``gamma`` every ``step_size`` epochs.
    """

    name = "step"

    def __init__(
        self,
        base_lr: float,
        epochs: int,
        warmup_epochs: int = 0,
        *,
        step_size: int = 10,
        gamma: float = 0.1,
    ) -> None:
        super().__init__(base_lr, epochs, warmup_epochs)
        self.step_size = check_int("step_size", step_size, 1)
        self.gamma = check_number("gamma", gamma, 0.0, 1.0, low_open=True, high_open=False)

    def _options(self) -> dict[str, float | int | str]:
        return {"step_size": self.step_size, "gamma": self.gamma}

    def _after_warmup(self, epoch: int) -> float:
        return self.base_lr * self.gamma ** (epoch // self.step_size)


class Exponential(Schedule):
    """``lr(k) = base_lr * gamma ^ k`` (``torch.optim.lr_scheduler.ExponentialLR``)."""

    name = "exponential"

    def __init__(
        self, base_lr: float, epochs: int, warmup_epochs: int = 0, *, gamma: float = 0.95
    ) -> None:
        super().__init__(base_lr, epochs, warmup_epochs)
        self.gamma = check_number("gamma", gamma, 0.0, 1.0, low_open=True, high_open=False)

    def _options(self) -> dict[str, float | int | str]:
        return {"gamma": self.gamma}

    def _after_warmup(self, epoch: int) -> float:
        return self.base_lr * self.gamma**epoch


class Cosine(Schedule):
    """Cosine annealing from ``base_lr`` towards ``min_lr`` over the epochs after warmup::

        lr(k) = min_lr + (base_lr - min_lr) * (1 + cos(pi * k / T)) / 2
        T = epochs - warmup_epochs

    the closed form of ``torch.optim.lr_scheduler.CosineAnnealingLR(T_max=T, eta_min=min_lr)``.
    The last epoch (k = T - 1) is just above ``min_lr``; epochs past the end stay at ``min_lr``.
    """

    name = "cosine"

    def __init__(
        self, base_lr: float, epochs: int, warmup_epochs: int = 0, *, min_lr: float = 0.0
    ) -> None:
        super().__init__(base_lr, epochs, warmup_epochs)
        self.min_lr = check_number(
            "min_lr", min_lr, 0.0, self.base_lr, low_open=False, high_open=False
        )

    def _options(self) -> dict[str, float | int | str]:
        return {"min_lr": self.min_lr}

    def _after_warmup(self, epoch: int) -> float:
        period = self.epochs - self.warmup_epochs
        k = min(epoch, period)
        return self.min_lr + (self.base_lr - self.min_lr) * (1 + math.cos(math.pi * k / period)) / 2


class ReduceOnPlateau(Schedule):
    """Divide the rate by ``1/factor`` when ``logs[monitor]`` stops improving
    (``torch.optim.lr_scheduler.ReduceLROnPlateau`` with ``threshold_mode="rel"``).

    After each epoch past warmup, with ``x = logs[monitor]``::

        improved = x < best * (1 - threshold)     in mode "min"
                   x > best * (1 + threshold)     in mode "max"
        if improved: best = x, bad_epochs = 0   else: bad_epochs += 1
        if cooling down: cooldown_counter -= 1, bad_epochs = 0
        if bad_epochs > patience:
            lr = max(lr * factor, min_lr)   (kept unchanged if that lowers it by 1e-8 or less)
            cooldown_counter = cooldown, bad_epochs = 0

    ``mode`` "auto" (the default) is "max" for a monitor ending in ``accuracy`` or ``r2`` and
    "min" otherwise. ``best`` starts at +inf ("min") or -inf ("max"), so the first value always
    improves. The
    rate changes only through these reductions, so it is state (see ``state_dict``), not a pure
    function of the epoch.
    """

    name = "reduce_on_plateau"
    #: torch's ``eps``: a reduction smaller than this is not applied.
    MIN_CHANGE: ClassVar[float] = 1e-8

    def __init__(
        self,
        base_lr: float,
        epochs: int,
        warmup_epochs: int = 0,
        *,
        monitor: str = "val_loss",
        mode: str = "auto",
        factor: float = 0.1,
        patience: int = 10,
        min_lr: float = 0.0,
        threshold: float = 1e-4,
        cooldown: int = 0,
    ) -> None:
        super().__init__(base_lr, epochs, warmup_epochs)
        if not isinstance(monitor, str) or not monitor:
            raise ValueError(f"monitor must be the name of a logged metric, got {monitor!r}")
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
        if mode == "auto":  # accuracy and r2 should rise; losses and errors should fall
            mode = "max" if monitor.endswith(("accuracy", "r2")) else "min"
        self.monitor = monitor
        self.mode = mode
        self.factor = check_number("factor", factor, 0.0, 1.0, low_open=True, high_open=True)
        self.patience = check_int("patience", patience, 0)
        self.min_lr = check_number("min_lr", min_lr, 0.0, math.inf, low_open=False, high_open=True)
        self.threshold = check_number(
            "threshold", threshold, 0.0, 1.0, low_open=False, high_open=True
        )
        self.cooldown = check_int("cooldown", cooldown, 0)
        self.best = math.inf if mode == "min" else -math.inf
        self.bad_epochs = 0
        self.cooldown_counter = 0
        self.lr = self.base_lr

    def _options(self) -> dict[str, float | int | str]:
        return {
            "monitor": self.monitor,
            "mode": self.mode,
            "factor": self.factor,
            "patience": self.patience,
            "min_lr": self.min_lr,
            "threshold": self.threshold,
            "cooldown": self.cooldown,
        }

    def _after_warmup(self, epoch: int) -> float:
        return self.lr

    def _improved(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best * (1.0 - self.threshold)
        return value > self.best * (1.0 + self.threshold)

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        """Track ``logs[monitor]`` and reduce the rate after a plateau (ignored during warmup)."""
        if epoch < self.warmup_epochs:
            return
        if self.monitor not in logs:
            raise ValueError(
                f"reduce_on_plateau monitors '{self.monitor}', which is not among the logged "
                f"metrics: {', '.join(sorted(logs)) or '(none)'}"
            )
        value = float(logs[self.monitor])
        if self._improved(value):
            self.best = value
            self.bad_epochs = 0
        else:
            self.bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.bad_epochs = 0
        if self.bad_epochs > self.patience:
            reduced = max(self.lr * self.factor, self.min_lr)
            if self.lr - reduced > self.MIN_CHANGE:
                self.lr = reduced
            self.cooldown_counter = self.cooldown
            self.bad_epochs = 0

    def state_dict(self) -> dict[str, np.ndarray]:
        return {
            "best": np.array(self.best, dtype=np.float64),
            "bad_epochs": np.array(self.bad_epochs, dtype=np.int64),
            "cooldown_counter": np.array(self.cooldown_counter, dtype=np.int64),
            "lr": np.array(self.lr, dtype=np.float64),
        }

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        super().load_state_dict(state)
        for key in ("best", "bad_epochs", "cooldown_counter", "lr"):
            if np.shape(state[key]) != ():
                raise ValueError(
                    f"reduce_on_plateau schedule state '{key}' must be a scalar, "
                    f"got shape {np.shape(state[key])}"
                )
        self.best = float(state["best"])
        self.bad_epochs = int(state["bad_epochs"])
        self.cooldown_counter = int(state["cooldown_counter"])
        self.lr = float(state["lr"])


SCHEDULES: dict[str, type[Schedule]] = {
    cls.name: cls for cls in (Constant, Step, Exponential, Cosine, ReduceOnPlateau)
}


def schedule_option_names(name: str) -> tuple[str, ...]:
    """The option names the schedule called ``name`` accepts, ``warmup_epochs`` first."""
    return ("warmup_epochs", *keyword_options(lookup(SCHEDULES, "schedule", name)))


def make_schedule(name: str, base_lr: float, epochs: int, **options: float | int | str) -> Schedule:
    """The schedule called ``name`` for ``epochs`` epochs starting from ``base_lr``.

    ``options`` may hold ``warmup_epochs`` and the schedule's own options; unknown names and
    unknown options raise ValueError listing the choices.
    """
    cls = lookup(SCHEDULES, "schedule", name)
    check_option_names("schedule", name, options, schedule_option_names(name))
    return cls(base_lr, epochs, **options)  # type: ignore[arg-type]
