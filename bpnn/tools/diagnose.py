"""A run's gradient health, as ``bpnn diagnose`` shows it: the per-layer numbers of every epoch
that recorded them (``train.health``), and the diagnoses drawn from them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bpnn.errors import DataError
from bpnn.run import RunDirectory, run_diagnoses

#: the epochs a table shows unless every one is asked for: the first, the last, and evenly
#: spread between them
EPOCHS_SHOWN = 4


@dataclass(frozen=True)
class HealthReport:
    """The metrics rows that hold health numbers, in order, and the run's diagnoses."""

    run_dir: Path
    rows: list[dict[str, Any]]
    diagnoses: list[dict[str, Any]]

    def epochs(self, every: bool = False) -> list[dict[str, Any]]:
        """The rows to show: all of them, or at most ``EPOCHS_SHOWN`` evenly spread (the first
        and the last among them)."""
        if every or len(self.rows) <= EPOCHS_SHOWN:
            return self.rows
        last = len(self.rows) - 1
        picks = sorted({round(i * last / (EPOCHS_SHOWN - 1)) for i in range(EPOCHS_SHOWN)})
        return [self.rows[i] for i in picks]

    @staticmethod
    def layers(row: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        """One row's layers in network order (``"0"``, ``"1"``, ... ``"10"``)."""
        return sorted(row["health"].items(), key=lambda item: int(item[0]))

    def as_json(self) -> dict[str, Any]:
        health = [{"epoch": row["epoch"], "layers": row["health"]} for row in self.rows]
        return {"health": health, "diagnoses": self.diagnoses}


def health_report(run_dir: Path) -> HealthReport:
    """The health of the run in ``run_dir``; a ``DataError`` when it is not a run directory or
    its metrics hold no health numbers (trained with ``train.health`` off)."""
    run = RunDirectory(run_dir)
    run.require_metrics()
    rows = [row for row in run.read_metrics() if isinstance(row.get("health"), dict)]
    if not rows:
        raise DataError(f"{run_dir}: its metrics hold no health (trained with train.health off)")
    return HealthReport(run_dir, rows, run_diagnoses(run))
