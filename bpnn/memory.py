"""The memory a run needs, estimated before anything large is allocated.

A network of layer sizes ``n_0, ..., n_L`` holds ``P = sum(n_{l-1} n_l + n_l)`` parameters (plus
``4 n_l`` for batch norm: scale, shift and two running statistics). Training keeps the
parameters, their gradients, the optimizer's state (``k`` more buffers of ``P``: 2 for Adam, 1
for momentum) and one scratch buffer, and for a batch of ``B`` samples about five arrays of
``B x n_l`` per layer (``z``, ``a``, ``delta``, the dropout mask, a temporary). The data adds its
arrays. A run whose estimate exceeds the memory available (``MemAvailable``) or
``train.max_memory`` is refused with one line saying how much it needs and how much there is.
"""

from __future__ import annotations

import itertools
import math
import os
import re
from collections.abc import Sequence

import numpy as np

from bpnn.errors import ConfigError, MemoryLimitError
from bpnn.nn.optimizers import make_optimizer

#: arrays of ``batch x width`` per layer while training: z, a, delta, dropout mask, temporary
ACTIVATION_ARRAYS = 5

_UNITS = {"": 1, "b": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


def parse_size(value: int | str, key: str = "train.max_memory") -> int:
    """Bytes from ``4000000000``, ``"512MiB"``, ``"4GB"`` or ``"1.5g"`` (powers of 1024)."""
    if isinstance(value, int):
        if value <= 0:
            raise ConfigError(f"{key}: must be a positive number of bytes, got {value}")
        return value
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kmgt]?)(i?b)?\s*", value.lower())
    if match is None:
        raise ConfigError(
            f"{key}: {value[:40]!r} is not a size; write bytes or e.g. '512MiB', '4GiB'"
        )
    size = float(match.group(1)) * _UNITS[match.group(2)]
    if not math.isfinite(size) or size >= 2**63:  # 400 nines are a float, but no size
        raise ConfigError(f"{key}: {value[:40]!r} is too large a size")
    if int(size) <= 0:
        raise ConfigError(f"{key}: must be positive, got {value[:40]!r}")
    return int(size)


def format_size(n: float) -> str:
    """``1536`` -> ``1.5 KiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"  # pragma: no cover


def available_bytes() -> int | None:
    """The memory the kernel says is available for new allocations (``MemAvailable``)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def parameter_count(sizes: Sequence[int], batch_norm: bool = False) -> int:
    """Weights and biases of dense layers ``sizes[0] -> ... -> sizes[-1]`` (+ batch norm)."""
    count = sum(a * b + b for a, b in itertools.pairwise(sizes))
    if batch_norm:
        count += sum(4 * width for width in sizes[1:-1])
    return count


def training_bytes(
    sizes: Sequence[int],
    batch_size: int,
    itemsize: int,
    optimizer_buffers: int,
    batch_norm: bool = False,
) -> int:
    """Bytes the network needs to train: parameters, gradients, ``optimizer_buffers`` more
    parameter-sized buffers, and the per-layer arrays of one batch."""
    parameters = parameter_count(sizes, batch_norm) * (2 + optimizer_buffers)
    activations = ACTIVATION_ARRAYS * batch_size * sum(sizes)
    return (parameters + activations) * itemsize


def optimizer_buffers(name: str, options: dict) -> int:
    """How many parameter-sized buffers optimizer ``name`` keeps (its state and a scratch)."""
    optimizer = make_optimizer(name, **options)
    optimizer.build(np.zeros(1))
    return len(optimizer.state) + 1


def check_fits(needed: int, what: str, limit: int | None, hint: str) -> None:
    """Refuse ``needed`` bytes when they exceed ``limit`` (train.max_memory) or the memory
    available now."""
    if limit is not None and needed > limit:
        raise MemoryLimitError(
            f"{what} needs about {format_size(needed)}, more than train.max_memory "
            f"({format_size(limit)}); {hint}"
        )
    available = available_bytes()
    if available is not None and needed > available:
        raise MemoryLimitError(
            f"{what} needs about {format_size(needed)}, but only {format_size(available)} of "
            f"memory is available; {hint}"
        )
