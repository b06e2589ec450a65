"""``bpnn explain``: one forward and one backward pass of a config's network, in numbers.

Every number comes from the engine itself: the forward pass and ``loss_and_gradients`` run as
in training (``CHECK`` mode: no dropout, batch statistics untouched), and ``Network.trace``
hands back what they computed, per dense layer ``l = 1 .. L`` (parameters ``"{l-1}.weight"``)::

    z^(l) = a^(l-1) W^(l) + b^(l)          a^(l) = g(z^(l))       a^(0) = x, the scaled input
    delta^(L) = a - t                       softmax + cross-entropy, sigmoid + binary CE (fused)
    delta^(L) = dL/da * g'(z^(L))           every other output (the general chain rule)
    delta^(l) = (delta^(l+1) W^(l+1)^T) * g'(z^(l))
    dL/dW^(l) = a^(l-1)^T delta^(l)         dL/db^(l) = sum over the batch of delta^(l)

With ``step`` the config's optimizer makes the update of one training step (its first
learning rate; a checkpoint's optimizer state and schedule when explaining a checkpoint).
``explain`` returns an ``Explanation``; ``bpnn.tools.explain_views`` shows it (``to_json``,
``to_text``, ``to_markdown``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bpnn import checkpoint as checkpoint_file
from bpnn.config import Config
from bpnn.errors import ConfigError, DataError
from bpnn.model import load_model, make_seeds
from bpnn.nn.layers import CHECK
from bpnn.nn.losses import ChainRule
from bpnn.nn.optimizers import OPTIMIZERS
from bpnn.nn.step import optimizer_step
from bpnn.run import build_model, build_optimizer, build_schedule, config_differences, load_data


@dataclass
class LayerTrace:
    """One dense layer's numbers: ``name`` is the parameter prefix ("0" for ``0.weight``)."""

    name: str
    activation: str
    weight: np.ndarray
    bias: np.ndarray | None
    z: np.ndarray
    a: np.ndarray
    delta: np.ndarray
    grad_weight: np.ndarray
    grad_bias: np.ndarray | None
    derivative: np.ndarray | None = None  # g'(z) of an element-wise activation
    output_gradient: np.ndarray | None = None  # dL/da at the output (general chain rule)


@dataclass
class Explanation:
    """One step of backpropagation in numbers (see the module docstring)."""

    config: Config
    input: np.ndarray
    targets: np.ndarray  # what the network reads: class indices, or (scaled) values
    labels: list[Any] | None  # the class labels of the targets (classification)
    classes: list[Any] | None
    loss: float
    l2: float
    layers: list[LayerTrace]
    rows: str  # which rows of the training split: "sample 0", "samples 0-3"
    source: str  # the config file or checkpoint explained
    fused: bool  # the output delta is the fused a - t
    lr: float | None = None
    optimizer: str | None = None
    optimizer_formula: str | None = None
    update: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)

    @property
    def loss_name(self) -> str:
        return self.config.loss.name

    @property
    def reduction(self) -> str:
        return str(self.config.loss.options.get("reduction", "mean"))


def explain(
    config: Config,
    *,
    sample: int = 0,
    batch: int | None = None,
    checkpoint: Path | None = None,
    step: bool = False,
    source: str = "",
    log: Callable[[str], None] | None = None,
) -> Explanation:
    """Run one forward and backward pass (and with ``step`` one update) of ``config``'s network
    at its initial weights, or at ``checkpoint``'s, on sample ``sample`` or the first ``batch``
    samples of the training split."""
    say = log or (lambda message: None)
    contents = None
    if checkpoint is not None:
        model = load_model(checkpoint)
        contents = checkpoint_file.load(checkpoint)
        differences = [
            key
            for key in config_differences(config.resolved(), model.config.resolved())
            if key != "name"
        ]
        if differences:
            shown = ", ".join(differences[:3]) + (" ..." if len(differences) > 3 else "")
            say(f"note: {checkpoint} differs from the config in {shown}; explained with its own")
        config = model.config
        source = str(checkpoint)
    if config.model.batch_norm:
        raise ConfigError(
            "model.batch_norm: explain shows networks without batch norm; "
            "check this one with 'bpnn gradcheck'"
        )
    data = load_data(config, say)
    if checkpoint is None:
        init_rng, _ = make_seeds(config.seed)
        model = build_model(config, data, init_rng)
    n = len(data.X_train)
    if batch is not None:
        if batch > n:
            raise DataError(f"--batch {batch}: the training split has {n} sample(s)")
        index, rows = np.arange(batch), f"samples 0-{batch - 1}" if batch > 1 else "sample 0"
    else:
        if not 0 <= sample < n:
            raise DataError(f"--sample {sample}: the training split has samples 0..{n - 1}")
        index, rows = np.array([sample]), f"sample {sample}"
    X, y = data.X_train[index], data.y_train[index]

    network = model.network
    l2 = config.l2_penalty()
    loss = network.loss_and_gradients(X, y, l2=l2, mode=CHECK)
    blocks = network.trace()
    params = network.parameters()
    hidden = [c.name for c in config.model.hidden_activations()]
    output_name = network.loss.output_activation
    layers = []
    for i, block in enumerate(blocks):
        name = str(i)
        activation = hidden[i] if i < len(hidden) else output_name
        derivative = None
        output_gradient = None
        if i < len(hidden):
            g = network.activations[i]
            derivative = g.derivative(block["z"], block["a"])
        elif isinstance(network.loss, ChainRule):
            output_gradient = network.loss.output_gradient(block["a"], y)
            if network.loss.activation.name != "softmax":
                derivative = network.loss.activation.derivative(block["z"], block["a"])
        layers.append(
            LayerTrace(
                name=name,
                activation=activation,
                weight=params[f"{name}.weight"].copy(),
                bias=None if f"{name}.bias" not in params else params[f"{name}.bias"].copy(),
                z=block["z"],
                a=block["a"],
                delta=block["delta"],
                grad_weight=block["grad_weight"],
                grad_bias=block.get("grad_bias"),
                derivative=derivative,
                output_gradient=output_gradient,
            )
        )
    classes = None if model.classes is None else [_plain(c) for c in model.classes]
    labels = (
        None
        if classes is None or model.task == "multilabel"  # 0/1 columns, shown as they are
        else [classes[int(k)] for k in np.asarray(y).ravel()]
    )
    explanation = Explanation(
        config=config,
        input=X,
        targets=y,
        labels=labels,
        classes=classes,
        loss=loss,
        l2=l2,
        layers=layers,
        rows=rows,
        source=source,
        fused=not isinstance(network.loss, ChainRule),
    )
    if step:
        optimizer = build_optimizer(config, network)
        schedule = build_schedule(config)
        epoch = 0
        if contents is not None:
            optimizer.load_state_dict(contents.optimizer)
            schedule.load_state_dict(contents.schedule)
            epoch = contents.epoch
        lr = float(schedule.learning_rate(epoch))
        old = {k: v.copy() for k, v in params.items()}
        optimizer_step(network, optimizer, lr, config.train.grad_clip)  # as the trainer steps
        grads = {k: v.copy() for k, v in network.gradients().items()}  # clipped, as used
        explanation.update = {
            k: {"old": old[k], "grad": grads[k], "new": params[k].copy()} for k in params
        }
        explanation.lr = lr
        explanation.optimizer = config.optimizer.name
        explanation.optimizer_formula = OPTIMIZERS[config.optimizer.name].update_rule
    return explanation


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
