"""The callback contract: the hooks ``Trainer.fit`` calls, state that resumes with the run, the
"best so far" of a metric (``Monitor``), and what a callback may use of the trainer and of the
run directory (``TrainerView``, ``RunWriter``: protocols, so callbacks import neither).

Epochs are counted from 1 in every hook and every ``logs`` dict; each hook does nothing by
default. A callback with state to resume declares the key it is saved under in the checkpoint
(``state_key``). A callback a config can name (``train.callbacks``) is a ``NamedCallback``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from bpnn.errors import short
from bpnn.metrics import is_improvement, mode_of


class RunWriter(Protocol):
    """Where callbacks put a run: what they need of ``bpnn.run.RunDirectory``, which implements
    it (``bpnn.run`` builds the callbacks and hands them its directory)."""

    def append_metrics(self, logs: dict[str, Any]) -> None:
        """Append one epoch's logs to the run's metrics."""

    def save_checkpoint(self, which: str, contents: Any) -> None:
        """Write the checkpoint ``which`` (``last`` or ``best``)."""

    def write_file(self, name: str, text: str) -> None:
        """Replace the run's file ``name`` (a plain name in the run directory) with ``text``,
        atomically."""

    def append_file(self, name: str, text: str) -> None:
        """Append ``text`` to the run's file ``name``."""


class TrainerView(Protocol):
    """What a callback may use of the trainer running it (``bpnn.training.Trainer``)."""

    model: Any
    network: Any
    schedule: Any
    start_epoch: int
    stop_reason: str | None

    def stop(self, reason: str) -> None: ...

    def checkpoint_contents(self, epoch: int, logs: dict[str, Any]) -> Any: ...


class Callback:
    """Hooks called by ``Trainer.fit``; ``self.trainer`` is the trainer while ``fit`` runs (set
    before ``on_train_begin``, gone after ``on_train_end``)."""

    trainer: TrainerView

    def on_train_begin(self, logs: dict[str, Any]) -> None:
        """Before the first epoch (also when resuming)."""

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any]) -> None:
        """Before epoch ``epoch`` (1-based); ``logs`` holds its ``lr``."""

    def on_backward_end(self, batch: int, logs: dict[str, Any]) -> None:
        """After the forward and backward pass of batch ``batch`` (1-based), before the update:
        ``logs`` holds its ``loss``. A callback that raises here stops training before the
        weights change."""

    def on_batch_end(self, batch: int, logs: dict[str, Any]) -> None:
        """After batch ``batch`` (1-based); ``logs`` holds ``loss``, ``running_loss`` and
        ``clipped`` (whether gradient clipping scaled this batch's gradients)."""

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        """After epoch ``epoch`` with its metrics (``train_loss``, ``val_loss``, ``lr``, ...)."""

    def on_train_end(self, logs: dict[str, Any]) -> None:
        """After the last epoch, early stopping, or an error (see ``logs['stop_reason']``)."""


class StatefulCallback(Callback):
    """A callback whose state goes into every checkpoint under ``state_key`` and comes back on
    resume, so that a resumed run continues exactly as the uninterrupted one would have."""

    state_key: ClassVar[str]

    def state(self) -> dict[str, Any]:
        raise NotImplementedError

    def load_state(self, state: dict[str, Any]) -> None:
        raise NotImplementedError

    @classmethod
    def state_problem(cls, state: Any) -> str | None:
        """What is wrong with a ``state`` read back from a checkpoint (None: ``load_state``
        may take it): checked before a resume writes anything."""
        return None if isinstance(state, dict) else f"{short(state)}, not a mapping"


def is_epoch_count(value: Any) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 0)


def is_number_or_null(value: Any) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


class Monitor(StatefulCallback):
    """The best value so far of one metric, as Keras' monitors keep it: ``monitor`` (a metric
    name such as ``val_loss``), ``mode`` (``min``, ``max``, or ``auto``: the metric's own), and
    ``min_delta``, the least change that counts as an improvement. Its state (``best``,
    ``best_epoch``) resumes with the run."""

    def __init__(self, monitor: str, mode: str = "auto", min_delta: float = 0.0) -> None:
        self.monitor, self.min_delta = monitor, min_delta
        self.mode = mode_of(monitor, mode)
        self.best: float | None = None
        self.best_epoch: int | None = None

    def improved(self, epoch: int, value: float) -> bool:
        """Whether ``value`` improves on the best so far; if it does, it becomes the best."""
        if not is_improvement(value, self.best, self.mode, self.min_delta):
            return False
        self.best, self.best_epoch = value, epoch
        return True

    def state(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch}

    def load_state(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch = state["best"], state["best_epoch"]

    #: each field of the state, and what its value must be
    STATE_FIELDS: ClassVar[dict[str, tuple[str, Any]]] = {
        "best": ("a number or null", is_number_or_null),
        "best_epoch": ("a whole number of epochs or null", is_epoch_count),
    }

    @classmethod
    def state_problem(cls, state: Any) -> str | None:
        problem = super().state_problem(state)
        if problem is not None:
            return problem
        for name, (expected, valid) in cls.STATE_FIELDS.items():
            if name not in state:
                return f"'{name}' missing"
            if not valid(state[name]):
                return f"'{name}' is {short(state[name])}, not {expected}"
        return None


@dataclass(frozen=True)
class CallbackContext:
    """What a run gives the callbacks a config names: its directory, its log (stderr lines),
    and the metrics rows it already has (a resumed run; empty for a new one)."""

    run: RunWriter
    log: Callable[[str], None] = lambda message: None
    history: Sequence[dict[str, Any]] = field(default_factory=tuple)


class NamedCallback(Callback):
    """A callback a config can name in ``train.callbacks``: ``name`` is that name; the keyword
    options of ``__init__`` after ``context`` are its config options, checked (types,
    defaults, unknown keys) against the signature as the engine components' are."""

    name: ClassVar[str]

    def __init__(self, context: CallbackContext) -> None:
        self.context = context
