"""``python -m bpnn`` is the same as the ``bpnn`` command."""

from bpnn.cli import app

app(prog_name="bpnn")
