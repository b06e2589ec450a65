"""Where trials run: local worker processes, or the workers of a Dask distributed cluster.

Both executors take a ``TrialTask``, run ``bpnn.sweep.trial.run_trial`` on it somewhere else,
and hand back futures; ``wait_first`` blocks until at least one of them is done. Nothing else of
the sweep knows which one is in use.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Collection
from typing import TYPE_CHECKING, Any, Protocol

from bpnn.errors import ConfigError

if TYPE_CHECKING:  # a worker unpickles _start_worker from here before it may load NumPy
    from bpnn.sweep.trial import TrialResult, TrialTask

#: the schemes of a Dask scheduler's address that ``--dask`` takes (tcp:// when none is written)
DASK_SCHEMES = ("tcp", "tls", "ws", "wss")

#: BLAS libraries read these when they load: one thread each, the workers are the parallelism
ONE_THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMBA_NUM_THREADS": "1",
}


class Executor(Protocol):
    workers: int

    def submit(self, task: TrialTask) -> Any: ...

    def wait_first(self, futures: Collection[Any]) -> set[Any]: ...

    def close(self, wait: bool = True) -> None: ...


def default_workers() -> int:
    """The cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def check_dask_address(address: str) -> None:
    """Refuse, in one ``ConfigError`` naming it, an address that is not ``[SCHEME://]HOST:PORT``
    (a scheme of ``DASK_SCHEMES``, a port from 1 to 65535), before anything connects to it."""
    from urllib.parse import urlsplit

    from bpnn.config.reading import short  # here: a worker imports this module before NumPy

    text = address if "://" in address else f"tcp://{address}"
    try:
        parts = urlsplit(text)
        port = parts.port  # ValueError: not a number, or out of range
    except ValueError:
        parts, port = None, None
    if (
        parts is None
        or port is None
        or port == 0
        or not parts.hostname
        or parts.scheme not in DASK_SCHEMES
        or parts.username is not None
        or any((parts.path, parts.query, parts.fragment))
        or any(character.isspace() for character in address)
    ):
        raise ConfigError(
            f"--dask {short(address)}: not the address of a Dask scheduler; expected "
            f"tcp://HOST:PORT (a port from 1 to 65535), e.g. tcp://10.0.0.1:8786"
        )


def _start_worker() -> None:
    """Initializer of each local worker process, run before it imports NumPy: one BLAS thread,
    a quick exit when the pool shuts it down, and the end of the worker with the sweep
    process (``WorkerLifetime``)."""
    import atexit

    os.environ.update(ONE_THREAD_ENV)
    # exit handlers run last-registered first: those of the libraries a trial imports (all
    # registered later) run before this one; of the two registered before it, multiprocessing's
    # has run already when the worker's loop returns, and logging's is called below
    atexit.register(_exit_at_once)
    WorkerLifetime.start()


def _exit_at_once(status: int = 0) -> None:
    """An idle worker's exit, without tearing down the interpreter: with scikit-learn, SciPy,
    matplotlib and numba loaded that takes about 0.6 s, which the sweep would wait for at its
    end. Every trial's files were written (atomically) before its result was returned. The
    exit status is 0 at the pool's shutdown: a worker that dies of an error is seen by the pool
    anyway (its process ends while tasks are pending)."""
    if "logging" in sys.modules:
        sys.modules["logging"].shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):  # a closed or broken stream: nothing more to save
            pass
    os._exit(status)


