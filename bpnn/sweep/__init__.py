"""Hyperparameter sweeps: many configs searched at once with Optuna's samplers, each trial an
ordinary run directory, on local worker processes or a Dask cluster, resumable from files.

- ``spec``: the sweep file and the checks made before any trial runs
- ``samplers``: Optuna's samplers and distributions for the search space
- ``trial``: one trial, as a worker runs it (the only module that starts training)
- ``executors``: local processes or Dask workers
- ``folder``: the files of a sweep folder read back (sweep.yaml, sweep.jsonl, the journal's
  framing), one checking reader each
- ``runner``: the sweep folder, the study, the ask-dispatch-tell loop, best.yaml
- ``plots``: the metric against each searched key (the ranked table: ``bpnn.cli.sweep``)
"""
