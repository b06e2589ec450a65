"""The sweep file: its schema, and every check that can be made before a trial runs.

A sweep file names a base config, the metric to optimise and the search space over dotted
config keys. A point of the space (a value for every searched key) is checked as a whole, by
applying all its values to the base config exactly as ``--set KEY=VALUE ...`` would
(``bpnn.config.load_config`` with overrides, the check ``bpnn train`` and ``bpnn config check``
make); the config's schema is never repeated here.

Before any trial runs, the points made of the candidate values (every choice, both ends of
every range) are searched, each point checked once, at most ``SEARCH_LIMIT`` per value and
``CHECK_LIMIT`` in all, so that the time before the first trial is bounded however large the
space (a grid of more than ``MAX_GRID_POINTS`` points is refused outright, from the counts of
its lists: it is never listed). The sweep file is refused, in one ``ConfigError`` naming it
and the key, when a value is refused with it alone *and* in every point with it (an unknown
key, a value of the wrong type or out of range, a typo in a name), or when no point at all is
valid. A value that only some points make invalid (``loss: [mse, cross_entropy]`` crossed with
``data.one_hot: [true, false]``: two of the four points) is not an error of the sweep file: the
runner checks each point as a whole before its trial runs (``point_error``) and records an
invalid one as a failed trial naming the point and the key, without running it.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bpnn.config import Config, load_config, read_yaml_file
from bpnn.errors import ConfigError, MemoryLimitError

RANGE_KINDS = ("uniform", "log_uniform", "int")
METHODS = ("grid", "random", "tpe")
#: how many points with a value are checked before giving up proving it wrong
SEARCH_LIMIT = 1000
#: how many points are checked in all before the first trial (a check loads a config: 2-4 ms)
CHECK_LIMIT = 2 * SEARCH_LIMIT
#: the most points a grid may have: one trial each (Optuna's grid sampler lists them all)
MAX_GRID_POINTS = 100_000


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


def candidates(dimension: Dimension) -> list[Any]:
    """The values of a dimension checked before a sweep runs: every choice, both ends of a
    range."""
    if isinstance(dimension, Choices):
        return list(dimension.values)
    return [dimension.low, dimension.high]


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
        """The number of combinations of the choices, from their counts (never listed)."""
        return math.prod(len(d.values) for d in self.space.values() if isinstance(d, Choices))

    def total_trials(self) -> int:
        """Every combination for grid; ``trials`` for random and tpe."""
        return self.grid_size() if self.method == "grid" else int(self.trials or 0)

    def base_config(self, overrides: dict[str, Any] | None = None) -> Config:
        """The base config with ``overrides`` applied as ``--set KEY=VALUE``."""
        return load_config(self.base, as_assignments(overrides or {}))

    def point_error(self, point: dict[str, Any]) -> str | None:
        """Why the base config with all the values of ``point`` applied is refused, as one
        line without the base file's name (``key: what is wrong``); None if it is valid."""
        try:
            self.base_config(point)
        except (ConfigError, MemoryLimitError) as error:
            return str(error).removeprefix(f"{self.base}: ")
        return None

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
        if spec.trials is not None:
            raise ConfigError(
                f"{source}: trials: a grid runs each combination of its lists once; leave "
                f"trials out, or search with method random or tpe"
            )
        ranges = [k for k, d in spec.space.items() if isinstance(d, Range)]
        if ranges:
            raise ConfigError(
                f"{source}: space.{ranges[0]}: a range needs method random or tpe; grid takes "
                f"a list of values"
            )
        size = spec.grid_size()
        if size > MAX_GRID_POINTS:
            counts = " x ".join(str(len(d.values)) for d in spec.space.values())
            counts = counts if len(counts) <= 60 else "the counts of its lists multiplied"
            raise ConfigError(
                f"{source}: space: a grid of {_count(size)} points ({counts}), more than the "
                f"{MAX_GRID_POINTS:,} a grid may have (one trial each); search it with method "
                f"random or tpe and a number of trials"
            )
    elif spec.trials is None:
        raise ConfigError(f"{source}: trials: required for method '{spec.method}'")
    return spec


