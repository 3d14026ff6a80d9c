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


# rounds of two models at two batch sizes, as interleaved_timings returns them
RUNS = {("dense", 1): [10.0, 12.0, 11.0], ("dense", 64): [100.0, 120.0, 110.0],
        ("small", 1): [5.0, 6.0, 4.0], ("small", 64): [50.0, 40.0, 55.0]}


def test_latency_table_gives_median_spread_and_rounds():
    table = measure.latency_table(RUNS)
    assert list(table.columns) == ["model", "batch", "latency_ms", "spread", "rounds"]
    assert table[["model", "batch"]].values.tolist() == [["dense", 1], ["dense", 64], ["small", 1], ["small", 64]]
    assert table.latency_ms.tolist() == [11.0, 110.0, 5.0, 50.0]
    assert table.spread.tolist() == pytest.approx([2 / 11, 20 / 110, 2 / 5, 15 / 50])
    assert table.rounds.tolist() == [3, 3, 3, 3]


def test_latency_table_speedup_is_the_median_of_per_round_ratios_with_its_range():
    table = measure.latency_table(RUNS, baseline="dense").set_index(["model", "batch"])
    # batch 1: rounds 10/5, 12/6, 11/4 = 2, 2, 2.75; batch 64: 2, 3, 2
    assert table.loc[("small", 1), ["speedup", "speedup_low", "speedup_high"]].tolist() == pytest.approx([2, 2, 2.75])
    assert table.loc[("small", 64), ["speedup", "speedup_low", "speedup_high"]].tolist() == pytest.approx([2, 2, 3])
    assert table.loc[("dense", 64), ["speedup", "speedup_low", "speedup_high"]].tolist() == [1, 1, 1]
    # the median of the ratios, not the ratio of the medians (110 / 50 = 2.2)
    assert table.loc[("small", 64), "speedup"] != pytest.approx(2.2)


def test_timing_setup_names_the_policy_and_says_when_it_is_not_the_workbooks(monkeypatch):
    from peel_utils import deploy, timing

    monkeypatch.setenv(timing.WAIT_POLICY_ENV, timing.WAIT_POLICY)
    workbook = measure.timing_setup(2)
    assert workbook.startswith(f"Timed on the CPU ({deploy.cpu_capability().capability}) with 2 torch threads of "
                               f"{os.cpu_count()} cores")
    assert "OMP_WAIT_POLICY=PASSIVE (the workbook's set-up" in workbook and "not the workbook's" not in workbook
    monkeypatch.delenv(timing.WAIT_POLICY_ENV)
    assert "OMP_WAIT_POLICY=unset, not the workbook's PASSIVE" in measure.timing_setup(1)
    assert "with 1 torch threads" in measure.timing_setup(1)
    monkeypatch.setenv(timing.WAIT_POLICY_ENV, "ACTIVE")
    active = measure.timing_setup(2)
    assert "OMP_WAIT_POLICY=ACTIVE, not the workbook's PASSIVE" in active and "make lab" in active


def test_speedup_words_say_faster_slower_or_no_measurable_difference():
    assert measure.speedup_words(RUNS, "small", "dense", 1) == "2.0x faster (rounds 2.0x-2.8x; spreads 40% and 18%)"
    assert measure.speedup_words(RUNS, "dense", "small", 64) == "2.0x slower (rounds 2.0x-3.0x; spreads 18% and 30%)"
    noisy = {("a", 1): [10.0, 10.0, 10.0], ("b", 1): [9.0, 8.0, 10.0], ("c", 1): [8.0, 8.1, 8.2]}
    # 10/9 = 1.1x is inside b's 22% spread
    assert measure.speedup_words(noisy, "b", "a", 1) == "no measurable difference (1.1x, rounds 1.0x-1.2x; spreads 22% and 0%)"
    assert measure.speedup_words(noisy, "c", "a", 1).startswith("1.2x faster (rounds 1.2x-1.2x")
    # a ratio outside the spreads whose rounds still fall on both sides of 1x is no difference either
    straddling = {("a", 1): [10.0, 10.0, 10.0, 10.0], ("b", 1): [9.5, 6.0, 6.2, 11.0]}
    assert measure.speedup_words(straddling, "b", "a", 1).startswith("no measurable difference")


def test_readable_writes_timing_columns_at_two_significant_digits_and_the_rest_at_four():
    table = measure.latency_table(RUNS, baseline="dense").assign(test_accuracy=97.654321)
    shown = measure.readable(table)
    # as text, so that "5.0" beside "110" is not padded to "5.00" and "110.00"
    assert shown.latency_ms.tolist() == ["11", "110", "5.0", "50"]
    assert shown.spread.tolist() == ["0.18", "0.18", "0.40", "0.30"]
    assert shown.speedup_high.tolist() == ["1.0", "1.0", "2.8", "3.0"]
    assert shown.test_accuracy.tolist() == [97.65] * 4 and shown.rounds.tolist() == [3] * 4
    assert table.spread.iloc[0] == 2 / 11  # the table itself is left as it was


def test_two_digits_and_format_ratio():
    assert [measure.two_digits(v) for v in (0.0549, 85.1, 161.3, 9.96, 0.0, float("nan"), 1344.0)] == \
        ["0.055", "85", "160", "10", "0", "nan", "1300"]
    assert [measure.format_ratio(v) for v in (2.0, 0.432, 12.4, 0.996, 9.96, 128.7)] == \
        ["2.0x", "0.43x", "12x", "1.0x", "10x", "130x"]
