"""The ``bpnn`` command line: parses arguments, calls one function per command, formats output.

No math and no file formats live here. Heavy libraries (NumPy, scikit-learn, matplotlib) are
imported inside the commands that need them, so ``bpnn --help`` stays fast. Every failure
becomes one line on stderr and an exit code of ``bpnn.errors.EXIT_CODES`` (``reported_errors``).
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from bpnn.outputs import print_json


def _as_flags(params: list[Any]) -> list[Any]:
    """Typer shows a flag with the type of a value (``--json <bool>``); a flag takes none, so its
    type column is left empty."""
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


def _plain_help(command: Any) -> None:
    """Make the help texts of ``command`` (and of its subcommands) plain text, once: Typer
    renders them as rich markup, where the ``[dask]`` of ``pip install 'bpnn[dask]'`` is a style
    tag and vanishes. Every bracket bpnn writes in a help text is meant literally."""
    if getattr(command, "_plain_help", False):
        return
    from rich.markup import escape

    for attribute in ("help", "short_help", "epilog"):
        if getattr(command, attribute, None):
            setattr(command, attribute, escape(getattr(command, attribute)))
    for param in command.params:
        if getattr(param, "help", None):
            param.help = escape(param.help)
    command._plain_help = True
    for subcommand in getattr(command, "commands", {}).values():
        _plain_help(subcommand)


def _usage_name(argument: Any) -> str:
    """An argument as the usage line shows it: ``CONFIG``, ``[NAME]`` when it may be left out,
    ``RUN_DIR...`` when it takes several, ``[DIR...]`` none or several (Typer writes a required
    one as ``{config}``, and ``{RUN_DIR...}...``)."""
    name = (argument.metavar or argument.name).upper().removesuffix("...")
    if argument.nargs != 1:
        name += "..."
    return name if argument.required else f"[{name}]"


class _Command(TyperCommand):
    """A command whose help shows flags as flags, is plain text (``_plain_help``) and whose usage
    line names its arguments as ``CONFIG`` (``_usage_name``).

    ``stdout_is_the_result``: the command's job is what it prints (predict, eval, runs, ...);
    when stdout is closed before it has all been written (``bpnn predict ... | head``), the
    command ends quietly with exit ``STDOUT_CLOSED`` (141, as ``cat`` would). A run command
    (``_RunCommand``) keeps its run's exit code."""

    stdout_is_the_result = True

    def get_params(self, ctx: Any) -> list[Any]:
        return _as_flags(super().get_params(ctx))

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name == "argument":
                pieces.append(_usage_name(param))
            else:
                pieces.extend(param.get_usage_pieces(ctx))
        return pieces

    def format_help(self, ctx: Any, formatter: Any) -> None:
        _plain_help(self)
        super().format_help(ctx, formatter)

    def invoke(self, ctx: Any) -> Any:
        result = super().invoke(ctx)
        if self.stdout_is_the_result:
            from bpnn import streams

            if streams.lost("stdout"):
                raise typer.Exit(streams.STDOUT_CLOSED)
        return result


class _RunCommand(_Command):
    """A command that trains (train, resume, sweep): its job is the run directory, so a closed
    stdout or stderr changes nothing; training goes on and the exit code is the run's."""

    stdout_is_the_result = False


class _Group(TyperGroup):
    """A command group whose help shows flags as flags (``--help``, ``--version``) and is plain
    text (``_plain_help``)."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _as_flags(super().get_params(ctx))

    def format_help(self, ctx: Any, formatter: Any) -> None:
        _plain_help(self)
        super().format_help(ctx, formatter)


class _App(typer.Typer):
    """The ``bpnn`` program: before anything is parsed or printed, its standard streams are
    guarded (``bpnn.streams``): a closed pipe or terminal never changes what bpnn does."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from bpnn.streams import guard_standard_streams

        guard_standard_streams()
        return super().__call__(*args, **kwargs)


app = _App(
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
    """The console of messages and progress: plain text (no markup, no emoji codes, so a path
    or ``pip install 'bpnn[plot]'`` prints as written), log lines never wrap."""
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True, markup=False, emoji=False)


def _stdout() -> Any:
    """The console of results: plain text, as ``_stderr``'s (a ``[...]`` in a message prints
    as written)."""
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True, markup=False, emoji=False)


def describe_os_error(error: OSError) -> str:
    """``PATH: no space left on device``: the path and the reason, in one line."""
    reason = (error.strerror or str(error) or type(error).__name__).lower()
    paths = [os.fsdecode(p) for p in (error.filename, error.filename2) if p is not None]
    paths = [p if len(p) <= 120 else f"{p[:50]}...{p[-50:]}" for p in paths]
    return f"{' -> '.join(paths)}: {reason}" if paths else reason


