"""Training: the ``Trainer`` (the epoch loop) and the callbacks it talks to the world through.

- ``trainer``: the epoch loop over mini-batches; one optimizer step per batch (``bpnn.nn.step``);
- ``callbacks``: the ``Callback`` hooks and the callbacks every run uses;
- ``progress``: the live progress display and the plain per-epoch reporter;
- ``health``: per-layer gradient and activation health, and its diagnoses.
"""
