"""Checks for the options of engine components: each returns the value or raises a ValueError
that names the option and what it may be (the config layer turns it into ``optimizer.beta1: ...``).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterable
from numbers import Integral, Real
from typing import TypeVar

import numpy as np

T = TypeVar("T")


def check_number(
    option: str,
    value: object,
    low: float,
    high: float,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """``value`` as a float in the interval from ``low`` to ``high`` (open ends as flagged)."""
    interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if isinstance(value, bool) or not isinstance(value, Real) or math.isnan(value):
        raise ValueError(f"{option} must be a number in {interval}, got {value!r}")
    number = float(value)
    too_low = number <= low if low_open else number < low
    too_high = number >= high if high_open else number > high
    if too_low or too_high:
        raise ValueError(f"{option} must be in {interval}, got {value!r}")
    return number


def check_int(option: str, value: object, low: int, high: int | None = None) -> int:
    """``value`` as an int in ``[low, high)`` (no upper bound when ``high`` is None)."""
    interval = f"[{low}, {'inf' if high is None else high})"
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ValueError(f"{option} must be an integer in {interval}, got {value!r}")
    if value < low or (high is not None and value >= high):
        raise ValueError(f"{option} must be in {interval}, got {value!r}")
    return int(value)


def check_bool(option: str, value: object) -> bool:
    """``value`` if it is a bool, else a ValueError naming ``option``."""
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"{option} must be true or false, got {value!r}")
    return bool(value)


def lookup(registry: dict[str, T], kind: str, name: str) -> T:
    """``registry[name]``, or a ValueError that lists the ``kind``'s names to choose from."""
    if name not in registry:
        raise ValueError(f"unknown {kind} '{name}'; choose from: {', '.join(registry)}")
    return registry[name]


def keyword_options(cls: type) -> tuple[str, ...]:
    """The keyword-only arguments of ``cls``: the options it takes."""
    parameters = inspect.signature(cls.__init__).parameters.values()
    return tuple(p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY)


def check_option_names(
    kind: str, name: str, given: Iterable[str], accepted: tuple[str, ...]
) -> None:
    """A ValueError for the first option in ``given`` that is not ``accepted``."""
    for option in given:
        if option not in accepted:
            raise ValueError(
                f"unknown option '{option}' for {kind} '{name}'; "
                f"choose from: {', '.join(accepted) or '(none)'}"
            )
