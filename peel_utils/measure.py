"""Measured costs of a model: parameters, non-zeros, checkpoint bytes, MACs and CPU latency.

Every latency in the workbook is taken one way: `interleaved_timings` (rounds over all models, each the mean of a
few passes, at a fixed thread count, under `timing`'s OpenMP wait policy), read with `latency_table` (median,
round-to-round spread, per-round speed-ups) and introduced by `timing_setup` (the CPU, the threads, the policy).

Parameters and non-zeros are counted by `prune` (`count_parameters`, `count_nonzero_parameters`,
the latter importable from here too, as notebooks 02 and 06 use it).
"""

from __future__ import annotations

import copy
import io
import logging
import math
import os
import statistics
from collections.abc import Hashable, Mapping, Sequence

import pandas as pd
import torch
import torch.nn as nn
from tqdm.auto import tqdm

from . import timing
from .prune import count_nonzero_parameters, count_parameters
from .runtime import eval_mode

# torch's benchmark Timer imports torch.utils.cpp_extension, which logs "No CUDA runtime is found, using CUDA_HOME=..."
# on a machine with a CUDA toolkit and no GPU. The Timer compiles nothing here, so that line would only puzzle a learner
# (and land on stderr in every check cell): it is silenced for this one import.
_CPP_EXTENSION_LOG = logging.getLogger("torch.utils.cpp_extension")
_level = _CPP_EXTENSION_LOG.level
_CPP_EXTENSION_LOG.setLevel(logging.ERROR)
try:
    from torch.utils import benchmark
finally:
    _CPP_EXTENSION_LOG.setLevel(_level)


def checkpoint_bytes(model: nn.Module) -> int:
    """Bytes of `torch.save(model.state_dict())`: the dense checkpoint's size on disk.

    Equals the size of the file save_checkpoint writes; torch.save to a path stores the file's
    name in each zip record, so its file differs from this by a few bytes per tensor.
    """
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buffer)
    return buffer.getbuffer().nbytes


