"""The experiment config: schema, YAML loading, dotted ``--set`` overrides, and errors that name
the key.

A config file holds only what it changes; every default lives here, in the pydantic models
below. Unknown keys, wrong types and impossible values are ``ConfigError``s such as
``configs/x.yaml: model.hidden[1]: must be a positive integer, got 0``, raised before any data is
loaded. Names of activations, initializers, losses, optimizers and schedules are looked up in
the engine's registries, and their options are checked against the signatures of the classes
themselves, so adding a component to the engine needs no change here.

``Config.resolved()`` is the config with every default filled in: it is what a run saves as
``config.yaml`` and in its checkpoints, and loading it again gives the same run.
"""

from __future__ import annotations

import difflib
import inspect
import os
import re
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from bpnn.data import SOURCES
from bpnn.data.options import PATH_KEYS, DataConfig
from bpnn.errors import ConfigError, MemoryLimitError
from bpnn.memory import check_fits, parse_size, training_bytes
from bpnn.metrics import epoch_metric_names
from bpnn.nn.activations import ACTIVATIONS, OUTPUT_ACTIVATIONS
from bpnn.nn.initializers import BIAS_INITIALIZERS, INITIALIZERS
from bpnn.nn.losses import LOSSES
from bpnn.nn.optimizers import OPTIMIZERS
from bpnn.nn.schedules import SCHEDULES
from bpnn.schema import Fraction, NonNegativeFloat, PositiveFloat, PositiveInt, Section

# --- YAML -------------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """Safe YAML loader that also reads ``1e-3`` as a float (plain YAML 1.1 wants ``1.0e-3``)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


#: a config is small: larger text, or aliases that expand to more values, is refused unread
MAX_CONFIG_BYTES = 1 << 20
MAX_CONFIG_VALUES = 1_000_000


