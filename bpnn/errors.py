"""The exception types of bpnn, one per kind of problem, and the exit code of each.

Each is raised where the problem is found, with a message that names the file, the key or the
value; the CLI turns them (and the operating system's errors) into one line on stderr and the
exit code below. ``EXIT_CODES`` is the table the docs print and the tests check.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: every exit code of ``bpnn``, with its meaning
EXIT_CODES: dict[int, str] = {
    0: "success",
    1: "the run failed: training diverged (the loss became NaN or infinite), or a gradient "
    "check failed",
    2: "bad input: a config, data file, checkpoint, command-line value or output path is "
    "wrong, a run directory or sweep folder is locked by another process, or `resume` refused "
    "to continue a run (no checkpoint yet, an edited config.yaml, nothing left to train)",
    3: "the operating system refused a file operation: disk full, file too large, permission "
    "denied, not a directory, read-only file system, ...",
    4: "not enough memory: the run needs more than is available (estimated before allocating) "
    "or than train.max_memory allows",
    129: "hung up (SIGHUP: the terminal closed); as for SIGTERM, the last checkpoint is kept and "
    "`bpnn resume` continues (under `nohup` training goes on)",
    130: "interrupted by Ctrl-C (SIGINT); the last checkpoint is kept and `bpnn resume` continues",
    141: "stdout was closed before a command that only prints (predict, eval, runs, ...) had "
    "written all of it (a pipe into `head`); train, resume and sweep keep their run's exit code",
    143: "terminated by SIGTERM; the last checkpoint is kept and `bpnn resume` continues",
}


def short(value: object, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters: messages never carry unbounded input."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class BpnnError(Exception):
    """Base class of every error bpnn reports to the user as one line."""

    exit_code = 2


class ConfigError(BpnnError):
    """A config file, key or value is wrong (unknown key, wrong type, impossible value)."""


class DataError(BpnnError):
    """A data set or data file cannot be read or does not fit the config or the model."""


class CheckpointError(BpnnError):
    """A checkpoint file is missing, corrupt, or not a bpnn checkpoint."""


class OutputError(BpnnError):
    """An output path is taken (a run directory that holds files, an existing --out file) or a
    run directory is locked by another process."""


class ResumeError(BpnnError):
    """A run directory cannot be resumed as it is (no checkpoint, an edited config.yaml, files
    that disagree, nothing left to train)."""


class TrainingError(BpnnError):
    """Training cannot go on: the loss became NaN or infinite."""

    exit_code = 1


class MemoryLimitError(BpnnError):
    """The run would need more memory than there is (or than ``train.max_memory`` allows)."""

    exit_code = 4


class Terminated(KeyboardInterrupt):
    """SIGTERM, turned into an exception in the main thread so that a run unwinds exactly as it
    does on Ctrl-C: temporary files removed, the last checkpoint kept."""


class HungUp(Terminated):
    """SIGHUP (the terminal closed, the ssh connection dropped): a run stops as on SIGTERM,
    resumable. ``nohup`` ignores SIGHUP before bpnn starts, and bpnn leaves it ignored."""


class ExportError(BpnnError):
    """A model cannot be exported: a format's optional package is missing, or a part of the
    network has no counterpart in the target format."""


@contextmanager
def naming(path: str | Path) -> Iterator[None]:
    """Let an ``OSError`` raised while writing ``path`` name it: a failed ``write()`` on an open
    handle (disk full, file too large) carries no file name, and the user's one line must say
    which file could not be written."""
    try:
        yield
    except OSError as error:
        if error.filename is None and error.errno is not None:  # OSError(errno, reason)
            error.filename = str(path)
        raise
