"""Components named in a config (activations, initializers, losses, optimizers, schedules, and
the callbacks of ``train.callbacks``): names looked up in their registries, options checked
against the signatures of the classes themselves, so adding a component needs no change here.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    ValidationError,
    create_model,
)

from bpnn.callbacks import CALLBACKS
from bpnn.config.checks import (
    _check_memory,
    _check_monitors,
    _monitors_without_validation,
    _resolve_data,
)
from bpnn.config.messages import _describe, _did_you_mean
from bpnn.config.sections import Component, Config, OptimizerConfig, decouples_weight_decay, task_of
from bpnn.data import SOURCES
from bpnn.errors import ConfigError
from bpnn.nn.activations import ACTIVATIONS, OUTPUT_ACTIVATIONS
from bpnn.nn.initializers import BIAS_INITIALIZERS, INITIALIZERS
from bpnn.nn.losses import LOSSES
from bpnn.nn.optimizers import OPTIMIZERS
from bpnn.nn.schedules import SCHEDULES

#: parameters of a component that bpnn passes itself and that are therefore not user options
NOT_OPTIONS: dict[str, tuple[str, ...]] = {
    "initializer": ("rng", "shape", "fan_in", "fan_out"),
    "bias initializer": ("rng", "shape", "fan_in", "fan_out"),
    "schedule": ("base_lr", "epochs"),
    "callback": ("context",),
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


def _resolve_components(config: Config) -> Config:
    """Check every component name and option against the engine, fill in their defaults and
    the data defaults that depend on the source and the loss, and check the monitors."""

    def component(where: str, c: Component, registry: dict[str, Any], kind: str) -> Component:
        options = _check_component(where, c.name, c.options, registry, kind)
        if kind == "schedule":
            fixed = {"base_lr": 1.0, "epochs": config.train.epochs}
            _instantiate(where, registry[c.name], fixed, **options)
        elif "initializer" not in kind and kind != "callback":  # the class checks its values
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
    callbacks = [
        component(f"train.callbacks[{i}]", c, CALLBACKS, "callback")
        for i, c in enumerate(config.train.callbacks)
    ]
    for i, c in enumerate(callbacks):
        if any(other.name == c.name for other in callbacks[:i]):
            raise ConfigError(f"train.callbacks[{i}]: '{c.name}' is named twice")
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
            "train": config.train.model_copy(update={"callbacks": callbacks}),
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
