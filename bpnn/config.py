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
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from bpnn.errors import ConfigError

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


def parse_yaml(text: str, source: str) -> Any:
    """Parse YAML text; a syntax error becomes a one-line ``ConfigError`` naming ``source``."""
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError(f"{source}: invalid YAML{where}: {problem}") from None


# --- validated building blocks ----------------------------------------------------------------


def _positive_int(value: int) -> int:
    if value < 1:
        raise ValueError("must be a positive integer")
    return value


def _fraction(value: float) -> float:
    if not 0 <= value < 1:
        raise ValueError("must be in [0, 1)")
    return value


PositiveInt = Annotated[int, Field(strict=True), AfterValidator(_positive_int)]
Fraction = Annotated[float, AfterValidator(_fraction)]
NonNegativeFloat = Annotated[float, Field(ge=0)]
PositiveFloat = Annotated[float, Field(gt=0)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Component(_Section):
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

BUILTIN_SOURCES = ("digits", "iris", "wine", "breast_cancer", "diabetes")
SYNTHETIC_SOURCES = ("xor", "moons", "circles", "blobs", "classification", "regression")
FILE_SOURCES = ("csv", "npz", "idx")
SOURCES = (*BUILTIN_SOURCES, *SYNTHETIC_SOURCES, "mnist", *FILE_SOURCES)

_SPLIT_KEYS = {"source", "scale", "scale_target", "test_fraction", "val_fraction"}
#: the keys of ``data`` each source understands; any other key set for it is an error
SOURCE_KEYS: dict[str, set[str]] = {
    **{s: _SPLIT_KEYS for s in BUILTIN_SOURCES},
    **{s: _SPLIT_KEYS | {"options"} for s in SYNTHETIC_SOURCES},
    "mnist": {"source", "scale", "val_fraction", "path", "mirrors"},
    "csv": _SPLIT_KEYS | {"path", "test_path", "target", "features"},
    "npz": _SPLIT_KEYS | {"path", "test_path", "x_key", "y_key"},
    "idx": _SPLIT_KEYS | {"path", "labels_path", "test_path", "test_labels_path"},
}
#: keys that name files; relative paths are resolved against the config file's folder
PATH_KEYS = ("path", "labels_path", "test_path", "test_labels_path")


class DataConfig(_Section):
    """Where the samples come from and how they are split and scaled (see ``bpnn.data``)."""

    source: Literal[SOURCES] = "digits"  # type: ignore[valid-type]
    path: str | None = None
    labels_path: str | None = None
    test_path: str | None = None
    test_labels_path: str | None = None
    target: str | None = None
    features: list[str] | None = None
    x_key: str = "X"
    y_key: str = "y"
    options: dict[str, Any] = {}
    mirrors: list[str] | None = None
    test_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.2
    val_fraction: Fraction = 0.1
    scale: Literal["standard", "minmax", "pixels", "none"] | None = None
    scale_target: bool | None = None

    @model_validator(mode="after")
    def _keys_fit_the_source(self) -> DataConfig:
        allowed = SOURCE_KEYS[self.source]
        extra = sorted(k for k in self.model_fields_set if k not in allowed)
        if extra:
            raise ValueError(
                f"data.{extra[0]}: does not apply to source '{self.source}' "
                f"(it takes: {', '.join(sorted(allowed))})"
            )
        if self.test_path is not None and "test_fraction" in self.model_fields_set:
            raise ValueError(
                "data.test_fraction: does not apply with data.test_path (the test set is given)"
            )
        if self.source in FILE_SOURCES and self.path is None:
            raise ValueError(f"data.path: required for source '{self.source}'")
        if self.source == "idx" and (self.test_path is None) != (self.test_labels_path is None):
            raise ValueError(
                "data.test_path: goes with data.test_labels_path (idx), set both or neither"
            )
        if self.source == "idx" and self.labels_path is None:
            raise ValueError("data.labels_path: required for source 'idx' (the labels file)")
        return self

    @property
    def has_test_file(self) -> bool:
        return self.source == "mnist" or self.test_path is not None


class ModelConfig(_Section):
    """The network between the data's inputs and outputs."""

    hidden: list[PositiveInt] = [64, 32]
    activation: Component = Component(name="relu")
    activations: list[Component] | None = None
    init: Component = Component(name="he_normal")
    batch_norm: bool = False
    dropout: Fraction | list[Fraction] = 0.0

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


class OptimizerConfig(_Section):
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


class EarlyStoppingConfig(_Section):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs."""

    monitor: str = "val_loss"
    patience: PositiveInt = 10
    min_delta: NonNegativeFloat = 0.0
    mode: Literal["auto", "min", "max"] = "auto"
    restore_best: bool = True


class TrainConfig(_Section):
    """The training loop."""

    epochs: PositiveInt = 30
    batch_size: PositiveInt = 32
    shuffle: bool = True
    grad_clip: PositiveFloat | None = None
    early_stopping: EarlyStoppingConfig | None = None
    dtype: Literal["float32", "float64"] = "float32"

    @field_validator("early_stopping", mode="before")
    @classmethod
    def _true_means_defaults(cls, value: Any) -> Any:
        if value is True:
            return {}
        if value is False:
            return None
        return value


class Config(_Section):
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
        return value

    @property
    def task(self) -> str:
        """``multiclass``, ``binary`` or ``regression``: it follows from the loss."""
        from bpnn.nn.losses import LOSSES

        return LOSSES[self.loss.name].task

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
        out["loss"] = self.loss.dump()
        out["schedule"] = self.schedule.dump()
        out["optimizer"] = {
            "name": self.optimizer.name,
            "lr": self.optimizer.lr,
            "weight_decay": self.optimizer.weight_decay,
            **self.optimizer.options,
        }
        out["data"] = {k: v for k, v in out["data"].items() if k in SOURCE_KEYS[self.data.source]}
        return out

    def decoupled_weight_decay(self) -> bool:
        """True when the optimizer applies weight decay itself (adamw)."""
        from bpnn.nn.optimizers import OPTIMIZERS

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


@cache
def _options_model(target: Callable[..., Any], skip: int) -> type[BaseModel]:
    """A pydantic model of the keyword options of ``target`` (minus its first ``skip`` params)."""
    params = list(inspect.signature(target, eval_str=True).parameters.values())[skip:]
    fields: dict[str, Any] = {}
    for p in params:
        if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            continue
        annotation = Any if p.annotation is p.empty else p.annotation
        fields[p.name] = (annotation, ... if p.default is p.empty else p.default)
    return create_model(
        f"{getattr(target, '__name__', 'component')}_options",
        __config__=ConfigDict(extra="forbid"),
        **fields,
    )


def _check_component(
    where: str,
    name: str,
    options: dict[str, Any],
    registry: dict[str, Any],
    skip: int = 0,
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
    model = _options_model(registry[name], skip)
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
        raise ConfigError(_describe(error, prefix=f"{where}.")) from None


def _did_you_mean(word: str, choices: Sequence[str] | dict[str, Any]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _instantiate(where: str, factory: Callable[..., Any], **kwargs: Any) -> Any:
    """Build a component to let it check its own values; its error names the option."""
    try:
        return factory(**kwargs)
    except (ValueError, TypeError) as error:
        message = str(error)
        option = message.split(" ", 1)[0]
        if option in kwargs:  # "beta1 must be in [0, 1)" -> "optimizer.beta1: must be in [0, 1)"
            raise ConfigError(f"{where}.{option}: {message.split(' ', 1)[1]}") from None
        raise ConfigError(f"{where}: {message}") from None


def decouples_weight_decay(optimizer: type) -> bool:
    """True for an optimizer that applies weight decay itself (adamw: it has the option)."""
    return "weight_decay" in inspect.signature(optimizer).parameters


def _resolve_components(config: Config) -> Config:
    """Check every component name and option against the engine, fill in their defaults and
    the data defaults that depend on the source and the loss, and check the monitors."""
    from bpnn.nn.activations import ACTIVATIONS
    from bpnn.nn.initializers import INITIALIZERS
    from bpnn.nn.losses import LOSSES
    from bpnn.nn.schedules import SCHEDULES

    def component(where: str, c: Component, registry: dict[str, Any], kind: str) -> Component:
        skip = {"initializer": 4, "schedule": 2}.get(kind, 0)  # (rng, shape, fans), (lr, epochs)
        options = _check_component(where, c.name, c.options, registry, skip, kind)
        if kind == "schedule":
            _instantiate(
                where, registry[c.name], base_lr=1.0, epochs=config.train.epochs, **options
            )
        elif kind != "initializer":  # let the class check the values (ranges) itself
            _instantiate(where, registry[c.name], **options)
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
    loss = component("loss", config.loss, LOSSES, "loss")
    schedule = component("schedule", config.schedule, SCHEDULES, "schedule")
    regression = LOSSES[loss.name].task == "regression"
    _check_monitors(config, schedule, regression)
    return config.model_copy(
        update={
            "data": _resolve_data(config.data, loss.name, regression),
            "model": model.model_copy(
                update={"activation": activation, "activations": activations, "init": init}
            ),
            "loss": loss,
            "schedule": schedule,
            "optimizer": _resolve_optimizer(config.optimizer),
        }
    )


def _resolve_optimizer(optimizer: OptimizerConfig) -> OptimizerConfig:
    """Check the optimizer's options; ``weight_decay`` is adamw's own option (decoupled) or the
    L2 coefficient every other optimizer's loss gets (0 by default)."""
    from bpnn.nn.optimizers import OPTIMIZERS

    options = dict(optimizer.options)
    decoupled = optimizer.name in OPTIMIZERS and decouples_weight_decay(OPTIMIZERS[optimizer.name])
    if decoupled and optimizer.weight_decay is not None:
        options["weight_decay"] = optimizer.weight_decay
    options = _check_component(
        "optimizer",
        optimizer.name,
        options,
        OPTIMIZERS,
        0,
        "optimizer",
        ("name", "lr", "weight_decay"),
    )
    _instantiate("optimizer", OPTIMIZERS[optimizer.name], **options)
    weight_decay = options.pop("weight_decay") if decoupled else (optimizer.weight_decay or 0.0)
    return optimizer.model_copy(update={"options": options, "weight_decay": weight_decay})


def _resolve_data(data: DataConfig, loss: str, regression: bool) -> DataConfig:
    """Fill in ``scale`` (pixels for image sources, else standard) and ``scale_target``
    (on for regression losses)."""
    if data.scale_target and not regression:
        raise ConfigError(f"data.scale_target: only applies to regression losses, not '{loss}'")
    defaults: dict[str, Any] = {}
    if data.scale is None:
        defaults["scale"] = "pixels" if data.source in ("mnist", "idx") else "standard"
    if data.scale_target is None:
        defaults["scale_target"] = regression
    return data.model_copy(update=defaults)


def _check_monitors(config: Config, schedule: Component, regression: bool) -> None:
    """The metrics that early stopping and reduce_on_plateau watch must be metrics of the run."""
    metrics = ["train_loss", "val_loss"]
    metrics += ["val_mae", "val_r2"] if regression else ["train_accuracy", "val_accuracy"]
    has_validation = config.data.val_fraction > 0
    if not has_validation:
        metrics = [m for m in metrics if not m.startswith("val_")]
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


#: names pydantic puts in an error's location for the branch of a union or a validator wrapper
_BRANCH_NAMES = ("list[...]", "float", "int", "str", "bool", "dict[str,any]")


def _location(loc: Sequence[str | int]) -> str:
    """``("model", "hidden", 1)`` -> ``model.hidden[1]``, without pydantic's branch names."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif "[" in part or part in _BRANCH_NAMES:
            continue  # e.g. "function-after[_positive_int(), int]", "list[...]"
        else:
            out += f".{part}" if out else part
    return out


def _describe(error: ValidationError, prefix: str = "") -> str:
    """One line for the first problem pydantic found: ``key: what is wrong, got VALUE``."""
    problems = error.errors(include_url=False)

    def specificity(problem: Any) -> tuple[bool, int]:
        # among the branches of a union (0.1 or [0.1, 0.2]) the error about the value beats
        # the one that only says the value has the other branch's type
        wrong_type = problem["type"].endswith(("_type", "_parsing"))
        return (not wrong_type, len(problem["loc"]))

    first = max(problems, key=specificity)
    loc = (prefix + _location(first["loc"])).rstrip(".")
    if first["type"] == "extra_forbidden":
        return f"{loc}: unknown key"
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
    suffix = "" if isinstance(got, dict | list) else f", got {got!r}"
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
        raise ConfigError(f"--set {assignment!r}: expected KEY=VALUE, e.g. optimizer.lr=0.01")
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
                f"--set {key}: {'.'.join(parts[: depth + 1])} is {child!r}, not a section"
            )
        node[part] = child
        node = child
    node[parts[-1]] = value


#: components that may be written as a bare name, with the name they default to
_DEFAULT_COMPONENTS = {
    "loss": "cross_entropy",
    "schedule": "constant",
    "optimizer": "adam",
    "model.activation": "relu",
    "model.init": "he_normal",
}


def _absolute_paths(raw: dict[str, Any], base: Path) -> None:
    data = raw.get("data")
    if not isinstance(data, dict):
        return
    for key in PATH_KEYS:
        value = data.get(key)
        if isinstance(value, str):
            data[key] = str((base / os.path.expanduser(value)).resolve())


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
        raise ConfigError(f"{source}: {_describe(error)}{hint}") from None
    try:
        return _resolve_components(config)
    except ConfigError as error:
        raise ConfigError(f"{source}: {error}") from None


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> Config:
    """Read a YAML config, apply ``--set`` overrides, validate. Relative data paths in the file are
    relative to the file's folder; relative paths given with ``--set`` are relative to the
    working directory. The name defaults to the file's stem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read: {error}") from None
    raw = parse_yaml(text, str(path))
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
    if isinstance(override_raw.get("data"), dict) and isinstance(raw.get("data"), dict):
        for key in PATH_KEYS:
            if key in override_raw["data"]:
                raw["data"][key] = override_raw["data"][key]
    return validate(raw, str(path))