def short(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters: messages never carry unbounded input."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """How many values ``node`` becomes once every alias is expanded (shared nodes counted
    once per use), computed over the node graph without expanding it."""
    if id(node) in sizes:
        return sizes[id(node)]
    sizes[id(node)] = 1  # a recursive alias counts once here; construction refuses it
    total = 1
    if isinstance(node, yaml.SequenceNode):
        total += sum(_expanded_size(child, sizes) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        total += sum(_expanded_size(k, sizes) + _expanded_size(v, sizes) for k, v in node.value)
    sizes[id(node)] = min(total, MAX_CONFIG_VALUES + 1)
    return sizes[id(node)]


def parse_yaml(text: str, source: str) -> Any:
    """Parse YAML text; a syntax error becomes a one-line ``ConfigError`` naming ``source``.
    Text over ``MAX_CONFIG_BYTES`` or aliases expanding beyond ``MAX_CONFIG_VALUES`` values (a
    "billion laughs" document) are refused before anything is built from them."""
    if len(text) > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"{source}: {len(text)} characters; a config is at most {MAX_CONFIG_BYTES} "
            "(put large data in a file)"
        )
    try:
        node = yaml.compose(text, Loader=_Loader)
        if node is not None and _expanded_size(node, {}) > MAX_CONFIG_VALUES:
            raise ConfigError(
                f"{source}: its aliases expand to more than {MAX_CONFIG_VALUES} values; "
                "a config cannot be that large"
            )
        return yaml.load(text, Loader=_Loader)
    except RecursionError:
        raise ConfigError(f"{source}: nested too deeply") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError(f"{source}: invalid YAML{where}: {problem}") from None


# --- validated building blocks ----------------------------------------------------------------


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


# --- sections ---------------------------------------------------------------------------------


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

    def l2_penalty(self) -> float:
        """The L2 coefficient the network adds to loss and gradient (0 for adamw, which decays
        the weights itself)."""
        return 0.0 if self.decoupled_weight_decay() else float(self.optimizer.weight_decay or 0.0)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.resolved(), sort_keys=False)


# --- components: names from the registries, options from the signatures -------------------------


#: parameters of a component that bpnn passes itself and that are therefore not user options
NOT_OPTIONS: dict[str, tuple[str, ...]] = {
    "initializer": ("rng", "shape", "fan_in", "fan_out"),
    "bias initializer": ("rng", "shape", "fan_in", "fan_out"),
    "schedule": ("base_lr", "epochs"),
}


@cache
def _options_model(target: Callable[..., Any], not_options: tuple[str, ...]) -> type[BaseModel]:
    """A pydantic model of the keyword options of ``target``, without ``not_options``."""
    params = inspect.signature(target, eval_str=True).parameters.values()
    fields: dict[str, Any] = {}
    for p in params:
        if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL) or p.name in not_options:
            continue
        annotation = Any if p.annotation is p.empty else p.annotation
        fields[p.name] = (annotation, ... if p.default is p.empty else p.default)
    return create_model(
        f"{getattr(target, '__name__', 'component')}_options",
        __config__=ConfigDict(extra="forbid", strict=True, allow_inf_nan=False),
        **fields,
    )


def _check_component(
    where: str,
    name: str,
    options: dict[str, Any],
    registry: dict[str, Any],
    kind: str = "name",
    section_keys: Sequence[str] = ("name",),
) -> dict[str, Any]:
    """Validate ``options`` of registry entry ``name``; return them with the defaults filled in.
    ``section_keys`` are the keys the section itself has beside the component's options."""
    if name not in registry:
        raise ConfigError(
            f"{where}: unknown {kind} '{name}'{_did_you_mean(name, registry)}; "
            f"choose from: {', '.join(registry)}"
        )
    model = _options_model(registry[name], NOT_OPTIONS.get(kind, ()))
    unknown = [key for key in options if key not in model.model_fields]
    if unknown:
        known = [*section_keys, *model.model_fields]
        hint = (
            _did_you_mean(unknown[0], known) or f" (it takes: {', '.join(known) or 'no options'})"
        )
        raise ConfigError(f"{where}.{unknown[0]}: unknown option of {kind} '{name}'{hint}")
    try:
        return model.model_validate(options).model_dump()
    except ValidationError as error:
        raise ConfigError(_describe(error, model, prefix=f"{where}.")) from None


def _did_you_mean(word: str, choices: Sequence[str] | dict[str, Any]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _instantiate(
    where: str, factory: Callable[..., Any], fixed: dict[str, Any], **options: Any
) -> Any:
    """Build a component to let it check its own values. When it refuses them, the option it
    refuses alone (built with that one option and the defaults) is the one the error names."""
    try:
        return factory(**fixed, **options)
    except (ValueError, TypeError) as error:
        message = " ".join(str(error).split())
    for option, value in options.items():
        try:
            factory(**fixed, **{option: value})
        except (ValueError, TypeError):
            message = message.removeprefix(f"{option} ")  # "beta1 must be ..." -> "must be ..."
            raise ConfigError(f"{where}.{option}: {message}") from None
    raise ConfigError(f"{where}: {message}") from None


def decouples_weight_decay(optimizer: type) -> bool:
    """True for an optimizer that applies weight decay itself (adamw: it has the option)."""
    return "weight_decay" in inspect.signature(optimizer).parameters


def _resolve_components(config: Config) -> Config:
    """Check every component name and option against the engine, fill in their defaults and
    the data defaults that depend on the source and the loss, and check the monitors."""

    def component(where: str, c: Component, registry: dict[str, Any], kind: str) -> Component:
        options = _check_component(where, c.name, c.options, registry, kind)
        if kind == "schedule":
            fixed = {"base_lr": 1.0, "epochs": config.train.epochs}
            _instantiate(where, registry[c.name], fixed, **options)
        elif "initializer" not in kind:  # let the class check the values (ranges) itself
            _instantiate(where, registry[c.name], {}, **options)
        return type(c)(name=c.name, options=options)

    model = config.model
    activation = component("model.activation", model.activation, ACTIVATIONS, "activation")
    activations = None
    if model.activations is not None:
        activations = [
            component(f"model.activations[{i}]", c, ACTIVATIONS, "activation")
            for i, c in enumerate(model.activations)
        ]
    init = component("model.init", model.init, INITIALIZERS, "initializer")
    bias_init = component("model.bias_init", model.bias_init, BIAS_INITIALIZERS, "bias initializer")
    loss = component("loss", config.loss, LOSSES, "loss")
    config = _monitors_without_validation(config)
    schedule = component("schedule", config.schedule, SCHEDULES, "schedule")
    loss_class = LOSSES[loss.name]
    output = model.output
    if output.name == "auto":  # the loss's own: the fused gradient
        output = Component(name=loss_class.output_activation)
    output = component("model.output", output, OUTPUT_ACTIVATIONS, "activation")
    if loss_class.task != "regression" and output.name != loss_class.output_activation:
        raise ConfigError(
            f"model.output: '{loss.name}' needs {loss_class.output_activation} outputs "
            f"(probabilities), not '{output.name}'; use auto, or a regression loss "
            "(mse, mae, huber) on other outputs"
        )
    if config.data.one_hot and loss_class.task == "multiclass":
        raise ConfigError(
            "data.one_hot: one-hot targets are for binary_cross_entropy and the regression "
            f"losses (mse, mae, huber); '{loss.name}' reads class labels as they are"
        )
    task = task_of(loss.name, config.data)
    if config.data.one_hot and SOURCES[config.data.source].target_columns(config.data) > 1:
        raise ConfigError(
            "data.one_hot: one-hot rows are made from one class label per sample, but the "
            "data gives several target columns"
        )
    target = config.data.target
    if isinstance(target, list) and len(target) > 1 and task != "multilabel":
        raise ConfigError(
            f"data.target: several columns are the 0/1 labels of binary_cross_entropy "
            f"(multi-label); '{loss.name}' reads one target column"
        )
    _check_monitors(config, schedule, task)
    _check_memory(config)
    return config.model_copy(
        update={
            "data": _resolve_data(config.data, loss.name, task),
            "model": model.model_copy(
                update={
                    "activation": activation,
                    "activations": activations,
                    "init": init,
                    "bias_init": bias_init,
                    "output": output,
                }
            ),
            "loss": loss,
            "schedule": schedule,
            "optimizer": _resolve_optimizer(config.optimizer),
        }
    )


def _resolve_optimizer(optimizer: OptimizerConfig) -> OptimizerConfig:
    """Check the optimizer's options; ``weight_decay`` is adamw's own option (decoupled) or the
    L2 coefficient every other optimizer's loss gets (0 by default)."""

    options = dict(optimizer.options)
    decoupled = optimizer.name in OPTIMIZERS and decouples_weight_decay(OPTIMIZERS[optimizer.name])
    if decoupled and optimizer.weight_decay is not None:
        options["weight_decay"] = optimizer.weight_decay
    options = _check_component(
        "optimizer",
        optimizer.name,
        options,
        OPTIMIZERS,
        "optimizer",
        ("name", "lr", "weight_decay"),
    )
    _instantiate("optimizer", OPTIMIZERS[optimizer.name], {}, **options)
    weight_decay = options.pop("weight_decay") if decoupled else (optimizer.weight_decay or 0.0)
    return optimizer.model_copy(update={"options": options, "weight_decay": weight_decay})


def _resolve_data(data: DataConfig, loss: str, task: str) -> DataConfig:
    """Check that the source serves the loss's task; fill in ``scale`` (the source's default)
    and ``scale_target`` (on for regression losses)."""
    source = SOURCES[data.source]
    if task not in source.tasks:
        kind = "class labels" if "regression" not in source.tasks else "real-valued targets"
        hint = (
            "; set data.one_hot: true (the loss on one-hot targets) or loss: cross_entropy"
            if task == "regression"
            else ""
        )
        raise ConfigError(
            f"loss: '{loss}' is a {task} loss, but data.source '{data.source}' has {kind} "
            f"(it serves: {', '.join(source.tasks)}){hint}"
        )
    regression = task == "regression"
    if data.classes is not None:
        columns = SOURCES[data.source].target_columns(data)
        if regression:
            raise ConfigError(f"data.classes: only applies to class labels, not to '{loss}'")
        if task == "binary" and len(data.classes) != 2:
            raise ConfigError(
                f"data.classes: '{loss}' needs exactly 2 classes, got {len(data.classes)}"
            )
        if task == "multilabel" and len(data.classes) != columns:
            raise ConfigError(
                f"data.classes: names {len(data.classes)} labels for the {columns} target "
                "columns of data.y (one name per column)"
            )
    if data.scale_target and not regression:
        raise ConfigError(f"data.scale_target: only applies to regression losses, not '{loss}'")
    defaults: dict[str, Any] = {}
    if data.scale is None:
        defaults["scale"] = source.default_scale
    if data.scale_target is None:
        defaults["scale_target"] = regression and source.scale_targets
    return data.model_copy(update=defaults)


def memory_limit(config: Config) -> int | None:
    """``train.max_memory`` in bytes (None: the memory available is the limit)."""

    limit = config.train.max_memory
    return None if limit is None else parse_size(limit)


def _check_memory(config: Config) -> None:
    """What can be known without the data: the hidden layers alone, and a generated data set,
    must fit in memory (the run checks the whole network again once the data is loaded)."""

    limit = memory_limit(config)
    itemsize = 8 if config.train.dtype == "float64" else 4
    hidden = [1, *config.model.hidden, 1]
    # a batch of one: train.batch_size may exceed the data (the batch is then all of it); the
    # run checks the real batch once the data is loaded (``bpnn.run.check_network``)
    needed = training_bytes(hidden, 1, itemsize, 1, config.model.batch_norm)
    shown = str(config.model.hidden)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    check_fits(needed, f"model.hidden {shown}", limit, "make model.hidden smaller")
    data_bytes = SOURCES[config.data.source].estimated_bytes(config.data)
    if data_bytes is not None:
        check_fits(data_bytes, f"data '{config.data.source}'", limit, "generate fewer samples")


#: what a monitor the config leaves at its default watches without a validation split
#: (``data.val_fraction: 0``), as ``best.npz`` does: there is no ``val_loss`` to watch
NO_VALIDATION_MONITOR = "train_loss"


def _monitors_without_validation(config: Config) -> Config:
    """Without a validation split, early stopping's monitor and a schedule's (reduce_on_plateau),
    when the config does not name them, watch ``NO_VALIDATION_MONITOR``; a monitor the config
    names is checked as written (``_check_monitors``)."""
    if config.data.val_fraction > 0:
        return config
    update: dict[str, Any] = {}
    stopping = config.train.early_stopping
    if stopping is not None and "monitor" not in stopping.model_fields_set:
        stopping = stopping.model_copy(update={"monitor": NO_VALIDATION_MONITOR})
        update["train"] = config.train.model_copy(update={"early_stopping": stopping})
    schedule = config.schedule
    factory = SCHEDULES.get(schedule.name)  # an unknown name is reported by its check
    takes_monitor = factory is not None and "monitor" in inspect.signature(factory).parameters
    if takes_monitor and "monitor" not in schedule.options:
        options = {**schedule.options, "monitor": NO_VALIDATION_MONITOR}
        update["schedule"] = schedule.model_copy(update={"options": options})
    return config.model_copy(update=update)


def _check_monitors(config: Config, schedule: Component, task: str) -> None:
    """The metrics that early stopping and reduce_on_plateau watch must be metrics of the run."""
    has_validation = config.data.val_fraction > 0
    metrics = epoch_metric_names(task, has_validation)
    monitors = {"schedule.monitor": schedule.options.get("monitor")}
    if config.train.early_stopping is not None:
        monitors["train.early_stopping.monitor"] = config.train.early_stopping.monitor
    for key, monitor in monitors.items():
        if monitor is not None and monitor not in metrics:
            why = " (data.val_fraction is 0: no validation split)" if not has_validation else ""
            raise ConfigError(
                f"{key}: '{monitor}' is not a metric of this run{why}; choose from: "
                + ", ".join(metrics)
            )


# --- errors -----------------------------------------------------------------------------------


def _section_model(annotation: Any) -> type[BaseModel] | None:
    """The config section (a pydantic model) an annotation holds, directly or in a union."""
    for candidate in (annotation, *getattr(annotation, "__args__", ())):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _location(loc: Sequence[str | int], root: type[BaseModel]) -> str:
    """``("model", "hidden", 1)`` -> ``model.hidden[1]``: the parts of pydantic's location that
    are fields of our own sections (walked from ``root``), list indexes, or keys of a mapping
    field; anything else in it (the branch of a union, a validator) is not a key."""
    out, section, in_mapping = "", root, False
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif section is not None and part in section.model_fields:
            out += f".{part}" if out else part
            annotation = section.model_fields[part].annotation
            in_mapping = getattr(annotation, "__origin__", None) is dict
            section = _section_model(annotation)
        elif in_mapping:
            out += f".{part}"
            in_mapping = False
    return out


def _describe(error: ValidationError, root: type[BaseModel], prefix: str = "") -> str:
    """One line for the first problem pydantic found: ``key: what is wrong, got VALUE``."""
    problems = error.errors(include_url=False)

    def specificity(problem: Any) -> tuple[bool, int]:
        # among the branches of a union (0.1 or [0.1, 0.2]) the error about the value beats
        # the one that only says the value has the other branch's type
        wrong_type = problem["type"].endswith(("_type", "_parsing"))
        return (not wrong_type, len(problem["loc"]))

    first = max(problems, key=specificity)
    loc = (prefix + _location(first["loc"], root)).rstrip(".")
    if first["type"] == "extra_forbidden":  # the unknown key is the location's last part
        where = (prefix + _location(first["loc"][:-1], root)).rstrip(".")
        return (
            f"{where}.{first['loc'][-1]}: unknown key"
            if where
            else f"{first['loc'][-1]}: unknown key"
        )
    if first["type"] == "missing":
        return f"{loc}: required"
    message = first["msg"].replace("Value error, ", "").replace("Input should be", "must be")
    got = first.get("input")
    if first["type"] == "value_error" and (isinstance(got, dict) or "got" in message):
        # our own validators already name the key (model-level checks) or the value
        return (
            f"{loc}: {message}"
            if loc and not message.startswith(("data.", "model.", "set "))
            else message
        )
    suffix = "" if isinstance(got, dict | list) else f", got {short(got)}"
    return f"{loc}: {message}{suffix}" if loc else f"{message}{suffix}"


def _suggest_unknown(error: ValidationError) -> str | None:
    """For an unknown key, suggest the closest known key of the same section."""
    first = error.errors(include_url=False)[0]
    if first["type"] != "extra_forbidden":
        return None
    loc = [p for p in first["loc"] if isinstance(p, str)]
    section: Any = Config
    for part in loc[:-1]:
        field = getattr(section, "model_fields", {}).get(part)
        if field is None:
            return None
        annotation = field.annotation
        section = next(
            (
                a
                for a in getattr(annotation, "__args__", (annotation,))
                if isinstance(a, type) and issubclass(a, BaseModel)
            ),
            None,
        )
        if section is None:
            return None
    known = [k for k in section.model_fields if k != "options"]
    return _did_you_mean(loc[-1], known) or f" (keys: {', '.join(known)})"


# --- overrides and loading --------------------------------------------------------------------


def apply_override(raw: dict[str, Any], assignment: str) -> None:
    """Apply one ``dotted.key=value`` (value parsed as YAML) to the raw config dict in place."""
    key, sep, text = assignment.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set {short(assignment)}: expected KEY=VALUE, e.g. optimizer.lr=0.01")
    value = parse_yaml(text, f"--set {key}") if text.strip() else None
    parts = key.split(".")
    node = raw
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part)
        path = ".".join(parts[: depth + 1])
        if child is None and path in _DEFAULT_COMPONENTS:
            child = _DEFAULT_COMPONENTS[path]  # --set loss.label_smoothing=0.1, no loss: key
        if isinstance(child, str) and path in _DEFAULT_COMPONENTS:
            child = {"name": child}  # loss: cross_entropy  +  loss.label_smoothing=0.1
        if child is True and path == "train.early_stopping":
            child = {}  # early_stopping: true  +  train.early_stopping.patience=3
        if child is None:
            child = {}
        if not isinstance(child, dict):
            raise ConfigError(
                f"--set {key}: {'.'.join(parts[: depth + 1])} is {short(child)}, not a section"
            )
        node[part] = child
        node = child
    node[parts[-1]] = value


#: components that may be written as a bare name, with the name they default to (read from
#: the section's model, the one place a default is written)
_BARE_NAMES = ("loss", "schedule", "optimizer", "model.activation", "model.init", "model.bias_init")
_DEFAULT_COMPONENTS = {
    path: (ModelConfig if "." in path else Config).model_fields[path.split(".")[-1]].default.name
    for path in _BARE_NAMES
}


def _absolute_paths(raw: dict[str, Any], base: Path) -> None:
    """Make the file paths of ``data`` (``PATH_KEYS``) and ``model.initial_weights`` absolute,
    relative to ``base``."""
    for section, keys in (("data", PATH_KEYS), ("model", ("initial_weights",))):
        values = raw.get(section)
        if not isinstance(values, dict):
            continue
        for key in keys:
            value = values.get(key)
            if isinstance(value, str):
                values[key] = str((base / os.path.expanduser(value)).resolve())


def validate(raw: Any, source: str = "config") -> Config:
    """A raw mapping as a checked ``Config`` with components resolved, or a ``ConfigError``."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{source}: expected a mapping of keys at the top level, got {type(raw).__name__}"
        )
    try:
        config = Config.model_validate(raw)
    except ValidationError as error:
        hint = _suggest_unknown(error) or ""
        raise ConfigError(f"{source}: {_describe(error, Config)}{hint}") from None
    try:
        return _resolve_components(config)
    except (ConfigError, MemoryLimitError) as error:
        raise type(error)(f"{source}: {error}") from None


def read_yaml_file(path: Path, kind: str = "config") -> Any:
    """The parsed YAML of a ``kind`` file (a config, a sweep file); a missing or unreadable file
    is a one-line ``ConfigError`` naming it."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such {kind} file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read: {error}") from None
    return parse_yaml(text, str(path))


