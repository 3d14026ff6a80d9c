"""Same seed, same numbers, whatever is cached: notebook 01 run again with its dense checkpoint cached records the
figures of its cold run in the session's tiny chain (tests/conftest.py's `tiny_chain`), each phase being seeded on its
own (runtime.seed_phase). The cold run is the chain's, so the test executes 01 once, not twice."""

import shutil

import pytest

DENSE = "01_lenet_dense"  # the checkpoint notebook 01 loads instead of training when it is there (.pt, .json, .csv)


@pytest.mark.slow  # executes notebook 01 once (the cold run is the chain's)
def test_a_cached_run_records_the_figures_of_the_cold_run(tiny_chain, run_chain, tmp_path):
    data_root = tmp_path / "data"
    shutil.copytree(tiny_chain.data_root / "MNIST", data_root / "MNIST")  # the same digits
    cache = data_root / "checkpoints" / "full"
    cache.mkdir(parents=True)
    for file in tiny_chain.checkpoints.glob(f"{DENSE}.*"):  # the weights, their record and the training history
        shutil.copy2(file, cache / file.name)
    checkpoint = cache / f"{DENSE}.pt"
    written = checkpoint.stat().st_mtime_ns
    sections = {**tiny_chain.sections, "all": {**tiny_chain.sections["all"], "data_root": str(data_root)}}
    code, summary, _ = run_chain(tmp_path, "full", sections, ["01"])
    assert code == 0
    assert checkpoint.stat().st_mtime_ns == written  # the run loaded it, it did not retrain
    cold, cached = (s["notebooks"]["01_lenet_mnist_pruning"]["figures"] for s in (tiny_chain.summary, summary))
    assert len(cold) >= 10 and cached == cold
