"""``Output``: everything a command prints, in one place.

stdout carries the result: tables (fitted to the width, ``bpnn.cli.tables``), strict JSON
(``--json``), result lines and text. stderr carries the rest: notes (``wrote PATH``), warnings,
and the log of a long command, through the same console as its progress display so the two
never tear each other. Nothing is marked up: a ``[dask]`` or a path prints as written.
"""

from __future__ import annotations

import sys
from typing import Any, Literal

from rich.console import Console
from rich.text import Text

from bpnn.cli.tables import Layout, Table, hidden_note, output_width, render, title_lines
from bpnn.outputs import print_json


def plain_console(stderr: bool = False) -> Console:
    """A console that prints text as written (no markup, no emoji codes, no highlighting) and
    never wraps a line."""
    return Console(stderr=stderr, highlight=False, soft_wrap=True, markup=False, emoji=False)


class Output:
    """What a command prints. ``width``: the width stdout's tables fit (None: no limit); by
    default ``output_width()``, measured each time something is fitted (a terminal may have
    been resized during a long run)."""

    def __init__(self, width: int | Literal["measured"] | None = "measured") -> None:
        self._width = width
        self._stderr: Console | None = None

    @property
    def width(self) -> int | None:
        return output_width() if self._width == "measured" else self._width

    @property
    def stderr(self) -> Console:
        """The console of messages and progress (one per output, made when first needed)."""
        if self._stderr is None:
            self._stderr = plain_console(stderr=True)
        return self._stderr

    @property
    def is_terminal(self) -> bool:
        """Whether stdout is a terminal (a pipe or a file is not)."""
        return Console().is_terminal

    def table(self, table: Table) -> Layout:
        """Print ``table`` fitted to the width, and the note naming the columns it hid."""
        fit = self.width
        drawn, plan = render(table, fit)
        console = Console(highlight=False, width=max(plan.width, fit or 0) or None, soft_wrap=False)
        for line in title_lines(table.title, fit) if table.title is not None else []:
            console.print(Text(line, style="table.title"), soft_wrap=True)
        console.print(drawn)
        if plan.hidden:
            console.print(hidden_note(plan.hidden), markup=False)
        return plan

    def json(self, value: Any, indent: int | None = None) -> None:
        """``value`` as strict JSON on stdout (a NaN is ``null``, never ``NaN``)."""
        print_json(value, indent=indent)

    def result(self, line: str) -> None:
        """One line of the result on stdout."""
        print(line)

    def text(self, text: str) -> None:
        """Text on stdout, as it is (a table of predictions, a config)."""
        sys.stdout.write(text)

    def note(self, message: str) -> None:
        """A message on stderr (``wrote PATH``)."""
        print(message, file=sys.stderr)

    def warn(self, message: str) -> None:
        """``warning: message`` on stderr."""
        self.note(f"warning: {message}")

    def log(self, message: str) -> None:
        """A line of a command's log on stderr, through the console its progress display uses."""
        self.stderr.print(message)