#: keys that say one thing in two ways, in groups: the test set given as files, or as a fraction
#: of the data. ``--set`` of a key of one group replaces the file's keys of the others
ALTERNATIVE_KEYS = {"data": (("test_path", "test_labels_path"), ("test_fraction",))}


def _drop_replaced_keys(raw: dict[str, Any], override_raw: dict[str, Any]) -> None:
    """Remove from ``raw`` (the file with the overrides applied) the keys an override replaced
    in another way (``ALTERNATIVE_KEYS``): ``--set data.test_path=FILE`` on a config with a
    ``test_fraction`` means the test set comes from the file. Both ways in the file alone, or
    both in ``--set``, are still an error."""
    for section, groups in ALTERNATIVE_KEYS.items():
        given, values = override_raw.get(section), raw.get(section)
        if not isinstance(given, dict) or not isinstance(values, dict):
            continue
        for group in groups:
            if any(key in given for key in group):
                replaced = {key for other in groups if other is not group for key in other}
                for key in replaced - given.keys():
                    values.pop(key, None)


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> Config:
    """Read a YAML config, apply ``--set`` overrides, validate. Relative data paths in the file are
    relative to the file's folder; relative paths given with ``--set`` are relative to the
    working directory. The name defaults to the file's stem."""
    path = Path(path)
    raw = read_yaml_file(path)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{path}: expected a mapping of keys at the top level, got {type(raw).__name__}"
        )
    _absolute_paths(raw, path.resolve().parent)
    raw.setdefault("name", re.sub(r"[^A-Za-z0-9._-]+", "-", path.stem).strip("-._") or "run")
    override_raw: dict[str, Any] = {}
    for assignment in overrides:
        apply_override(raw, assignment)
        apply_override(override_raw, assignment)
    _absolute_paths(override_raw, Path.cwd())
    _drop_replaced_keys(raw, override_raw)
    for section, keys in (("data", PATH_KEYS), ("model", ("initial_weights",))):
        if isinstance(override_raw.get(section), dict) and isinstance(raw.get(section), dict):
            for key in keys:
                if key in override_raw[section]:
                    raw[section][key] = override_raw[section][key]
    return validate(raw, str(path))


