"""scikit-learn export: a fitted ``Pipeline`` of the input scaling and an ``MLPClassifier`` or
``MLPRegressor``, saved with skops (no pickle); for a model trained on a table, the table
encoding in front, as a ``ColumnTransformer`` that takes the raw ``DataFrame``.

scikit-learn's MLP has one activation for all hidden layers, among ``identity``, ``logistic``,
``tanh`` and ``relu``, and the output its task implies: softmax over three or more classes,
logistic for two, identity for regression; another output activation (``model.output``) is
refused (``output_activation``). The plan maps onto it as follows:

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

A file with a ``SimpleImputer`` holds one type that ``skops.io.load`` does not trust by default,
``numpy.dtype`` (the dtype it records at fit: data, no code): ``SKOPS_TRUSTED``.

The weights are kept in float64, so scikit-learn computes in float64 from the float32 weights.

The table encoding (``encoding``, first step) has one entry per raw column, picked by name
(other columns of the frame, the target say, are left alone), fitted on one row of fill values
with the categories given, so each step holds exactly bpnn's numbers:

- numeric: a ``SimpleImputer(strategy="mean")`` fitted on the fill value (every missing value
  becomes that value, ``statistics_`` is it), or ``passthrough`` without a fill;
- categorical: ``OrdinalEncoder`` (bpnn's categories, a missing value NaN, an unknown one -1 or
  an error as ``data.unknown_category`` says), a ``SimpleImputer(strategy="most_frequent")``
  fitted on the fill's index, and a ``OneHotEncoder`` of the indices (-1 matches none: all
  zeros). Categories are the cells as pandas reads them (``columns.category_values``): numbers
  as floats, sorted as numbers, so the one-hot block of such a column comes in another order
  than bpnn's (text order); the scaler and the first layer are permuted to match (``order``);
- a column the model cannot fill gets, beside its value, a ``MissingIndicator(error_on_new=
  True)`` that outputs nothing and raises on a missing value, as ``bpnn predict`` refuses it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bpnn.data.table import ColumnEncoding, TableEncoding
from bpnn.errors import ExportError
from bpnn.export.columns import category_values
from bpnn.export.extras import require
from bpnn.export.plan import InferencePlan

#: the types of an exported file that skops does not trust by default (load it with
#: ``skops.io.load(path, trusted=SKOPS_TRUSTED)``); a model trained on arrays has none
SKOPS_TRUSTED = ["numpy.dtype"]

#: ColumnTransformer's own parameters, which a transformer may not be named after
_TAKEN_NAMES = {
    "transformers",
    "remainder",
    "sparse_threshold",
    "n_jobs",
    "transformer_weights",
    "verbose",
    "verbose_feature_names_out",
    "force_int_remainder_cols",
}

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


#: the outputs scikit-learn's MLPs compute: engine name -> its name, per kind of MLP
SKLEARN_OUTPUTS = {
    "MLPRegressor": {"identity": "identity"},
    "MLPClassifier": {"softmax": "softmax", "sigmoid": "logistic"},
}


def output_activation(plan: InferencePlan) -> str:
    """The engine's name of the output activation of ``plan`` if scikit-learn's MLP for its task
    computes it (a regressor the identity, a classifier softmax or logistic), else an
    ``ExportError`` naming it: a regression's target scaling, folded into the last layer, holds
    only before the identity."""
    kind = "MLPRegressor" if plan.task == "regression" else "MLPClassifier"
    if plan.output.name not in SKLEARN_OUTPUTS[kind]:
        raise ExportError(
            f"model.output: scikit-learn's {kind} has no {plan.output.name} output "
            f"(it has {', '.join(SKLEARN_OUTPUTS[kind])}); export to onnx or torch instead"
        )
    return plan.output.name


def _fill_step(strategy: str) -> Any:
    """A ``SimpleImputer`` that, fitted on one row holding the column's fill value, turns every
    missing value (NaN) into that value: the mean (a number) or the most frequent value (a
    category's index) of one row is the row's value, exactly. (``strategy="constant"`` would
    refuse, at transform, the integer column pandas reads from a column without blanks.)"""
    from sklearn.impute import SimpleImputer

    return SimpleImputer(strategy=strategy)


def _refusing_missing(step: Any) -> Any:
    """``step`` beside a ``MissingIndicator`` that outputs nothing and raises on a missing
    value (fitted on a row without one): for a column the model cannot fill."""
    from sklearn.impute import MissingIndicator
    from sklearn.pipeline import FeatureUnion

    check = MissingIndicator(features="missing-only", error_on_new=True)
    return FeatureUnion([("value", step), ("no_missing", check)])


def _column_steps(column: ColumnEncoding, unknown: str, start: int) -> tuple[Any, list[int]]:
    """The transformer of one raw column, and which of bpnn's inputs (counted from ``start``)
    each of its output columns is."""
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

    if column.kind == "numeric":
        step = _refusing_missing("passthrough") if column.fill is None else _fill_step("mean")
        return step, [start]
    values = category_values(column)
    # numbers must be sorted for scikit-learn: the one-hot columns come in their order
    position = sorted(range(len(values)), key=lambda i: values[i])
    known = [values[i] for i in position]
    numbers = all(isinstance(v, float) for v in values)
    codes = OrdinalEncoder(
        categories=[np.array([*known, np.nan], dtype=np.float64 if numbers else object)],
        handle_unknown="error" if unknown == "error" else "use_encoded_value",
        unknown_value=None if unknown == "error" else -1,
        encoded_missing_value=np.nan,
    )
    one_hot = OneHotEncoder(
        categories=[np.arange(len(values), dtype=np.float64)],
        handle_unknown="ignore",  # -1, an unknown category under ``ignore``: all zeros
        sparse_output=False,
    )
    if column.fill is None:
        steps = [("codes", codes), ("one_hot", _refusing_missing(one_hot))]
    else:
        steps = [("codes", codes), ("fill", _fill_step("most_frequent")), ("one_hot", one_hot)]
    return Pipeline(steps), [start + i for i in position]


def build_encoding(encoding: TableEncoding) -> tuple[Any, np.ndarray]:
    """The fitted ``ColumnTransformer`` of ``encoding`` (raw DataFrame in, features out), and
    ``order``: output column ``j`` is bpnn's input ``order[j]``."""
    import pandas as pd
    from sklearn.compose import ColumnTransformer

    transformers: list[tuple[str, Any, list[str]]] = []
    order: list[int] = []
    first_row: dict[str, list[Any]] = {}  # each column's fill value (or any category, or 0)
    for i, column in enumerate(encoding.columns):
        label = column.name
        if "__" in label or label in _TAKEN_NAMES:  # names scikit-learn refuses
            label = f"column_{i}"
        step, inputs = _column_steps(column, encoding.unknown_category, len(order))
        transformers.append((label, step, [column.name]))
        order += inputs
        if column.kind == "numeric":
            first_row[column.name] = [0.0 if column.fill is None else float(column.fill)]
        else:
            values = category_values(column)
            fill = column.categories.index(str(column.fill)) if column.fill is not None else 0
            first_row[column.name] = [values[fill]]
    # the categories are given; the imputers learn the one row's fill values (a category's
    # index, once through the OrdinalEncoder); the MissingIndicators, that nothing is missing
    fitted = ColumnTransformer(transformers, remainder="drop").fit(pd.DataFrame(first_row))
    return fitted, np.asarray(order)


def build_sklearn(plan: InferencePlan) -> Any:
    """The fitted ``Pipeline([("input_scaling", StandardScaler), ("mlp", MLP...)])``, with
    ``("encoding", ColumnTransformer)`` first for a model trained on a table."""
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import LabelBinarizer, StandardScaler

    activation = hidden_activation(plan)
    output = output_activation(plan)
    encoding, order = None, np.arange(plan.n_features)
    if plan.encoding is not None:
        encoding, order = build_encoding(plan.encoding)
    coefs = [layer.weight.copy() for layer in plan.layers]
    coefs[0] = coefs[0][order]
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
        if output == "softmax" and len(plan.classes) == 2:
            coefs[-1] = coefs[-1][:, 1:] - coefs[-1][:, :1]
            intercepts[-1] = intercepts[-1][1:] - intercepts[-1][:1]
        # sigmoid outputs (one per class, or one per label) stay logistic: predict_proba gives
        # them as they are, predict the largest (the labels over 0.5 for multi-label)
        several = coefs[-1].shape[1] > 1
        mlp.out_activation_ = "softmax" if several and output == "softmax" else "logistic"
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
    scaler.mean_ = plan.input_offset[order].copy()
    scaler.scale_ = 1.0 / plan.input_factor[order]
    scaler.var_ = scaler.scale_**2
    scaler.n_features_in_ = plan.n_features
    scaler.n_samples_seen_ = 0
    steps = [("input_scaling", scaler), ("mlp", mlp)]
    return Pipeline(steps if encoding is None else [("encoding", encoding), *steps])


def sklearn_bytes(plan: InferencePlan) -> bytes:
    """The pipeline as a skops file (load it with ``skops.io.load``)."""
    pipeline = build_sklearn(plan)  # an unmappable network fails before the extra is asked for
    skops_io = require("skops.io", "sklearn")
    return skops_io.dumps(pipeline)
