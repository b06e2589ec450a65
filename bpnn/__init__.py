"""bpnn: multilayer perceptrons with backpropagation written from scratch in NumPy.

The public Python API, the one the ``bpnn`` commands call (each command of ``bpnn/cli/`` parses
its arguments, calls one of these and prints what it returns)::

    import bpnn
    config = bpnn.load_config("configs/digits.yaml", ["train.epochs=5"])
    run_dir, summary = bpnn.train(config)
    metrics = bpnn.evaluate(run_dir / "checkpoints" / "best.npz")
    model = bpnn.load_checkpoint(run_dir / "checkpoints" / "best.npz")
    probabilities = model.predict(X)
    loss, gradients = model.loss_and_gradients(X, y)

A name is never that of a subpackage (``bpnn.sweep``, ``bpnn.export``), which importing would
replace. Every name is imported when first used, so ``import bpnn`` (and ``bpnn --help``) stays
fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from bpnn.version import __version__

#: each public name: the module that defines it, and its name there
_API = {
    "Model": ("bpnn.model", "Model"),
    # configs
    "load_config": ("bpnn.config", "load_config"),
    "config_schema": ("bpnn.config", "config_schema"),
    "check_config": ("bpnn.run.pipeline", "check_config"),
    "describe_data": ("bpnn.run.pipeline", "describe_data"),
    "starter_config": ("bpnn.examples", "starter_config"),
    "example_names": ("bpnn.examples", "example_names"),
    # runs
    "train": ("bpnn.run.pipeline", "run_training"),
    "resume": ("bpnn.run.resume", "resume_training"),
    "RunDirectory": ("bpnn.run.directory", "RunDirectory"),
    "list_runs": ("bpnn.tools.runs", "list_runs"),
    "plot": ("bpnn.tools.plot", "plot_runs"),
    "health_report": ("bpnn.tools.diagnose", "health_report"),
    "run_sweep_file": ("bpnn.sweep.runner", "run_sweep_file"),
    "SweepOutcome": ("bpnn.sweep.runner", "SweepOutcome"),
    # checkpoints
    "evaluate": ("bpnn.run.evaluate", "evaluate_checkpoint"),
    "evaluate_file": ("bpnn.run.evaluate", "evaluate_file"),
    "predict": ("bpnn.evaluation", "prediction_table"),
    "write_predictions": ("bpnn.evaluation", "write_predictions"),
    "check_prediction_request": ("bpnn.evaluation", "check_prediction_request"),
    "export_checkpoint": ("bpnn.export", "export_checkpoint"),
    # looking inside
    "gradient_check": ("bpnn.tools.gradcheck", "gradient_check"),
    "explain": ("bpnn.tools.explain", "explain"),
    "explanation_json": ("bpnn.tools.explain_views", "to_json"),
    "explanation_text": ("bpnn.tools.explain_views", "to_text"),
    "explanation_markdown": ("bpnn.tools.explain_views", "to_markdown"),
    "lr_find": ("bpnn.tools.lr_find", "lr_find"),
    "importance": ("bpnn.tools.importance", "importance"),
    "write_lr_find": ("bpnn.tools.lr_find", "write_outputs"),
}

__all__ = [
    "Model",
    "RunDirectory",
    "SweepOutcome",
    "__version__",
    "check_config",
    "check_prediction_request",
    "config_schema",
    "describe_data",
    "evaluate",
    "evaluate_file",
    "example_names",
    "explain",
    "explanation_json",
    "explanation_markdown",
    "explanation_text",
    "export_checkpoint",
    "gradient_check",
    "health_report",
    "importance",
    "list_runs",
    "load_checkpoint",
    "load_config",
    "lr_find",
    "plot",
    "predict",
    "resume",
    "run_sweep_file",
    "starter_config",
    "train",
    "write_lr_find",
    "write_predictions",
]

if TYPE_CHECKING:
    from bpnn.config import config_schema, load_config
    from bpnn.evaluation import check_prediction_request, write_predictions
    from bpnn.evaluation import prediction_table as predict
    from bpnn.examples import example_names, starter_config
    from bpnn.export import export_checkpoint
    from bpnn.model import Model
    from bpnn.run.directory import RunDirectory
    from bpnn.run.evaluate import evaluate_checkpoint as evaluate
    from bpnn.run.evaluate import evaluate_file
    from bpnn.run.pipeline import check_config, describe_data
    from bpnn.run.pipeline import run_training as train
    from bpnn.run.resume import resume_training as resume
    from bpnn.sweep.runner import SweepOutcome, run_sweep_file
    from bpnn.tools.diagnose import health_report
    from bpnn.tools.explain import explain
    from bpnn.tools.explain_views import to_json as explanation_json
    from bpnn.tools.explain_views import to_markdown as explanation_markdown
    from bpnn.tools.explain_views import to_text as explanation_text
    from bpnn.tools.gradcheck import gradient_check
    from bpnn.tools.importance import importance
    from bpnn.tools.lr_find import lr_find
    from bpnn.tools.lr_find import write_outputs as write_lr_find
    from bpnn.tools.plot import plot_runs as plot
    from bpnn.tools.runs import list_runs


def load_checkpoint(path: Any) -> Model:
    """Load a checkpoint written by ``bpnn train`` as a ``Model`` (no pickle involved)."""
    from bpnn.model import load_model

    return load_model(path)


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'bpnn' has no attribute {name!r}")
    module, attribute = _API[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # once imported, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