class WorkerLifetime:
    """Ends a local worker with the ``bpnn sweep`` process that started it, ``kill -9``
    included (a worker would otherwise finish its trial, then wait for the next one forever).

    A thread waits on multiprocessing's parent sentinel, a pipe whose other end only the
    parent holds: it reads end-of-file the moment the parent is gone, however it ended,
    without polling (``prctl(PR_SET_PDEATHSIG)`` would be Linux-only, and fires when the
    parent *thread* that started the worker ends). The thread then sends the worker SIGTERM,
    which ends it as SIGTERM ends ``bpnn train``: a running trial unwinds (its last checkpoint
    kept, its lock released: a run directory the resumed sweep continues) and the worker exits
    once it has; an idle worker exits at once. A trial stuck in one long NumPy call past
    ``GRACE_SECONDS`` is cut short (its run resumes from its last checkpoint all the same).
    """

    GRACE_SECONDS = 30.0
    #: the worker's one instance, made by its initializer (one per process, as the pool's is)
    current: WorkerLifetime | None = None

    def __init__(self) -> None:
        self.in_trial = False  # set and read by the worker's main thread only

    @classmethod
    def start(cls) -> None:
        import multiprocessing
        import signal
        import threading

        parent = multiprocessing.parent_process()
        if parent is None:
            return
        lifetime = cls.current = cls()
        signal.signal(signal.SIGTERM, lifetime.on_sigterm)
        watch = threading.Thread(
            target=lifetime.watch, args=(parent.sentinel,), name="bpnn-parent-watch", daemon=True
        )
        watch.start()

    def watch(self, sentinel: int) -> None:
        """Wait for the parent's end, then end this worker (see the class docstring)."""
        import signal
        from multiprocessing.connection import wait

        wait([sentinel])
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(self.GRACE_SECONDS)
        os._exit(143)

    def on_sigterm(self, signum: int, frame: Any) -> None:
        """In the main thread: unwind the trial it runs, or exit if it runs none."""
        from bpnn.errors import Terminated

        if self.in_trial:
            raise Terminated()
        _exit_at_once(143)


def run_local_trial(task: TrialTask) -> TrialResult:
    """``run_trial`` in a local worker; a trial the worker's end interrupted (the sweep process
    gone, a SIGTERM) ends the worker once it has unwound (``WorkerLifetime``)."""
    from bpnn.errors import Terminated
    from bpnn.sweep.trial import run_trial

    lifetime = WorkerLifetime.current
    if lifetime is None:  # not in a worker the pool started
        return run_trial(task)
    lifetime.in_trial = True
    try:
        return run_trial(task)
    except Terminated:
        _exit_at_once(143)
        raise  # not reached: _exit_at_once ends the process
    finally:
        lifetime.in_trial = False


class LocalExecutor:
    """``workers`` spawned processes (no fork: a clean interpreter, no inherited threads)."""

    def __init__(self, workers: int) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self.workers = workers
        self.pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
        )

    def submit(self, task: TrialTask) -> Any:
        return self.pool.submit(run_local_trial, task)

    def wait_first(self, futures: Collection[Any]) -> set[Any]:
        from concurrent.futures import FIRST_COMPLETED, wait

        return wait(futures, return_when=FIRST_COMPLETED).done

    def close(self, wait: bool = True) -> None:
        """Stop the workers; ``wait=False`` (an interrupted sweep) leaves running trials."""
        self.pool.shutdown(wait=wait, cancel_futures=True)


class DaskExecutor:
    """The workers of the Dask cluster at ``address`` (``tcp://HOST:PORT``). The trial's run
    directory is written by the worker, at the same absolute path: the sweep folder must be on
    a filesystem every worker and this process share."""

    def __init__(self, address: str, connect_timeout: float = 5.0) -> None:
        check_dask_address(address)
        try:
            from distributed import Client
        except ImportError:
            raise ConfigError("--dask needs the dask extra: pip install 'bpnn[dask]'") from None
        try:
            self.client = Client(address, timeout=connect_timeout)
        except (OSError, TimeoutError) as error:
            raise ConfigError(f"--dask {address}: cannot connect: {error}") from None
        except Exception as error:  # a server that is not a Dask scheduler answered: distributed
            # fails on its reply (a MemoryError for a frame length read from an HTTP response)
            reason = " ".join(f"{type(error).__name__}: {error}".split())[:160]
            raise ConfigError(
                f"--dask {address}: cannot connect: what answered is not a Dask scheduler "
                f"({reason})"
            ) from None
        threads = self.client.nthreads()
        self.workers = max(sum(threads.values()), 1)

    def submit(self, task: TrialTask) -> Any:
        import uuid

        from bpnn.sweep.trial import run_trial

        # a fresh key: a resumed trial is a new task, never a result the cluster still holds
        key = f"bpnn-trial-{task.number}-{uuid.uuid4().hex[:8]}"
        return self.client.submit(run_trial, task, pure=False, key=key)

    def wait_first(self, futures: Collection[Any]) -> set[Any]:
        from distributed import wait

        return set(wait(list(futures), return_when="FIRST_COMPLETED").done)

    def close(self, wait: bool = True) -> None:
        self.client.close()
