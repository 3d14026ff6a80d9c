"""Notebook 03's checks: bitmask_bytes and paired_interval pass on the solution and name each mistake of the table."""


import numpy as np
import pytest
import torch
from check_helpers import fails_with, mistake, stub

from peel_utils import checks
from peel_utils.checks.nb03 import check_paired_interval


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


def test_paired_interval_passes_on_solution(nb03, capsys):
    check_paired_interval(nb03["paired_interval"])
    assert "✓ passed: paired_interval" in capsys.readouterr().out


def interval(*, paired=True, replace=True, low_q=2.5, scale=100, sign=1, draws=lambda n: n, seeded=True,
             global_rng=False, as_bool=False, mutate=False, give=tuple):
    def paired_interval(a, b, resamples, seed):
        if mutate:
            a[0] = ~a[0]
        d = a - b if as_bool else a.double() - b.double()
        if global_rng:
            torch.manual_seed(seed)
        rng = np.random.default_rng(seed if seeded else None)
        n, m = len(d), draws(len(d))
        if not replace:
            picks = np.stack([rng.permutation(n)[:m] for _ in range(resamples)])
        else:
            picks = rng.integers(0, n, size=(resamples, m))
        if paired:
            means = d.numpy()[picks].mean(axis=1)
        else:
            other = rng.integers(0, n, size=(resamples, m))
            means = a.double().numpy()[picks].mean(axis=1) - b.double().numpy()[other].mean(axis=1)
        low, high = np.percentile(sign * means * scale, [low_q, 100 - low_q])
        return give((float(sign * d.mean() * scale), float(low), float(high)))
    return paired_interval


@pytest.mark.parametrize("wrong, key", [
    (interval(paired=False), "unpaired"),
    (interval(replace=False), "no_replacement"),
    (interval(low_q=5), "narrow"),
    (interval(draws=lambda n: 4 * n), "narrow"),
    (interval(scale=1), "fraction"),
    (interval(sign=-1), "sign"),
    (interval(as_bool=True), "bool"),
    (interval(seeded=False), "unseeded"),
    (interval(global_rng=True), "global_rng"),
    (interval(give=lambda t: {"points": t[0]}), "returns"),
    (interval(mutate=True), "changes"),
])
def test_paired_interval_catches(wrong, key):
    with fails_with(mistake("paired_interval", key)):
        check_paired_interval(wrong)


def test_paired_interval_passes_whatever_the_generator():
    """Another generator (torch's, other seeds) lands within the tolerance: the check asks for the method, not a
    stream of random numbers."""
    def with_torch(a, b, resamples, seed):
        d = a.double() - b.double()
        picks = torch.randint(len(d), (resamples, len(d)), generator=torch.Generator().manual_seed(seed + 17))
        means = d[picks].mean(dim=1) * 100
        low, high = torch.quantile(means, torch.tensor([0.025, 0.975], dtype=means.dtype))
        return float(d.mean() * 100), float(low), float(high)
    check_paired_interval(with_torch)
    check_paired_interval(interval(give=list))  # a list of three numbers will do


def test_paired_interval_gives_the_expected_and_the_wrong_value():
    with fails_with(r"expected \+3.0 points, interval about \+1.15 to \+4.85 \(within 0.15 points\), got \+3.00 points, "
                    r"interval \+1.00 to \+4.50$"):
        check_paired_interval(lambda a, b, resamples, seed: (3.0, 1.0, 4.5))


def test_paired_interval_stub_raises_its_own_error():
    with pytest.raises(NotImplementedError):
        check_paired_interval(stub)
