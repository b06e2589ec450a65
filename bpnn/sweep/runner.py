"""A whole sweep: the sweep folder, the Optuna study in it, and the ask-dispatch-tell loop.

Only this process talks to the study. It asks Optuna for a trial's values, sends the trial to
a worker (``executors``), and when the result comes back it appends the trial's line to
``sweep.jsonl`` first and tells the study second. Each trial's point is checked as a whole
first (``SweepSpec.point_error``): one the config refuses is recorded as a failed trial at once,
never sent to a worker. The study lives in ``optuna.journal`` (Optuna's
``JournalStorage`` on a file, append-only), so after a crash, even ``kill -9``:

- a trial the study holds as finished is never run again;
- a trial left RUNNING whose line is in sweep.jsonl had finished: its result is told again;
- any other RUNNING trial is adopted: the same number and values run again, resuming its run
  directory from ``checkpoints/last.npz`` or restarting it, so none stays RUNNING and no grid
  point is lost (a trial killed inside ``study.ask``, before all its values were written, gets
  the missing ones from the sampler first).

The samplers are Optuna's (``GridSampler``, ``RandomSampler``, ``TPESampler``). Each trial is
asked with a sampler seeded from ``(seed, trial number)``, so a random sweep's values are
reproducible from its seed whatever the number of workers and however often it is resumed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bpnn.config.reading import dump_yaml
from bpnn.errors import ConfigError, DataError, OutputError
from bpnn.outputs import atomic_file, own_folder, refuse_link
from bpnn.run.lock import FolderLock
from bpnn.sweep.folder import (
    JOURNAL_FILE,
    RESULTS_FILE,
    SPEC_FILE,
    append_record,
    check_journal,
    cut_torn_tail,
    read_records,
    read_saved_spec,
)
from bpnn.sweep.spec import Choices, SweepSpec, decode_value, describe_point, load_sweep
from bpnn.sweep.trial import STATUSES, PruningSnapshot, TrialResult, TrialTask

STUDY_NAME = "bpnn-sweep"
BEST_FILE = "best.yaml"
TRIALS_FOLDER = "trials"
STATUS_ORDER = {status: order for order, status in enumerate(STATUSES)}


@dataclass
class SweepOutcome:
    """The sweep folder, its spec, and every finished trial's record, best first."""

    sweep_dir: Path
    spec: SweepSpec
    ranked: list[dict[str, Any]]
    ran: int  # trials run by this call (the rest were finished before)

    @property
    def best(self) -> dict[str, Any] | None:
        return self.ranked[0] if self.ranked and self.ranked[0]["status"] == "completed" else None


def default_sweep_dir(sweep_file: Path, root: Path = Path("sweeps")) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return root / f"{sweep_file.stem}-{stamp}"


def run_sweep(
    spec: SweepSpec,
    sweep_dir: Path,
    *,
    workers: int | None = None,
    dask_address: str | None = None,
    log: Callable[[str], None] = lambda message: None,
) -> SweepOutcome:
    """Run every trial of ``spec`` not yet finished in ``sweep_dir`` (created, or resumed),
    then write ``best.yaml``. ``workers`` local processes (default: the cores), or the workers
    of the Dask cluster at ``dask_address`` (its form checked before anything is done)."""
    from bpnn.sweep.executors import check_dask_address

    if dask_address is not None:
        check_dask_address(dask_address)
    sweep_dir = sweep_dir.resolve()
    lock = FolderLock(sweep_dir)  # one sweep at a time in a folder, as one run in a run dir
    try:
        study, records = _prepare_sweep_dir(spec, sweep_dir, lock)
        return _run_trials(spec, sweep_dir, study, records, workers, dask_address, log)
    finally:
        lock.release()