# --- JSON Schema ------------------------------------------------------------------------------


def _component_schema(names: Sequence[str], what: str, fixed: dict[str, Any] | None = None) -> Any:
    """A component as the YAML writes it: its name, or a mapping of ``name`` and its options."""
    name = {"type": "string", "enum": sorted(names)}
    return {
        "description": f"{what}: a name, or a mapping of name and options",
        "anyOf": [
            name,
            {
                "type": "object",
                "properties": {"name": name, **(fixed or {})},
                "required": ["name"],
                "additionalProperties": True,
            },
        ],
    }


def config_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a config file, for editors and other tools: pydantic's
    schema of ``Config`` with the components written as the YAML writes them (a name, or a
    mapping of name and options, the names from the engine's registries) and
    ``train.early_stopping: true``. Unknown keys are refused, as ``load_config`` refuses them;
    checks that need the registries' signatures (an option's name) stay with ``config check``."""
    schema = Config.model_json_schema()
    default = {path.removeprefix("model."): name for path, name in _DEFAULT_COMPONENTS.items()}
    defs = schema["$defs"]
    model = defs["ModelConfig"]["properties"]
    activation = _component_schema(list(ACTIVATIONS), "activation")
    model["activation"] = {**activation, "default": default["activation"]}
    model["activations"] = {
        "anyOf": [{"type": "array", "items": activation}, {"type": "null"}],
        "default": None,
        "description": "one activation per hidden layer (instead of model.activation)",
    }
    init = _component_schema(list(INITIALIZERS), "initializer")
    model["init"] = {**init, "default": default["init"]}
    bias = _component_schema(list(BIAS_INITIALIZERS), "bias initializer")
    model["bias_init"] = {**bias, "default": default["bias_init"]}
    output = _component_schema(["auto", *OUTPUT_ACTIVATIONS], "output activation")
    model["output"] = {**output, "default": "auto"}
    top = schema["properties"]
    top["loss"] = {**_component_schema(list(LOSSES), "loss"), "default": default["loss"]}
    schedule = _component_schema(list(SCHEDULES), "schedule")
    top["schedule"] = {**schedule, "default": default["schedule"]}
    number = {"type": "number"}
    top["optimizer"] = {
        **_component_schema(
            list(OPTIMIZERS),
            "optimizer",
            fixed={
                "lr": {**number, "exclusiveMinimum": 0},
                "weight_decay": {"anyOf": [{**number, "minimum": 0}, {"type": "null"}]},
            },
        ),
        "default": default["optimizer"],
    }
    for unused in ("Component", "ScheduleConfig", "OptimizerConfig"):
        defs.pop(unused, None)
    early = defs["TrainConfig"]["properties"]["early_stopping"]
    early["anyOf"].append({"type": "boolean", "description": "true: the defaults; false: off"})
    for name in ("data", "model", "train"):  # the defaults of whole sections are noise here
        top[name].pop("default", None)
    schema["title"] = "bpnn config"
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