def _debug() -> bool:
    return os.environ.get("BPNN_DEBUG", "") not in ("", "0")


def _on_stop_signal(signum: int, frame: Any) -> None:
    from bpnn.errors import HungUp, Terminated

    raise HungUp() if signum == getattr(signal, "SIGHUP", None) else Terminated()


def _stop_signals() -> list[int]:
    """The signals that stop a command as Ctrl-C does (the run kept, resumable): SIGTERM, and
    SIGHUP unless it is ignored already (``nohup``: training goes on after the terminal
    closes, its output lost)."""
    signals = [signal.SIGTERM]
    hangup = getattr(signal, "SIGHUP", None)  # not on Windows
    if hangup is not None and signal.getsignal(hangup) is not signal.SIG_IGN:
        signals.append(hangup)
    return signals


@contextmanager
def reported_errors() -> Iterator[None]:
    """The one place that turns every failure into one line on stderr and its exit code (the
    table is ``bpnn.errors.EXIT_CODES``): bpnn's own errors, the operating system's (naming the
    path and the reason), running out of memory, SIGINT, SIGTERM and SIGHUP. A traceback only
    with ``--debug`` or ``BPNN_DEBUG=1``."""
    import threading

    from bpnn.errors import BpnnError, HungUp, Terminated

    in_main_thread = threading.current_thread() is threading.main_thread()  # only it may
    signals = _stop_signals() if in_main_thread else []
    previous = {signum: signal.signal(signum, _on_stop_signal) for signum in signals}
    try:
        yield
    except KeyboardInterrupt as error:
        word, code = "interrupted", 130
        if isinstance(error, HungUp):
            word, code = "hung up", 129
        elif isinstance(error, Terminated):
            word, code = "terminated", 143
        hint = getattr(error, "resume_hint", None)
        print(word + (f"; {hint}" if hint else ""), file=sys.stderr)
        raise typer.Exit(code) from None
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
        for signum, handler in previous.items():
            signal.signal(signum, handler)


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
    cls=_RunCommand, epilog="Example: bpnn train configs/digits.yaml --set optimizer.lr=0.003"
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
    from bpnn.run import run_training
    from bpnn.training.progress import make_progress, showing

    err = _stderr()
    progress = make_progress(err, quiet)
    with reported_errors(), showing(progress, "loading data"):
        cfg = load_config(config, overrides or [])
        run_dir, summary = run_training(cfg, out, progress=progress, log=err.print)
    _print_summary(summary, run_dir, as_json)


@app.command(cls=_RunCommand, epilog="Example: bpnn resume runs/digits-20261201-143353 --epochs 60")
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
    from bpnn.run import resume_training
    from bpnn.training.progress import make_progress, showing

    err = _stderr()
    progress = make_progress(err, quiet)
    with reported_errors(), showing(progress, "loading data"):
        summary = resume_training(run_dir, epochs=epochs, progress=progress, log=err.print)
    _print_summary(summary, run_dir, as_json)


def _print_summary(summary: dict[str, Any], run_dir: Path, as_json: bool = False) -> None:
    from bpnn.metrics import format_value, metric_names, short_name

    if as_json:
        print_json({**summary, "run_dir": str(run_dir)})
        return
    from bpnn.cli_output import fit_items, output_width

    split = "test" if summary.get("test_samples") else "train"  # no test split: training
    keys = [key for key in metric_names(splits=(split,)) if summary.get(key) is not None]
    when = (
        f"(best epoch {summary['best_epoch']} of {summary['epochs_run']}, "
        f"{summary['total_seconds']:.1f}s)"
    )
    width = output_width()  # a terminal's or COLUMNS; in a pipe one line, whatever its length
    lines = ["  ".join([*(f"{key} {format_value(key, summary[key])}" for key in keys), when])]
    if width is not None and len(lines[0]) > width:  # short names, then more lines
        items = [f"{short_name(key)} {format_value(key, summary[key])}" for key in keys]
        lines = fit_items([*items, when], width)
    lines += fit_items(f"stopped: {summary['stop_reason']}".split(" "), width, separator=" ")
    for line in lines:
        print(line)
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
            "with X, y; for source images a folder of class folders) "
            "instead of the test split of the training data.",
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
        print_json(metrics)
    else:
        _print_report(metrics, str(checkpoint))
    if plots is not None:
        name = "confusion_matrix.png" if "confusion_matrix" in metrics else "predictions.png"
        print(f"wrote {plots / name}", file=sys.stderr)


