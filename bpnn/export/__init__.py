"""Export a trained model to ONNX, PyTorch (safetensors) or scikit-learn (skops).

Each exported model takes the raw inputs ``bpnn predict`` takes (the fitted input scaling
travels with it, and for a model trained on a table its encoding: one-hot categories and
filled-in missing values) and answers what ``bpnn predict`` answers: class probabilities
(binary: ``[1 - p, p]``) or values in the data's own units. A table model's ONNX graph has one
input per raw column, its scikit-learn pipeline takes the raw ``DataFrame``, and its torch
source an ``encode(rows)`` function (``bpnn/export/columns.py``). The Python API::

    import bpnn
    from bpnn.export import to_onnx, to_sklearn, to_torch_state_dict

    model = bpnn.load_checkpoint("runs/digits/checkpoints/best.npz")
    onnx_model = to_onnx(model)                 # onnx.ModelProto (needs bpnn[onnx])
    state_dict = to_torch_state_dict(model)     # {"1.weight": array (out, in), ...}
    pipeline = to_sklearn(model)                # fitted sklearn Pipeline ([encoding,] scaler, MLP)

Every format starts from one ``InferencePlan`` (``bpnn/export/plan.py``): the layers
``Network.predict`` runs, with batch norm folded into the dense layer before it and dropout left
out. The format modules only write that plan down.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bpnn.errors import ExportError, OutputError
from bpnn.export.extras import EXTRAS
from bpnn.export.onnx_format import OPSET, build_onnx
from bpnn.export.plan import InferencePlan, inference_plan
from bpnn.export.sklearn_format import build_sklearn, sklearn_bytes
from bpnn.export.torch_format import torch_bytes, torch_source, torch_state_dict
from bpnn.model import Model
from bpnn.outputs import output_set, refuse_existing, write_new

#: the formats of ``bpnn export --format`` (the names of their optional extras too)
FORMATS: tuple[str, ...] = tuple(EXTRAS)

__all__ = [
    "FORMATS",
    "OPSET",
    "ExportResult",
    "InferencePlan",
    "export_checkpoint",
    "inference_plan",
    "to_onnx",
    "to_sklearn",
    "to_torch_source",
    "to_torch_state_dict",
]


def to_onnx(model: Model) -> Any:
    """``model`` as an ``onnx.ModelProto`` (opset ``OPSET``, float32, input ``input`` of shape
    ``(batch, features)``; a table model: one input per raw column, ``(batch, 1)`` float32 or
    string), checked by ``onnx.checker``."""
    return build_onnx(inference_plan(model))


def to_torch_state_dict(model: Model) -> dict[str, np.ndarray]:
    """The state dict (float32 NumPy arrays, Linear weights ``(out, in)``) of the
    ``torch.nn.Sequential`` that ``to_torch_source`` builds."""
    return torch_state_dict(inference_plan(model))


def to_torch_source(model: Model, weights_path: str | Path) -> str:
    """Python source that builds the ``torch.nn.Sequential`` of ``model`` and loads its weights
    from the safetensors file ``weights_path`` (a table model: and defines ``encode(rows)``)."""
    return torch_source(inference_plan(model), str(weights_path))


def to_sklearn(model: Model) -> Any:
    """``model`` as a fitted scikit-learn ``Pipeline`` (a table model's encoding as a
    ``ColumnTransformer`` taking the raw ``DataFrame``, the input scaling, then ``MLPClassifier``
    or ``MLPRegressor``), or an ``ExportError`` naming the part scikit-learn cannot hold."""
    return build_sklearn(inference_plan(model))


@dataclass
class ExportResult:
    """What ``export_checkpoint`` wrote, and the Python to show the user (torch)."""

    written: list[Path] = field(default_factory=list)
    source: str | None = None


def export_checkpoint(checkpoint: Path, fmt: str, out: Path) -> ExportResult:
    """Export the checkpoint at ``checkpoint`` as ``fmt`` to ``out`` (torch: and the Python that
    loads it to ``out`` with the suffix ``.py``). Nothing existing is overwritten."""
    from bpnn.model import load_model

    if fmt not in FORMATS:
        raise ExportError(f"--format: unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    targets = [out]
    if fmt == "torch":
        if out.suffix == ".py":
            raise OutputError(f"{out}: the weights need another name than the Python beside them")
        targets.append(out.with_suffix(".py"))
    refuse_existing(targets, "--out")
    plan = inference_plan(load_model(checkpoint))
    result = ExportResult()
    with output_set(out.parent, "--out") as written:  # no weights without the Python beside
        if fmt == "onnx":
            write_new(out, build_onnx(plan).SerializeToString(), "--out")
            written.append(out)
        elif fmt == "torch":
            data = torch_bytes(plan)
            result.source = torch_source(plan, str(out))
            write_new(out, data, "--out")
            written.append(out)
            write_new(targets[1], result.source.encode("utf-8"), "--out")
            written.append(targets[1])
        else:
            write_new(out, sklearn_bytes(plan), "--out")
            written.append(out)
    result.written = written
    return result
