"""peel_utils.positions: the bitmask bytes and Han's relative indices give the mask back exactly."""

import pytest
import torch

from peel_utils import positions


@pytest.mark.parametrize("shape, density", [((37, 50), 0.07), ((3, 3, 5, 5), 0.5), ((300,), 0.01), ((8, 8), 0.0)])
def test_positions_round_trip(shape, density):
    mask = torch.rand(shape, generator=torch.Generator().manual_seed(3)) < density
    for span in range(1, 9):
        symbols = positions.relative_symbols(mask, span)
        assert torch.equal(positions.mask_from_relative(symbols, span, shape), mask)
        assert symbols.max(initial=0) < 2 ** span
    assert torch.equal(positions.mask_from_bitmask(positions.bitmask_symbols(mask), shape), mask)


def test_relative_indices_with_fillers():
    mask = torch.zeros(20, dtype=torch.bool)
    mask[[0, 2, 11]] = True
    # span 2 bits: steps up to 3; 0 -> 1 (first from -1), 2 -> 2, 11 -> fillers 3 + 3, then 3
    assert positions.relative_symbols(mask, 2).tolist() == [1, 2, 0, 0, 3]


def test_relative_indices_refuse_a_bad_span_or_stream():
    mask = torch.tensor([False, True, False, True])
    with pytest.raises(ValueError, match="span_bits must be from 1 to 8, not 9"):
        positions.relative_symbols(mask, 9)
    with pytest.raises(ValueError, match="past the 4 weights"):
        positions.mask_from_relative(positions.relative_symbols(mask, 2).tolist() + [3], 2, (4,))
    with pytest.raises(ValueError, match="bitmask bytes for 20 weights"):
        positions.mask_from_bitmask(positions.bitmask_symbols(mask), (20,))
