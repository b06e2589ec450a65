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

app = typer.Typer(
    name="bpnn",
    help="Train multilayer perceptrons with backpropagation written from scratch in NumPy.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
config_app = typer.Typer(help="Inspect and check experiment configs.", no_args_is_help=True)
app.add_typer(config_app, name="config")

ConfigPath = Annotated[
    Path,
    typer.Argument(help="The experiment config (YAML).", dir_okay=False),
]
CheckpointPath = Annotated[
    Path,
    typer.Argument(help="A checkpoint, e.g. runs/NAME/checkpoints/best.npz.", dir_okay=False),
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


@app.command()
def train(
    config: ConfigPath,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Run directory (must not exist or be empty). Default: runs/NAME-TIME.",
        ),
    ] = None,
    overrides: Overrides = None,
    quiet: Quiet = False,
) -> None:
    """Train the network a config describes and write a run directory."""
    from bpnn.config import load_config
    from bpnn.progress import make_progress
    from bpnn.run import run_training

    err = _stderr()
    with reported_errors():
        cfg = load_config(config, overrides or [])
        run_dir, summary = run_training(cfg, out, progress=make_progress(err, quiet), log=err.print)
    _print_summary(summary, run_dir)


@app.command()
def resume(
    run_dir: Annotated[Path, typer.Argument(help="A run directory to continue.", file_okay=False)],
    epochs: Annotated[
        int | None,
        typer.Option(min=1, help="Train until this many epochs in all (extends the run)."),
    ] = None,
    quiet: Quiet = False,
) -> None:
    """Continue a run from its last checkpoint, exactly where it stopped (metrics are appended)."""
    from bpnn.progress import make_progress
    from bpnn.run import resume_training

    err = _stderr()
    with reported_errors():
        summary = resume_training(
            run_dir, epochs=epochs, progress=make_progress(err, quiet), log=err.print
        )
    _print_summary(summary, run_dir)


def _print_summary(summary: dict[str, Any], run_dir: Path) -> None:
    from bpnn.metrics import format_value, metric_names

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


@app.command("eval")
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
        bool, typer.Option("--json", help="Print one JSON object on stdout.")
    ] = False,
) -> None:
    """Evaluate a checkpoint on the test split of the data it was trained on (or on --data)."""
    from bpnn.run import evaluate_checkpoint, evaluate_file

    with reported_errors():
        if data is None:
            metrics = evaluate_checkpoint(checkpoint, log=_stderr().print)
        else:
            metrics = evaluate_file(checkpoint, data)
    if as_json:
        print(json.dumps(metrics))
        return
    from rich.table import Table

    table = Table(title=str(checkpoint), show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in metrics.items():
        table.add_row(key, f"{value:.6g}" if isinstance(value, float) else str(value))
    _stdout().print(table)


@app.command()
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


@app.command()
def gradcheck(
    config: Annotated[
        Path | None,
        typer.Argument(
            help="A config; without one, check every activation x loss pairing.",
            dir_okay=False,
        ),
    ] = None,
    overrides: Overrides = None,
    samples: Annotated[
        int, typer.Option(min=1, help="Samples of the training split to check on.")
    ] = 8,
    tol: Annotated[float, typer.Option(min=0, help="Largest relative error that passes.")] = 1e-6,
    max_entries: Annotated[
        int, typer.Option(min=1, help="Check at most this many random entries of each tensor.")
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


@config_app.command("show")
def config_show(config: ConfigPath, overrides: Overrides = None) -> None:
    """Print the resolved config: every key with its value or default."""
    from bpnn.config import load_config

    with reported_errors():
        cfg = load_config(config, overrides or [])
    sys.stdout.write(cfg.to_yaml())


@config_app.command("check")
def config_check(config: ConfigPath, overrides: Overrides = None) -> None:
    """Validate a config without training; exit 2 with the first problem."""
    from bpnn.config import load_config

    with reported_errors():
        load_config(config, overrides or [])
    print(f"{config}: ok")


@app.command()
def plot(
    run_dirs: Annotated[
        list[Path],
        typer.Argument(metavar="RUN_DIR...", help="One or more run directories.", file_okay=False),
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
    """(Re)draw a run's training curves into RUN/plots/; with several runs (or --out), overlay
    their curves in one figure per metric, labelled by run name."""
    from bpnn.errors import DataError, OutputError
    from bpnn.run import RunDirectory

    with reported_errors():
        runs = [RunDirectory(run_dir) for run_dir in run_dirs]
        for run in runs:
            if not run.metrics_path.is_file():
                raise DataError(f"{run.path}: no metrics.jsonl (not a run directory)")
        if len(runs) == 1 and out is None:
            for path in runs[0].plot():
                print(path)
            return
        from bpnn.plots import overlay_paths, plot_overlay

        target = out if out is not None else Path("comparison.png")
        if target.suffix.lower() != ".png":
            raise OutputError(f"{target}: --out must be a .png file")
        for path in overlay_paths(target):
            if path.exists():
                raise OutputError(f"{path}: already exists; choose another --out")
        histories: dict[str, list[dict[str, Any]]] = {}
        for run in runs:
            name = run.path.resolve().name
            while name in histories:  # two runs of the same folder name
                name += "'"
            histories[name] = run.read_metrics()
        for path in plot_overlay(histories, target):
            print(path)


@app.command("lr-find")
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
        print(f"suggested lr {result.suggested_lr:.3g} (steepest descent of the smoothed loss)")
        print(f"minimum's lr / 10: {result.min_loss_lr:.3g} (second opinion)")
        print(f"valley: {result.valley_lr:.3g} (third opinion, fastai's rule)")
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


@app.command()
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
        if not run.metrics_path.is_file():
            raise DataError(f"{run_dir}: no metrics.jsonl (not a run directory)")
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


@app.command("runs")
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
