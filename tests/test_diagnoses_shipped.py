"""Every shipped config (``configs/*.yaml``), trained as it ships, gets exactly the diagnoses
written down for it here: none for the ones that train well, the one it was written to show for
``configs/vanishing.yaml``. A config added without an entry in ``EXPECTED`` fails.

Each config trains once, in full, with its own epochs and schedule. Only MNIST is made smaller,
and only its data: the first ``MNIST_TRAIN`` training and ``MNIST_TEST`` test images of the real
files (written to a temporary folder, given as ``data.path``), so that ``configs/mnist.yaml``
still runs its 20 epochs down its cosine schedule to a rate of 6.2e-06 in the last epoch.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from bpnn.config import load_config
from bpnn.run import run_training
from bpnn.training.diagnoses import diagnose
from tests.support import REPO

CONFIGS = sorted((REPO / "configs").glob("*.yaml"))
MNIST = REPO.parent / "shared" / "data" / "mnist"
MNIST_TRAIN, MNIST_TEST = 6000, 1000

#: (kind, layer) of every diagnosis each shipped config gets
EXPECTED: dict[str, set[tuple[str, int | None]]] = {
    "binary": set(),
    "digits": set(),
    "images": set(),
    "mnist": set(),
    "moons": set(),
    "penguins": set(),
    "regression": set(),
    "textbook-digits": set(),
    "vanishing": {("vanishing_gradients", 0)},
    "vanishing-fixed": set(),
    "worked-example": set(),
    "xor": set(),
}

pytestmark = pytest.mark.slow


def _mnist_subset(folder: Path) -> Path:
    """The first rows of the four MNIST files, as IDX .gz files in ``folder``."""
    for kind, rows in (("train", MNIST_TRAIN), ("t10k", MNIST_TEST)):
        for part, header in (("images-idx3", 16), ("labels-idx1", 8)):
            name = f"{kind}-{part}-ubyte.gz"
            raw = gzip.decompress((MNIST / name).read_bytes())
            row_bytes = 784 if part.startswith("images") else 1
            head = raw[:4] + rows.to_bytes(4, "big") + raw[8:header]
            (folder / name).write_bytes(
                gzip.compress(head + raw[header : header + rows * row_bytes])
            )
    return folder


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """``trained(name)``: the summary, the diagnosis lines said while training and the metrics
    of the shipped config ``name``, trained once for the whole module."""
    runs: dict[str, tuple[dict[str, Any], list[str], list[dict[str, Any]]]] = {}

    def train(name: str) -> tuple[dict[str, Any], list[str], list[dict[str, Any]]]:
        if name not in runs:
            overrides = []
            if name == "mnist":
                data = _mnist_subset(tmp_path_factory.mktemp("mnist-data"))
                overrides.append(f"data.path={data}")
            said: list[str] = []
            run_dir = tmp_path_factory.mktemp("runs") / name
            config = load_config(REPO / "configs" / f"{name}.yaml", overrides)
            _, summary = run_training(config, run_dir, log=said.append)
            lines = (run_dir / "metrics.jsonl").read_text().splitlines()
            runs[name] = (summary, said, [json.loads(line) for line in lines])
        return runs[name]

    return train


def _params() -> list[Any]:
    needs_mnist = pytest.mark.skipif(not MNIST.is_dir(), reason=f"{MNIST} is not there")
    return [
        pytest.param(path.stem, marks=needs_mnist if path.stem == "mnist" else ())
        for path in CONFIGS
    ]


@pytest.mark.parametrize("name", _params())
def test_shipped_config_gets_exactly_its_expected_diagnoses(name: str, trained: Any) -> None:
    assert name in EXPECTED, f"configs/{name}.yaml: no expected diagnoses in EXPECTED"
    assert set(EXPECTED) == {path.stem for path in CONFIGS}, "EXPECTED names a removed config"
    summary, said, metrics = trained(name)
    found = {(d["kind"], d["layer"]) for d in summary["diagnoses"]}
    assert found == EXPECTED[name], [d["message"] for d in summary["diagnoses"]]
    # said once each while training, and found again from metrics.jsonl (bpnn diagnose)
    assert [line for line in said if line.startswith("diagnosis (")] == [
        f"diagnosis ({d['kind']}): {d['message']}" for d in summary["diagnoses"]
    ]
    assert [d.as_dict() for d in diagnose(metrics)] == summary["diagnoses"]
