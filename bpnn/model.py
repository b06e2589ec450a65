"""``Model``: a trained network together with what it needs to meet raw data.

The engine's ``Network`` sees scaled features and class indices. A ``Model`` adds the fitted input
scaling, the target scaling of a regression, the class labels, the table encoding of a CSV or
Parquet source (categories, imputed values) and the resolved config, so that ``predict`` takes
the same raw features the data set had (a table of raw columns, or the encoded matrix) and
answers in the data's own terms.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bpnn import checkpoint
from bpnn.checkpoint import CheckpointContents
from bpnn.config import Config, parse_yaml, short, validate
from bpnn.data.sources import ModelInputs, listing
from bpnn.data.table import TableEncoding
from bpnn.errors import BpnnError, CheckpointError, ConfigError, DataError, MemoryLimitError
from bpnn.nn.activations import make_activation, make_output_activation
from bpnn.nn.initializers import BIAS_INITIALIZERS, INITIALIZERS
from bpnn.nn.losses import Loss, make_loss, with_output
from bpnn.nn.network import Network
from bpnn.readers import npz_headers, read_npz
from bpnn.scaling import Scaling


def make_seeds(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """Independent generators for weight initialization (and dropout) and for shuffling."""
    init_seq, shuffle_seq = np.random.SeedSequence(seed).spawn(2)
    return np.random.default_rng(init_seq), np.random.default_rng(shuffle_seq)


def network_loss(config: Config, classes: Sequence[Any] | None, task: str | None = None) -> Loss:
    """The config's loss as a network for data of these ``classes`` (None: regression) uses
    it: with the output activation ``model.output`` (``auto``: the loss's own), reading one-hot
    rows of the class indices with ``data.one_hot`` and several 0/1 target columns for a
    ``multilabel`` task (``task``, default ``config.task``).

    The one place where the loss meets a data set (every command that builds a network passes
    here: train, config check, explain, gradcheck, lr-find, resume, a checkpoint's loading), so
    that a loss option that does not fit the data is refused by all in the same words:
    ``loss.class_weights`` not one weight per class is a ``ConfigError`` naming both counts."""
    weights = config.loss.options.get("class_weights")
    if weights is not None and classes is not None and len(weights) != len(classes):
        raise ConfigError(
            f"loss.class_weights: has {len(weights)} entries, but the data has "
            f"{len(classes)} classes ({listing(classes)}); give one weight per class, in "
            "that order"
        )
    positive = config.loss.options.get("pos_weight")
    if isinstance(positive, list) and classes is not None:
        several = config.data.one_hot or (task or config.task) == "multilabel"
        outputs = len(classes) if several else 1
        if len(positive) != outputs:
            raise ConfigError(
                f"loss.pos_weight: has {len(positive)} entries, but the network has {outputs} "
                f"outputs ({listing(classes) if several else 'one, for class 1'}); give one "
                "number, or one per output"
            )
    output = config.model.output
    loss = make_loss(config.loss.name, **config.loss.options)
    rule = loss.unresolved_weights
    if rule is not None:  # resolve_loss_weights has not seen it: a config edited by hand
        raise ConfigError(f"loss: the weights {short(rule)} were never resolved for a data set")
    return with_output(
        loss,
        None if output.name == "auto" else make_output_activation(output.name, **output.options),
        one_hot=config.data.one_hot,
        multi_label=(task or config.task) == "multilabel",
    )


def build_network(
    config: Config,
    n_inputs: int,
    classes: Sequence[Any] | None,
    n_targets: int,
    rng: np.random.Generator,
    dtype: np.dtype | type | None = None,
    task: str | None = None,
) -> Network:
    """The network a config describes for ``n_inputs`` features and the data's ``classes``
    (None: regression), initialized from ``rng`` (weights from ``model.init``, biases from
    ``model.bias_init``), with the loss of ``network_loss``."""
    loss = network_loss(config, classes, task)
    n_outputs = loss.output_size(None if classes is None else len(classes), n_targets)

    def initializer(registry: dict[str, Any], component: Any) -> Any:
        init, options = registry[component.name], component.options

        def draw(
            rng: np.random.Generator, shape: tuple[int, ...], fan_in: int, fan_out: int
        ) -> np.ndarray:
            return init(rng, shape, fan_in, fan_out, **options)

        return draw

    return Network(
        [n_inputs, *config.model.hidden, n_outputs],
        [make_activation(c.name, **c.options) for c in config.model.hidden_activations()],
        loss,
        weight_init=initializer(INITIALIZERS, config.model.init),
        bias_init=initializer(BIAS_INITIALIZERS, config.model.bias_init),
        rng=rng,
        batch_norm=config.model.batch_norm,
        dropout=config.model.dropout_rates(),
        dtype=np.dtype(dtype or config.train.dtype),
    )


def read_weights(path: str | Path) -> dict[str, np.ndarray]:
    """The tensors of a weights file, by name (``"0.weight"``, ``"0.bias"``, ...), told apart
    by content: a bpnn checkpoint (its parameters), any other NPZ archive (its arrays), or a
    YAML mapping of names to nested lists. Problems are one-line ``ConfigError``s."""
    where = f"model.initial_weights: {path}"
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{where}: no such file")
    if zipfile.is_zipfile(path):
        try:
            if {"format", "meta"} <= set(npz_headers(path)):  # a bpnn checkpoint
                return checkpoint.load(path).params
            return read_npz(path)
        except MemoryLimitError:
            raise
        except BpnnError as error:
            raise ConfigError(f"model.initial_weights: {error}") from None
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{where}: neither an NPZ archive nor YAML text ({error})") from None
    raw = parse_yaml(text, str(path))
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping of tensor names to nested lists")
    tensors = {}
    for name, value in raw.items():
        try:
            tensors[str(name)] = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: {name} is not a (nested) list of numbers") from None
    return tensors


def set_initial_weights(network: Network, path: str | Path) -> None:
    """Replace ``network``'s parameters with those of the weights file ``path`` (see
    ``read_weights``): every tensor of the network must be there, with the network's shape
    (weights (fan_in, fan_out), biases (fan_out,)); a mismatch names the tensor and both
    shapes."""
    tensors = read_weights(path)
    own = network.parameters()
    where = f"model.initial_weights: {path}"
    missing = [name for name in own if name not in tensors]
    if missing:
        raise ConfigError(f"{where}: has no {missing[0]} (the network's tensors: {', '.join(own)})")
    extra = sorted(name for name in tensors if name not in own)
    if extra:
        raise ConfigError(
            f"{where}: has {extra[0]}, which the network does not (its tensors: {', '.join(own)})"
        )
    for name, value in tensors.items():
        if value.shape != own[name].shape:
            raise ConfigError(
                f"{where}: {name} has shape {value.shape}, the config's network needs "
                f"{own[name].shape}"
            )
        if not np.all(np.isfinite(value)):
            raise ConfigError(f"{where}: {name} holds NaN or infinite values")
    for name, value in tensors.items():
        own[name][...] = value


class Model:
    """A network with its data conventions. Built by the trainer or by ``bpnn.load_checkpoint``."""

    def __init__(
        self,
        network: Network,
        config: Config,
        *,
        input_scaling: Scaling,
        target_scaling: Scaling | None = None,
        classes: np.ndarray | None = None,
        feature_names: list[str] | None = None,
        target_name: str | list[str] | None = None,
        encoding: TableEncoding | None = None,
        epoch: int = 0,
        metrics: dict[str, Any] | None = None,
    ) -> None:
        self.network = network
        self.config = config
        self.input_scaling = input_scaling
        self.target_scaling = target_scaling
        self.classes = classes
        self.feature_names = feature_names or [f"x{i}" for i in range(network.sizes[0])]
        #: a table's target column(s): one name, or several for a multi-label model (a
        #: checkpoint's ``target_name`` is the one name, or the list of them)
        self.target_names: list[str] = (
            []
            if target_name is None
            else [target_name]
            if isinstance(target_name, str)
            else list(target_name)
        )
        self.encoding = encoding
        self.epoch = epoch
        self.metrics = metrics or {}

    @property
    def target_name(self) -> str | None:
        """The table's one target column (None without one, and for several target columns:
        see ``target_names``)."""
        return self.target_names[0] if len(self.target_names) == 1 else None

    @property
    def task(self) -> str:
        """``multiclass``, ``binary``, ``multilabel`` or ``regression``."""
        return self.network.loss.task

    @property
    def n_features(self) -> int:
        return self.network.sizes[0]

    @property
    def inputs(self) -> ModelInputs:
        """What new samples for this model must be: its raw columns, width, target column(s),
        table encoding and data section (``bpnn.data.new_samples`` reads them so)."""
        return ModelInputs(
            self.feature_names, self.n_features, self.target_names, self.encoding, self.config.data
        )

    def encode(self, table: Any) -> np.ndarray:
        """A table of raw columns (a pandas DataFrame with the model's feature columns by name;
        others are ignored) as the float64 features the scaling reads: one-hot categories and
        imputed values, as fitted on the training split. A row with a missing value that the
        model cannot fill (``data.missing`` was not ``impute``) is a ``DataError``."""
        encoding = self.encoding or TableEncoding.numeric(self.feature_names)
        absent = [name for name in encoding.column_names if name not in table.columns]
        if absent:
            raise DataError(f"table: missing column(s) {', '.join(absent)} the model needs")
        X, kept = encoding.transform(table, "table")
        if kept is not None:
            raise DataError(
                f"table: {int((~kept).sum())} row(s) with missing values, which the model "
                "cannot fill (it was trained with data.missing: drop)"
            )
        return X

    def _inputs(self, X: Any) -> np.ndarray:
        if hasattr(X, "columns"):  # a table of raw columns
            X = self.encode(X)
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"expected inputs of shape (n, {self.n_features}), got {X.shape}")
        return self.input_scaling.apply(X, self.network.dtype)

    def scaled_inputs(self, X: np.ndarray, source: str) -> np.ndarray:
        """The network's inputs for raw features ``X``: scaled and in its dtype. A value that
        becomes infinite there (1e300 in float32) is a ``DataError`` naming ``source``, not a
        NaN prediction."""
        with np.errstate(over="ignore", invalid="ignore"):
            scaled = self._inputs(X)
        bad = ~np.isfinite(scaled)
        if bad.any():
            columns = [self.feature_names[j] for j in np.flatnonzero(bad.any(axis=0))[:5]]
            raise DataError(
                f"{source}: {int(bad.sum())} value(s) beyond the {self.network.dtype.name} range "
                f"once scaled, in column(s) {', '.join(columns)}; rescale them"
            )
        return scaled

    def targets(self, y: np.ndarray) -> np.ndarray:
        """Targets as the network reads them: class indices, 0/1 columns (multi-label), or
        values in the scaled units."""
        if self.task == "multilabel":
            y = np.asarray(y, dtype=self.network.dtype)
            return y.reshape(len(y), -1)
        if self.task == "regression":
            y = np.asarray(y, dtype=np.float64)
            y = y.reshape(len(y), -1)
            if self.target_scaling is not None:
                return self.target_scaling.apply(y, self.network.dtype)
            return y.astype(self.network.dtype)
        return np.asarray(y, dtype=np.int64)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities ``(n, classes)`` (binary: ``(n, 2)``; multi-label: each label's
        own probability, ``(n, labels)``), or values ``(n, targets)`` in the data's own units,
        for raw features ``X`` of shape ``(n, features)`` or a table of raw columns (a pandas
        DataFrame, encoded by ``encode``)."""
        return self.predict_scaled(self._inputs(X))

    def predict_scaled(self, inputs: np.ndarray) -> np.ndarray:
        """``predict`` for inputs already scaled (``scaled_inputs``), so that they are not
        scaled twice."""
        out = self.network.predict(inputs)
        if self.task == "binary":
            return np.hstack([1 - out, out])
        if self.task == "regression" and self.target_scaling is not None:
            return self.target_scaling.invert(out)
        return out

    def predict_labels(self, X: np.ndarray) -> np.ndarray:
        """The most probable class label of each sample (classification only); for a
        multi-label model a boolean ``(n, labels)`` matrix: which labels apply (``p > 0.5``)."""
        if self.classes is None:
            raise ValueError("predict_labels needs a classification model")
        if self.task == "multilabel":
            return self.predict(X) > 0.5
        return self.classes[self.predict(X).argmax(axis=1)]

    def parameters(self) -> dict[str, np.ndarray]:
        """Every trainable tensor by name: ``"{i}.weight"``, ``"{i}.bias"``, ... (views)."""
        return self.network.parameters()

    def loss_and_gradients(
        self, X: np.ndarray, y: np.ndarray
    ) -> tuple[float, dict[str, np.ndarray]]:
        """The data loss of the batch and ``dL/dparameter`` for every parameter (copies), for raw
        features ``X`` and targets ``y`` (class indices, or values in the data's units).
        Deterministic and free of side effects: no dropout, batch-norm statistics not updated."""
        loss = self.network.loss_and_gradients(self._inputs(X), self.targets(y))
        return loss, {name: g.copy() for name, g in self.network.gradients().items()}

    def __repr__(self) -> str:
        arch = " -> ".join(str(n) for n in self.network.sizes)
        return f"Model({arch}, loss={self.network.loss.name}, epoch={self.epoch})"