def _print_report(metrics: dict[str, Any], title: str) -> None:
    """The metrics table, then for a classifier the per-class table and the confusion matrix."""
    from bpnn.cli_output import Column, Output, Table

    out = Output()
    table = Table([Column("metric"), Column("value", justify="right")], title=title)
    for key, value in metrics.items():
        if not isinstance(value, list | dict):
            table.add_row(key, f"{value:.6g}" if isinstance(value, float) else str(value))
    out.table(table)
    if "per_label" in metrics:  # multi-label: each label a yes/no of its own
        label_scores = (("precision", "prec"), ("recall", "rec"), ("f1", None))
        per_label = Table(
            [
                Column("label"),
                *(Column(name, short, justify="right") for name, short in label_scores),
                Column("support", "n", priority=1, justify="right"),
                *(Column(name, priority=2, justify="right") for name in ("TN", "FP", "FN", "TP")),
            ],
            title="per label (predicted: p > 0.5)",
        )
        for (name, row), counts in zip(
            metrics["per_label"].items(), metrics["label_confusion"], strict=True
        ):
            per_label.add_row(
                name,
                *(f"{row[key]:.4f}" for key, _ in label_scores),
                str(row["support"]),
                *(str(count) for pair in counts for count in pair),
            )
        out.table(per_label)
    if "per_class" not in metrics:
        return
    scores = (("precision", "prec"), ("recall", "rec"), ("f1", None))
    per_class = Table(
        [
            Column("class"),
            *(Column(name, short, justify="right") for name, short in scores),
            Column("support", "n", priority=1, justify="right"),
        ],
        title="per class",
    )
    for name, row in metrics["per_class"].items():
        per_class.add_row(name, *(f"{row[key]:.4f}" for key, _ in scores), str(row["support"]))
    out.table(per_class)
    matrix = Table(
        [
            Column("true \\ predicted", "true"),
            *(Column(name, priority=1, justify="right") for name in metrics["classes"]),
        ],
        title="confusion matrix (rows: true class, columns: predicted)",
    )
    for name, row in zip(metrics["classes"], metrics["confusion_matrix"], strict=True):
        matrix.add_row(name, *(str(count) for count in row))
    out.table(matrix)


