"""Same seed, same numbers, whatever is cached: notebook 01 run cold, then again with its dense
checkpoint cached, records the same figures (each phase is seeded on its own, runtime.seed_phase)."""

import json
import os
from pathlib import Path

import papermill
import pytest

from peel_course import run

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "01_lenet_mnist_pruning.ipynb"
SMALL = run.load_profile(NOTEBOOK.parents[1] / "params", "tiny")["01"]  # a few epochs: every phase, in seconds


def run_01(tmp_path: Path, name: str) -> dict:
    record = tmp_path / f"{name}.json"
    os.environ["PEEL_RECORD_FILE"] = str(record)
    try:
        papermill.execute_notebook(str(NOTEBOOK), str(tmp_path / f"{name}.ipynb"), cwd=str(NOTEBOOK.parent),
                                   parameters={**SMALL, "data_root": str(tmp_path / "data")},
                                   kernel_name="python3", progress_bar=False, execution_timeout=600)
    finally:
        del os.environ["PEEL_RECORD_FILE"]
    return json.loads(record.read_text())


@pytest.mark.slow  # executes notebook 01 twice
def test_cold_and_cached_runs_record_identical_figures(tmp_path):
    cold = run_01(tmp_path, "cold")
    checkpoint = tmp_path / "data" / "checkpoints" / "quick" / "01_lenet_dense.pt"
    assert checkpoint.exists()
    written = checkpoint.stat().st_mtime_ns
    cached = run_01(tmp_path, "cached")
    assert checkpoint.stat().st_mtime_ns == written  # the second run loaded it, it did not retrain
    assert len(cold) >= 10 and cached == cold
