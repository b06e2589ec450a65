"""Every file bpnn writes goes through here, in one of two ways, each with one behaviour:

- a **new file** (``new_file``, ``write_new``): the user's ``--out``, ``--markdown``, ...; created
  exclusively, so nothing the user had is written over (not even a file that appeared after
  ``refuse_existing`` checked), and removed again when writing it fails half-way;
- a **replaced file** (``atomic_file``): the files bpnn owns (a run's config and summary,
  checkpoints, a download); written to a temporary file beside it, flushed to disk and renamed
  over it, so a kill at any moment leaves the old file or the new one, never half of one.

No file is written through a symbolic link: a link where bpnn would create, append to or
replace a file (a dangling one included), or where it would put a folder of its own, is an
``OutputError`` naming it (``refuse_link``, ``open_regular``); so is a FIFO or device there.

Each cause has one exit code: a path that is taken is an ``OutputError`` (exit 2) naming it and
the option that chose it; the operating system refusing (disk full, permission denied, ...) is
the ``OSError`` itself, named after the file (``naming``), which the CLI reports with exit 3.
``strict_json`` makes every JSON bpnn prints or writes strict (no NaN, no Infinity);
``uninterrupted`` holds the stop signals while a file is written that library code must finish.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import signal
import stat
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from bpnn.errors import OutputError, naming
from bpnn.faults import crash_point


def strict_json(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None, so that it is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [strict_json(v) for v in value]
    return value


def json_text(value: Any, indent: int | None = None) -> str:
    """``value`` as strict JSON text: a non-finite number is ``null``, never the ``NaN`` that
    JSON parsers refuse (a run's metrics and summary, every ``--json``)."""
    return json.dumps(strict_json(value), indent=indent, allow_nan=False)


def print_json(value: Any, indent: int | None = None) -> None:
    """Print ``value`` on stdout as one strict JSON document (every command's ``--json``)."""
    print(json_text(value, indent))


def _taken(path: Path, option: str) -> OutputError:
    return OutputError(f"{path}: already exists; choose another {option}")


def refuse_existing(paths: Iterable[Path], option: str) -> None:
    """An ``OutputError`` naming the first of ``paths`` that exists already, and ``option``,
    the flag that chose it (``--out``): checked before any work, so nothing is half-written."""
    for path in paths:
        refuse_link(path)
        if path.exists():
            raise _taken(path, option)


#: ``os.open`` flags: never follow a final symbolic link, never leak the descriptor to a child
NO_FOLLOW = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def _link_refused(path: Path) -> OutputError:
    return OutputError(
        f"{path}: is a symbolic link; bpnn does not write through links (remove it, or choose "
        "another path)"
    )


def _not_regular(path: Path) -> OutputError:
    return OutputError(f"{path}: not a regular file; remove it, or choose another path")


def refuse_link(path: Path) -> None:
    """An ``OutputError`` when ``path`` is a symbolic link (dangling or not)."""
    if Path(path).is_symlink():
        raise _link_refused(path)


def open_regular(path: Path, flags: int, mode: int = 0o666) -> int:
    """``os.open(path, flags)`` of a regular file, never through a final symbolic link: a link
    is an ``OutputError`` naming it, and so is a FIFO, a socket or a device (opened without
    blocking, so that a FIFO cannot hang bpnn). Other refusals are the ``OSError``, named."""
    path = Path(path)
    try:
        fd = os.open(path, flags | NO_FOLLOW | os.O_NONBLOCK, mode)
    except OSError as error:
        if error.errno == errno.ELOOP or (error.errno == errno.EEXIST and path.is_symlink()):
            raise _link_refused(path) from None
        if error.errno == errno.ENXIO:  # a FIFO no one reads, a device without its driver
            raise _not_regular(path) from None
        error.filename = error.filename or str(path)
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise _not_regular(path)
    os.set_blocking(fd, True)
    return fd


def truncate(path: Path, size: int) -> None:
    """Cut the file at ``path`` to ``size`` bytes (a torn tail of a file bpnn appends to), opened
    as ``open_regular`` opens it: never through a link."""
    descriptor = open_regular(path, os.O_WRONLY)
    try:
        os.ftruncate(descriptor, size)
    finally:
        os.close(descriptor)


@contextmanager
def appended(path: Path) -> Iterator[IO[str]]:
    """A text handle that appends to ``path`` (created if missing), through ``open_regular``:
    a run's ``metrics.jsonl``, a sweep's ``sweep.jsonl``, a callback's log."""
    path = Path(path)
    descriptor = open_regular(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    with naming(path), os.fdopen(descriptor, "a", encoding="utf-8") as handle:
        yield handle


def own_folder(folder: Path) -> Path:
    """``folder`` (and its parents) as a folder of bpnn's own (a run's ``plots/``, a sweep's
    ``trials/``), created when missing; a symbolic link there is an ``OutputError``, never a
    folder bpnn writes into elsewhere."""
    folder = Path(folder)
    refuse_link(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def make_output_folder(folder: Path, option: str) -> None:
    """Create ``folder`` (and its parents) to write new files into, or an ``OutputError``
    naming it."""
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder}: exists and is not a directory; choose another {option}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(f"{folder}: cannot create: {error.strerror or error}") from None


@contextmanager
def output_set(folder: Path, option: str) -> Iterator[list[Path]]:
    """For new files written into ``folder`` (created, with its parents, as
    ``make_output_folder`` does): the block appends each file it has written to the list it is
    given, and if it fails (a full disk half-way through a figure) those files, and the folders
    made for them, are removed again: no part of a set of outputs is left behind."""
    created = [path for path in (folder, *folder.parents) if not os.path.lexists(path)]
    make_output_folder(folder, option)
    written: list[Path] = []
    try:
        yield written
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        for path in created:  # the deepest first; one that holds other files stays
            with contextlib.suppress(OSError):
                path.rmdir()
        raise


@contextmanager
def new_file(path: Path, option: str, *, binary: bool = False) -> Iterator[IO[Any]]:
    """An open handle on ``path``, created exclusively (``open(path, "x")``: never an existing
    file or a symlink's target); the file is removed again if the block fails, so no
    half-written output is left behind."""
    path = Path(path)
    refuse_link(path)
    try:
        handle = path.open("xb") if binary else path.open("x", encoding="utf-8")
    except FileExistsError:
        raise _taken(path, option) from None
    except IsADirectoryError:
        raise OutputError(f"{path}: is a directory; choose another {option}") from None
    except OSError as error:
        error.filename = error.filename or str(path)
        raise
    try:
        with naming(path), handle:
            yield handle
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def write_new(path: Path, contents: str | bytes, option: str) -> None:
    """Write ``contents`` to ``path`` as a ``new_file``."""
    with new_file(path, option, binary=isinstance(contents, bytes)) as handle:
        handle.write(contents)


def readable_by_umask(path: str | Path) -> None:
    """Give a file made by ``tempfile.mkstemp`` (always 0600) the mode an ordinary ``open``
    would have given it, so renamed checkpoints and downloads follow the user's umask."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


#: the signals that stop bpnn as Ctrl-C does (``bpnn.cli.errors``), held by ``uninterrupted``
STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


@contextmanager
def uninterrupted() -> Iterator[None]:
    """Hold SIGINT, SIGTERM and SIGHUP while the block runs; the first that came meanwhile is
    acted on (its handler called) when the block ends. For a short write whose library code
    must not be stopped half-way: a signal inside ``zipfile``'s closing of a checkpoint leaves a
    half-closed archive behind, whose garbage collection prints a traceback after bpnn's one
    line. Only signals with a Python handler are held (Python runs them in the main thread, so
    only there); a signal left to the system, and SIGKILL, still stop the process at once, which
    ``atomic_file`` makes harmless."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[tuple[int, Any]] = []

    def hold(signum: int, frame: Any) -> None:
        held.append((signum, frame))

    previous = {
        signum: signal.signal(signum, hold)
        for signum in STOP_SIGNALS
        if callable(signal.getsignal(signum))
    }
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if held:
            signum, frame = held[0]
            previous[signum](signum, frame)


@contextmanager
def atomic_file(
    path: Path, *, point: str | None = None, binary: bool = False, unique: bool = False
) -> Iterator[IO[Any]]:
    """An open handle on a temporary file beside ``path``, which replaces ``path`` (flushed to
    disk, then renamed) when the block ends, or is removed when it fails.

    The temporary is ``.NAME.tmp``, or, with ``unique``, ``.NAME.XXXXXXXX.tmp`` (for files that
    several processes may write at once, such as a download); ``remove_stale_temporaries`` of a
    run directory finds both. ``point`` names the crash points around the rename
    (``POINT:written``, ``POINT:renamed``) at which the fault tests kill the process."""
    path = Path(path)
    refuse_link(path)  # replacing a link would keep the user's file, but a link is not ours
    if unique:
        descriptor, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        temporary = Path(name)
    else:
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.unlink(missing_ok=True)  # a killed writer's, or a link: never written through
        with naming(path):
            descriptor = open_regular(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    handle = os.fdopen(descriptor, "wb" if binary else "w", encoding=None if binary else "utf-8")
    try:
        with naming(path), handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        readable_by_umask(temporary)
        if point is not None:
            crash_point(f"{point}:written")
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    if point is not None:
        crash_point(f"{point}:renamed")
