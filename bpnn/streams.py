"""The process's standard streams, owned in one place: a reader that goes away never changes
what bpnn does.

``bpnn train ... | head -1`` closes the pipe after one line, and a terminal that closes (an ssh
connection that drops) makes every later write fail with EIO. Python ignores SIGPIPE (and bpnn
keeps it so: a signal would kill the training), so the failing write raises wherever it
happens: in a progress callback in the middle of an epoch, in rich's console (which then calls
``sys.exit(1)``), in a ``print`` or, at the interpreter's exit, in the final flush ("Exception
ignored ... BrokenPipeError", exit 120).

``guard_standard_streams()``, called by the ``bpnn`` program before anything else, puts a
``GuardedStream`` in front of ``sys.stdout`` and ``sys.stderr``. The first write or flush that
finds its reader gone (EPIPE, EIO) marks the stream lost and points its file descriptor at
``/dev/null``; from then on every write to it, by anyone (``print``, rich consoles and live
displays, ``logging``, ``warnings``, ``typer.echo``, the flush at exit, a child process started
later), succeeds into nothing. Training goes on and writes every file, and its exit code stays
the run's; a command whose only job is its output asks ``lost()`` at its end and exits
``STDOUT_CLOSED`` (``bpnn.cli``). A terminal that closes also sends SIGHUP, which
``bpnn.cli.reported_errors`` turns into a stop like SIGTERM's (exit 129, the run resumable)
unless it is ignored (``nohup``: training goes on, its output dropped here).

``stdin_copy()`` is the other direction: standard input as a file, for ``predict CHECKPOINT -``.
"""

from __future__ import annotations

import errno
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

#: the exit code of a command whose stdout was closed before it had written all of its output:
#: 128 + SIGPIPE, as ``cat`` or ``seq`` report it when ``head`` stops reading
STDOUT_CLOSED = 141

#: what a write returns when nobody reads the stream any more: a closed pipe, a hung-up terminal
_READER_GONE = frozenset({errno.EPIPE, errno.EIO, errno.ECONNRESET})

#: how an error message names standard input
STDIN_NAME = "<stdin>"


def _encodable(text: Any, stream: TextIO) -> Any:
    """``text`` with every character ``stream``'s encoding cannot write (a lone surrogate that
    a JSON escape put in a file bpnn read, a terminal's narrow charset) shown as its escape
    (``\\ud800``): what bpnn prints never fails on what it prints."""
    if not isinstance(text, str):
        return text
    encoding = getattr(stream, "encoding", None) or "utf-8"
    try:
        text.encode(encoding, getattr(stream, "errors", None) or "strict")
    except UnicodeEncodeError:
        return text.encode(encoding, "backslashreplace").decode(encoding)
    except LookupError:  # an encoding Python does not know: the stream says so itself
        pass
    return text


class GuardedStream:
    """A text stream in front of ``stream`` (``sys.stdout``, ``sys.stderr``) whose writes never
    fail because the reader went away: the first such failure marks it ``lost`` and points its
    file descriptor at ``/dev/null``. Everything else (``fileno``, ``isatty``, ``encoding``,
    ``buffer``...) is the stream's own."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.lost = False

    def write(self, text: str) -> int:
        if not self.lost:
            try:
                self._write(text)
            except OSError as error:
                self._lose(error)
        return len(text)

    def _write(self, text: str) -> None:
        """Write ``text`` through the binary buffer, all of it: a binary write may take only a
        part (the pipe filled up, then its reader left), and the text layer drops the rest
        without a word; written again here, the rest fails as it should."""
        buffer = getattr(self.stream, "buffer", None)
        if buffer is None or os.linesep != "\n" or not isinstance(text, str):
            self.stream.write(_encodable(text, self.stream))  # no binary layer, newlines
            return  # translated, or not text at all
        try:
            encoded = text.encode(self.stream.encoding, self.stream.errors)
        except UnicodeEncodeError:  # a lone surrogate read from a file, a terminal's charset
            encoded = text.encode(self.stream.encoding, "backslashreplace")
        data = memoryview(encoded)
        while data:
            written = buffer.write(data)
            data = data[written or len(data) :]
        if getattr(self.stream, "line_buffering", False) and ("\n" in text or "\r" in text):
            buffer.flush()

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if not self.lost:
            try:
                self.stream.flush()
            except OSError as error:
                self._lose(error)

    def _lose(self, error: OSError) -> None:
        """Mark the stream lost if ``error`` says its reader is gone, else raise it (a full disk
        under ``> file`` is an error to report, not a reader that left)."""
        if error.errno not in _READER_GONE:
            raise error
        self.lost = True
        try:
            descriptor = self.stream.fileno()
        except (OSError, ValueError, AttributeError):  # a stream without a descriptor (tests)
            return
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, descriptor)  # what is still buffered goes there at the next flush
        finally:
            os.close(devnull)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def guard_standard_streams() -> None:
    """Put a ``GuardedStream`` in front of ``sys.stdout`` and ``sys.stderr`` for the rest of the
    process (once; a missing stream, as under ``pythonw``, stays missing)."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not isinstance(stream, GuardedStream):
            setattr(sys, name, GuardedStream(stream))


def lost(name: str = "stdout") -> bool:
    """Whether ``sys.stdout`` (or ``sys.stderr``) lost its reader, after flushing what it holds
    (so that output still in its buffer counts). False for an unguarded stream."""
    stream = getattr(sys, name)
    if not isinstance(stream, GuardedStream):
        return False
    stream.flush()
    return stream.lost


class StdinCopy:
    """Standard input copied into ``path``, a temporary file, for a reader that needs a file
    (one that reads twice, such as the table readers: the header, then the rows)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def named(self, message: str) -> str:
        """``message`` with the copy's path written as ``<stdin>``, as the user knows it."""
        return message.replace(str(self.path), STDIN_NAME)


@contextmanager
def stdin_copy(name: str) -> Iterator[StdinCopy]:
    """Standard input, read to its end into a temporary file called ``name`` (its suffix says
    how to read it, ``stdin.csv``), removed afterwards. A bpnn error or an operating system's
    error raised while it is read names ``<stdin>`` instead of the copy."""
    from bpnn.errors import BpnnError, DataError

    if sys.stdin is None:
        raise DataError(f"{STDIN_NAME}: there is no standard input to read")
    with tempfile.TemporaryDirectory(prefix="bpnn-stdin-") as folder:
        copy = StdinCopy(Path(folder) / name)
        with copy.path.open("wb") as handle:
            shutil.copyfileobj(sys.stdin.buffer, handle)
        try:
            yield copy
        except BpnnError as error:
            error.args = (copy.named(str(error)), *error.args[1:])
            raise
        except OSError as error:  # described by its file name (bpnn.cli.describe_os_error)
            for attribute in ("filename", "filename2"):
                value = getattr(error, attribute)
                if value is not None:
                    setattr(error, attribute, copy.named(os.fsdecode(value)))
            raise