def model_contents(model: Model, **extra: Any) -> Any:
    """The ``CheckpointContents`` of a model (``extra``: optimizer, schedule, trainer, metrics)."""
    target = model.target_scaling
    return CheckpointContents(
        config=model.config.resolved(),
        epoch=model.epoch,
        task=model.task,
        params={k: v.copy() for k, v in model.parameters().items()},
        buffers={k: v.copy() for k, v in model.network.buffers().items()},
        input_offset=model.input_scaling.offset,
        input_factor=model.input_scaling.factor,
        target_offset=None if target is None else target.offset,
        target_factor=None if target is None else target.factor,
        classes=model.classes,
        feature_names=model.feature_names,
        target_name=model.target_name if len(model.target_names) < 2 else model.target_names,
        table=None if model.encoding is None else model.encoding.to_dict(),
        **extra,
    )


def _check_scaling(path: Any, name: str, offset: Any, factor: Any, width: int) -> None:
    """A stored scaling must be two finite float vectors of the layer's width, factor non-zero."""
    for part, array in (("offset", offset), ("factor", factor)):
        if array.shape != (width,) or array.dtype.kind != "f":
            raise CheckpointError(
                f"{path}: scaling/{name}_{part} has shape {array.shape} and dtype {array.dtype}, "
                f"expected ({width},) floats"
            )
        if not np.all(np.isfinite(array)):
            raise CheckpointError(f"{path}: scaling/{name}_{part} holds NaN or infinite values")
    if np.any(factor == 0):
        raise CheckpointError(f"{path}: scaling/{name}_factor holds zeros")


