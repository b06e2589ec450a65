"""The version of bpnn, in a module of its own so that the parts that record it (checkpoints,
exports) need not import the public API that imports them."""

__version__ = "0.1.0"