def _count(number: int) -> str:
    """``20,000,000,000``; a number too long to read as ``about 10^1234``."""
    return f"{number:,}" if number < 10**15 else f"about 10^{len(str(number)) - 1}"


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


def describe_point(point: dict[str, Any]) -> str:
    """``loss="mse", data.one_hot=true``: a point as the ``--set`` values it applies."""
    return ", ".join(f"{key}={json.dumps(value)}" for key, value in point.items())


class PointChecks:
    """The points of a sweep's space checked so far, each checked once (``point_error``), at
    most ``CHECK_LIMIT`` of them."""

    def __init__(self, spec: SweepSpec) -> None:
        self.spec = spec
        self.errors: dict[str, str | None] = {}

    def error(self, point: dict[str, Any]) -> str | None:
        key = json.dumps(point, sort_keys=True)
        if key not in self.errors:
            self.errors[key] = self.spec.point_error(point)
        return self.errors[key]

    def checked(self, point: dict[str, Any]) -> bool:
        return json.dumps(point, sort_keys=True) in self.errors

    def points_with(self, key: str, value: Any) -> Iterator[dict[str, Any]]:
        """The points of the candidate values (``candidates``) that give ``key`` ``value``, in
        the order of the space, at most ``SEARCH_LIMIT + 1`` of them (the one more says that
        there are more than the search checks); made one by one, never listed."""
        space = self.spec.space
        others = [k for k in space if k != key]
        combinations = itertools.product(*(candidates(space[k]) for k in others))
        for combination in itertools.islice(combinations, SEARCH_LIMIT + 1):
            chosen = dict(zip(others, combination, strict=True))
            yield {k: value if k == key else chosen[k] for k in space}

    def refused_everywhere(self, key: str, value: Any) -> tuple[dict[str, Any], str] | None:
        """The first point with ``key=value`` and its error, if every point with it that
        ``points_with`` gives is invalid; None if one is valid, or if the search gave up (more
        than ``SEARCH_LIMIT`` points with the value, or ``CHECK_LIMIT`` points checked in all)."""
        first: tuple[dict[str, Any], str] | None = None
        for searched, point in enumerate(self.points_with(key, value), start=1):
            if searched > SEARCH_LIMIT:
                return None  # more points than the search checks: gave up
            if len(self.errors) >= CHECK_LIMIT and not self.checked(point):
                return None  # the search has checked all it may
            error = self.error(point)
            if error is None:
                return None
            first = first or (point, error)
        return first


def check_against_base(spec: SweepSpec, source: str) -> None:
    """Check that the metric is one the base config's runs report, then the searched values
    (see the module's docstring): refuse a value that the base config refuses with it alone
    and that no point of the space makes valid (an unknown key, a value of the wrong type or
    out of range, a typo in a name), and a space none of whose points is valid. A value that
    is valid in some points only is not an error: its other points are failed trials."""
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
    checks = PointChecks(spec)
    refused = []  # (key, value, the first point with it, that point's error)
    for key, dimension in spec.space.items():
        for value in candidates(dimension):
            found = checks.refused_everywhere(key, value)
            if found is None:
                continue
            alone = checks.error({key: value})
            if alone is not None:  # wrong by itself, and no other value makes it right
                raise ConfigError(f"{source}: space.{key}={json.dumps(value)}: {alone}")
            refused.append((key, value, *found))
    first_key = next(iter(spec.space))
    if sum(key == first_key for key, *_ in refused) == len(candidates(spec.space[first_key])):
        _, _, point, error = refused[0]
        raise ConfigError(
            f"{source}: space: no point of it is valid, e.g. {describe_point(point)}: {error}"
        )