@app.command(
    cls=_Command,
    epilog="Example: bpnn predict runs/iris-20261201-143353/checkpoints/best.npz examples/iris.csv",
)
def predict(
    checkpoint: CheckpointPath,
    input_file: Annotated[
        Path,
        typer.Argument(
            metavar="INPUT",
            help="CSV, Parquet, NPZ or IDX file of samples (for source images: an image or a "
            "folder of them); '-': CSV rows on standard input.",
            allow_dash=True,
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
            from bpnn.outputs import refuse_existing

            refuse_existing([out], "--out")
        log = _stderr().print
        if str(input_file) == "-":
            from bpnn.streams import stdin_copy

            with stdin_copy("stdin.csv") as stdin:
                text = prediction_table(
                    checkpoint,
                    stdin.path,
                    id_column=id_column,
                    fmt=fmt,
                    log=lambda message: log(stdin.named(message)),
                )
        else:
            text = prediction_table(checkpoint, input_file, id_column=id_column, fmt=fmt, log=log)
        if out is None:
            sys.stdout.write(text)
        else:
            from bpnn.outputs import write_new

            write_new(out, text, "--out")
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
    from bpnn.tools.gradcheck import check_config, self_test

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
    from bpnn.tools.gradcheck import verdict

    flat = [(label, t) for label, tensors in rows for t in tensors]
    passed, worst_label, worst = verdict(flat, tol)
    if as_json:
        print_json(
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
    else:
        from rich.text import Text

        from bpnn.cli_output import Column, Output, Table

        columns = [
            *([Column("network", wrap=True)] if rows[0][0] is not None else []),
            Column("tensor"),
            Column("shape", priority=2),
            Column("checked", priority=1, justify="right"),
            Column("skipped (kinks)", "kinks", priority=3, justify="right"),
            Column("max relative error", "rel. error", justify="right"),
            Column(""),
        ]
        table = Table(columns, title=title)
        for label, t in flat:
            ok = t.max_relative_error <= tol
            cells = [
                t.name,
                "x".join(map(str, t.shape)),
                str(t.checked),
                str(t.skipped_at_kinks),
                f"{t.max_relative_error:.2e}",
                Text("ok", style="green") if ok else Text("FAIL", style="red"),
            ]
            table.add_row(*([label] if label is not None else []), *cells)
        Output().table(table)
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
    from bpnn.outputs import refuse_existing, write_new
    from bpnn.tools.explain import explain as run_explain
    from bpnn.tools.explain import to_json, to_markdown, to_text

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
            write_new(markdown, to_markdown(result, full), "--markdown")
    if as_json:
        print_json(to_json(result))
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

    print_json(schema(), indent=2)


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
    from bpnn.errors import OutputError
    from bpnn.outputs import refuse_existing
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
        for path in plot_overlay(histories, target, "--out"):
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
    from bpnn.examples import starter_config
    from bpnn.outputs import write_new

    with reported_errors():
        target = out if out is not None else Path(f"{name or example}.yaml")
        text = starter_config(
            example, name, Path(f"{name or example}.yaml") if str(target) == "-" else target
        )
        if str(target) == "-":
            sys.stdout.write(text)
            return
        write_new(target, text, "--out")
    print(f"wrote {target}; train it with: bpnn train {target}", file=sys.stderr)


@app.command(cls=_RunCommand, epilog="Example: bpnn sweep examples/digits-sweep.yaml --workers 2")
def sweep(
    sweep_file: Annotated[
        Path,
        typer.Argument(
            metavar="SWEEP_FILE",
            help="The sweep file (YAML): base config, metric, method, space.",
            dir_okay=False,
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
        print_json(ranking_json(outcome))
        return
    from bpnn.cli_output import Output

    Output().table(ranking_table(outcome))
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
    from bpnn.tools.lr_find import lr_find as range_test
    from bpnn.tools.lr_find import write_outputs

    err = _stderr()
    with reported_errors():
        cfg = load_config(config, overrides or [])
        result = range_test(cfg, start=start, end=end, steps=steps, log=err.print)
        written = write_outputs(result, out, cfg.name) if out is not None else []
    if as_json:
        print_json(result.as_json())
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
    run_dir: Annotated[
        Path, typer.Argument(metavar="RUN_DIR", help="A run directory.", file_okay=False)
    ],
    every: Annotated[
        bool, typer.Option("--all", help="Every epoch (default: at most 4, evenly spread).")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object on stdout.")
    ] = False,
) -> None:
    """Per-layer gradient and activation health of a run, and its diagnoses."""
    from bpnn.errors import DataError
    from bpnn.run import RunDirectory, run_diagnoses

    with reported_errors():
        run = RunDirectory(run_dir)
        run.require_metrics()
        rows = [row for row in run.read_metrics() if isinstance(row.get("health"), dict)]
        if not rows:
            raise DataError(
                f"{run_dir}: its metrics hold no health (trained with train.health off)"
            )
        diagnoses = run_diagnoses(run)
    if as_json:
        health = [{"epoch": row["epoch"], "layers": row["health"]} for row in rows]
        print_json({"health": health, "diagnoses": diagnoses})
        return
    from bpnn.cli_output import Column, Output, Table

    shown = rows
    if not every and len(rows) > 4:
        picks = sorted({round(i * (len(rows) - 1) / 3) for i in range(4)})
        shown = [rows[i] for i in picks]
    table = Table(
        [
            Column("epoch", justify="right"),
            Column("layer", justify="right"),
            Column("grad norm", "grad", justify="right"),
            Column("update ratio", "update", justify="right"),
            Column("dead", priority=1, justify="right"),
            Column("saturated", "sat.", priority=1, justify="right"),
        ],
        title=f"gradient health: {run_dir}",
    )

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
    Output().table(table)
    console = _stdout()
    if not diagnoses:
        console.print("no diagnoses: the gradients and activations look healthy")
    for item in diagnoses:
        console.print(f"epoch {item['epoch']}, {item['kind']}: {item['message']}")


@app.command("runs", cls=_Command, epilog="Example: bpnn runs runs/ --sort test_accuracy")
def list_runs(
    folders: Annotated[
        list[Path] | None,
        typer.Argument(
            metavar="DIR...",
            help="Run directories, or folders of them (default: runs/).",
            file_okay=False,
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
    from bpnn.tools.runs import find_runs, read_run, select

    with reported_errors():
        records = select(
            [read_run(run) for run in find_runs(folders or [Path("runs")])], filters or [], sort
        )
    if as_json:
        print_json(records)
        return
    from bpnn.cli_output import Output
    from bpnn.tools.runs import runs_table

    Output().table(runs_table(records))
