"""The optional packages each export format needs, and the one-line error when one is missing."""

from __future__ import annotations

import importlib
from types import ModuleType

from bpnn.errors import ExportError

#: format -> (the pip extra that installs its packages, the modules it imports)
EXTRAS: dict[str, tuple[str, tuple[str, ...]]] = {
    "onnx": ("onnx", ("onnx",)),
    "torch": ("torch", ("safetensors",)),
    "sklearn": ("sklearn", ("skops",)),
}


def require(module: str, fmt: str) -> ModuleType:
    """Import ``module`` for export format ``fmt``, or say which extra to install."""
    extra = EXTRAS[fmt][0]
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ExportError(
            f"export --format {fmt} needs the {extra} extra ({module} is not installed): "
            f"pip install 'bpnn[{extra}]'"
        ) from None
