"""Shared helpers of the engine tests: PyTorch's losses as an oracle, the .npz round trip."""

from __future__ import annotations

import io

import numpy as np


def through_npz(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Save and reload through .npz without pickle, as a checkpoint does."""
    buffer = io.BytesIO()
    np.savez(buffer, **state)
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as loaded:
        return {key: loaded[key] for key in loaded.files}


def torch_loss(name: str, options: dict, z, y):
    """The PyTorch loss matching bpnn's ``name`` with ``options``, on logits ``z`` (a tensor)."""
    import torch
    import torch.nn.functional as nnf

    if name == "cross_entropy":
        weights = options.get("class_weights")
        return nnf.cross_entropy(
            z,
            torch.tensor(y),
            weight=None if weights is None else torch.tensor(weights, dtype=torch.float64),
            label_smoothing=options.get("label_smoothing", 0.0),
        )
    if name == "binary_cross_entropy":
        pos_weight = options.get("pos_weight")
        return nnf.binary_cross_entropy_with_logits(
            z,
            torch.tensor(y, dtype=torch.float64)[:, None],
            pos_weight=None if pos_weight is None else torch.tensor([pos_weight]),
        )
    target = torch.tensor(y)
    if name == "mse":
        return nnf.mse_loss(z, target)
    if name == "mae":
        return nnf.l1_loss(z, target)
    return nnf.huber_loss(z, target, delta=options.get("delta", 1.0))
