"""One optimizer step over a network's flat buffers, the one place that clips and updates
(Keras's ``BaseOptimizer.apply``); the trainer, ``bpnn lr-find`` and ``bpnn explain --step`` all
take it here::

    ||g|| = sqrt(sum of g_i^2 over every parameter)      # the global norm
    g <- g * grad_clip / ||g||   when ||g|| > grad_clip  # optional clipping, in place
    optimizer.update_step(g, params, lr)                 # the update, in place
"""

from __future__ import annotations

import numpy as np

from bpnn.nn.network import Network
from bpnn.nn.optimizers import Optimizer


def clip_by_global_norm(gradient: np.ndarray, max_norm: float | None) -> bool:
    """Scale ``gradient`` in place so that its Euclidean norm is at most ``max_norm`` (None: no
    clipping); True if it was scaled."""
    if max_norm is None:
        return False
    norm = float(np.sqrt(np.dot(gradient, gradient)))
    if norm <= max_norm:
        return False
    gradient *= max_norm / norm
    return True


def optimizer_step(
    network: Network,
    optimizer: Optimizer,
    learning_rate: float,
    grad_clip: float | None = None,
) -> bool:
    """Clip the network's gradient buffer (``grad_clip``), then let ``optimizer`` update its
    parameter buffer at ``learning_rate``; True if the gradient was clipped. The gradient
    buffer then holds the gradient the update used (``update_step`` only reads it)."""
    clipped = clip_by_global_norm(network.grads, grad_clip)
    optimizer.update_step(network.grads, network.params, learning_rate)
    return clipped
