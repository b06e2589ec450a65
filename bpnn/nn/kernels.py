"""Fused kernels: the optimizer's element-wise arithmetic in one compiled pass over the buffer.

The NumPy code in ``optimizers.py`` is the reference: one array operation per term, the textbook
formula in order. That costs a pass over the whole parameter buffer per operation (twelve for
Adam, a quarter of a training step on MNIST), because NumPy cannot combine them. The kernels here
do the same arithmetic for one element at a time, all terms at once, compiled by numba. Each
does exactly the operations of its reference, in the same order and precision (float32 stays
float32), so the results are the same bit for bit (``tests/nn/test_kernels.py``): whether a run
used a kernel or not never changes its metrics.

A kernel is used only where it pays and can run (``adam_kernel`` returns None otherwise):

- the buffer holds at least ``MIN_FUSED_SIZE`` parameters. Importing numba and compiling the
  loop take about 0.55 s in each process (nothing is cached on disk: the engine writes no
  files). Measured on 2 cores, an Adam step over 235,146 float32 parameters (configs/mnist.yaml)
  takes 74 µs fused against 280 µs in NumPy, which repays the start-up in about 2,700 steps
  (six epochs); at 65,536 parameters, 26 against 88 µs, in about 9,000 steps. Smaller networks
  stay with NumPy and never import numba;
- numba is installed, loads and compiles, and is not disabled (``NUMBA_DISABLE_JIT=1`` would
  run the loop as slow Python), and the environment variable ``BPNN_FUSED`` is not ``0``;
- the buffers are 1-D, contiguous and float32 or float64.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from functools import cache

import numpy as np

#: the smallest parameter buffer that gets a fused kernel (see the module docstring)
MIN_FUSED_SIZE = 65_536

#: ``adam(w, g, m, v, beta1, beta2, eps_t, step_size)``: updates w, m and v in place
AdamKernel = Callable[
    [np.ndarray, np.ndarray, np.ndarray, np.ndarray, float, float, float, float], None
]


def _adam_loop(
    w: np.ndarray,
    g: np.ndarray,
    m: np.ndarray,
    v: np.ndarray,
    beta1: float,
    one_minus_beta1: float,
    beta2: float,
    one_minus_beta2: float,
    eps_t: float,
    step_size: float,
) -> None:
    """Adam for each element i, with the reference's operations in the reference's order::

    m <- beta1 m + (1 - beta1) g
    v <- beta2 v + (1 - beta2) g^2
    w <- w - step_size * m / (sqrt(v) + eps_t)
    """
    for i in range(w.size):
        gi = g[i]
        mi = beta1 * m[i] + one_minus_beta1 * gi
        vi = beta2 * v[i] + one_minus_beta2 * (gi * gi)
        m[i] = mi
        v[i] = vi
        w[i] -= step_size * (mi / (np.sqrt(vi) + eps_t))


def adam_kernel(*buffers: np.ndarray) -> AdamKernel | None:
    """The fused Adam update for these buffers (w, g, m, v, ...), or None where it does not pay
    or cannot run."""
    dtype = buffers[0].dtype
    if buffers[0].size < MIN_FUSED_SIZE or os.environ.get("BPNN_FUSED", "1") == "0":
        return None
    if dtype not in (np.float32, np.float64):
        return None
    if any(b.ndim != 1 or b.dtype != dtype or not b.flags.c_contiguous for b in buffers):
        return None
    return _fused_adam(dtype)


@cache
def _fused_adam(dtype: np.dtype) -> AdamKernel | None:
    """``_adam_loop`` compiled by numba for ``dtype``, or None if that cannot be done here.

    numba is imported only now (it takes 0.15 s) and compiles in a first call on one-element
    buffers. Any failure on the way (no numba, an llvmlite that does not load, a compile error)
    leaves the NumPy reference in charge, and numba's warnings are not shown (the engine never
    prints).
    """
    one = [np.ones(1, dtype) for _ in range(4)]
    scalar = dtype.type
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import numba

            if numba.config.DISABLE_JIT:
                return None
            # error_model="numpy": dividing by zero gives inf, as in NumPy, instead of raising,
            # which also lets the loop vectorize; no fastmath, so every operation rounds as
            # NumPy's does
            loop = numba.njit(nogil=True, error_model="numpy")(_adam_loop)
            loop(*one, *[scalar(0.5)] * 6)
    except Exception:  # any failure of numba means: use the reference
        return None

    def adam(
        w: np.ndarray,
        g: np.ndarray,
        m: np.ndarray,
        v: np.ndarray,
        beta1: float,
        beta2: float,
        eps_t: float,
        step_size: float,
    ) -> None:
        # the scalars in the buffers' precision, as NumPy casts a Python float in the reference
        loop(
            w,
            g,
            m,
            v,
            scalar(beta1),
            scalar(1.0 - beta1),
            scalar(beta2),
            scalar(1.0 - beta2),
            scalar(eps_t),
            scalar(step_size),
        )

    return adam
