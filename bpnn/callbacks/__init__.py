"""Callbacks: everything that talks to the world while a network trains, one module each.

- ``base``: the hooks (``Callback``), state that resumes (``StatefulCallback``), the best so
  far of a metric (``Monitor``), ``NamedCallback`` and what a callback may use (``TrainerView``,
  ``RunWriter``, ``CallbackContext``);
- every run's: ``finite_loss`` (stop at a NaN or infinite loss), ``checkpointer``,
  ``early_stopping`` (``train.early_stopping``), ``metrics_writer`` (``metrics.jsonl``);
  the health monitor (``train.health``) is ``bpnn.training.health``, the progress display
  ``bpnn.training.progress``;
- the ones a config names in ``train.callbacks``: ``CALLBACKS``, every ``NamedCallback`` of the
  modules of this package, found by importing them (a new one is a module here and nothing
  else): ``csv`` (``metrics.csv``).
"""

from __future__ import annotations

import importlib
import pkgutil

from bpnn.callbacks.base import (
    Callback,
    CallbackContext,
    Monitor,
    NamedCallback,
    RunWriter,
    StatefulCallback,
    TrainerView,
)
from bpnn.callbacks.checkpointer import Checkpointer
from bpnn.callbacks.early_stopping import EarlyStopping
from bpnn.callbacks.finite_loss import FiniteLossCheck
from bpnn.callbacks.metrics_writer import MetricsWriter


def _named_callbacks() -> dict[str, type[NamedCallback]]:
    """Every ``NamedCallback`` defined in a module of this package, by its ``name``."""
    found: dict[str, type[NamedCallback]] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda info: info.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, NamedCallback)
                and value is not NamedCallback
                and value.__module__ == module.__name__
            ):
                found[value.name] = value
    return found


#: the callbacks a config can name in ``train.callbacks``, by name
CALLBACKS = _named_callbacks()

__all__ = [
    "CALLBACKS",
    "Callback",
    "CallbackContext",
    "Checkpointer",
    "EarlyStopping",
    "FiniteLossCheck",
    "MetricsWriter",
    "Monitor",
    "NamedCallback",
    "RunWriter",
    "StatefulCallback",
    "TrainerView",
]