def count_macs(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of one forward pass on a single input of shape (C, H, W).

    Counted by torch-pruning's op counter on the dense layer shapes, so zeroed weights still
    count: only structured pruning lowers it. Convolutions and linear layers count
    out_elements * inputs_per_output; biases, normalisation, pooling and activations add an op or
    two per element (under 1% of a ResNet's total).
    """
    import torch_pruning as tp

    device = next(model.parameters()).device
    with eval_mode(model):
        macs, _ = tp.utils.count_ops_and_params(model, torch.zeros(1, *input_shape, device=device))
    return int(macs)


_TIMER_WARMUP = 2  # untimed passes torch's Timer.timeit runs before it starts the clock


@torch.no_grad()
def measure_latency(model: nn.Module, input_shape: tuple[int, ...], batch_size: int = 1,
                    repeats: int = 20, warmup: int = 3, threads: int | None = None) -> float:
    """Wall-clock milliseconds of one forward pass on a (batch_size, *input_shape) batch: the mean of
    `repeats` consecutive passes.

    torch's benchmark Timer takes the time, at `threads` torch threads (None: torch's current count)
    for this measurement only, synchronising CUDA around it; `warmup` untimed passes go first (at least
    the two the Timer always runs). Runs in eval mode on the model's device; repeat the measurement in
    rounds (interleaved_timings) and take the median to resist the odd slow run.
    """
    device = next(model.parameters()).device
    x = torch.randn(batch_size, *input_shape, device=device)
    timer = benchmark.Timer(stmt="model(x)", globals={"model": model, "x": x},
                            num_threads=threads or torch.get_num_threads())
    with eval_mode(model):
        for _ in range(warmup - _TIMER_WARMUP):
            model(x)
        return timer.timeit(repeats).mean * 1000


def interleaved_timings(models: Mapping[Hashable, nn.Module], input_shape: tuple[int, ...],
                        batch_sizes: Sequence[int] = (1, 64), rounds: int = 4, repeats: int = 3,
                        threads: int | None = None, warmup: int = 1) -> dict[tuple[Hashable, int], list[float]]:
    """CPU latency (ms) of each model at each batch size, one figure per round: {(name, batch_size): [ms, ...]}.

    Every model is timed once per round (measure_latency: the mean of `repeats` passes after `warmup`),
    round after round, so a change of load on the machine hits all models alike; the spread of a model's
    rounds is the noise of the measurement. Copies run on the CPU with `threads` torch threads (None:
    torch's current count), set by the Timer for each measurement; `models` and torch's thread count are
    left as they were. Introduced in notebook 05.
    """
    cpu_models = {name: copy.deepcopy(model).cpu().eval() for name, model in models.items()}
    threads = threads or torch.get_num_threads()
    times: dict[tuple[Hashable, int], list[float]] = {(name, b): [] for name in cpu_models for b in batch_sizes}
    for _ in tqdm(range(rounds), desc="latency rounds", leave=False):
        for name, model in cpu_models.items():
            for b in batch_sizes:
                times[name, b].append(measure_latency(model, input_shape, b, repeats, warmup, threads))
    return times


def interleaved_latencies(models: Mapping[Hashable, nn.Module], input_shape: tuple[int, ...],
                          batch_sizes: Sequence[int] = (1, 64), rounds: int = 4, repeats: int = 3,
                          threads: int | None = None, warmup: int = 1) -> dict[tuple[Hashable, int], float]:
    """The median over rounds of `interleaved_timings`: {(name, batch_size): ms}."""
    times = interleaved_timings(models, input_shape, batch_sizes, rounds, repeats, threads, warmup)
    return {key: statistics.median(runs) for key, runs in times.items()}


def spread(runs: Sequence[float]) -> float:
    """The spread of repeated timings: (slowest - fastest) / median, a fraction (0.1 is 10%)."""
    return (max(runs) - min(runs)) / statistics.median(runs)


def per_round_speedups(baseline_runs: Sequence[float], runs: Sequence[float]) -> list[float]:
    """Speed-up over the baseline in each interleaved round: baseline ms / model ms, round by round.

    In one round a change of load on the machine hits both models alike, so the ratio within a
    round cancels it; the median of these ratios is steadier than the ratio of the two medians when
    the load drifts during the measurement, and their min-max is how far one round's figure moves.
    """
    if len(baseline_runs) != len(runs) or not runs:
        raise ValueError(f"need the same number of rounds for both, at least one; got {len(baseline_runs)} "
                         f"and {len(runs)}")
    return [base / own for base, own in zip(baseline_runs, runs)]


def latency_threads(threads: int | None) -> int:
    """The thread count to time with: `threads`, at most the cores there are (None: torch's default).

    Timings are only comparable at one thread count, so the notebooks fix it and print it.
    """
    cores = os.cpu_count() or 1
    if threads is not None and threads < 1:
        raise ValueError(f"latency threads must be at least 1, not {threads}")
    return min(threads or torch.get_num_threads(), cores)


def cost_row(model: nn.Module, input_shape: tuple[int, ...], batch_sizes: tuple[int, ...] = (1, 64),
             repeats: int = 20) -> dict[str, float]:
    """One table row of measured costs: params, non-zeros, checkpoint KB, MACs, latency per batch size."""
    row = {"params": count_parameters(model),
           "nonzero_params": count_nonzero_parameters(model),
           "checkpoint_kb": checkpoint_bytes(model) / 1024,
           "macs": count_macs(model, input_shape)}
    for batch_size in batch_sizes:
        row[f"latency_ms_b{batch_size}"] = measure_latency(model, input_shape, batch_size, repeats)
    return row


def timing_setup(threads: int) -> str:
    """One sentence on how the timings that follow are taken: the CPU's instruction set, the torch threads and
    cores, and the OpenMP wait policy, saying so when it is not the workbook's (`timing.WAIT_POLICY`, set by the
    launchers before torch loads: a kernel started by hand has the default, whose figures are not comparable)."""
    from .deploy import cpu_capability

    policy = os.environ.get(timing.WAIT_POLICY_ENV)
    if policy == timing.WAIT_POLICY:
        how = f"{timing.WAIT_POLICY_ENV}={policy} (the workbook's set-up: waiting threads sleep, so a busy core does not stall them)"
    else:
        how = (f"{timing.WAIT_POLICY_ENV}={policy or 'unset'}, not the workbook's {timing.WAIT_POLICY}: these timings do not "
               "compare with the stored ones; start Jupyter with `make lab` (or set the variable before it starts)")
    return (f"Timed on the CPU ({cpu_capability().capability}) with {threads} torch threads of {os.cpu_count()} "
            f"cores, {how}.")


def latency_table(runs: Mapping[tuple[Hashable, int], Sequence[float]], baseline: Hashable | None = None) -> pd.DataFrame:
    """One row per (model, batch size) of `interleaved_timings`' rounds: the median ms, the rounds' spread and their
    count; with a `baseline` model, the speed-up over it (the median of the per-round ratios) and its range over
    the rounds. Print it with `report.readable(table, 2)`: two significant digits, as the spread allows."""
    rows = []
    for (name, batch), times in runs.items():
        row = {"model": name, "batch": batch, "latency_ms": statistics.median(times), "spread": spread(times),
               "rounds": len(times)}
        if baseline is not None:
            ratios = per_round_speedups(runs[baseline, batch], times)
            row.update(speedup=statistics.median(ratios), speedup_low=min(ratios), speedup_high=max(ratios))
        rows.append(row)
    return pd.DataFrame(rows)


TIMING_DIGITS = 2  # significant digits of a timing: rounds that spread 5-60% leave no more than two meaningful


def readable(table: pd.DataFrame) -> pd.DataFrame:
    """`table` for printing: its timing columns (names that start with latency, spread or speedup) written out at two
    significant digits, as their spread allows ("85", "5.8", "0.21": as text, so that a column's other figures do not
    pad them to more), every other float at report.readable's four. The table itself is left as it was."""
    from .report import readable as round_floats

    shown = round_floats(table)
    for column in table.columns:
        if str(column).startswith(("latency", "spread", "speedup")) and pd.api.types.is_float_dtype(table[column]):
            shown[column] = table[column].map(two_digits)
    return shown


def speedup_words(runs: Mapping[tuple[Hashable, int], Sequence[float]], model: Hashable, baseline: Hashable,
                  batch: int) -> str:
    """How fast `model` ran against `baseline` at `batch`, in words generated from `interleaved_timings`' rounds (the
    figures of `latency_table`'s row): "1.9x faster (rounds 1.7x-2.1x; spreads 8% and 12%)", "slower" likewise, or
    "no measurable difference" when the speed-up (the median of the per-round ratios) lies within the larger of the
    two rounds' spreads of 1x, or the rounds' ratios fall on both sides of 1x. Two significant digits."""
    ratios = per_round_speedups(runs[baseline, batch], runs[model, batch])
    ratio, low, high = statistics.median(ratios), min(ratios), max(ratios)
    own, base = spread(runs[model, batch]), spread(runs[baseline, batch])
    spreads = f"spreads {two_digits(100 * own)}% and {two_digits(100 * base)}%"
    if abs(ratio - 1) <= max(own, base) or low <= 1 <= high:
        return f"no measurable difference ({format_ratio(ratio)}, rounds {format_ratio(low)}-{format_ratio(high)}; {spreads})"
    if ratio > 1:
        return f"{format_ratio(ratio)} faster (rounds {format_ratio(low)}-{format_ratio(high)}; {spreads})"
    return f"{format_ratio(1 / ratio)} slower (rounds {format_ratio(1 / high)}-{format_ratio(1 / low)}; {spreads})"


def two_digits(value: float) -> str:
    """A timing's figure at two significant digits, as text: 85, 5.8, 0.21, 1300 (not 1344: rounds that spread by
    10% do not know the third digit); nan as "nan"."""
    if not math.isfinite(value) or value == 0:
        return str(value) if not math.isfinite(value) else "0"
    places = TIMING_DIGITS - 1 - math.floor(math.log10(abs(value)))
    value = round(value, places)
    places = TIMING_DIGITS - 1 - math.floor(math.log10(abs(value)))  # 9.96 rounds to 10: one place fewer
    return f"{round(value, places):.{max(places, 0)}f}"


def format_ratio(value: float) -> str:
    """A ratio at two significant digits: 2.0x, 0.43x, 12x, 130x."""
    return f"{two_digits(value)}x"
