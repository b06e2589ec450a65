"""The sections of a config as pydantic models, each default written once: ``Config`` and its
``model``, ``loss``, ``optimizer``, ``schedule`` and ``train`` sections (``data`` is
``bpnn.data.options``).
"""

from __future__ import annotations

import inspect
import re
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from bpnn.config.reading import dump_yaml
from bpnn.data import SOURCES
from bpnn.data.options import DataConfig
from bpnn.metrics import is_headline
from bpnn.nn.losses import LOSSES
from bpnn.nn.optimizers import OPTIMIZERS
from bpnn.schema import Fraction, NonNegativeFloat, PositiveFloat, PositiveInt, Section


class Component(Section):
    """A named engine component with options: ``relu`` or ``{name: leaky_relu, slope: 0.1}``."""

    name: str
    options: dict[str, Any] = {}

    @model_validator(mode="before")
    @classmethod
    def _from_name_or_mapping(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"name": value}
        if isinstance(value, dict) and "options" not in value:
            if "name" not in value:
                raise ValueError("needs a 'name'")
            rest = {k: v for k, v in value.items() if k != "name"}
            return {"name": value["name"], "options": rest}
        return value

    def dump(self) -> str | dict[str, Any]:
        return {"name": self.name, **self.options} if self.options else self.name


class ModelConfig(Section):
    """The network between the data's inputs and outputs."""

    hidden: list[PositiveInt] = [64, 32]
    activation: Component = Component(name="relu")
    activations: list[Component] | None = None
    init: Component = Component(name="he_normal")
    bias_init: Component = Component(name="zeros")
    batch_norm: bool = False
    dropout: Fraction | list[Fraction] = 0.0
    output: Component = Component(name="auto")
    initial_weights: str | None = None

    @model_validator(mode="after")
    def _per_layer_lists_fit(self) -> ModelConfig:
        n = len(self.hidden)
        if self.activations is not None:
            if len(self.activations) != n:
                raise ValueError(
                    f"model.activations: has {len(self.activations)} entries for {n} hidden layers"
                )
            if "activation" in self.model_fields_set:
                raise ValueError(
                    "model.activations: set model.activation or model.activations, not both"
                )
        if isinstance(self.dropout, list) and len(self.dropout) != n:
            raise ValueError(
                f"model.dropout: has {len(self.dropout)} entries for {n} hidden layers"
            )
        return self

    def hidden_activations(self) -> list[Component]:
        return (
            list(self.activations)
            if self.activations is not None
            else [self.activation] * len(self.hidden)
        )

    def dropout_rates(self) -> list[float]:
        return (
            list(self.dropout)
            if isinstance(self.dropout, list)
            else [self.dropout] * len(self.hidden)
        )


class OptimizerConfig(Section):
    """The update rule: ``name``, ``lr``, ``weight_decay`` and the rule's own options."""

    name: str = "adam"
    lr: PositiveFloat = 0.001
    weight_decay: NonNegativeFloat | None = None
    options: dict[str, Any] = {}

    @model_validator(mode="before")
    @classmethod
    def _collect_options(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"name": value}
        if isinstance(value, dict) and "options" not in value:
            own = {"name", "lr", "weight_decay"}
            return {
                **{k: v for k, v in value.items() if k in own},
                "options": {k: v for k, v in value.items() if k not in own},
            }
        return value


class ScheduleConfig(Component):
    """The learning rate per epoch: ``constant`` or ``{name: cosine, warmup_epochs: 2, ...}``."""


