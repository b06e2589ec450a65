"""The ``bpnn`` command line: parses arguments, calls one function per command, formats output.

No math and no file formats live here. Heavy libraries (NumPy, scikit-learn, matplotlib) are
imported inside the commands that need them, so ``bpnn --help`` stays fast. Every ``BpnnError``
becomes one line on stderr and exit code 2 (bad input: config, data, checkpoint) or 1 (a run
that failed: training diverged, a gradient check failed).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup


def _as_flags(params: list[Any]) -> list[Any]:
    """Typer shows a flag with the type of a value (``--json <bool>``); a flag takes none, so its
    type column is left empty."""
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


class _Command(TyperCommand):
    """A command whose help shows flags as flags and its usage line names its arguments as
    ``CONFIG`` (Typer writes a required one as ``{config}``)."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _as_flags(super().get_params(ctx))

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        return [piece.strip("{}") for piece in super().collect_usage_pieces(ctx)]


class _Group(TyperGroup):
    """A command group whose help shows flags as flags (``--help``, ``--version``)."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _as_flags(super().get_params(ctx))


app = typer.Typer(
    name="bpnn",
    help="Train multilayer perceptrons with backpropagation written from scratch in NumPy.",
    cls=_Group,
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Example: bpnn init --example digits --out digits.yaml && bpnn train digits.yaml",
)
config_app = typer.Typer(
    help="Inspect and check experiment configs.",
    cls=_Group,
    no_args_is_help=True,
    epilog="Example: bpnn config check configs/digits.yaml --set optimizer.lr=0.1",
)
app.add_typer(config_app, name="config")

ConfigPath = Annotated[
    Path,
    typer.Argument(metavar="CONFIG", help="The experiment config (YAML).", dir_okay=False),
]
CheckpointPath = Annotated[
    Path,
    typer.Argument(
        metavar="CHECKPOINT",
        help="A checkpoint, e.g. runs/NAME/checkpoints/best.npz.",
        dir_okay=False,
    ),
]
Overrides = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        "-s",
        metavar="KEY=VALUE",
        help="Override a config key, e.g. --set optimizer.lr=0.01 (repeatable; values are YAML).",
    ),
]

Quiet = Annotated[
    bool, typer.Option("--quiet", "-q", help="No progress output; only the final summary.")
]
JsonSummary = Annotated[
    bool,
    typer.Option(
        "--json",
        help="Print only the final summary, as one JSON object on stdout (the keys of "
        "summary.json and run_dir); progress still goes to stderr.",
    ),
]


def _stderr() -> Any:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)  # log lines never wrap


def _stdout() -> Any:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


@contextmanager
def reported_errors() -> Iterator[None]:
    """Turn bpnn's own errors into one line on stderr and a non-zero exit code, no traceback."""
    from bpnn.errors import BpnnError, TrainingError

    try:
        yield
    except BpnnError as error:
        code = 1 if isinstance(error, TrainingError) else 2
        print(f"error: {error}", file=sys.stderr)
        raise typer.Exit(code) from None
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        raise typer.Exit(130) from None


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (``kill``, a batch system's time limit) stops training as Ctrl-C does: the last
    finished epoch is checkpointed and the command exits 130."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():  # only it may set handlers
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _version(value: bool) -> None:
    if value:
        from bpnn import __version__

        print(f"bpnn {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """Train multilayer perceptrons with backpropagation written from scratch in NumPy."""


@app.command(
    cls=_Command, epilog="Example: bpnn train configs/digits.yaml --set optimizer.lr=0.003"
)
def train(
    config: ConfigPath,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            metavar="DIR",
            help="Run directory (must not exist or be empty). Default: runs/NAME-TIME.",
        ),
    ] = None,
    overrides: Overrides = None,
    quiet: Quiet = False,
    as_json: JsonSummary = False,
) -> None:
    """Train the network a config describes and write a run directory."""
    from bpnn.config import load_config
    from bpnn.progress import make_progress, showing
    from bpnn.run import run_training

    err = _stderr()
    progress = make_progress(err, quiet)
    with reported_errors(), _terminate_as_interrupt(), showing(progress, "loading data"):
        cfg = load_config(config, overrides or [])
        run_dir, summary = run_training(cfg, out, progress=progress, log=err.print)
    _print_summary(summary, run_dir, as_json)


@app.command(cls=_Command, epilog="Example: bpnn resume runs/digits-20261201-143353 --epochs 60")
def resume(
    run_dir: Annotated[
        Path,
        typer.Argument(metavar="RUN_DIR", help="A run directory to continue.", file_okay=False),
    ],
    epochs: Annotated[
        int | None,
        typer.Option(
            min=1, metavar="N", help="Train until this many epochs in all (extends the run)."
        ),
    ] = None,
    quiet: Quiet = False,
    as_json: JsonSummary = False,
) -> None:
    """Continue a run from its last checkpoint, exactly where it stopped (metrics are appended)."""
    from bpnn.progress import make_progress, showing
    from bpnn.run import resume_training

    err = _stderr()
    progress = make_progress(err, quiet)
    with reported_errors(), _terminate_as_interrupt(), showing(progress, "loading data"):
        summary = resume_training(run_dir, epochs=epochs, progress=progress, log=err.print)
    _print_summary(summary, run_dir, as_json)


def _print_summary(summary: dict[str, Any], run_dir: Path, as_json: bool = False) -> None:
    from bpnn.metrics import format_value, metric_names

    if as_json:
        from bpnn.run import strict_json

        print(json.dumps(strict_json({**summary, "run_dir": str(run_dir)}), allow_nan=False))
        return
    metrics = "  ".join(
        f"{key} {format_value(key, summary[key])}"
        for key in metric_names(splits=("test",))
        if summary.get(key) is not None
    )
    print(
        f"{metrics}  (best epoch {summary['best_epoch']} of {summary['epochs_run']}, "
        f"{summary['total_seconds']:.1f}s)"
    )
    print(f"stopped: {summary['stop_reason']}")
    print(f"run directory: {run_dir}")


@app.command(
    "eval",
    cls=_Command,
    epilog="Example: bpnn eval runs/digits-20261201-143353/checkpoints/best.npz --plots report/",
)
def evaluate(
    checkpoint: CheckpointPath,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="Evaluate on this labelled file (CSV with the target column, or NPZ with X, y) "
            "instead of the test split of the training data.",
            dir_okay=False,
        ),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print one JSON object on stdout (classification adds per_class and "
            "confusion_matrix).",
        ),
    ] = False,
    plots: Annotated[
        Path | None,
        typer.Option(
            "--plots",
            metavar="DIR",
            help="Also draw the confusion matrix (classification) or predicted against true "
            "values (regression) as PNG into this folder.",
            file_okay=False,
        ),
    ] = None,
) -> None:
    """Evaluate a checkpoint on the test split of the data it was trained on (or on --data):
    metrics, and for a classifier precision, recall, F1 and support per class and the confusion
    matrix."""
    from bpnn.run import evaluate_checkpoint, evaluate_file

    with reported_errors():
        if data is None:
            metrics = evaluate_checkpoint(checkpoint, log=_stderr().print, plots=plots)
        else:
            metrics = evaluate_file(checkpoint, data, plots=plots)
    if as_json:
        print(json.dumps(metrics))
    else:
        _print_report(metrics, str(checkpoint))
    if plots is not None:
        name = "confusion_matrix.png" if "confusion_matrix" in metrics else "predictions.png"
        print(f"wrote {plots / name}", file=sys.stderr)


def _print_report(metrics: dict[str, Any], title: str) -> None:
    """The metrics table, then for a classifier the per-class table and the confusion matrix."""
    from rich.table import Table

    out = _stdout()
    table = Table(title=title, show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in metrics.items():
        if not isinstance(value, list | dict):
            table.add_row(key, f"{value:.6g}" if isinstance(value, float) else str(value))
    out.print(table)
    if "per_class" not in metrics:
        return
    per_class = Table(title="per class", show_header=True)
    per_class.add_column("class")
    for column in ("precision", "recall", "f1", "support"):
        per_class.add_column(column, justify="right")
    for name, row in metrics["per_class"].items():
        per_class.add_row(
            name,
            *(f"{row[key]:.4f}" for key in ("precision", "recall", "f1")),
            str(row["support"]),
        )
    out.print(per_class)
    matrix = Table(title="confusion matrix (rows: true class, columns: predicted)")
    matrix.add_column("true \\ predicted")
    for name in metrics["classes"]:
        matrix.add_column(name, justify="right")
    for name, row in zip(metrics["classes"], metrics["confusion_matrix"], strict=True):
        matrix.add_row(name, *(str(count) for count in row))
    out.print(matrix)


@app.command(
    cls=_Command,
    epilog="Example: bpnn predict runs/iris-20261201-143353/checkpoints/best.npz examples/iris.csv",
)
def predict(
    checkpoint: CheckpointPath,
    input_file: Annotated[
        Path,
        typer.Argument(metavar="INPUT", help="CSV, NPZ or IDX file of samples.", dir_okay=False),
    ],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write the CSV here instead of stdout (must not exist)."),
    ] = None,
) -> None:
    """Predict a file of samples: a CSV row per sample (label and probabilities, or values)."""
    from bpnn.evaluation import prediction_table

    with reported_errors():
        if out is not None and out.exists():
            from bpnn.errors import OutputError

            raise OutputError(f"{out}: already exists; choose another --out")
        text = prediction_table(checkpoint, input_file)
        if out is None:
            sys.stdout.write(text)
        else:
            out.write_text(text, encoding="utf-8")
            print(f"wrote {text.count(chr(10)) - 1} predictions to {out}", file=sys.stderr)


@app.command(cls=_Command, epilog="Example: bpnn gradcheck configs/digits.yaml --samples 16")
def gradcheck(
    config: Annotated[
        Path | None,
        typer.Argument(
            metavar="CONFIG",
            help="A config; without one, check every activation x loss pairing.",
            dir_okay=False,
        ),
    ] = None,
    overrides: Overrides = None,
    samples: Annotated[
        int, typer.Option(min=1, metavar="N", help="Samples of the training split to check on.")
    ] = 8,
    tol: Annotated[
        float, typer.Option(min=0, metavar="X", help="Largest relative error that passes.")
    ] = 1e-6,
    max_entries: Annotated[
        int,
        typer.Option(
            min=1, metavar="N", help="Check at most this many random entries of each tensor."
        ),
    ] = 500,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object on stdout.")
    ] = False,
) -> None:
    """Compare the hand-written gradients with finite differences (float64); exit 1 on failure."""
    from bpnn.gradcheck import check_config, self_test

    with reported_errors():
        if config is None:
            results = [(r.label, r.tensors) for r in self_test()]
            rows = [(label, tensors) for label, tensors in results]
            _report_gradcheck(
                rows, tol, as_json, title="gradient check: every activation x loss pairing"
            )
        else:
            from bpnn.config import load_config

            cfg = load_config(config, overrides or [])
            tensors = check_config(
                cfg, samples=samples, max_entries=max_entries, log=_stderr().print
            )
            _report_gradcheck([(None, tensors)], tol, as_json, title=f"gradient check: {config}")


def _report_gradcheck(
    rows: list[tuple[str | None, list[Any]]], tol: float, as_json: bool, title: str
) -> None:
    flat = [(label, t) for label, tensors in rows for t in tensors]
    worst_label, worst = max(flat, key=lambda item: item[1].max_relative_error)
    passed = worst.max_relative_error <= tol
    if as_json:
        print(
            json.dumps(
                {
                    "passed": passed,
                    "tolerance": tol,
                    "tensors": [
                        {
                            "network": label,
                            "tensor": t.name,
                            "shape": list(t.shape),
                            "max_relative_error": t.max_relative_error,
                            "checked": t.checked,
                            "skipped_at_kinks": t.skipped_at_kinks,
                        }
                        for label, t in flat
                    ],
                }
            )
        )
    else:
        from rich.table import Table

        table = Table(title=title)
        if rows[0][0] is not None:
            table.add_column("network")
        for column in ("tensor", "shape", "checked", "skipped (kinks)", "max relative error", ""):
            table.add_column(
                column,
                justify="right"
                if column in ("checked", "skipped (kinks)", "max relative error")
                else "left",
            )
        for label, t in flat:
            status = "[green]ok[/]" if t.max_relative_error <= tol else "[red]FAIL[/]"
            cells = [
                t.name,
                "x".join(map(str, t.shape)),
                str(t.checked),
                str(t.skipped_at_kinks),
                f"{t.max_relative_error:.2e}",
                status,
            ]
            table.add_row(*([label] if label is not None else []), *cells)
        _stdout().print(table)
    where = f"{worst_label}: " if worst_label else ""
    verdict = "passed" if passed else "FAILED"
    message = (
        f"{verdict}: worst {where}{worst.name} {worst.max_relative_error:.2e} (tolerance {tol:g})"
    )
    if not passed:
        message += f" at index {worst.worst_index}"
    print(message, file=sys.stderr if not passed else sys.stdout if not as_json else sys.stderr)
    if not passed:
        raise typer.Exit(1)


@config_app.command("show", cls=_Command, epilog="Example: bpnn config show configs/digits.yaml")
def config_show(config: ConfigPath, overrides: Overrides = None) -> None:
    """Print the resolved config: every key with its value or default."""
    from bpnn.config import load_config

    with reported_errors():
        cfg = load_config(config, overrides or [])
    sys.stdout.write(cfg.to_yaml())


@config_app.command(
    "check",
    cls=_Command,
    epilog="Example: bpnn config check configs/digits.yaml --set train.epochs=5",
)
def config_check(config: ConfigPath, overrides: Overrides = None) -> None:
    """Validate a config without training; exit 2 with the first problem."""
    from bpnn.config import load_config

    with reported_errors():
        load_config(config, overrides or [])
    print(f"{config}: ok")


@config_app.command(
    "schema",
    cls=_Command,
    epilog="Example: bpnn config schema > bpnn-config.schema.json",
)
def config_schema() -> None:
    """Print the JSON Schema of a config file (for an editor's YAML language server)."""
    from bpnn.config import config_schema as schema

    print(json.dumps(schema(), indent=2))


@app.command(cls=_Command, epilog="Example: bpnn plot runs/digits-20261201-143353")
def plot(
    run_dir: Annotated[
        Path, typer.Argument(metavar="RUN_DIR", help="A run directory.", file_okay=False)
    ],
) -> None:
    """(Re)draw the training curves of a run directory into RUN/plots/."""
    from bpnn.errors import DataError
    from bpnn.run import RunDirectory

    with reported_errors():
        run = RunDirectory(run_dir)
        if not run.metrics_path.is_file():
            raise DataError(f"{run_dir}: no metrics.jsonl (not a run directory)")
        for path in run.plot():
            print(path)


def _example_help() -> str:
    """The examples shipped in the package, listed without importing anything heavy."""
    from bpnn.examples import example_names

    return ", ".join(example_names())


@app.command(
    cls=_Command,
    epilog="Example: bpnn init --example digits --out digits.yaml && bpnn train digits.yaml",
)
def init(
    name: Annotated[
        str | None,
        typer.Argument(
            metavar="NAME",
            help="The experiment's name (it names the run folders). Default: the example's.",
        ),
    ] = None,
    example: Annotated[
        str,
        typer.Option(
            "--example",
            "-e",
            metavar="EXAMPLE",
            help=f"The shipped example to start from: {_example_help()}.",
        ),
    ] = "digits",
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            metavar="FILE",
            help="Write here ('-': stdout; never over an existing file). Default: NAME.yaml.",
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Write a commented starter config from one of the example configs shipped with bpnn."""
    from bpnn.errors import OutputError
    from bpnn.examples import starter_config

    with reported_errors():
        target = out if out is not None else Path(f"{name or example}.yaml")
        text = starter_config(
            example, name, Path(f"{name or example}.yaml") if str(target) == "-" else target
        )
        if str(target) == "-":
            sys.stdout.write(text)
            return
        try:
            with target.open("x", encoding="utf-8") as handle:
                handle.write(text)
        except FileExistsError:
            raise OutputError(f"{target}: already exists; choose another --out") from None
        except OSError as error:
            raise OutputError(f"{target}: cannot write: {error.strerror or error}") from None
    print(f"wrote {target}; train it with: bpnn train {target}", file=sys.stderr)
