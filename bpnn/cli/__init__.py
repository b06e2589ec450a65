"""The ``bpnn`` command line: one module per command, each parsing its arguments, calling the
public API (``bpnn/__init__.py``) and printing what it returns through one ``Output``.

No math and no file formats live here. Heavy libraries (NumPy, scikit-learn, matplotlib) are
imported inside the commands that need them, so ``bpnn --help`` stays fast. Every failure
becomes one line on stderr and an exit code of ``bpnn.errors.EXIT_CODES``
(``bpnn.cli.errors.reported_errors``).

- ``app``: the program, the command classes and the options several commands share
- ``errors``: every failure as one line and its exit code; stop signals
- ``output``: ``Output`` (table, json, result, text, note, warn, log);
  ``tables``: how a table fits the width

A command is added by writing its module (which decorates its function with ``app.command``)
and importing it below, in the order ``bpnn --help`` lists them.
"""

from bpnn.cli.app import app
from bpnn.cli.errors import describe_os_error, reported_errors

# isort: off
# each line registers a command (in the order of bpnn --help)
from bpnn.cli import train  # noqa: F401
from bpnn.cli import resume  # noqa: F401
from bpnn.cli import evaluate  # noqa: F401
from bpnn.cli import predict  # noqa: F401
from bpnn.cli import gradcheck  # noqa: F401
from bpnn.cli import explain  # noqa: F401
from bpnn.cli import plot  # noqa: F401
from bpnn.cli import init  # noqa: F401
from bpnn.cli import sweep  # noqa: F401
from bpnn.cli import export  # noqa: F401
from bpnn.cli import lr_find  # noqa: F401
from bpnn.cli import diagnose  # noqa: F401
from bpnn.cli import importance  # noqa: F401
from bpnn.cli import runs  # noqa: F401
from bpnn.cli import config  # noqa: F401
# isort: on

__all__ = ["app", "describe_os_error", "reported_errors"]
