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

One module per concern, this one tying them together (``load_config``, ``validate``):

- ``reading``: the YAML (a safe loader, size and alias limits);
- ``sections``: the pydantic models of every section but ``data`` (``bpnn.data.options``);
- ``components``: names from the engine's registries, options from the signatures;
- ``checks``: the data against the loss, the memory a run needs, the monitors' metrics;
- ``overrides``: ``--set KEY=VALUE``;  ``messages``: errors naming the key;
- ``json_schema``: ``bpnn config schema``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bpnn.config.checks import memory_limit
from bpnn.config.components import _resolve_components
from bpnn.config.json_schema import config_schema
from bpnn.config.messages import _describe, _suggest_unknown
from bpnn.config.overrides import _drop_replaced_keys, apply_override
from bpnn.config.reading import parse_yaml, read_yaml_file, short
from bpnn.config.sections import _DEFAULT_COMPONENTS, Config
from bpnn.data.options import PATH_KEYS, DataConfig
from bpnn.errors import ConfigError, MemoryLimitError


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


__all__ = [
    "_DEFAULT_COMPONENTS",
    "Config",
    "DataConfig",
    "apply_override",
    "config_schema",
    "load_config",
    "memory_limit",
    "parse_yaml",
    "read_yaml_file",
    "short",
    "validate",
]
