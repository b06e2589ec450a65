"""The weights of a loss that a config gives as rules: ``class_weights: balanced`` or a
mapping of class labels, ``pos_weight: balanced``. They need the training labels, so a run turns
them into numbers once, when its data is loaded (``resolve_loss_weights``), and saves those in
its ``config.yaml``: resume, eval, predict and every export read the same numbers back. The
engine's losses only ever train on numbers (``Loss.unresolved_weights`` says when a rule is
left).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from bpnn.config import Config
from bpnn.data.sources import listing
from bpnn.errors import ConfigError


def resolve_loss_weights(
    config: Config, y_train: np.ndarray, classes: Sequence[Any] | None
) -> Config:
    """``config`` with the weights that rules of its loss give for the training targets
    ``y_train`` written out, as the run saves and every later command reads them:
    ``class_weights: balanced`` is scikit-learn's ``compute_class_weight("balanced")``,
    ``n_samples / (n_classes * count)``; a mapping of class labels to weights is the list in
    class order (1 for a class it leaves out); ``pos_weight: balanced`` is
    ``count(t = 0) / count(t = 1)`` of each output. The config itself when there is no rule.
    A label the data does not have, or a class with no training sample, is a ``ConfigError``."""
    options = dict(config.loss.options)
    rule = options.get("class_weights")
    if isinstance(rule, str | dict) and classes is not None:
        options["class_weights"] = _class_weights(rule, np.asarray(y_train), list(classes))
    if options.get("pos_weight") == "balanced":
        options["pos_weight"] = _balanced_pos_weight(np.asarray(y_train))
    if options == config.loss.options:
        return config
    return config.model_copy(update={"loss": config.loss.model_copy(update={"options": options})})


def _class_weights(rule: str | dict[str, float], y: np.ndarray, classes: list[Any]) -> list[float]:
    from sklearn.utils.class_weight import compute_class_weight

    if isinstance(rule, dict):
        names = {str(c): i for i, c in enumerate(classes)}
        unknown = [label for label in rule if str(label) not in names]
        if unknown:
            raise ConfigError(
                f"loss.class_weights.{unknown[0]}: not a class of the data ({listing(classes)})"
            )
        weights = [1.0] * len(classes)
        for label, weight in rule.items():
            weights[names[str(label)]] = float(weight)
        return weights
    counts = np.bincount(y.astype(np.int64), minlength=len(classes))
    if not counts.all():
        missing = classes[int(np.flatnonzero(counts == 0)[0])]
        raise ConfigError(
            f"loss.class_weights: balanced needs every class in the training split, and "
            f"class {missing} has no sample there"
        )
    balanced = compute_class_weight("balanced", classes=np.arange(len(classes)), y=y)
    return [float(w) for w in balanced]


def _balanced_pos_weight(y: np.ndarray) -> float | list[float]:
    t = y.reshape(len(y), -1)
    positives = t.sum(axis=0)
    if not positives.all() or not (len(t) - positives).all():
        raise ConfigError(
            "loss.pos_weight: balanced needs positive and negative targets of every output in "
            "the training split"
        )
    weights = [float(w) for w in (len(t) - positives) / positives]
    return weights[0] if len(weights) == 1 else weights