def _run_trials(
    spec: SweepSpec,
    sweep_dir: Path,
    study: Any,
    records: dict[int, dict[str, Any]],
    workers: int | None,
    dask_address: str | None,
    log: Callable[[str], None],
) -> SweepOutcome:
    """``run_sweep``'s work, in the folder this process has locked."""
    from bpnn.sweep.executors import DaskExecutor, LocalExecutor, default_workers

    adopted = _recover(study, spec, sweep_dir, records)
    total = spec.total_trials()
    asked = len(study.get_trials(deepcopy=False))
    remaining = len(adopted) + max(total - asked, 0)
    if remaining == 0:
        log(f"{sweep_dir}: all {total} trials are finished")
        return _finish(spec, sweep_dir, 0, log)
    if adopted:
        log(f"resuming {len(adopted)} interrupted trial(s)")
    if dask_address is not None:
        executor: Any = DaskExecutor(dask_address)
        log(f"dask: {executor.workers} worker thread(s) at {dask_address}")
    else:
        executor = LocalExecutor(min(workers or default_workers(), remaining))
    finished = len(records)
    ran = 0
    pending: dict[Any, tuple[Any, TrialTask]] = {}
    queue = list(adopted)
    interrupted = True
    try:
        while True:
            while len(pending) < executor.workers and (queue or asked < total):
                if queue:
                    trial, task = queue.pop(0)
                else:
                    trial = _ask(study, spec, asked)
                    asked += 1
                    task = _task(spec, sweep_dir, study, trial.number, overrides_of(spec, trial))
                error = spec.point_error(task.overrides)
                if error is None:
                    pending[executor.submit(task)] = (trial, task)
                    continue
                # invalid as a whole: a failed trial at once, without a worker or a run directory
                invalid = _invalid_point(task, error)
                _record(sweep_dir, study, trial, invalid, report=False)
                finished += 1
                ran += 1
                log(_progress_line(invalid, finished, total, spec.metric))
            if not pending:
                break
            for future in executor.wait_first(list(pending)):
                trial, task = pending.pop(future)
                result = _result_of(future, task)
                _record(sweep_dir, study, trial, result, report=spec.prune)
                finished += 1
                ran += 1
                log(_progress_line(result, finished, total, spec.metric))
        interrupted = False
    finally:
        executor.close(wait=not interrupted)
    return _finish(spec, sweep_dir, ran, log)


# --- the sweep folder ------------------------------------------------------------------------


def run_sweep_file(
    sweep_file: Path,
    out: Path | None = None,
    *,
    workers: int | None = None,
    dask_address: str | None = None,
    log: Callable[[str], None] = lambda message: None,
) -> SweepOutcome:
    """``run_sweep`` of the sweep file ``sweep_file`` into ``out`` (default:
    ``sweeps/NAME-TIME``)."""
    spec = load_sweep(sweep_file)
    sweep_dir = out if out is not None else default_sweep_dir(sweep_file)
    return run_sweep(spec, sweep_dir, workers=workers, dask_address=dask_address, log=log)


def _prepare_sweep_dir(
    spec: SweepSpec, sweep_dir: Path, lock: FolderLock
) -> tuple[Any, dict[int, dict[str, Any]]]:
    """Create the folder, or check that it holds a sweep of the same file (``trials`` may
    differ: a random or tpe sweep can be extended); take its ``lock`` (another sweep running in
    it is an ``OutputError`` naming that process); read what it holds (``_read_sweep_dir``)
    before anything is written. Returns the study and the records."""
    spec_path = sweep_dir / SPEC_FILE
    record = spec.record()
    if spec_path.is_file():
        saved = read_saved_spec(spec_path).record()
        for key in record:
            if key != "trials" and saved[key] != record[key]:
                raise ConfigError(
                    f"{sweep_dir}: holds a sweep whose '{key}' differs from this sweep file's; "
                    f"choose another --out"
                )
    elif sweep_dir.exists() and (
        not sweep_dir.is_dir() or any(p.name != lock.path.name for p in sweep_dir.iterdir())
    ):
        raise OutputError(f"{sweep_dir}: exists and is not a sweep folder; choose another --out")
    refuse_link(sweep_dir)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    lock.acquire()
    lock.claim()
    study, records = _read_sweep_dir(spec, sweep_dir)
    own_folder(sweep_dir / TRIALS_FOLDER)
    with atomic_file(spec_path) as handle:
        handle.write(dump_yaml(record))
    return study, records


