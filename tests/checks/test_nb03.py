"""Notebook 03's check: bitmask_bytes passes on the solution and names each mistake of the table."""


import pytest
import torch
from check_helpers import fails_with, mistake, stub

from peel_utils import checks


def test_bitmask_bytes_passes_on_solution(nb03, capsys):
    checks.check_bitmask_bytes(nb03["bitmask_bytes"])
    assert "✓ passed: bitmask_bytes" in capsys.readouterr().out


def byte_count(*, bitmask=lambda n: -(-n // 8), always_sparse=False, integers_too=False, dense_own_size=False,
               mutate=False):
    def count(state_dict, bytes_per_value):
        if mutate:
            state_dict["a.weight"].zero_()
        total = 0
        for tensor in state_dict.values():
            if not integers_too and (not tensor.is_floating_point() or tensor.dim() == 0):
                total += tensor.numel() * tensor.element_size()
                continue
            dense = tensor.numel() * (tensor.element_size() if dense_own_size else bytes_per_value)
            sparse = bitmask(tensor.numel()) + int(tensor.count_nonzero()) * bytes_per_value
            total += sparse if always_sparse else min(dense, sparse)
        return total
    return count


@pytest.mark.parametrize("wrong, key", [
    (byte_count(bitmask=lambda n: n // 8), "round_down"),
    (byte_count(bitmask=lambda n: n / 8), "fractional"),
    (byte_count(bitmask=lambda n: n), "one_byte"),
    (byte_count(always_sparse=True), "always_sparse"),
    (byte_count(integers_too=True), "integers"),
    (byte_count(dense_own_size=True), "fp16_dense"),
    (byte_count(mutate=True), "changes"),
    (lambda state_dict, bytes_per_value: torch.tensor(86), "not_int"),
])
def test_bitmask_bytes_catches(wrong, key):
    with fails_with(mistake("bitmask_bytes", key)):
        checks.check_bitmask_bytes(wrong)


def test_bitmask_bytes_stub_raises_its_own_error():
    with pytest.raises(NotImplementedError):
        checks.check_bitmask_bytes(stub)
