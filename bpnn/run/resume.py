"""``resume_training``: a run continued from ``checkpoints/last.npz`` exactly where it stopped,
whatever point a kill interrupted it at, after checks that change nothing when they refuse."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from bpnn import checkpoint
from bpnn.callbacks import Callback, Checkpointer, EarlyStopping
from bpnn.config import Config, load_config, validate
from bpnn.errors import CheckpointError, ConfigError, ResumeError
from bpnn.model import load_model, make_seeds
from bpnn.outputs import atomic_file
from bpnn.run.directory import Log, RunDirectory, no_log
from bpnn.run.pipeline import (
    best_monitor,
    build_optimizer,
    build_schedule,
    final_split,
    finish_run,
    load_data,
    make_callbacks,
    make_trainer,
    record_failure,
    resume_hint,
)


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def config_differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """The dotted keys whose values differ between two resolved configs."""
    flat_a, flat_b = _flatten(a), _flatten(b)
    return sorted(k for k in flat_a.keys() | flat_b.keys() if flat_a.get(k) != flat_b.get(k))


def _checked_config(run: RunDirectory, saved: Config, epochs: int | None) -> None:
    """Refuse a config.yaml that differs from the checkpoint's config (the authority) in any
    key; ``train.epochs`` may differ only as ``--epochs`` sets it."""
    try:
        on_disk = load_config(run.config_path)
    except ConfigError as error:
        raise ResumeError(f"{error}; not resuming") from None  # it names config.yaml
    differences = config_differences(on_disk.resolved(), saved.resolved())
    if epochs is not None and on_disk.train.epochs == epochs:
        differences = [k for k in differences if k != "train.epochs"]
    if differences:
        shown = ", ".join(differences[:5]) + (" ..." if len(differences) > 5 else "")
        hint = (
            f"; to train longer pass --epochs {on_disk.train.epochs}"
            if differences == ["train.epochs"]
            else "; restore it, or start a new run with 'bpnn train'"
        )
        raise ResumeError(
            f"{run.config_path}: differs from the checkpoint's config in {shown}{hint}"
        )


def resume_training(
    run_dir: Path,
    *,
    epochs: int | None = None,
    progress: Callback | None = None,
    log: Log = no_log,
) -> dict[str, Any]:
    """Continue the run in ``run_dir`` from ``checkpoints/last.npz``, exactly where it stopped.

    The config, model, optimizer state, learning-rate schedule, shuffling and dropout generators
    and the checkpointing and early-stopping state all come back from the checkpoint, so a run
    trained for ``k`` epochs and resumed to ``n`` gives the metrics of one ``n``-epoch run, bit
    for bit, whatever point a kill interrupted it at. Every check comes before the first write:
    a refused resume changes nothing. ``epochs`` extends the run; a schedule whose rates depend
    on the total (cosine) refuses that.
    """
    run = RunDirectory(Path(run_dir))
    if not run.path.is_dir():
        raise ResumeError(f"{run_dir}: no such run directory")
    if not run.config_path.is_file():
        raise ResumeError(f"{run_dir}: no config.yaml (not a bpnn run directory)")
    run.lock()
    try:
        if not run.holds_run():
            raise ResumeError(
                f"{run_dir}: no checkpoints/last.npz (the run never finished an epoch); "
                f"start it again with 'bpnn train CONFIG --out {run_dir}'"
            )
        started = time.perf_counter()
        contents = checkpoint.load(run.checkpoint_path("last"))
        try:
            config = validate(contents.config, source=f"{run.checkpoint_path('last')} (config)")
        except ConfigError as error:
            raise CheckpointError(str(error)) from None
        _checked_config(run, config, epochs)
        done = contents.epoch
        if epochs is not None and epochs != config.train.epochs:
            if epochs <= done:
                raise ResumeError(f"--epochs {epochs}: the run has already trained {done} epochs")
            if config.schedule.name == "cosine":
                raise ResumeError(
                    f"--epochs {epochs}: the run's cosine schedule spreads its learning rates "
                    f"over train.epochs={config.train.epochs}; extending it would change them"
                )
            config = config.model_copy(
                update={"train": config.train.model_copy(update={"epochs": epochs})}
            )
        stopped = contents.trainer.get("stopped")
        finished = stopped is not None or done >= config.train.epochs
        summary = run.read_summary()
        summary_current = (
            summary is not None
            and summary.get("epochs_run") == done
            and summary.get("stop_reason") != "error"
        )
        if finished and summary_current:
            if stopped is not None and stopped != "completed":
                raise ResumeError(f"{run_dir}: training stopped early ({stopped})")
            raise ResumeError(
                f"{run_dir}: already trained {done} of {config.train.epochs} epochs; "
                f"pass --epochs N to train on"
            )
        history = run.read_metrics()
        logged = [row.get("epoch") for row in history if row.get("epoch", 0) <= done]
        if logged != list(range(1, len(logged) + 1)) or len(logged) < done - 1:
            raise ResumeError(
                f"{run.metrics_path}: epochs {logged[:1]}..{logged[-1:]} do not lead up to "
                f"last.npz's epoch {done}; not resuming"
            )
        states = contents.trainer.get("callbacks", {})
        checkpointer_state = states.get("checkpointer", states.get("Checkpointer"))
        early_state = states.get("early_stopping", states.get("EarlyStopping"))
        if checkpointer_state is None:
            raise CheckpointError(f"{run.checkpoint_path('last')}: no checkpointer state")
        for kind, state in ((Checkpointer, checkpointer_state), (EarlyStopping, early_state)):
            problem = None if state is None else kind.state_problem(state)
            if problem is not None:
                raise CheckpointError(
                    f"{run.checkpoint_path('last')}: the {kind.state_key} state: {problem}"
                )
        best_path = run.checkpoint_path("best")
        best_epoch = checkpointer_state["best_epoch"]
        best_on_disk = checkpoint.load(best_path).epoch if best_path.is_file() else None
        best_current = best_on_disk == best_epoch
        # killed between writing best.npz and last.npz: best.npz is from an epoch after
        # last.npz's, which the resumed run trains again and writes again, bit for bit
        best_ahead = best_on_disk is not None and best_on_disk > done
        if not best_current and not best_ahead and best_epoch != done:
            raise ResumeError(
                f"{best_path}: is not from the run's best epoch {best_epoch}; not resuming"
            )

        # the last checks read what training needs (the history's rows, the weights, the data):
        # any of them may refuse the resume, so they come before the first write
        run.read_metrics()  # a row that cannot be read is a DataError naming its line
        last_path = run.checkpoint_path("last")
        model = load_model(last_path)
        best_network = None
        if not best_ahead:  # the best weights early stopping restores; best.npz's, or last's
            best_network = load_model(best_path if best_current else last_path).network
        data = load_data(config, log)
        shuffle_rng = _restored_state(config, model, contents, last_path)

        # every check has passed: from here on the run directory is written
        run.claim()
        run.remove_stale_temporaries()
        if not best_current and not best_ahead:  # a best.npz behind last.npz's best epoch
            with atomic_file(best_path, binary=True) as handle:
                handle.write(run.checkpoint_path("last").read_bytes())
        run.repair_metrics(done, contents.metrics)
        if epochs is not None:
            run.write_config(config)

        previous = (summary or {}).get("total_seconds") or 0.0
        if finished:  # killed after the last epoch, before the summary: finish it
            best = (best_monitor(config, data), checkpointer_state["best"], best_epoch)
            test, samples = final_split(data), data.n_samples
            del data
            return finish_run(
                run,
                test,
                samples,
                done,
                best,
                stopped or "completed",
                previous + time.perf_counter() - started,
            )

        model.config = config
        checkpointer, early_stopping, callbacks = make_callbacks(
            config, run, data, progress, log=log, history=run.read_metrics()
        )
        checkpointer.load_state(checkpointer_state)
        if early_stopping is not None:
            early_stopping.load_state(early_state)
            if best_network is not None:  # else the replayed epochs reach the best again first
                early_stopping.best_weights = (best_network.params.copy(), best_network.buffers())
        trainer = make_trainer(config, model, data, shuffle_rng, callbacks, start_epoch=done)
        trainer.optimizer.load_state_dict(contents.optimizer)
        trainer.schedule.load_state_dict(contents.schedule)
        log(f"resuming {run_dir} at epoch {done + 1} of {config.train.epochs}")
        try:
            end = trainer.fit()
        except BaseException as error:
            if isinstance(error, KeyboardInterrupt):
                error.resume_hint = resume_hint(run)  # type: ignore[attr-defined]
            else:
                record_failure(run, error, model.epoch)
            raise
        seconds = previous + time.perf_counter() - started
        test, samples = final_split(data), data.n_samples
        del data, trainer  # frees the training and validation arrays
        best = (checkpointer.monitor, checkpointer.best, checkpointer.best_epoch)
        return finish_run(run, test, samples, model.epoch, best, end["stop_reason"], seconds)
    finally:
        run.unlock()


def _restored_state(config: Config, model: Any, contents: Any, path: Path) -> Any:
    """The training state ``last.npz`` holds (the random streams, the optimizer's and the
    schedule's state), restored on trial before anything is written: a tampered one is a
    ``CheckpointError`` naming the file, never a refusal after the run directory changed.
    Returns the shuffling stream, at its saved state; the dropout stream is set in place."""
    try:
        _, shuffle_rng = make_seeds(config.seed)
        shuffle_rng.bit_generator.state = contents.trainer["shuffle_rng"]
        if model.network.dropout_rng is not None:
            model.network.dropout_rng.bit_generator.state = contents.trainer["dropout_rng"]
        build_optimizer(config, model.network).load_state_dict(contents.optimizer)
        build_schedule(config).load_state_dict(contents.schedule)
    except (ValueError, TypeError, KeyError, OverflowError) as error:
        reason = " ".join(str(error).split())
        reason = reason if len(reason) <= 200 else reason[:197] + "..."
        raise CheckpointError(f"{path}: its training state cannot be restored ({reason})") from None
    return shuffle_rng