def _read_sweep_dir(spec: SweepSpec, sweep_dir: Path) -> tuple[Any, dict[int, dict[str, Any]]]:
    """The study and the records of the folder this process has locked, each file checked
    (``bpnn.sweep.folder``) before anything in it changes; then the torn last line of each log
    (a crash mid-write) is cut off. The two must agree, as the runner writes them (a trial's
    record first, then the study told): a record of a trial the journal does not hold (the
    journal replaced or cut: the trial would run again and replace its run directory), or a
    finished trial without its record, is refused."""
    results, journal = sweep_dir / RESULTS_FILE, sweep_dir / JOURNAL_FILE
    records = read_records(results, spec.space)
    if records and not journal.is_file():
        raise DataError(f"{results}: holds trials, but {journal} is missing; choose another --out")
    storage = _journal_storage(journal)
    held, finished = _trial_numbers(storage)
    lost = sorted(set(records) - held)
    if lost:
        raise DataError(
            f"{results}: trial {lost[0]} is recorded, but {journal} holds no trial {lost[0]} "
            f"(the journal was replaced or cut); choose another --out"
        )
    unrecorded = sorted(finished - set(records))
    if unrecorded:
        raise DataError(
            f"{journal}: trial {unrecorded[0]} is finished, but {results} has no record of it "
            f"(the records were cut or edited); choose another --out"
        )
    cut_torn_tail(results)
    cut_torn_tail(journal)
    return _study(storage, spec.direction), records


def trial_dir_name(number: int, overrides: dict[str, Any]) -> str:
    """``0003-lr=0.00123_hidden=64-32``: the number, then the values it tries (short)."""

    def short(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.3g}"
        if isinstance(value, list):
            return "-".join(short(v) for v in value)
        return str(value)

    parts = [f"{key.rsplit('.', 1)[-1]}={short(value)}" for key, value in overrides.items()]
    slug = re.sub(r"[^A-Za-z0-9.=_-]+", "", "_".join(parts))[:60].rstrip("._-")
    return f"{number:04d}-{slug}" if slug else f"{number:04d}"


# --- the study -------------------------------------------------------------------------------


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise ConfigError("bpnn sweep needs the sweep extra: pip install 'bpnn[sweep]'") from None

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def _journal_storage(journal: Path) -> Any:
    """Optuna's ``JournalStorage`` on ``journal`` (created if missing), its log replayed; a
    journal it cannot replay is a ``DataError`` naming the file."""
    _optuna()
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    check_journal(journal)  # each line a JSON object, or the line is named
    try:
        return JournalStorage(JournalFileBackend(str(journal)))
    except (OSError, MemoryError):
        raise
    except Exception as error:  # the replay fails on whatever a bad log makes it run into
        reason = " ".join(f"{type(error).__name__}: {error}".split())[:200]
        raise DataError(
            f"{journal}: not an Optuna journal that can be replayed ({reason}); "
            f"choose another --out"
        ) from None


def _trial_numbers(storage: Any) -> tuple[set[int], set[int]]:
    """The numbers of the trials the sweep's study holds, and of those finished (none before
    the study is created)."""
    try:
        study_id = storage.get_study_id_from_name(STUDY_NAME)
    except KeyError:
        return set(), set()
    trials = storage.get_all_trials(study_id, deepcopy=False)
    return {t.number for t in trials}, {t.number for t in trials if t.state.is_finished()}


def _study(storage: Any, direction: str) -> Any:
    return _optuna().create_study(
        study_name=STUDY_NAME, storage=storage, direction=direction, load_if_exists=True
    )


def open_study(sweep_dir: Path) -> Any:
    """The study of an existing sweep folder (for inspection: ``study.trials``)."""
    spec = read_saved_spec(sweep_dir / SPEC_FILE)
    return _study(_journal_storage(sweep_dir / JOURNAL_FILE), spec.direction)


def overrides_of(spec: SweepSpec, trial: Any) -> dict[str, Any]:
    """A trial's params as config overrides (choices decoded from their JSON strings)."""
    return {
        key: decode_value(trial.params[key])
        if isinstance(dimension, Choices)
        else trial.params[key]
        for key, dimension in spec.space.items()
    }


def _ask(study: Any, spec: SweepSpec, number: int) -> Any:
    from bpnn.sweep.samplers import distributions, make_sampler

    study.sampler = make_sampler(spec, number)
    return study.ask(distributions(spec))


def _task(
    spec: SweepSpec,
    sweep_dir: Path,
    study: Any,
    number: int,
    overrides: dict[str, Any],
    resume: bool = False,
) -> TrialTask:
    pruning = None
    if spec.prune:
        from optuna.trial import TrialState

        pruning = PruningSnapshot(
            direction=spec.direction,
            finished_trials=study.get_trials(deepcopy=True, states=(TrialState.COMPLETE,)),
            warmup_epochs=spec.prune_warmup_epochs,
            startup_trials=spec.prune_startup_trials,
        )
    run_dir = sweep_dir / TRIALS_FOLDER / trial_dir_name(number, overrides)
    return TrialTask(
        number=number,
        overrides=overrides,
        base=spec.base,
        run_dir=str(run_dir),
        metric=spec.metric,
        direction=spec.direction,
        resume=resume,
        pruning=pruning,
    )


