"""Data sets that need no file: scikit-learn's built-in sets and synthetic generators.

``data.options`` of a synthetic source go to its generator, checked against the generator's
signature; its ``random_state`` is drawn from the config's seed. scikit-learn is imported
inside ``load``, so that reading a config (``bpnn config check``) does not pay for it.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from bpnn.data.sources import (
    CLASSIFICATION,
    SOURCES,
    Log,
    Raw,
    Source,
    generic_names,
    one_line,
    register,
)
from bpnn.errors import DataError

if TYPE_CHECKING:
    from bpnn.data.options import DataConfig


class BuiltinSource(Source):
    """One of scikit-learn's small built-in sets (``sklearn.datasets.load_<name>``)."""

    def __init__(self, name: str, tasks: tuple[str, ...] = CLASSIFICATION) -> None:
        self.name = name  # type: ignore[misc]
        self.tasks = tasks  # type: ignore[misc]

    def load(self, config: DataConfig, *, seed: int, log: Log) -> Raw:
        from sklearn import datasets  # here, not at the top: `config check` stays fast

        X, y = getattr(datasets, f"load_{self.name}")(return_X_y=True)
        return Raw(
            X, y, generic_names(X.shape[1]), self.name, continuous=self.tasks == ("regression",)
        )


def make_xor(
    n_samples: int = 400, noise: float = 0.0, random_state: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The XOR problem: points uniform in [-1, 1]^2, label 1 where ``x0 * x1 > 0`` (quadrants
    I and III), else 0. ``noise`` is the standard deviation of Gaussian jitter added to the points
    *after* labelling (as in ``make_moons``), so noisy points may cross the axes."""
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")
    if isinstance(noise, bool) or not isinstance(noise, int | float) or not noise >= 0:
        raise ValueError(f"noise must be a number >= 0, got {noise!r}")
    rng = np.random.default_rng(random_state)
    X = rng.uniform(-1.0, 1.0, size=(n_samples, 2))
    y = (X[:, 0] * X[:, 1] > 0).astype(np.int64)
    if noise:
        X += rng.normal(0.0, noise, size=X.shape)
    return X, y


#: options that count samples or features: positive integers (or lists of counts)
SIZE_OPTIONS = ("n_samples", "n_features")

#: generator arguments that are not user options: the seed gives random_state, the rest would
#: change what the generator returns
NOT_OPTIONS = ("random_state", "return_centers", "return_X_y", "coef")


class SyntheticSource(Source):
    """A generated data set: ``make_xor`` or one of scikit-learn's ``make_*`` generators."""

    #: the generator's keyword arguments (``noise``, ``n_samples``: ``generator_options``)
    fields: ClassVar[dict[str, tuple[Any, Any]]] = {"options": (dict[str, Any], {})}

    def __init__(
        self, name: str, generator: str | Callable[..., Any], tasks: tuple[str, ...]
    ) -> None:
        self.name = name  # type: ignore[misc]
        self.tasks = tasks  # type: ignore[misc]
        self._generator = generator

    def generator(self) -> Callable[..., Any]:
        if callable(self._generator):
            return self._generator
        from sklearn import datasets  # here, not at the top: `config check` stays fast

        return getattr(datasets, self._generator)

    def options(self) -> list[str]:
        """The ``data.options`` this source accepts (its generator's keyword arguments)."""
        parameters = inspect.signature(self.generator()).parameters
        return [p for p in parameters if p not in NOT_OPTIONS]

    def check(self, config: DataConfig) -> None:
        """The options must be the generator's (``random_state`` comes from the seed)."""
        valid = self.options()
        for option in config.options:
            if option == "random_state":
                raise ValueError(
                    f"data.options.random_state: not an option of '{self.name}'; "
                    "it comes from the seed"
                )
            if option not in valid:
                raise ValueError(
                    f"data.options.{option}: unknown option of '{self.name}'; "
                    f"valid: {', '.join(valid)}"
                )
        # what can be judged without generating: numbers finite, sizes positive
        for option, value in config.options.items():
            numbers = value if isinstance(value, list | tuple) else [value]
            if any(isinstance(v, float) and not math.isfinite(v) for v in numbers):
                raise ValueError(f"data.options.{option}: must be finite, got {value!r:.60}")
            if option in SIZE_OPTIONS and not (
                all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in numbers)
                and sum(numbers) > 0
            ):
                raise ValueError(
                    f"data.options.{option}: must be a positive integer, got {value!r:.60}"
                )

    def estimated_bytes(self, config: DataConfig) -> int | None:
        """``n_samples x n_features`` float64 values (their defaults where not set), twice:
        the generator's arrays and the split copies."""
        defaults = inspect.signature(self.generator()).parameters
        sizes = []
        for key in ("n_samples", "n_features"):
            value = config.options.get(key, defaults[key].default if key in defaults else 2)
            if isinstance(value, list | tuple) and all(isinstance(v, int) for v in value):
                value = sum(value)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                return None  # the generator itself refuses it, with its own message
            sizes.append(value)
        return 2 * 8 * sizes[0] * sizes[1]

    def load(self, config: DataConfig, *, seed: int, log: Log) -> Raw:
        try:
            X, y = self.generator()(**config.options, random_state=seed)[:2]
        except (ValueError, TypeError) as error:
            raise DataError(
                f"data.options: '{self.name}' refused them: {one_line(error)}"
            ) from None
        continuous = self.tasks == ("regression",)
        return Raw(X, y, generic_names(X.shape[1]), self.name, continuous=continuous)


for _name in ("digits", "iris", "wine", "breast_cancer"):
    register(BuiltinSource(_name))
register(BuiltinSource("diabetes", ("regression",)))

register(SyntheticSource("xor", make_xor, CLASSIFICATION))
for _name in ("moons", "circles", "blobs", "classification"):
    register(SyntheticSource(_name, f"make_{_name}", CLASSIFICATION))
register(SyntheticSource("regression", "make_regression", ("regression",)))


def generator_options(source: str) -> list[str]:
    """The ``data.options`` synthetic source ``source`` accepts."""
    found = SOURCES[source]
    if not isinstance(found, SyntheticSource):
        raise ValueError(f"{source!r} is not a synthetic source")
    return found.options()
