"""The sweep file: its schema, and every check that can be made before a trial runs.

A sweep file names a base config, the metric to optimise and the search space over dotted
config keys. Each searched value is checked by applying it to the base config exactly as
``--set KEY=VALUE`` would (``bpnn.config.load_config`` with overrides), so an unknown key or a
value the base config refuses is a ``ConfigError`` naming the sweep file and the key, raised
before any trial runs. The config's schema is never repeated here.
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bpnn.config import Config, load_config, read_yaml_file
from bpnn.errors import ConfigError

RANGE_KINDS = ("uniform", "log_uniform", "int")
METHODS = ("grid", "random", "tpe")


class Choices(BaseModel):
    """A list of values: grid takes every one, random and tpe pick one (categorical)."""

    model_config = ConfigDict(frozen=True)
    values: list[Any]

    def encoded(self) -> list[str]:
        """The values as JSON strings: Optuna's categorical choices must be scalars, and a
        choice such as ``[64, 32]`` is not."""
        return [encode_value(v) for v in self.values]


class Range(BaseModel):
    """``{uniform: [lo, hi]}``, ``{log_uniform: [lo, hi]}`` or ``{int: [lo, hi]}`` (inclusive)."""

    model_config = ConfigDict(frozen=True)
    kind: Literal[RANGE_KINDS]  # type: ignore[valid-type]
    low: int | float
    high: int | float


Dimension = Choices | Range


def encode_value(value: Any) -> str:
    return json.dumps(value)


def decode_value(text: str) -> Any:
    return json.loads(text)


def _dimension(value: Any) -> Dimension:
    """Read one entry of ``space``: a non-empty list, or a one-key range mapping."""
    if isinstance(value, list):
        if not value:
            raise ValueError("an empty list of choices")
        return Choices(values=value)
    if isinstance(value, dict):
        if len(value) != 1:
            raise ValueError(
                f"a range has exactly one of {', '.join(RANGE_KINDS)}, got {sorted(value)}"
            )
        ((kind, bounds),) = value.items()
        if kind not in RANGE_KINDS:
            raise ValueError(f"unknown range '{kind}'; choose from: {', '.join(RANGE_KINDS)}")
        numbers = (int,) if kind == "int" else (int, float)
        if (
            not isinstance(bounds, list)
            or len(bounds) != 2
            or not all(isinstance(b, numbers) and not isinstance(b, bool) for b in bounds)
        ):
            what = "integers" if kind == "int" else "numbers"
            raise ValueError(f"{kind}: expected [low, high], two {what}, got {bounds!r}")
        low, high = bounds
        if not low < high:
            raise ValueError(f"{kind}: low must be below high, got [{low}, {high}]")
        if kind == "log_uniform" and low <= 0:
            raise ValueError(f"log_uniform: low must be positive, got {low}")
        return Range(kind=kind, low=low, high=high)
    raise ValueError(
        f"expected a list of choices or a range ({', '.join(RANGE_KINDS)}), got {value!r}"
    )


class SweepSpec(BaseModel):
    """A parsed sweep file. ``base`` is absolute (relative to the sweep file's folder)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base: str
    metric: str = "val_accuracy"
    method: Literal[METHODS] = "grid"  # type: ignore[valid-type]
    trials: Annotated[int, Field(strict=True, ge=1)] | None = None
    seed: Annotated[int, Field(strict=True, ge=0)] = 0
    prune: bool = False
    prune_warmup_epochs: Annotated[int, Field(strict=True, ge=0)] = 2
    prune_startup_trials: Annotated[int, Field(strict=True, ge=1)] = 3
    space: dict[str, Any]

    @field_validator("space")
    @classmethod
    def _parse_space(cls, space: dict[str, Any]) -> dict[str, Any]:
        if not space:
            raise ValueError("needs at least one key to search")
        parsed = {}
        for key, value in space.items():
            try:
                parsed[key] = _dimension(value)
            except ValueError as error:
                raise ValueError(f"space.{key}: {error}") from None
        return parsed

    @property
    def direction(self) -> str:
        """``maximize`` or ``minimize``, by the metric's name (the rule early stopping uses)."""
        from bpnn.metrics import mode_of

        return "maximize" if mode_of(self.metric) == "max" else "minimize"

    def grid_size(self) -> int:
        return math.prod(len(d.values) for d in self.space.values() if isinstance(d, Choices))

    def total_trials(self) -> int:
        """Every combination for grid; ``trials`` for random and tpe."""
        return self.grid_size() if self.method == "grid" else int(self.trials or 0)

    def grid(self) -> list[dict[str, Any]]:
        """Every combination of the choices, as overrides (grid only)."""
        keys = list(self.space)
        values = [self.space[k].values for k in keys]
        return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*values)]

    def base_config(self, overrides: dict[str, Any] | None = None) -> Config:
        """The base config with ``overrides`` applied as ``--set KEY=VALUE``."""
        return load_config(self.base, as_assignments(overrides or {}))

    def record(self) -> dict[str, Any]:
        """The spec as plain data (saved in the sweep folder, compared on resume)."""
        out = self.model_dump(mode="json")
        out["space"] = {
            key: d.values if isinstance(d, Choices) else {d.kind: [d.low, d.high]}
            for key, d in self.space.items()
        }
        return out


