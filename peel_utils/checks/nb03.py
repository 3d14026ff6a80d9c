"""Check of notebook 03 (fine-tuning and storage): the sparse storage size bitmask_bytes."""

from __future__ import annotations

from collections.abc import Callable

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
