"""The one place that turns every failure of a command into one line on stderr and its exit
code (``bpnn.errors.EXIT_CODES``), and the signals that stop a command as Ctrl-C does."""

from __future__ import annotations

import os
import re
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer


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


#: a message about a config key (``data.options: ...``, ``loss.class_weights: ...``, ``data
#: 'moons': ...``), found once the config was read: it is given the config file's name
CONFIG_KEY_MESSAGE = re.compile(r"(name|seed|data|model|loss|optimizer|schedule|train)[.:' ]")
#: the longest message printed: a value in it could be any length (a 500,000-character cell)
MAX_MESSAGE = 1000


def _one_line(message: str, config: Path | None) -> str:
    message = " ".join(message.split())
    named = config is not None and message.startswith(f"{config}:")
    if config is not None and not named and CONFIG_KEY_MESSAGE.match(message):
        message = f"{config}: {message}"
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 3] + "..."


@contextmanager
def reported_errors(config: Path | None = None) -> Iterator[None]:
    """The one place that turns every failure into one line on stderr and its exit code (the
    table is ``bpnn.errors.EXIT_CODES``): bpnn's own errors, the operating system's (naming the
    path and the reason), running out of memory, SIGINT, SIGTERM and SIGHUP. A traceback only
    with ``--debug`` or ``BPNN_DEBUG=1``. A command that reads a ``config`` file names it: a
    message about one of its keys starts with the file. No line is longer than
    ``MAX_MESSAGE``."""
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
        print(f"error: {_one_line(message, config)}", file=sys.stderr)
        raise typer.Exit(code) from None
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