def load_model(path: Any) -> Model:
    """Rebuild the ``Model`` saved in a checkpoint file."""
    contents = checkpoint.load(path)
    try:
        config = validate(contents.config, source=f"{path} (config)")
    except ConfigError as error:
        raise CheckpointError(str(error)) from None
    params = contents.params
    n_layers = len(config.model.hidden) + 1
    for name in ("0.weight", f"{n_layers - 1}.weight"):
        if name not in params:
            raise CheckpointError(f"{path}: parameter '{name}' missing")
        if params[name].ndim != 2:
            raise CheckpointError(
                f"{path}: {name} has shape {params[name].shape}, expected a matrix"
            )
    n_inputs = params["0.weight"].shape[0]
    n_outputs = params[f"{n_layers - 1}.weight"].shape[1]
    if contents.classes is None and config.task != "regression":
        raise CheckpointError(f"{path}: classes missing (a {config.task} model needs them)")
    # an npz's 0/1 columns make a multi-label run that its config alone does not show when the
    # file is gone: the checkpoint's saved task says so
    task = "multilabel" if contents.task == "multilabel" else config.task
    try:  # its sizes come from the file (the weights, the classes): none is no network
        network = build_network(
            config, n_inputs, contents.classes, n_outputs, np.random.default_rng(0), task=task
        )
    except ValueError as error:
        raise CheckpointError(f"{path}: its arrays make no network: {error}") from None
    own = network.parameters()
    if set(own) != set(params):
        raise CheckpointError(
            f"{path}: parameters {sorted(params)} do not match the config's {sorted(own)}"
        )
    for name, value in params.items():
        if own[name].shape != value.shape:
            raise CheckpointError(
                f"{path}: {name} has shape {value.shape}, the config needs {own[name].shape}"
            )
        if not np.all(np.isfinite(value)):
            raise CheckpointError(f"{path}: {name} holds NaN or infinite values")
        own[name][...] = value
    try:
        network.load_buffers(contents.buffers)
    except ValueError as error:
        raise CheckpointError(f"{path}: {error}") from None
    if contents.input_offset is None or contents.input_factor is None:
        raise CheckpointError(f"{path}: input scaling missing")
    _check_scaling(path, "input", contents.input_offset, contents.input_factor, n_inputs)
    target = None
    if contents.target_offset is not None and contents.target_factor is not None:
        _check_scaling(path, "target", contents.target_offset, contents.target_factor, n_outputs)
        target = Scaling(contents.target_offset, contents.target_factor)
    if contents.classes is not None and (
        contents.classes.ndim != 1 or network.sizes[-1] not in (len(contents.classes), 1)
    ):
        raise CheckpointError(
            f"{path}: classes has shape {contents.classes.shape}, the network has "
            f"{network.sizes[-1]} outputs"
        )
    encoding = None
    if contents.table is not None:
        try:
            encoding = TableEncoding.from_dict(contents.table)
        except (KeyError, TypeError, ValueError) as error:
            raise CheckpointError(f"{path}: corrupt table encoding ({error})") from None
        if encoding.n_features != n_inputs:
            raise CheckpointError(
                f"{path}: the table encoding gives {encoding.n_features} inputs, "
                f"the network takes {n_inputs}"
            )
    return Model(
        network,
        config,
        input_scaling=Scaling(contents.input_offset, contents.input_factor),
        target_scaling=target,
        classes=contents.classes,
        feature_names=contents.feature_names,
        target_name=contents.target_name,
        encoding=encoding,
        epoch=contents.epoch,
        metrics=contents.metrics,
    )
