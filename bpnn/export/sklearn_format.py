"""scikit-learn export: a fitted ``Pipeline`` of the input scaling and an ``MLPClassifier`` or
``MLPRegressor``, saved with skops (no pickle).

scikit-learn's MLP has one activation for all hidden layers, among ``identity``, ``logistic``,
``tanh`` and ``relu``, and the output its task implies: softmax over three or more classes,
logistic for two, identity for regression. The plan maps onto it as follows:

- input scaling: a ``StandardScaler`` whose ``mean_`` is the offset and ``scale_`` is
  ``1 / factor``: its ``(x - mean_) / scale_`` is bpnn's ``(x - offset) * factor``;
- hidden layers: ``coefs_`` (fan_in, fan_out) and ``intercepts_``, batch norm folded in;
- a softmax over two classes becomes the logistic of the difference of its two logits,
  ``softmax(z)_1 = sigmoid(z_1 - z_0)``, since scikit-learn has one output unit for two classes;
- several sigmoid outputs (one per class with one-hot targets) stay logistic, each its own
  probability;
- multi-label (several sigmoid outputs): scikit-learn's multi-label classifier, logistic
  outputs and 0/1 indicator rows, its labels the column numbers ``0 .. k-1``;
- regression: the target scaling is folded into the last layer,
  ``z / factor + offset = a @ (W / factor) + (b / factor + offset)``.

The weights are kept in float64, so scikit-learn computes in float64 from the float32 weights.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bpnn.errors import ExportError
from bpnn.export.extras import require
from bpnn.export.plan import InferencePlan

#: engine activation name -> scikit-learn's name for the same function
SKLEARN_ACTIVATIONS = {
    "identity": "identity",
    "sigmoid": "logistic",
    "tanh": "tanh",
    "relu": "relu",
}


def hidden_activation(plan: InferencePlan) -> str:
    """scikit-learn's name for the one hidden activation of ``plan``, or an ``ExportError``
    naming the part that does not map."""
    names = list(dict.fromkeys(layer.activation.name for layer in plan.layers if layer.activation))
    if len(names) > 1:
        raise ExportError(
            "model.activations: scikit-learn's MLP has one hidden activation for all layers, "
            f"this network has {', '.join(names)}"
        )
    if not names:  # no hidden layer: the activation is never used
        return "identity"
    if names[0] not in SKLEARN_ACTIVATIONS:
        raise ExportError(
            f"model.activation: scikit-learn's MLP has no {names[0]} "
            f"(it has {', '.join(SKLEARN_ACTIVATIONS.values())}); export to onnx or torch instead"
        )
    return SKLEARN_ACTIVATIONS[names[0]]


def build_sklearn(plan: InferencePlan) -> Any:
    """The fitted ``Pipeline([("input_scaling", StandardScaler), ("mlp", MLP...)])``."""
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import LabelBinarizer, StandardScaler

    activation = hidden_activation(plan)
    coefs = [layer.weight.copy() for layer in plan.layers]
    intercepts = [layer.bias.copy() for layer in plan.layers]
    hidden_sizes = tuple(w.shape[1] for w in coefs[:-1])

    mlp: Any
    if plan.task == "regression":
        mlp = MLPRegressor(hidden_layer_sizes=hidden_sizes, activation=activation)
        mlp.out_activation_ = "identity"
        if plan.target_factor is not None and plan.target_offset is not None:
            coefs[-1] = coefs[-1] / plan.target_factor
            intercepts[-1] = intercepts[-1] / plan.target_factor + plan.target_offset
    else:
        assert plan.classes is not None
        mlp = MLPClassifier(hidden_layer_sizes=hidden_sizes, activation=activation)
        if plan.output == "softmax" and len(plan.classes) == 2:
            coefs[-1] = coefs[-1][:, 1:] - coefs[-1][:, :1]
            intercepts[-1] = intercepts[-1][1:] - intercepts[-1][:1]
        # sigmoid outputs (one per class, or one per label) stay logistic: predict_proba gives
        # them as they are, predict the largest (the labels over 0.5 for multi-label)
        several = coefs[-1].shape[1] > 1
        mlp.out_activation_ = "softmax" if several and plan.output == "softmax" else "logistic"
        mlp._label_binarizer = LabelBinarizer().fit(plan.classes)
        if plan.task == "multilabel":  # scikit-learn's own multi-label MLP: 0/1 indicator rows
            mlp._label_binarizer = LabelBinarizer().fit(np.eye(len(plan.classes), dtype=int))
        mlp.classes_ = mlp._label_binarizer.classes_
    mlp.coefs_ = coefs
    mlp.intercepts_ = intercepts
    mlp.n_layers_ = len(coefs) + 1
    mlp.n_outputs_ = coefs[-1].shape[1]
    mlp.n_features_in_ = plan.n_features
    mlp.n_iter_ = 0

    scaler = StandardScaler()
    scaler.mean_ = plan.input_offset.copy()
    scaler.scale_ = 1.0 / plan.input_factor
    scaler.var_ = scaler.scale_**2
    scaler.n_features_in_ = plan.n_features
    scaler.n_samples_seen_ = 0
    return Pipeline([("input_scaling", scaler), ("mlp", mlp)])


def sklearn_bytes(plan: InferencePlan) -> bytes:
    """The pipeline as a skops file (load it with ``skops.io.load``)."""
    pipeline = build_sklearn(plan)  # an unmappable network fails before the extra is asked for
    skops_io = require("skops.io", "sklearn")
    return skops_io.dumps(pipeline)
