"""The run directory and the pipeline of a run, one module per concern:

- ``directory``: ``RunDirectory``, the one owner of a run directory's files (create, lock,
  write in a crash-safe order, read back, repair), and ``read_metrics_file``;
- ``pipeline``: from a config to a trained run (``run_training``: data, network, trainer,
  callbacks, the summary), and the pieces the other commands build the same way;
- ``resume``: ``resume_training``, which continues a run bit for bit after any interruption;
- ``evaluate``: a checkpoint's metrics and reports (``bpnn eval``).
"""

from bpnn.run.directory import RunDirectory, read_metrics_file
from bpnn.run.evaluate import evaluate_checkpoint, evaluate_file
from bpnn.run.pipeline import (
    build_model,
    build_optimizer,
    build_schedule,
    check_config,
    check_network,
    describe_data,
    final_split,
    load_data,
    make_callbacks,
    make_trainer,
    prepare_run,
    run_diagnoses,
    run_training,
)
from bpnn.run.resume import config_differences, resume_training

__all__ = [
    "RunDirectory",
    "build_model",
    "build_optimizer",
    "build_schedule",
    "check_config",
    "check_network",
    "config_differences",
    "describe_data",
    "evaluate_checkpoint",
    "evaluate_file",
    "final_split",
    "load_data",
    "make_callbacks",
    "make_trainer",
    "prepare_run",
    "read_metrics_file",
    "resume_training",
    "run_diagnoses",
    "run_training",
]
