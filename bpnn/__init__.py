"""bpnn: multilayer perceptrons with backpropagation written from scratch in NumPy.

The public Python API::

    import bpnn
    model = bpnn.load_checkpoint("runs/d1/checkpoints/best.npz")
    probabilities = model.predict(X)
    loss, gradients = model.loss_and_gradients(X, y)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bpnn.version import __version__

__all__ = ["Model", "__version__", "load_checkpoint"]

if TYPE_CHECKING:
    from bpnn.model import Model


def load_checkpoint(path: Any) -> Model:
    """Load a checkpoint written by ``bpnn train`` as a ``Model`` (no pickle involved)."""
    from bpnn.model import load_model

    return load_model(path)


def __getattr__(name: str) -> Any:
    # Model is imported lazily so that `import bpnn` (and `bpnn --help`) stays fast
    if name == "Model":
        from bpnn.model import Model

        return Model
    raise AttributeError(f"module 'bpnn' has no attribute {name!r}")
