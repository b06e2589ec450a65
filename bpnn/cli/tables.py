"""How a table fits the width: the layout of every table a command prints (``Output.table``).

The width (``output_width``): ``COLUMNS`` when it is set (on a terminal or not), else the
terminal's width when stdout is a terminal, else none at all: in a pipe or a file every row is
one line, never wrapped and never shortened, so ``grep`` and ``awk`` see one line per row.

A table is declared as columns (``Column``: header, short header, priority, whether its cells
may wrap) and rows of cells. Within the width, in this order, until it fits:

1. every column with its full header;
2. headers abbreviated (``Column.short``), the lowest priority first;
3. columns hidden, the lowest priority first (a column of priority 0 never is); any that would
   fit again is kept, and a note below the table names the hidden ones
   (``(hidden: a, b; widen the terminal or use --json)``); full headers come back where room is
   left;
4. as a last resort, when even the columns of priority 0 are too wide: cells of a column that
   may wrap break between their words (or the items given), never inside one; then headers
   wider than their values break after a space, ``_``, ``.`` or ``-``;
5. if that is still too wide, the table is drawn wider than the terminal.

A value is never cut and never ellipsized: what a user reads (metrics, searched values, statuses,
names) appears whole or its column is hidden and named. ``--json`` carries everything.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table as RichTable
from rich.text import Text

#: a cell: text, styled text, or items a wrapping column may put on separate lines
Cell = str | Text | Sequence[str]

#: what a table of ``n`` columns adds to its cells' widths: a border left, right and between
#: the columns, and one space of padding on each side of every cell
BORDER = 1
PADDING = 2


def output_width(console: Console | None = None) -> int | None:
    """The width stdout's tables and lines must fit: ``COLUMNS`` when set, the terminal's when
    stdout is one, else None (a pipe or a file: no limit)."""
    columns = os.environ.get("COLUMNS", "").strip()
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    console = console if console is not None else Console()
    return console.width if console.is_terminal else None


@dataclass(frozen=True)
class Column:
    """One column of a table. ``priority`` 0: always shown; a higher number is hidden sooner.
    ``wrap``: as a last resort its cells may break between words (or between the items of a
    cell given as a sequence); a value is never broken inside and never cut."""

    header: str
    short: str | None = None
    priority: int = 0
    justify: Literal["left", "right"] = "left"
    wrap: bool = False


@dataclass
class Table:
    """A table to print: its columns, its rows (``add_row``), and a title on the line above it
    (left-aligned, whole; broken after a space or ``/`` only where it is wider than the width)."""

    columns: list[Column]
    title: str | None = None
    rows: list[list[Cell]] = field(default_factory=list)
    section_ends: set[int] = field(default_factory=set)

    def add_row(self, *cells: Cell, end_section: bool = False) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"a row of {len(cells)} cells for {len(self.columns)} columns")
        self.rows.append(list(cells))
        if end_section:
            self.section_ends.add(len(self.rows) - 1)


def _items(cell: Cell) -> list[str]:
    """The unbreakable pieces of a cell: the words of a text, or the items of a sequence."""
    if isinstance(cell, Text):
        return cell.plain.split(" ")
    if isinstance(cell, str):
        return cell.split(" ")
    return [str(item) for item in cell]


def _plain(cell: Cell) -> str:
    if isinstance(cell, Text):
        return cell.plain
    if isinstance(cell, str):
        return cell
    return " ".join(str(item) for item in cell)


def _lines(items: list[str], width: int) -> list[str]:
    """Items packed greedily into lines of at most ``width`` cells (an item longer than the
    width gets a line of its own, whole)."""
    lines: list[str] = []
    for item in items:
        if lines and cell_len(lines[-1]) + 1 + cell_len(item) <= width:
            lines[-1] += " " + item
        else:
            lines.append(item)
    return lines or [""]


@dataclass(frozen=True)
class Layout:
    """What ``layout`` decided: the columns shown (indices), their headers, the width each
    wrapping column breaks at (absent: not broken), the hidden columns' headers, and the width
    the table takes."""

    shown: list[int]
    headers: dict[int, str]
    wrap_at: dict[int, int]
    hidden: list[str]
    width: int


def _header_width(header: str) -> int:
    return max((cell_len(line) for line in header.split("\n")), default=0)


def _table_width(shown: Sequence[int], headers: dict[int, str], cells: Sequence[int]) -> int:
    """The width of a table of the columns ``shown``, each as wide as its cells or its header."""
    inner = sum(max(cells[i], _header_width(headers[i])) for i in shown)
    return inner + PADDING * len(shown) + BORDER * (len(shown) + 1)


def layout(table: Table, width: int | None) -> Layout:
    """Which columns, headers and line breaks make ``table`` fit ``width`` (None: no limit);
    the steps, in order, are those of the module docstring."""
    columns = table.columns
    everything = list(range(len(columns)))
    natural = [max([cell_len(_plain(row[i])) for row in table.rows] or [0]) for i in everything]
    full = {i: column.header for i, column in enumerate(columns)}
    if width is None or _table_width(everything, full, natural) <= width:
        return Layout(everything, full, {}, [], _table_width(everything, full, natural))
    # most important first; among equals, left to right (so the rightmost goes first)
    by_importance = sorted(everything, key=lambda i: (columns[i].priority, i))
    headers = dict(full)
    for i in reversed(by_importance):
        if columns[i].short is not None:
            headers[i] = columns[i].short
            if _table_width(everything, headers, natural) <= width:
                break
    shown = everything
    if _table_width(everything, headers, natural) > width:
        shown = [i for i in by_importance if columns[i].priority == 0]
        for i in by_importance:
            if columns[i].priority > 0 and _table_width([*shown, i], headers, natural) <= width:
                shown.append(i)
        shown.sort()
    for i in [i for i in by_importance if i in shown]:  # full headers back where there is room
        if headers[i] != full[i] and _table_width(shown, {**headers, i: full[i]}, natural) <= width:
            headers[i] = full[i]
    hidden = [columns[i].header for i in everything if i not in shown]
    # the last resort: the wrapping columns of what must be shown break between their words,
    # the lowest priority first, each no narrower than its longest word (or its header)
    cells = list(natural)
    wrap_at: dict[int, int] = {}
    for i in sorted(shown, key=lambda i: (-columns[i].priority, -i)):
        excess = _table_width(shown, headers, cells) - width
        if excess <= 0:
            break
        if columns[i].wrap:
            longest = max([cell_len(item) for row in table.rows for item in _items(row[i])] or [0])
            cells[i] = max(longest, _header_width(headers[i]), cells[i] - excess)
            wrap_at[i] = cells[i]
    # then headers wider than their column's cells break after a space, "_", "." or "-"
    for i in sorted(shown, key=lambda i: (-columns[i].priority, -i)):
        excess = _table_width(shown, headers, cells) - width
        if excess <= 0:
            break
        if _header_width(headers[i]) > cells[i]:
            target = max(cells[i], _header_width(headers[i]) - excess)
            headers[i] = _broken_header(headers[i], target)
    return Layout(shown, headers, wrap_at, hidden, _table_width(shown, headers, cells))


def _broken(text: str, width: int, after: str) -> list[str]:
    """``text`` on lines of at most ``width`` where its pieces allow, broken only after one of
    the characters ``after``; no character is lost."""
    separators = re.escape(after)
    lines: list[str] = []
    for piece in re.findall(rf"[^{separators}]+[{separators}]*|[{separators}]+", text):
        if lines and cell_len((lines[-1] + piece).rstrip()) <= width:
            lines[-1] += piece
        else:
            lines.append(piece)
    return [line.rstrip() for line in lines]


def _broken_header(header: str, width: int) -> str:
    """``header`` broken after a space, ``_``, ``.`` or ``-``: ``batch_size`` -> ``batch_``,
    ``size``."""
    return "\n".join(_broken(header, width, " _.-"))


def title_lines(title: str, width: int | None) -> list[str]:
    """A table's title: one line, or when wider than ``width`` broken after spaces and ``/``
    (a path keeps every folder name whole)."""
    if width is None or cell_len(title) <= width:
        return [title]
    return _broken(title, width, " /")


def _cell(cell: Cell, wrap_at: int | None) -> Text:
    """A cell as rich text (never read as markup: a ``[x]`` in a name stays), broken into
    lines at ``wrap_at`` when given."""
    style = cell.style if isinstance(cell, Text) else ""
    if wrap_at is None:
        return cell if isinstance(cell, Text) else Text(_plain(cell))
    return Text("\n".join(_lines(_items(cell), wrap_at)), style=style)


def render(table: Table, width: int | None) -> tuple[RichTable, Layout]:
    """The rich table that fits ``width`` (None: no limit), and the layout behind it."""
    plan = layout(table, width)
    drawn = RichTable(show_header=True)  # the title: title_lines
    for i in plan.shown:
        column = table.columns[i]
        header = Text(plan.headers[i])
        drawn.add_column(header, justify=column.justify, no_wrap=True, overflow="fold")
    for number, row in enumerate(table.rows):
        drawn.add_row(
            *(_cell(row[i], plan.wrap_at.get(i)) for i in plan.shown),
            end_section=number in table.section_ends,
        )
    return drawn, plan


def hidden_note(hidden: Sequence[str]) -> str:
    """The line under a table that had to hide columns."""
    return f"(hidden: {', '.join(hidden)}; widen the terminal or use --json)"


def fit_items(items: Sequence[str], width: int | None, separator: str = "  ") -> list[str]:
    """``items`` on one line, or, when that is wider than ``width``, on as few lines of at most
    ``width`` as greedy packing gives; an item is never broken (one wider than the width has a
    line of its own)."""
    lines: list[str] = []
    for item in items:
        if lines and (
            width is None or cell_len(lines[-1]) + len(separator) + cell_len(item) <= width
        ):
            lines[-1] += separator + item
        else:
            lines.append(item)
    return lines
