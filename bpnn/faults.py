"""Fault injection for the crash tests: ``BPNN_CRASH_AT=POINT`` (or ``POINT@N``) kills the process
with SIGKILL the first (or N-th) time it reaches ``crash_point(POINT)``.

The points sit between the writes of a run directory (``last:written`` is a checkpoint's
temporary file flushed but not yet renamed, ``last:renamed`` just after the rename, ...), so the
tests can kill a real process at every one and check that ``bpnn resume`` continues bit for bit.
Unset, it costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

_reached: dict[str, int] = {}  # how often each armed point was reached in this process


def crash_point(name: str) -> None:
    """Die here, as a power cut or ``kill -9`` would, if ``BPNN_CRASH_AT`` names this point."""
    spec = os.environ.get("BPNN_CRASH_AT")
    if not spec:
        return
    point, _, nth = spec.partition("@")
    if point != name:
        return
    _reached[name] = _reached.get(name, 0) + 1
    if _reached[name] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
