"""Checks of notebook 03 (fine-tuning and storage): the sparse storage size bitmask_bytes and the paired bootstrap
interval paired_interval."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import numpy as np
import torch

from . import catalog, fixtures
from .core import call, exercise_check, fail, passed


@exercise_check("bitmask_bytes")
def check_bitmask_bytes(bitmask_bytes: Callable) -> None:
    """`bitmask_bytes(state_dict, bytes_per_value)` on a hand-made state_dict, in fp32 (4) and fp16 (2):
    per float tensor min(dense, ceil(numel / 8) + nonzero * bytes_per_value); integer tensors as they are."""
    __tracebackhide__ = True
    name = "bitmask_bytes"
    mistake = catalog.BY_NAME[name].mistake
    state = fixtures.state_dict_example()
    # per tensor, fp32: a.weight min(64, 2 + 16) = 18, a.bias min(16, 1 + 16) = 16, b.weight min(60, 2 + 40) = 42,
    # c.weight min(40, 2 + 0) = 2, num_batches_tracked 8 -> 86; fp16: 10 + 8 + 22 + 2 + 8 = 50
    cases = {4: (86, {84: "round_down", 87: "always_sparse", 82: "integers", 121: "one_byte"}),
             2: (50, {48: "round_down", 51: "fp16_dense", 44: "integers", 80: "one_byte"})}
    before = {k: v.clone() for k, v in state.items()}
    for bytes_per_value, (answer, wrong) in cases.items():
        what = f"bitmask_bytes(state_dict, {bytes_per_value})"
        got = call(name, what, bitmask_bytes, state, bytes_per_value)
        if isinstance(got, torch.Tensor) or isinstance(got, bool) or not isinstance(got, (int, float)):
            fail(name, f"{what} returned {type(got).__name__}; {mistake('not_int')}")
        if not float(got).is_integer():
            fail(name, f"{what} returned {got}, {mistake('fractional')}")
        if any(not torch.equal(before[k], v) for k, v in state.items()):
            fail(name, mistake("changes"))
        if int(got) != answer:
            why = mistake(wrong[int(got)]) if int(got) in wrong else ""
            fail(name, f"{what}: expected {answer} bytes for this state_dict (a 4x4 weight with 4 non-zeros, "
                       f"a dense bias of 4, a 3x5 weight with 10 non-zeros, an all-zero 2x5 weight and an "
                       f"int64 counter), got {int(got)}" + (f": {why}" if why else ""))
    passed("bitmask_bytes counts ceil(numel / 8) + non-zeros per float tensor where that is smaller, "
           "dense otherwise, and integer tensors as they are")


def outcomes() -> tuple[torch.Tensor, torch.Tensor]:
    """Two models' bool outcomes on the same 1,000 images, shuffled: only A right on 60, only B right on 30, both
    right on 860, both wrong on 50 (A 92%, B 89%)."""
    kinds = torch.tensor([0] * 60 + [1] * 30 + [2] * 860 + [3] * 50)
    kinds = kinds[torch.randperm(1000, generator=torch.Generator().manual_seed(6))]
    return (kinds == 0) | (kinds == 2), (kinds == 1) | (kinds == 2)


RESAMPLES = 10_000  # the check's resamples: the percentiles then move by less than 0.1 point from one seed to another
INTERVAL = (3.0, 1.15, 4.85)  # points, low, high: the interval of 400,000 resamples is 1.2 to 4.9, 10,000 give 1.1-1.2
TOLERANCE = 0.15  # points: what another generator or seed moves the percentiles by, at most, with RESAMPLES


def _random_state() -> tuple[torch.Tensor, object]:
    return torch.get_rng_state(), np.random.get_state()[1].copy()


@exercise_check("paired_interval")
def check_paired_interval(paired_interval: Callable) -> None:
    """`paired_interval(a, b, resamples, seed)` on 1,000 paired outcomes (A 92%, B 89%, disagreeing on 90 images):
    3.0 points with a 95% interval of about 1.2 to 4.9 whatever the generator; an unpaired interval is about 0.4
    to 5.6. Also: the same seed gives the same interval, the global random state is left alone."""
    __tracebackhide__ = True
    name = "paired_interval"
    mistake = catalog.BY_NAME[name].mistake
    a, b = outcomes()
    a_before, b_before = a.clone(), b.clone()
    what = f"paired_interval(a, b, resamples={RESAMPLES:,}, seed=0)"
    state = _random_state()
    try:
        got = call(name, what, paired_interval, a, b, RESAMPLES, 0)
    except NotImplementedError as err:  # what torch raises for a - b on bool tensors (a stub's passes through)
        if "bool tensors" in str(err):
            fail(name, mistake("bool"))
        raise
    if not (torch.equal(a, a_before) and torch.equal(b, b_before)):
        fail(name, mistake("changes"))
    after = _random_state()
    if not (torch.equal(state[0], after[0]) and np.array_equal(state[1], after[1])):
        fail(name, mistake("global_rng"))
    if (not isinstance(got, (tuple, list)) or len(got) != 3
            or any(isinstance(v, (bool, torch.Tensor)) or not isinstance(v, numbers.Real) for v in got)):
        fail(name, f"{what} returned {got!r}; {mistake('returns')}")
    points, low, high = (float(v) for v in got)
    shown = f"{points:+.2f} points, interval {low:+.2f} to {high:+.2f}"
    expected = f"expected {INTERVAL[0]:+.1f} points, interval about {INTERVAL[1]:+.2f} to {INTERVAL[2]:+.2f} " \
               f"(within {TOLERANCE} points), got {shown}"
    if math.isclose(points, -INTERVAL[0], abs_tol=1e-6):
        fail(name, f"{expected}: {mistake('sign')}")
    if math.isclose(points, INTERVAL[0] / 100, abs_tol=1e-6):
        fail(name, f"{expected}: {mistake('fraction')}")
    if not math.isclose(points, INTERVAL[0], abs_tol=1e-6):
        fail(name, f"{expected}: A is right on 60 images where B is wrong, B on 30 where A is wrong, of 1,000")
    if abs(low - INTERVAL[1]) > TOLERANCE + 1e-9 or abs(high - INTERVAL[2]) > TOLERANCE + 1e-9:
        width = high - low
        why = ("no_replacement" if width < 0.3 else "unpaired" if width > 4.4
               else "narrow" if width < INTERVAL[2] - INTERVAL[1] - 2 * TOLERANCE else None)
        fail(name, expected + (f": {mistake(why)}" if why else ""))
    repeat = "paired_interval(a, b, resamples=25, seed=1), called 5 times"  # 25 resamples: a new draw moves them
    if len({tuple(float(v) for v in call(name, repeat, paired_interval, a, b, 25, 1)) for _ in range(5)}) > 1:
        fail(name, mistake("unseeded"))
    passed("paired_interval gives A - B in points with the 2.5th-97.5th percentiles of paired resamples, the same "
           "for the same seed, without touching the global random state")
