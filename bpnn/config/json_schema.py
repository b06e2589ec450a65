"""The JSON Schema of a config file (``bpnn config schema``), for an editor's YAML language
server.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bpnn.callbacks import CALLBACKS
from bpnn.config.sections import _DEFAULT_COMPONENTS, Config
from bpnn.nn.activations import ACTIVATIONS, OUTPUT_ACTIVATIONS
from bpnn.nn.initializers import BIAS_INITIALIZERS, INITIALIZERS
from bpnn.nn.losses import LOSSES
from bpnn.nn.optimizers import OPTIMIZERS
from bpnn.nn.schedules import SCHEDULES


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
    train = defs["TrainConfig"]["properties"]
    train["callbacks"] = {
        "type": "array",
        "items": _component_schema(list(CALLBACKS), "callback"),
        "default": [],
        "description": "callbacks to add, by name (bpnn.callbacks), in order",
    }
    early = train["early_stopping"]
    early["anyOf"].append({"type": "boolean", "description": "true: the defaults; false: off"})
    for name in ("data", "model", "train"):  # the defaults of whole sections are noise here
        top[name].pop("default", None)
    schema["title"] = "bpnn config"
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
