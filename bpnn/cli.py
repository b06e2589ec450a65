"""The ``bpnn`` command line: parses arguments, calls one function per command, formats output.

No math and no file formats live here. Heavy libraries (NumPy, scikit-learn, matplotlib) are
imported inside the commands that need them, so ``bpnn --help`` stays fast. Every failure
becomes one line on stderr and an exit code of ``bpnn.errors.EXIT_CODES`` (``reported_errors``).
"""

from __future__ import annotations

import json
import os
import signal
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


def describe_os_error(error: OSError) -> str:
    """``PATH: no space left on device``: the path and the reason, in one line."""
    reason = (error.strerror or str(error) or type(error).__name__).lower()
    paths = [os.fsdecode(p) for p in (error.filename, error.filename2) if p is not None]
    paths = [p if len(p) <= 120 else f"{p[:50]}...{p[-50:]}" for p in paths]
    return f"{' -> '.join(paths)}: {reason}" if paths else reason


def _debug() -> bool:
    return os.environ.get("BPNN_DEBUG", "") not in ("", "0")


def _on_sigterm(signum: int, frame: Any) -> None:
    from bpnn.errors import Terminated

    raise Terminated()


@contextmanager
def reported_errors() -> Iterator[None]:
    """The one place that turns every failure into one line on stderr and its exit code (the
    table is ``bpnn.errors.EXIT_CODES``): bpnn's own errors, the operating system's (naming the
    path and the reason), running out of memory, SIGINT and SIGTERM. A traceback only with
    ``--debug`` or ``BPNN_DEBUG=1``."""
    import threading

    from bpnn.errors import BpnnError, Terminated

    in_main_thread = threading.current_thread() is threading.main_thread()  # only it may
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if in_main_thread else None
    try:
        yield
    except KeyboardInterrupt as error:
        terminated = isinstance(error, Terminated)
        hint = getattr(error, "resume_hint", None)
        print(
            ("terminated" if terminated else "interrupted") + (f"; {hint}" if hint else ""),
            file=sys.stderr,
        )
        raise typer.Exit(143 if terminated else 130) from None
    except Exception as error:
        if _debug():
            raise
        if isinstance(error, BpnnError):
            message, code = str(error), error.exit_code
        elif isinstance(error, MemoryError):
            message, code = "not enough memory for this run (MemoryError)", 4
        elif isinstance(error, OSError):
            message, code = describe_os_error(error), 3
        else:
            raise
        print(f"error: {' '.join(message.split())}", file=sys.stderr)
        raise typer.Exit(code) from None
    finally:
        if in_main_thread:
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
    debug: Annotated[
        bool,
        typer.Option("--debug", help="Show the traceback of an error (or set BPNN_DEBUG=1)."),
    ] = False,
) -> None:
    """Train multilayer perceptrons with backpropagation written from scratch in NumPy."""
    if debug:
        os.environ["BPNN_DEBUG"] = "1"


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
    with reported_errors(), showing(progress, "loading data"):
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
    with reported_errors(), showing(progress, "loading data"):
        summary = resume_training(run_dir, epochs=epochs, progress=progress, log=err.print)
    _print_summary(summary, run_dir, as_json)


