"""The exception types of bpnn, one per kind of problem.

Each is raised where the problem is found, with a message that names the file, the key or the
value; the CLI turns them into one line on stderr and a non-zero exit code.
"""


class BpnnError(Exception):
    """Base class of every error bpnn reports to the user as one line."""


class ConfigError(BpnnError):
    """A config file, key or value is wrong (unknown key, wrong type, impossible value)."""


class DataError(BpnnError):
    """A data set or data file cannot be read or does not fit the config or the model."""


class CheckpointError(BpnnError):
    """A checkpoint file is missing, corrupt, or not a bpnn checkpoint."""


class OutputError(BpnnError):
    """An output path is taken (a run directory that holds files, an existing --out file)."""


class TrainingError(BpnnError):
    """Training cannot go on (the loss became NaN or infinite) or cannot resume."""


class ExportError(BpnnError):
    """A model cannot be exported: a format's optional package is missing, or a part of the
    network has no counterpart in the target format."""
