import os

import pytest
import torch
import torch.nn as nn

from peel_utils import measure
from peel_utils.checkpoints import save_checkpoint


def small_model(bias: bool = False) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=bias), nn.Flatten(), nn.Linear(4 * 8 * 8, 10, bias=bias))


def test_checkpoint_bytes_equals_file_size(tmp_path):
    model = small_model(bias=True)
    path = save_checkpoint(model, tmp_path / "model.pt")
    assert measure.checkpoint_bytes(model) == path.stat().st_size
    # torch.save to a path writes the file's name into each zip record: a few bytes apart per tensor
    torch.save(model.state_dict(), tmp_path / "m.pt")
    assert abs((tmp_path / "m.pt").stat().st_size - measure.checkpoint_bytes(model)) < 64 * (len(model.state_dict()) + 4)
    # float32 weights: the file is the tensors' bytes plus a small fixed overhead
    tensor_bytes = sum(v.numel() * 4 for v in model.state_dict().values())
    assert tensor_bytes < measure.checkpoint_bytes(model) < tensor_bytes + 4096


def test_count_macs_matches_hand_count():
    # conv: 4 x 8 x 8 outputs, each 3 x 3 x 3 multiply-adds; linear: 10 outputs x 256 inputs
    assert measure.count_macs(small_model(), (3, 8, 8)) == 4 * 8 * 8 * 3 * 3 * 3 + 10 * 256  # 9,472
    # biases add one op per output element: 256 for the conv, 10 for the linear layer
    assert measure.count_macs(small_model(bias=True), (3, 8, 8)) == 9472 + 256 + 10


def test_count_macs_ignores_zeroed_weights_and_keeps_mode():
    model = small_model()
    model.train()
    with torch.no_grad():
        model[0].weight.zero_()
    assert measure.count_macs(model, (3, 8, 8)) == 9472
    assert model.training


def test_count_nonzero_parameters():
    model = small_model(bias=True)
    total = sum(p.numel() for p in model.parameters())  # 112 + 2,570
    assert measure.count_nonzero_parameters(model) == total
    with torch.no_grad():
        model[0].weight[:2].zero_()  # 2 of 4 filters, 27 weights each
    assert measure.count_nonzero_parameters(model) == total - 54


def test_latency_positive_and_cost_row():
    model = small_model()
    assert measure.measure_latency(model, (3, 8, 8), batch_size=4, repeats=3, warmup=1) > 0
    row = measure.cost_row(model, (3, 8, 8), batch_sizes=(1, 2), repeats=2)
    assert row["params"] == 3 * 4 * 9 + 256 * 10
    assert row["nonzero_params"] == row["params"]
    assert row["macs"] == 9472
    assert row["checkpoint_kb"] == measure.checkpoint_bytes(model) / 1024
    assert row["latency_ms_b1"] > 0 and row["latency_ms_b2"] > 0


def test_interleaved_latencies_times_every_model_and_batch_and_restores_threads():
    small, wide = small_model().train(), nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.Conv2d(64, 64, 3, padding=1))
    threads = torch.get_num_threads()
    timed = measure.interleaved_latencies({"small": small, ("wide", 2): wide}, (3, 8, 8), batch_sizes=(1, 16),
                                          rounds=2, repeats=2, threads=1)
    assert set(timed) == {("small", 1), ("small", 16), (("wide", 2), 1), (("wide", 2), 16)}
    assert all(ms > 0 for ms in timed.values())
    assert timed[("wide", 2), 16] > timed["small", 16]  # about 250x the MACs
    assert torch.get_num_threads() == threads and small.training  # the models and torch left as they were


def test_interleaved_timings_keep_every_round_and_spread():
    timed = measure.interleaved_timings({"small": small_model()}, (3, 8, 8), batch_sizes=(2,), rounds=3, repeats=1)
    assert list(timed) == [("small", 2)] and len(timed["small", 2]) == 3
    assert measure.spread([10.0, 12.0, 11.0]) == pytest.approx(2 / 11)
    assert measure.spread([5.0, 5.0]) == 0.0


def test_latency_threads_is_capped_by_the_cores_and_checked():
    cores = os.cpu_count() or 1
    assert measure.latency_threads(1) == 1
    assert measure.latency_threads(cores + 7) == cores
    assert measure.latency_threads(None) == min(torch.get_num_threads(), cores)
    with pytest.raises(ValueError, match="at least 1"):
        measure.latency_threads(0)


def test_per_round_speedups_divide_round_by_round():
    # a load that doubles every time in round 2 leaves the per-round ratio unchanged
    assert measure.per_round_speedups([100.0, 200.0, 100.0], [10.0, 20.0, 12.5]) == pytest.approx([10.0, 10.0, 8.0])
    with pytest.raises(ValueError, match="same number of rounds"):
        measure.per_round_speedups([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="at least one"):
        measure.per_round_speedups([], [])
