"""benchmarks/: the scripts run end to end on tiny settings and print the figures they promise."""

import dataclasses
import importlib.util
import re
from pathlib import Path

import pytest
import torch
import torch_pruning as tp

from peel_utils import handover, models, structured

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


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
    assert len(re.findall(r"threads 1 batch +[12]: dense .* speed-up [\d.]+x", out)) == 2


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
    assert re.search(r"overhead: +-?[\d.]+% \(target <= 15%\)", out)
    assert "step with masks" in out and "mask re-apply alone" in out


@pytest.mark.slow
def test_deploy_latency_prints_int8_speedups_per_round(tmp_path, seeded, capsys):
    folder = tmp_path / "checkpoints" / "quick"
    meta = handover.Meta("resnet50", 10, small_input=False, image_size=16, in_channels=3, dataset="mnist5k")
    handover.save(models.resnet50(10).eval(), folder, "teacher", meta)
    handover.save(models.resnet18(10).eval(), folder, "student", dataclasses.replace(meta, arch="resnet18"))

    load_script("deploy_latency").main(["--data-root", str(tmp_path), "--variants", "resnet18_kd_int8", "--batch-sizes",
                                        "1", "2", "--threads", "1", "--rounds", "2", "--repeats", "1"])
    out = capsys.readouterr().out
    assert "input (3, 16, 16), 1 threads, 2 interleaved rounds" in out
    assert len(re.findall(r"batch +[12]: dense_fp32 +[\d.]+ ms", out)) == 2
    lines = re.findall(r"batch +[12]: resnet18_kd_int8 +[\d.]+ ms  speed-up +([\d.]+)x \(ratio of medians\); "
                       r"per round +([\d.]+)x \(([\d.]+)-([\d.]+)\)", out)
    assert len(lines) == 2
    for _, median, low, high in lines:
        assert float(low) <= float(median) <= float(high)


def test_deploy_latency_names_the_notebook_when_a_checkpoint_is_missing(tmp_path):
    with pytest.raises(SystemExit, match="02_resnet50_pruning_sweep.ipynb"):
        load_script("deploy_latency").main(["--data-root", str(tmp_path)])