class EarlyStoppingConfig(Section):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs."""

    monitor: str = "val_loss"
    patience: PositiveInt = 10
    min_delta: NonNegativeFloat = 0.0
    mode: Literal["auto", "min", "max"] = "auto"
    restore_best: bool = True


class TrainConfig(Section):
    """The training loop."""

    epochs: PositiveInt = 30
    batch_size: PositiveInt = 32
    shuffle: bool = True
    grad_clip: PositiveFloat | None = None
    early_stopping: EarlyStoppingConfig | None = None
    dtype: Literal["float32", "float64"] = "float32"
    max_memory: PositiveInt | str | None = None  # bytes, or "512MiB", "4GiB"; None: available
    checkpoint_every: PositiveInt = 1
    health: bool = True
    callbacks: list[Component] = []  # names (and options) from bpnn.callbacks.CALLBACKS
    #: validation metrics measured after every epoch beyond the headline ones (``val_f1_macro``,
    #: ``val_roc_auc``...; bpnn.metrics); a monitored metric is measured without being listed
    metrics: list[str] = []

    @field_validator("early_stopping", mode="before")
    @classmethod
    def _true_means_defaults(cls, value: Any) -> Any:
        if value is True:
            return {}
        if value is False:
            return None
        return value


def task_of(loss: str, data: DataConfig) -> str:
    """The run's task: it follows from the loss (``LOSSES[loss].task``); one-hot targets
    (``data.one_hot``) make it ``multiclass``, and binary cross-entropy on several 0/1 target
    columns (the source's ``target_columns``) ``multilabel``."""
    if data.one_hot:
        return "multiclass"
    task = LOSSES[loss].task
    if task == "binary" and SOURCES[data.source].target_columns(data) > 1:
        return "multilabel"
    return task


#: the longest ``name``: the run folder ``NAME-YYYYmmdd-HHMMSS-N`` stays within 255 bytes
MAX_NAME_LENGTH = 200


class Config(Section):
    """A whole experiment."""

    name: str = "experiment"
    seed: Annotated[int, Field(strict=True, ge=0)] = 0
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    loss: Component = Component(name="cross_entropy")
    optimizer: OptimizerConfig = OptimizerConfig()
    schedule: ScheduleConfig = ScheduleConfig(name="constant")
    train: TrainConfig = TrainConfig()

    @field_validator("name")
    @classmethod
    def _name_is_a_folder_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", value):
            raise ValueError("must be letters, digits, '.', '_' or '-' (it names the run folder)")
        if len(value) > MAX_NAME_LENGTH:  # NAME-YYYYmmdd-HHMMSS-N must fit a file name
            raise ValueError(
                f"must be at most {MAX_NAME_LENGTH} characters (it names the run folder), "
                f"got {len(value)}"
            )
        return value

    @property
    def task(self) -> str:
        """``multiclass``, ``binary``, ``multilabel`` or ``regression`` (see ``task_of``)."""

        return task_of(self.loss.name, self.data)

    def resolved(self) -> dict[str, Any]:
        """The whole config as plain data, every default filled in (what a run saves)."""
        out = self.model_dump(mode="json")
        if self.model.activations is None:
            out["model"]["activation"] = self.model.activation.dump()
            out["model"]["activations"] = None
        else:  # per-layer activations replace the shared one
            del out["model"]["activation"]
            out["model"]["activations"] = [c.dump() for c in self.model.activations]
        out["model"]["init"] = self.model.init.dump()
        out["model"]["bias_init"] = self.model.bias_init.dump()
        out["model"]["output"] = self.model.output.dump()
        out["loss"] = self.loss.dump()
        out["schedule"] = self.schedule.dump()
        out["train"]["callbacks"] = [c.dump() for c in self.train.callbacks]
        out["optimizer"] = {
            "name": self.optimizer.name,
            "lr": self.optimizer.lr,
            "weight_decay": self.optimizer.weight_decay,
            **self.optimizer.options,
        }
        keys = self.data.applicable_keys()
        out["data"] = {k: v for k, v in out["data"].items() if k in keys}
        return out

    def decoupled_weight_decay(self) -> bool:
        """True when the optimizer applies weight decay itself (adamw)."""

        return decouples_weight_decay(OPTIMIZERS[self.optimizer.name])

    def optimizer_options(self) -> dict[str, Any]:
        """The keyword options to build the optimizer with (adamw's weight_decay included)."""
        options = dict(self.optimizer.options)
        if self.decoupled_weight_decay():
            options["weight_decay"] = self.optimizer.weight_decay
        return options

    def epoch_scores(self) -> list[str]:
        """The metrics of the headlines' side (``headline=False`` in bpnn.metrics) that every
        epoch measures: those of ``train.metrics`` and those that early stopping or the
        schedule monitor. Measuring them costs a few scikit-learn calls per epoch, so a run
        that asks for none measures none until its test split."""
        wanted = [*self.train.metrics, self.schedule.options.get("monitor")]
        if self.train.early_stopping is not None:
            wanted.append(self.train.early_stopping.monitor)
        names = [name for name in wanted if isinstance(name, str) and not is_headline(name)]
        return list(dict.fromkeys(names))

    def l2_penalty(self) -> float:
        """The L2 coefficient the network adds to loss and gradient (0 for adamw, which decays
        the weights itself)."""
        return 0.0 if self.decoupled_weight_decay() else float(self.optimizer.weight_decay or 0.0)

    def to_yaml(self) -> str:
        return dump_yaml(self.resolved())


def decouples_weight_decay(optimizer: type) -> bool:
    """True for an optimizer that applies weight decay itself (adamw: it has the option)."""
    return "weight_decay" in inspect.signature(optimizer).parameters


#: components that may be written as a bare name, with the name they default to (read from
#: the section's model, the one place a default is written)
_BARE_NAMES = ("loss", "schedule", "optimizer", "model.activation", "model.init", "model.bias_init")


_DEFAULT_COMPONENTS = {
    path: (ModelConfig if "." in path else Config).model_fields[path.split(".")[-1]].default.name
    for path in _BARE_NAMES
}
