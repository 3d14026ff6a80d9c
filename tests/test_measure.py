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


class Clock:
    """A fake clock for torch's Timer: it moves only when the stub model runs, 4 ms a pass."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def __deepcopy__(self, memo) -> "Clock":
        return self  # a copied model still moves the one clock


class Stub(nn.Module):
    """A model that counts its passes, notes the thread count of each and advances the fake clock."""

    def __init__(self, clock: Clock, ms: float = 4.0):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(1))
        self.clock, self.ms, self.threads = clock, ms, []

    def forward(self, x):
        self.threads.append(torch.get_num_threads())
        self.clock.now += self.ms / 1000
        return x * self.weight


@pytest.fixture
def clock(monkeypatch) -> Clock:
    """measure's Timer reads the fake clock."""
    fake = Clock()
    real = measure.benchmark.Timer
    monkeypatch.setattr(measure.benchmark, "Timer", lambda *args, **kwargs: real(*args, timer=fake, **kwargs))
    return fake


def test_measure_latency_counts_passes_and_threads(clock):
    stub = Stub(clock).train()
    threads = torch.get_num_threads()
    target = 1 if threads > 1 else 2
    assert measure.measure_latency(stub, (3,), batch_size=2, repeats=5, warmup=3, threads=target) == pytest.approx(4.0)
    # warmup 3: one pass of ours, then the Timer's two untimed passes and the 5 timed ones at the asked thread count
    assert len(stub.threads) == 1 + 2 + 5 and stub.threads[1:] == [target] * 7
    assert torch.get_num_threads() == threads and stub.training
    assert measure.measure_latency(Stub(clock, ms=2.5), (3,), repeats=2, warmup=0) == pytest.approx(2.5)


def test_cost_row_counts_exactly(clock):
    model = small_model()
    row = measure.cost_row(model, (3, 8, 8), batch_sizes=(1, 2), repeats=2)
    assert row["params"] == 3 * 4 * 9 + 256 * 10
    assert row["nonzero_params"] == row["params"]
    assert row["macs"] == 9472
    assert row["checkpoint_kb"] == measure.checkpoint_bytes(model) / 1024
    assert set(row) == {"params", "nonzero_params", "checkpoint_kb", "macs", "latency_ms_b1", "latency_ms_b2"}


def test_interleaved_timings_time_every_model_batch_and_round_and_restore_threads(clock):
    stubs = {"small": Stub(clock, ms=2.0).train(), ("wide", 2): Stub(clock, ms=8.0)}
    threads = torch.get_num_threads()
    timed = measure.interleaved_timings(stubs, (3,), batch_sizes=(1, 16), rounds=3, repeats=2, threads=1)
    assert list(timed) == [("small", 1), ("small", 16), (("wide", 2), 1), (("wide", 2), 16)]
    assert timed["small", 16] == pytest.approx([2.0] * 3) and timed[("wide", 2), 1] == pytest.approx([8.0] * 3)
    assert torch.get_num_threads() == threads and stubs["small"].training  # torch and the models left as they were
    assert stubs["small"].threads == []  # copies were timed, not the models given
    medians = measure.interleaved_latencies(stubs, (3,), batch_sizes=(4,), rounds=2, repeats=1, threads=1)
    assert medians == pytest.approx({("small", 4): 2.0, (("wide", 2), 4): 8.0})


def test_spread():
    assert measure.spread([10.0, 12.0, 11.0]) == pytest.approx(2 / 11)
    assert measure.spread([5.0, 5.0]) == 0.0


def test_measure_latency_times_a_real_model():
    # the real clock: a tiny model at one thread, batch 2, timed without error and in milliseconds
    ms = measure.measure_latency(small_model(), (3, 8, 8), batch_size=2, repeats=2, warmup=0, threads=1)
    assert 0 < ms < 10_000


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
