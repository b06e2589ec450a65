"""``Scaling``: the per-feature affine map every input (and regression target) scaling is.

Fitted on the training split by ``bpnn.data``, stored in checkpoints as two arrays, and applied
by ``bpnn.model.Model`` to raw data.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

# --- scaling ----------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Scaling:
    """A per-feature affine map ``x' = (x - offset) * factor``; every scaling method is one.

    ``standard``: offset = mean, factor = 1 / std (a constant feature gets factor 1);
    ``minmax``: offset = min, factor = 1 / (max - min), mapping the training range to [0, 1];
    ``pixels``: offset 0, factor 1/255; ``none``: offset 0, factor 1.
    """

    offset: np.ndarray
    factor: np.ndarray

    METHODS = ("standard", "minmax", "pixels", "none")

    def apply(self, X: np.ndarray, dtype: Any = np.float32) -> np.ndarray:
        """``(X - offset) * factor`` as a new ``dtype`` array (X itself is never modified).

        The arithmetic runs in the wider of X's type and ``dtype``, so float64 data is centred
        before it is rounded to float32, and uint8 pixels become float32 with a single copy.
        """
        X = np.asarray(X)
        dtype = np.dtype(dtype)
        work = np.result_type(X.dtype, dtype)
        out = X.astype(work, copy=True)
        if np.any(self.offset):
            out -= self.offset.astype(work)
        if not np.all(self.factor == 1):
            out *= self.factor.astype(work)
        return out.astype(dtype, copy=False)

    def invert(self, X: np.ndarray) -> np.ndarray:
        """Back to the original units: ``X / factor + offset`` (float64)."""
        return np.asarray(X, dtype=np.float64) / self.factor + self.offset

    @classmethod
    def fit(cls, X: np.ndarray, method: str) -> Scaling:
        """Fit ``method`` (one of ``METHODS``) to the rows of ``X``, shape (n, features)."""
        from sklearn.preprocessing import MinMaxScaler, StandardScaler

        X = np.asarray(X)
        n_features = X.shape[1]
        if method == "standard":
            # values too large to square (1e300) give an infinite scaling, which the caller
            # reports in one line; the overflow warnings would only add noise on stderr
            with warnings.catch_warnings(), np.errstate(over="ignore", invalid="ignore"):
                warnings.simplefilter("ignore", RuntimeWarning)
                scaler = StandardScaler().fit(X)  # its scale_ is 1 for a constant feature
            return cls(
                np.asarray(scaler.mean_, np.float64), 1.0 / np.asarray(scaler.scale_, np.float64)
            )
        if method == "minmax":
            scaler = MinMaxScaler().fit(X)
            spread = np.asarray(scaler.data_range_, np.float64)
            spread[spread == 0] = 1.0
            return cls(np.asarray(scaler.data_min_, np.float64), 1.0 / spread)
        if method == "pixels":
            return cls(np.zeros(n_features), np.full(n_features, 1.0 / 255.0))
        if method == "none":
            return cls.identity(n_features)
        raise ValueError(f"unknown scaling {method!r}; choose from: {', '.join(cls.METHODS)}")

    @classmethod
    def identity(cls, n: int) -> Scaling:
        return cls(np.zeros(n), np.ones(n))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Scaling):
            return NotImplemented
        return np.array_equal(self.offset, other.offset) and np.array_equal(
            self.factor, other.factor
        )

    __hash__ = None  # type: ignore[assignment]