def _print_summary(summary: dict[str, Any], run_dir: Path, as_json: bool = False) -> None:
    from bpnn.metrics import format_value, metric_names

    if as_json:
        from bpnn.run import strict_json

        print(json.dumps(strict_json({**summary, "run_dir": str(run_dir)}), allow_nan=False))
        return
    split = "test" if summary.get("test_samples") else "train"  # no test split: training
    metrics = "  ".join(
        f"{key} {format_value(key, summary[key])}"
        for key in metric_names(splits=(split,))
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
            help="Evaluate on this labelled file (CSV or Parquet with the target column, or NPZ "
            "with X, y) "
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
    """Evaluate a checkpoint: metrics, per-class report and confusion matrix.

    On the test split of the data it was trained on (or on --data): the metrics, and for a
    classifier precision, recall, F1 and support per class and the confusion matrix."""
    from bpnn.run import evaluate_checkpoint, evaluate_file

    with reported_errors():
        if data is None:
            metrics = evaluate_checkpoint(checkpoint, log=_stderr().print, plots=plots)
        else:
            metrics = evaluate_file(checkpoint, data, log=_stderr().print, plots=plots)
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
        typer.Argument(
            metavar="INPUT", help="CSV, Parquet, NPZ or IDX file of samples.", dir_okay=False
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Write the table here instead of stdout (must not exist)."
        ),
    ] = None,
    id_column: Annotated[
        str | None,
        typer.Option("--id", metavar="COLUMN", help="Copy this column of INPUT through, first."),
    ] = None,
    fmt: Annotated[
        str,
        typer.Option("--format", help="csv, or jsonl (one JSON object per row).", metavar="FORMAT"),
    ] = "csv",
) -> None:
    """Predict a file of samples: a row per sample (label and probabilities, or values)."""
    from bpnn.evaluation import prediction_table

    with reported_errors():
        if fmt not in ("csv", "jsonl"):
            from bpnn.errors import ConfigError

            raise ConfigError(f"--format: {fmt!r} is not one of csv, jsonl")
        if out is not None:
            from bpnn.errors import refuse_existing

            refuse_existing([out], "--out")
        text = prediction_table(
            checkpoint, input_file, id_column=id_column, fmt=fmt, log=_stderr().print
        )
        if out is None:
            sys.stdout.write(text)
        else:
            from bpnn.errors import naming

            with naming(out):
                handle = out.open("x", encoding="utf-8")  # never an existing file
                try:
                    with handle:
                        handle.write(text)
                except BaseException:
                    out.unlink(missing_ok=True)  # no half-written predictions left behind
                    raise
            rows = text.count(chr(10)) - (fmt == "csv")
            print(f"wrote {rows} predictions to {out}", file=sys.stderr)


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


