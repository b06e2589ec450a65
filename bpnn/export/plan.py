"""The inference plan: what ``Model.predict`` computes, as plain arrays every format can write.

``Network.predict`` runs its layers in evaluation mode: dense layers, batch norm with its running
statistics, the activation, and dropout as the identity. Read in that order, the same function is::

    x'  = (x - input_offset) * input_factor                   the fitted input scaling
    a_0 = x';  a_l = g_l(a_{l-1} @ W_l + b_l)                  every hidden layer
    z_L = a_{L-1} @ W_L + b_L;  out = output(z_L)               the loss's output activation
    binary: [1 - out, out];  regression: out / target_factor + target_offset

A model trained on a table has its ``TableEncoding`` in the plan too (``encoding``): the step
before ``x`` that turns raw columns (numbers, strings, blanks) into the matrix ``x``, one-hot
categories and filled-in values (``bpnn/export/columns.py``). Without one, ``x`` is the input.

Batch norm in evaluation is an affine map per unit, so it folds into the dense layer before it::

    y = (z - mean) / sqrt(var + eps) * scale + shift,   z = a @ W (+ b)
    W' = W * s,   b' = (b - mean) * s + shift,   s = scale / sqrt(var + eps)

The folding runs in float64 from the engine's own arrays; each format rounds the result once to
the precision it computes in.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from bpnn.data.table import TableEncoding
from bpnn.errors import ExportError
from bpnn.model import Model
from bpnn.nn.activations import Activation, make_output_activation
from bpnn.nn.layers import ActivationLayer, BatchNorm, Dense, Dropout
from bpnn.nn.losses import ChainRule, Loss

T = TypeVar("T")


@dataclass(frozen=True)
class DenseLayer:
    """One affine map ``z = a @ weight + bias`` (weight ``(fan_in, fan_out)``, float64), followed
    by ``activation`` (a hidden layer) or by the plan's output (the last layer: ``None``)."""

    weight: np.ndarray
    bias: np.ndarray
    activation: Activation | None


@dataclass(frozen=True)
class InferencePlan:
    """A trained model as the formats need it: the scaling, the folded layers and the output.

    ``output`` is the loss's output activation with its options: ``softmax`` (cross-entropy),
    ``sigmoid`` (binary cross-entropy; binary: bpnn answers ``[1 - p, p]``), or any activation
    of ``model.output`` under a regression loss (regression: then the target scaling is
    inverted).
    ``encoding``: the table encoding of the raw columns (None: the model reads a matrix).
    """

    name: str
    task: str
    input_offset: np.ndarray
    input_factor: np.ndarray
    layers: list[DenseLayer]
    output: Activation
    target_offset: np.ndarray | None
    target_factor: np.ndarray | None
    classes: np.ndarray | None
    feature_names: list[str]
    target_name: str | None
    encoding: TableEncoding | None = None

    @property
    def n_features(self) -> int:
        return self.layers[0].weight.shape[0]

    @property
    def n_outputs(self) -> int:
        """Columns of the exported model's answer (binary: 2, as ``bpnn predict``)."""
        return 2 if self.task == "binary" else self.layers[-1].weight.shape[1]

    def describe(self) -> str:
        sizes = [self.n_features, *(layer.weight.shape[1] for layer in self.layers)]
        return " -> ".join(map(str, sizes))

    def metadata(self) -> dict[str, str]:
        """What travels with every exported file besides the numbers (all strings)."""
        from bpnn.version import __version__

        meta = {
            "bpnn_version": __version__,
            "name": self.name,
            "task": self.task,
            "feature_names": json.dumps(self.feature_names),
            "architecture": self.describe(),
        }
        if self.classes is not None:
            meta["classes"] = json.dumps(self.classes.tolist())
        if self.target_name is not None:
            meta["target_name"] = self.target_name
        if self.encoding is not None:  # the raw columns: kinds, categories, fill values
            meta["table_encoding"] = json.dumps(self.encoding.to_dict())
        return meta


def inference_plan(model: Model) -> InferencePlan:
    """The plan of ``model``: its layers walked in the order ``Network.forward`` runs them."""
    layers: list[DenseLayer] = []
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    for _, layer in model.network.layers:
        if isinstance(layer, Dense):
            if weight is not None:  # the previous dense layer had no activation: the output
                raise ExportError("model: two dense layers in a row without an activation")
            weight = np.asarray(layer.W, dtype=np.float64).copy()
            fan_out = weight.shape[1]
            bias = (
                np.zeros(fan_out)
                if layer.b is None
                else np.asarray(layer.b, dtype=np.float64).copy()
            )
        elif isinstance(layer, BatchNorm):
            assert weight is not None and bias is not None
            weight, bias = fold_batch_norm(weight, bias, layer)
        elif isinstance(layer, ActivationLayer):
            assert weight is not None and bias is not None
            layers.append(DenseLayer(weight, bias, layer.activation))
            weight = bias = None
        elif isinstance(layer, Dropout):
            continue  # the identity in evaluation mode
        else:
            raise ExportError(f"model: no export for the layer {type(layer).__name__}")
    if weight is None or bias is None:
        raise ExportError("model: the network does not end in a dense layer")
    layers.append(DenseLayer(weight, bias, None))

    target = model.target_scaling if model.task == "regression" else None
    return InferencePlan(
        name=model.config.name,
        task=model.task,
        input_offset=np.asarray(model.input_scaling.offset, dtype=np.float64),
        input_factor=np.asarray(model.input_scaling.factor, dtype=np.float64),
        layers=layers,
        output=output_activation(model.network.loss),
        target_offset=None if target is None else np.asarray(target.offset, dtype=np.float64),
        target_factor=None if target is None else np.asarray(target.factor, dtype=np.float64),
        classes=None if model.classes is None else np.asarray(model.classes).copy(),
        feature_names=list(model.feature_names),
        target_name=model.target_name,
        encoding=model.encoding,
    )


def output_activation(loss: Loss) -> Activation:
    """The activation ``loss`` applies to ``z_L``: a ``ChainRule``'s own (``model.output``, its
    options included), else the loss's (softmax, sigmoid, identity: none has options)."""
    if isinstance(loss, ChainRule):
        return loss.activation
    return make_output_activation(loss.output_activation)


def fold_batch_norm(
    weight: np.ndarray, bias: np.ndarray, norm: BatchNorm
) -> tuple[np.ndarray, np.ndarray]:
    """``W' = W * s`` and ``b' = (b - mean) * s + shift`` with ``s = scale / sqrt(var + eps)``:
    the dense layer and the evaluation-mode batch norm after it as one affine map."""
    mean = np.asarray(norm.running_mean, dtype=np.float64)
    var = np.asarray(norm.running_var, dtype=np.float64)
    s = np.asarray(norm.scale, dtype=np.float64) / np.sqrt(var + norm.eps)
    return weight * s, (bias - mean) * s + np.asarray(norm.shift, dtype=np.float64)


def activation_form(forms: Mapping[str, T], activation: Activation, key: str, fmt: str) -> T:
    """``forms[activation.name]``: how the format ``fmt`` writes ``activation``, or an
    ``ExportError`` naming the activation, the format and ``key`` (``model.activation`` or
    ``model.output``) when it has no exact form: never an approximation."""
    if activation.name not in forms:
        raise ExportError(
            f"{key}: --format {fmt} has no exact form of the activation {activation.name} "
            f"(it has {', '.join(forms)})"
        )
    return forms[activation.name]