def _recover(
    study: Any, spec: SweepSpec, sweep_dir: Path, records: dict[int, dict[str, Any]]
) -> list[tuple[Any, TrialTask]]:
    """Deal with the trials a killed sweep left RUNNING: tell those whose result was recorded,
    and return the others, to run again (resuming their run directories)."""
    optuna = _optuna()
    from optuna.trial import TrialState

    adopted = []
    for frozen in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        trial = optuna.trial.Trial(study, frozen._trial_id)
        if frozen.number in records:
            record = records[frozen.number]
            _tell(study, trial, TrialResult(**record), report=False)
        else:
            if set(frozen.params) != set(spec.space):  # killed inside study.ask
                from bpnn.sweep.samplers import finish_asking

                trial = finish_asking(study, spec, frozen)
            overrides = overrides_of(spec, trial)
            adopted.append((trial, _task(spec, sweep_dir, study, frozen.number, overrides, True)))
    return adopted


def _failed(task: TrialTask, error: str) -> TrialResult:
    """The result of a trial that failed before it could report one of its own."""
    return TrialResult(
        trial=task.number,
        overrides=task.overrides,
        status="failed",
        metric=None,
        seconds=0.0,
        run_dir=task.run_dir,
        error=error,
    )


def _result_of(future: Any, task: TrialTask) -> TrialResult:
    """The future's result; a worker that died (or a lost Dask task) is a failed trial."""
    try:
        return future.result()
    except Exception as error:
        return _failed(task, f"the worker running it failed: {type(error).__name__}: {error}")


def _invalid_point(task: TrialTask, error: str) -> TrialResult:
    """The failed result of a trial whose point the config refuses as a whole."""
    return _failed(task, f"invalid point ({describe_point(task.overrides)}): {error}")


def _record(sweep_dir: Path, study: Any, trial: Any, result: TrialResult, report: bool) -> None:
    """A finished trial: its line in sweep.jsonl first, then the study (see the docstring)."""
    append_record(sweep_dir / RESULTS_FILE, result.record())
    _tell(study, trial, result, report=report)


def _tell(study: Any, trial: Any, result: TrialResult, report: bool) -> None:
    from optuna.trial import TrialState

    if report:  # the per-epoch values the median pruner of later trials compares with
        for epoch, value in sorted(result.epoch_values.items()):
            trial.report(value, epoch)
    if result.status == "completed":
        study.tell(trial, result.metric)
    elif result.status == "pruned":
        study.tell(trial, state=TrialState.PRUNED)
    else:
        study.tell(trial, state=TrialState.FAIL)


def _progress_line(result: TrialResult, finished: int, total: int, metric: str) -> str:
    value = f" {metric} {result.metric:.4f}" if result.metric is not None else ""
    error = f": {result.error}" if result.error else ""
    return (
        f"trial {finished}/{total} {result.status}{value} ({result.seconds:.1f}s) "
        f"#{result.trial}{error}"
    )


# --- the end ---------------------------------------------------------------------------------


def rank(records: list[dict[str, Any]], direction: str) -> list[dict[str, Any]]:
    """Completed trials best first, then pruned, then failed."""
    sign = -1.0 if direction == "maximize" else 1.0

    def key(record: dict[str, Any]) -> tuple[int, float, int]:
        metric = record["metric"]
        score = sign * metric if metric is not None else float("inf")
        return (STATUS_ORDER[record["status"]], score, record["trial"])

    return sorted(records, key=key)


def _finish(spec: SweepSpec, sweep_dir: Path, ran: int, log: Callable[[str], None]) -> SweepOutcome:
    records = read_records(sweep_dir / RESULTS_FILE, spec.space)
    outcome = SweepOutcome(sweep_dir, spec, rank(list(records.values()), spec.direction), ran)
    if outcome.best is not None:
        config = spec.base_config(outcome.best["overrides"])
        with atomic_file(sweep_dir / BEST_FILE) as handle:
            handle.write(config.to_yaml())
    else:
        log("no trial completed: no best.yaml")
    return outcome
