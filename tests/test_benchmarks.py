"""benchmarks/: the scripts run end to end on tiny settings and print the figures they promise."""

import dataclasses
import importlib.util
import os
import re
from pathlib import Path

import pytest
import torch
import torch_pruning as tp

from peel_utils import handover, models, structured

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
WORDS = r"(no measurable difference \([\d.]+x, |[\d.]+x (faster|slower) \()rounds [\d.]+x-[\d.]+x; spreads [\d.]+% and [\d.]+%\)"


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_structured_latency_prints_macs_and_speedups(tmp_path, seeded, capsys):
    folder = tmp_path / "checkpoints" / "quick"
    meta = handover.Meta("resnet50", 10, small_input=False, image_size=16, in_channels=3, dataset="mnist5k")
    dense = models.resnet50(10).eval()
    handover.save(dense, folder, "teacher", meta)
    pruner = structured.ChannelPruner(dense, (3, 16, 16))
    pruned = pruner.prune_to(tp.importance.RandomImportance(), pruner.macs() / 2)
    pruned_meta = dataclasses.replace(meta, layer_channels=models.channel_counts(pruned))
    handover.save(pruned, folder, "structured", pruned_meta.with_extra(variant="random", mac_target=2,
                                                               dense_same_budget_test_accuracy=0.5))

    load_script("structured_latency").main(["--data-root", str(tmp_path), "--batch-sizes", "1", "2",
                                            "--threads", "1", "--rounds", "1", "--repeats", "1"])
    out = capsys.readouterr().out
    assert "random at 2x" in out
    macs_ratio = float(re.search(r"MACs .*\(([\d.]+)x\)", out).group(1))
    assert 1.95 <= macs_ratio <= 2.1
    assert "1 torch threads" in out and "OMP_WAIT_POLICY=" in out  # measure.timing_setup's sentence
    assert re.search(r"model +batch +latency_ms +spread +rounds +speedup +speedup_low +speedup_high", out)
    assert len(re.findall(rf"threads 1 batch [12]: pruned against dense: {WORDS}", out)) == 2


def test_structured_latency_names_the_notebook_when_a_checkpoint_is_missing(tmp_path):
    with pytest.raises(SystemExit, match="02_resnet50_pruning_sweep.ipynb"):
        load_script("structured_latency").main(["--data-root", str(tmp_path)])


def test_masked_step_prints_the_overhead(capsys):
    threads = torch.get_num_threads()
    try:
        load_script("masked_step").main(["--batch-size", "4", "--image-size", "32", "--steps", "1", "--warmup", "0",
                                         "--threads", "1"])
    finally:
        torch.set_num_threads(threads)  # the script sets it for the whole process
    out = capsys.readouterr().out
    assert re.search(r"overhead: +-?[\d.]+% \(target <= 15%; the median of the per-step ratios, steps from -?[\d.]+% "
                     r"to -?[\d.]+%\)", out)
    assert re.search(r"step with masks: +[\d.]+ ms \(spread \d+%\)", out) and "mask re-apply alone" in out
    assert "with 1 torch threads" in out and "OMP_WAIT_POLICY=" in out


@pytest.mark.slow
def test_deploy_latency_prints_int8_speedups_per_round(tmp_path, seeded, capsys):
    folder = tmp_path / "checkpoints" / "quick"
    meta = handover.Meta("resnet50", 10, small_input=False, image_size=16, in_channels=3, dataset="mnist5k")
    handover.save(models.resnet50(10).eval(), folder, "teacher", meta)
    handover.save(models.resnet18(10).eval(), folder, "student", dataclasses.replace(meta, arch="resnet18"))

    load_script("deploy_latency").main(["--data-root", str(tmp_path), "--variants", "resnet18_kd_int8", "--batch-sizes",
                                        "1", "2", "--threads", "1", "--rounds", "2", "--repeats", "1"])
    out = capsys.readouterr().out
    assert "input (3, 16, 16), 2 interleaved rounds of 1 passes" in out and "with 1 torch threads" in out
    assert len(re.findall(r"resnet18_kd_int8 +[12] +[\d.]+ +[\d.]+ +2 +[\d.]+ +[\d.]+ +[\d.]+", out)) == 2  # the table
    assert len(re.findall(rf"batch [12]: resnet18_kd_int8 against dense_fp32: {WORDS}", out)) == 2


def test_deploy_latency_names_the_notebook_when_a_checkpoint_is_missing(tmp_path):
    with pytest.raises(SystemExit, match="02_resnet50_pruning_sweep.ipynb"):
        load_script("deploy_latency").main(["--data-root", str(tmp_path)])


def test_wait_policy_table_reads_each_configuration_with_latency_table():
    wait_policy = load_script("wait_policy")
    results = {("PASSIVE", "idle"): {"1": [27.0, 26.0, 28.0], "64": [160.0, 161.0, 170.0]},  # JSON keys: strings
               (None, "loaded"): {1: [48.0, 40.0, 60.0], 64: [333.0, 300.0, 400.0]}}
    rows = wait_policy.table(results)
    assert list(rows.columns) == ["OMP_WAIT_POLICY", "load", "batch", "latency_ms", "spread", "rounds"]
    assert rows[["OMP_WAIT_POLICY", "load", "batch"]].values.tolist() == [
        ["PASSIVE", "idle", 1], ["PASSIVE", "idle", 64], ["unset", "loaded", 1], ["unset", "loaded", 64]]
    assert rows.latency_ms.tolist() == [27.0, 161.0, 48.0, 333.0]
    assert rows.spread.tolist() == pytest.approx([2 / 27, 10 / 161, 20 / 48, 100 / 333])
    assert rows.rounds.tolist() == [3, 3, 3, 3]


def test_wait_policy_sets_or_removes_the_policy_for_each_subprocess(monkeypatch):
    wait_policy = load_script("wait_policy")
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    assert wait_policy.environment("ACTIVE")["OMP_WAIT_POLICY"] == "ACTIVE"
    assert "OMP_WAIT_POLICY" not in wait_policy.environment(None)
    assert wait_policy.environment(None)["PATH"] == os.environ["PATH"]  # the rest of the environment is kept


def test_wait_policy_children_keep_the_policy_they_were_given(monkeypatch):
    # the script sets the workbook's policy when it starts, except in the subprocess it starts for one configuration
    monkeypatch.setattr("sys.argv", ["wait_policy.py", "--child"])
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    load_script("wait_policy")
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
    monkeypatch.setattr("sys.argv", ["wait_policy.py"])
    load_script("wait_policy")
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