@app.command(
    cls=_Command,
    epilog="Example: bpnn explain configs/worked-example.yaml --step",
)
def explain(
    config: ConfigPath,
    overrides: Overrides = None,
    sample: Annotated[
        int, typer.Option(min=0, help="The sample of the training split to explain.")
    ] = 0,
    batch: Annotated[
        int | None,
        typer.Option(min=1, help="Explain the first N samples of the training split at once."),
    ] = None,
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            help="Use this checkpoint's weights instead of the initial ones.", dir_okay=False
        ),
    ] = None,
    step: Annotated[
        bool, typer.Option("--step", help="Also show the optimizer's update of every parameter.")
    ] = False,
    full: Annotated[
        bool, typer.Option("--full", help="Show every entry of large tensors too.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object on stdout.")
    ] = False,
    markdown: Annotated[
        Path | None,
        typer.Option(
            "--markdown",
            help="Also write the step as a Markdown document (LaTeX formulas; must not exist).",
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """One forward and backward pass (and --step: one update), every number with its formula."""
    from bpnn.config import load_config
    from bpnn.errors import refuse_existing, write_new_text
    from bpnn.explain import explain as run_explain
    from bpnn.explain import to_json, to_markdown, to_text

    if batch is not None and sample != 0:
        raise typer.BadParameter("give --sample or --batch, not both", param_hint="--batch")
    with reported_errors():
        if markdown is not None:
            refuse_existing([markdown], "--markdown")
        cfg = load_config(config, overrides or [])
        result = run_explain(
            cfg,
            sample=sample,
            batch=batch,
            checkpoint=checkpoint,
            step=step,
            source=str(config),
            log=_stderr().print,
        )
        if markdown is not None:
            write_new_text(markdown, to_markdown(result, full), "--markdown")
    if as_json:
        print(json.dumps(to_json(result)))
    else:
        sys.stdout.write(to_text(result, full))


@config_app.command("show", cls=_Command, epilog="Example: bpnn config show configs/digits.yaml")
def config_show(config: ConfigPath, overrides: Overrides = None) -> None:
    """Print the resolved config: every key with its value or default (and, for a table, its
    target and features after encoding, as YAML comments)."""
    from bpnn.config import load_config
    from bpnn.run import describe_data

    with reported_errors():
        cfg = load_config(config, overrides or [])
        data_lines = describe_data(cfg)
    sys.stdout.write(cfg.to_yaml())
    sys.stdout.write("".join(f"# {line}\n" for line in data_lines))


@config_app.command(
    "check",
    cls=_Command,
    epilog="Example: bpnn config check configs/digits.yaml --set train.epochs=5",
)
def config_check(config: ConfigPath, overrides: Overrides = None) -> None:
    """Validate a config and its data as train does, without training; exit on the first problem."""
    from bpnn.config import load_config
    from bpnn.run import check_config

    with reported_errors():
        check_config(load_config(config, overrides or []), log=_stderr().print)
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
    run_dirs: Annotated[
        list[Path],
        typer.Argument(
            metavar="RUN_DIR...",
            help="One or more run directories, or a sweep folder.",
            file_okay=False,
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Overlay the runs' curves: the loss in this PNG, other metrics beside it as "
            "STEM-accuracy.png, ... (default with several runs: comparison.png; never "
            "overwritten).",
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Draw a run's training curves; overlay several runs; plot a sweep.

    One run: its curves into RUN/plots/. Several runs (or --out): their curves overlaid, one
    figure per metric, labelled by run name. A sweep folder: the metric against each searched
    key."""
    from bpnn.errors import OutputError, refuse_existing
    from bpnn.run import RunDirectory

    with reported_errors():
        from bpnn.sweep.plots import is_sweep_dir, plot_sweep

        if len(run_dirs) == 1 and out is None and is_sweep_dir(run_dirs[0]):
            for path in plot_sweep(run_dirs[0]):
                print(path)
            return
        runs = [RunDirectory(run_dir) for run_dir in run_dirs]
        for run in runs:
            run.require_metrics()
        if len(runs) == 1 and out is None:
            for path in runs[0].plot():
                print(path)
            return
        from bpnn.plots import overlay_paths, plot_overlay

        target = out if out is not None else Path("comparison.png")
        if target.suffix.lower() != ".png":
            raise OutputError(f"{target}: --out must be a .png file")
        refuse_existing(overlay_paths(target), "--out")
        histories: dict[str, list[dict[str, Any]]] = {}
        for run in runs:
            name = run.path.resolve().name
            while name in histories:  # two runs of the same folder name
                name += "'"
            histories[name] = run.read_metrics()
        for path in plot_overlay(histories, target):
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
    from bpnn.errors import write_new_text
    from bpnn.examples import starter_config

    with reported_errors():
        target = out if out is not None else Path(f"{name or example}.yaml")
        text = starter_config(
            example, name, Path(f"{name or example}.yaml") if str(target) == "-" else target
        )
        if str(target) == "-":
            sys.stdout.write(text)
            return
        write_new_text(target, text, "--out")
    print(f"wrote {target}; train it with: bpnn train {target}", file=sys.stderr)


@app.command(cls=_Command, epilog="Example: bpnn sweep examples/digits-sweep.yaml --workers 2")
def sweep(
    sweep_file: Annotated[
        Path,
        typer.Argument(
            help="The sweep file (YAML): base config, metric, method, space.", dir_okay=False
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Sweep folder; an existing one is resumed (only missing trials run). "
            "Default: sweeps/NAME-TIME.",
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1, help="Local worker processes, one BLAS thread each. Default: the cores."
        ),
    ] = None,
    dask: Annotated[
        str | None,
        typer.Option(
            "--dask",
            metavar="tcp://HOST:PORT",
            help="Run the trials on this Dask cluster (pip install 'bpnn[dask]'); the sweep "
            "folder must be on a filesystem its workers share.",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the ranked trials as JSON on stdout.")
    ] = False,
    quiet: Quiet = False,
) -> None:
    """Search many configs at once (grid, random or TPE, with Optuna).

    Each trial is a run directory under SWEEP_DIR/trials/; the best config goes to
    SWEEP_DIR/best.yaml. Running it again on the same --out runs only what is missing."""
    from bpnn.sweep.report import ranking_json, ranking_table
    from bpnn.sweep.runner import default_sweep_dir, run_sweep
    from bpnn.sweep.spec import load_sweep

    err = _stderr()
    with reported_errors():
        spec = load_sweep(sweep_file)
        outcome = run_sweep(
            spec,
            out or default_sweep_dir(sweep_file),
            workers=workers,
            dask_address=dask,
            log=(lambda message: None) if quiet else (lambda m: err.print(m, markup=False)),
        )
    if as_json:
        print(ranking_json(outcome))
        return
    _stdout().print(ranking_table(outcome))
    best = outcome.best
    if best is not None:
        print(f"best: trial {best['trial']} {spec.metric} {best['metric']:.4f}")
        print(f"best config: {outcome.sweep_dir / 'best.yaml'}")
    print(f"sweep folder: {outcome.sweep_dir}")


@app.command(
    cls=_Command,
    epilog="Example: bpnn export runs/digits-20261201-143353/checkpoints/best.npz "
    "--format onnx --out digits.onnx",
)
def export(
    checkpoint: CheckpointPath,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            metavar="FORMAT",
            help="onnx, torch (safetensors and the Python that loads them) or sklearn (skops).",
        ),
    ],
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="The file to write (must not exist).", dir_okay=False),
    ],
) -> None:
    """Export a checkpoint to ONNX, PyTorch or scikit-learn; it takes the raw inputs of predict."""
    from bpnn.export import export_checkpoint  # here, not at the top: keeps `bpnn --help` fast

    with reported_errors():
        result = export_checkpoint(checkpoint, fmt, out)
    if result.source is not None:
        sys.stdout.write(result.source)
    for path in result.written:
        print(f"wrote {path}", file=sys.stderr)


@app.command("lr-find", cls=_Command, epilog="Example: bpnn lr-find configs/digits.yaml --out lr")
def lr_find(
    config: ConfigPath,
    overrides: Overrides = None,
    start: Annotated[float, typer.Option(min=0, help="The first learning rate.")] = 1e-7,
    end: Annotated[float, typer.Option(min=0, help="The last learning rate.")] = 10.0,
    steps: Annotated[int, typer.Option(min=2, help="Batches to train at most.")] = 100,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Write lr_find.png and lr_find.csv into this folder (never overwritten).",
            file_okay=False,
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object on stdout.")
    ] = False,
) -> None:
    """Learning-rate range test: train a few batches at geometrically growing rates and
    suggest a rate (nothing is written without --out)."""
    from bpnn.config import load_config
    from bpnn.lr_find import lr_find as range_test
    from bpnn.lr_find import write_outputs

    err = _stderr()
    with reported_errors():
        cfg = load_config(config, overrides or [])
        result = range_test(cfg, start=start, end=end, steps=steps, log=err.print)
        written = write_outputs(result, out, cfg.name) if out is not None else []
    if as_json:
        from bpnn.run import strict_json

        print(json.dumps(strict_json(result.as_json()), allow_nan=False))
    else:
        console = _stdout()
        if console.is_terminal:
            _draw_lr_curve(result)
        print(
            f"range test: {len(result.lrs)} of {result.steps} steps from {result.start:g} to "
            f"{result.end:g}; stopped: {result.stop_reason}"
        )
        print(f"suggested lr {result.suggested_lr:.3g} (start of the descent: 1/4 of the way down)")
        print(f"steepest descent: {result.steepest_lr:.3g} (second opinion)")
        print(f"minimum's lr / 10: {result.min_loss_lr:.3g} (third opinion)")
        print(f"valley: {result.valley_lr:.3g} (fourth opinion, fastai's rule)")
        print(f"--set optimizer.lr={result.suggested_lr:.3g}")
    for message in result.warnings:
        err.print(f"warning: {message}")
    for path in written:
        err.print(f"wrote {path}")


def _draw_lr_curve(result: Any) -> None:
    """The range test's curve in the terminal (plotext, the optional extra ``plot``)."""
    import math

    try:
        import plotext as plt
    except ImportError:
        _stderr().print("(pip install 'bpnn[plot]' to see the curve here; --out DIR writes a PNG)")
        return
    plt.clear_figure()
    plt.plot(result.lrs, result.smoothed, label="smoothed loss")
    plt.vline(result.suggested_lr)
    plt.xscale("log")
    decades = [
        10.0**k
        for k in range(math.floor(math.log10(result.start)), math.ceil(math.log10(result.end)) + 1)
    ]
    plt.xticks(decades, [f"{d:.0e}" for d in decades])
    plt.theme("clear")
    plt.title(f"learning-rate range test (suggested {result.suggested_lr:.3g})")
    plt.xlabel("learning rate")
    plt.plotsize(min(plt.terminal_width() or 80, 100), 20)
    plt.show()


@app.command(cls=_Command, epilog="Example: bpnn diagnose runs/vanishing-20261201-150000")
def diagnose(
    run_dir: Annotated[Path, typer.Argument(help="A run directory.", file_okay=False)],
    every: Annotated[
        bool, typer.Option("--all", help="Every epoch (default: at most 4, evenly spread).")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object on stdout.")
    ] = False,
) -> None:
    """Per-layer gradient and activation health of a run, and its diagnoses."""
    from bpnn.errors import DataError
    from bpnn.health import diagnose as find_diagnoses
    from bpnn.run import RunDirectory, strict_json

    with reported_errors():
        run = RunDirectory(run_dir)
        run.require_metrics()
        rows = [row for row in run.read_metrics() if isinstance(row.get("health"), dict)]
        if not rows:
            raise DataError(
                f"{run_dir}: its metrics hold no health (trained with train.health off)"
            )
        diagnoses = [d.as_dict() for d in find_diagnoses(run.read_metrics())]
    if as_json:
        health = [{"epoch": row["epoch"], "layers": row["health"]} for row in rows]
        print(json.dumps(strict_json({"health": health, "diagnoses": diagnoses})))
        return
    from rich.table import Table

    shown = rows
    if not every and len(rows) > 4:
        picks = sorted({round(i * (len(rows) - 1) / 3) for i in range(4)})
        shown = [rows[i] for i in picks]
    table = Table(title=f"gradient health: {run_dir}")
    for column in ("epoch", "layer", "grad norm", "update ratio", "dead", "saturated"):
        table.add_column(column, justify="right")

    def cell(value: Any, percent: bool = False) -> str:
        if value is None:
            return "-"
        return f"{value:.0%}" if percent else f"{value:.2e}"

    for row in shown:
        for number, (layer, values) in enumerate(
            sorted(row["health"].items(), key=lambda x: int(x[0]))
        ):
            table.add_row(
                str(row["epoch"]) if number == 0 else "",
                layer,
                cell(values.get("grad_norm")),
                cell(values.get("update_ratio")),
                cell(values.get("dead_fraction"), percent=True),
                cell(values.get("saturated_fraction"), percent=True),
                end_section=number == len(row["health"]) - 1,
            )
    console = _stdout()
    console.print(table)
    if not diagnoses:
        console.print("no diagnoses: the gradients and activations look healthy")
    for item in diagnoses:
        console.print(f"epoch {item['epoch']}, {item['kind']}: {item['message']}")


@app.command("runs", cls=_Command, epilog="Example: bpnn runs runs/ --sort test_accuracy")
def list_runs(
    folders: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Run directories, or folders of them (default: runs/).", file_okay=False
        ),
    ] = None,
    sort: Annotated[
        str | None,
        typer.Option(help="Sort by a column (e.g. seconds, test_accuracy; -KEY: descending)."),
    ] = None,
    filters: Annotated[
        list[str] | None,
        typer.Option(
            "--filter",
            metavar="KEY=VALUE",
            help="Keep runs whose column equals VALUE (repeatable).",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON list of objects on stdout.")
    ] = False,
) -> None:
    """A table of the runs found: data, architecture, optimizer, results, how each ended."""
    from bpnn.run import strict_json
    from bpnn.runs import find_runs, read_run, select

    with reported_errors():
        records = select(
            [read_run(run) for run in find_runs(folders or [Path("runs")])], filters or [], sort
        )
    if as_json:
        print(json.dumps(strict_json(records)))
        return
    from rich.table import Table

    from bpnn.metrics import METRICS, format_value

    table = Table(title=f"{len(records)} runs")
    columns = ("name", "status", "started", "data", "architecture", "optimizer", "epochs", "best")
    for column in (*columns, "test", "stop reason", "seconds"):
        table.add_column(
            column,
            justify="right" if column in ("epochs", "seconds") else "left",
            no_wrap=column != "stop reason",
        )
    for r in records:
        best = "-"
        if r["best_value"] is not None:
            best = f"{r['best_metric']} {format_value(r['best_metric'], r['best_value'])}"
        tests = " ".join(
            f"{METRICS[k[len('test_') :]].short} {format_value(k, v)}"
            for k, v in r["test_metrics"].items()
        )
        optimizer = r["optimizer"] or "-"
        if isinstance(r["lr"], float | int):
            optimizer += f" {r['lr']:g}"
        table.add_row(
            r["name"],
            r["status"],
            (r["started"] or "-")[:16],
            r["data"],
            r["architecture"],
            optimizer,
            r["epochs"],
            best,
            tests or "-",
            (r["stop_reason"] or "-")[:40],
            f"{r['seconds']:.1f}" if r["seconds"] is not None else "-",
        )
    console = _stdout()
    if not console.is_terminal:  # a pipe or a file: no terminal width to squeeze into
        console.width = max(console.width, 180)
    console.print(table)