def as_assignments(overrides: dict[str, Any]) -> list[str]:
    """``{"optimizer.lr": 0.01}`` -> ``["optimizer.lr=0.01"]`` (JSON is valid YAML)."""
    return [f"{key}={json.dumps(value)}" for key, value in overrides.items()]


def reported_metrics(config: Config) -> list[str]:
    """The metrics a run of ``config`` reports: per epoch in metrics.jsonl (train_, val_) and
    on the test split in summary.json (test_). A test runs a trial and checks every one."""
    from bpnn.metrics import epoch_metric_names, metric_names

    per_epoch = epoch_metric_names(config.task, config.data.val_fraction > 0)
    return [*per_epoch, *metric_names(config.task, ("test",))]


def load_sweep(path: str | Path) -> SweepSpec:
    """Read and check a sweep file; every problem is one ``ConfigError`` naming file and key."""
    path = Path(path)
    raw = read_yaml_file(path, "sweep")
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of keys (base, metric, method, space, ...)")
    if isinstance(raw.get("base"), str):
        raw["base"] = str((path.resolve().parent / raw["base"]).resolve())
    spec = parse_spec(raw, str(path))
    check_against_base(spec, str(path))
    return spec


def parse_spec(raw: dict[str, Any], source: str) -> SweepSpec:
    try:
        spec = SweepSpec.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(f"{source}: {_describe(error)}") from None
    if spec.method == "grid":
        ranges = [k for k, d in spec.space.items() if isinstance(d, Range)]
        if ranges:
            raise ConfigError(
                f"{source}: space.{ranges[0]}: a range needs method random or tpe; grid takes "
                f"a list of values"
            )
    elif spec.trials is None:
        raise ConfigError(f"{source}: trials: required for method '{spec.method}'")
    return spec


def _describe(error: ValidationError) -> str:
    """One line for pydantic's first problem: ``key: what is wrong``."""
    first = error.errors(include_url=False)[0]
    loc = ".".join(str(part) for part in first["loc"])
    if first["type"] == "extra_forbidden":
        known = ", ".join(SweepSpec.model_fields)
        return f"{loc}: unknown key (keys: {known})"
    if first["type"] == "missing":
        return f"{loc}: required"
    message = first["msg"].replace("Value error, ", "").replace("Input should be", "must be")
    if message.startswith(f"{loc}."):  # the space validator already names the key
        return message
    return f"{loc}: {message}" if loc else message


def check_against_base(spec: SweepSpec, source: str) -> None:
    """Apply every choice and both ends of every range to the base config, one at a time, and
    check the metric is one the base config's runs report."""
    try:
        base = spec.base_config()
    except ConfigError as error:
        raise ConfigError(f"{source}: base: {error}") from None
    metrics = reported_metrics(base)
    if spec.metric not in metrics:
        raise ConfigError(
            f"{source}: metric: '{spec.metric}' is not a metric of the base config's runs; "
            f"choose from: {', '.join(metrics)}"
        )
    for key, dimension in spec.space.items():
        ends = [] if isinstance(dimension, Choices) else [dimension.low, dimension.high]
        values = dimension.values if isinstance(dimension, Choices) else ends
        for value in values:
            try:
                spec.base_config({key: value})
            except ConfigError as error:
                # load_config names the base file; say which searched value it refused
                message = str(error).removeprefix(f"{spec.base}: ")
                raise ConfigError(f"{source}: space.{key}={json.dumps(value)}: {message}") from None
