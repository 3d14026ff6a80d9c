"""Where a pruned layer's non-zeros are, as a stream of small symbols that Huffman coding can shrink.

Two ways, both read in row-major order:
- the **bitmask** (1 bit per weight), cut into bytes: each byte, 0 to 255, is one symbol;
- Han et al.'s **relative indices**: for each non-zero, the distance from the previous one, in at most
  `span_bits` bits (1 to 2**span_bits - 1); a longer gap is bridged by *filler* symbols 0, each meaning
  "2**span_bits - 1 positions further, no weight here" (Han store a zero weight there instead; here the
  filler carries no value index).
At high sparsity the gaps are long and few, so relative indices tend to win. Introduced in notebook 07.
"""

from __future__ import annotations

import numpy as np
import torch

from .storage import pack_bits, unpack_bits


def bitmask_symbols(mask: torch.Tensor) -> np.ndarray:
    """The bitmask of `mask` (row-major, zero-padded to whole bytes) as byte symbols 0..255."""
    return pack_bits(mask.reshape(-1).cpu()).numpy().astype(np.int64)


def mask_from_bitmask(symbols: np.ndarray, shape: tuple[int, ...]) -> torch.Tensor:
    """The inverse of bitmask_symbols: a bool tensor of `shape`."""
    numel = int(np.prod(shape))
    if len(symbols) != -(-numel // 8):
        raise ValueError(f"{len(symbols)} bitmask bytes for {numel} weights")
    return unpack_bits(torch.from_numpy(np.asarray(symbols, np.uint8)), numel).reshape(shape)


def relative_symbols(mask: torch.Tensor, span_bits: int) -> np.ndarray:
    """Han's relative indices of `mask`'s True entries: the gap from the previous one (the first from
    position -1), in 1..2**span_bits - 1, with filler 0s (each a jump of 2**span_bits - 1) before a
    longer gap."""
    if not 1 <= span_bits <= 8:
        raise ValueError(f"span_bits must be from 1 to 8, not {span_bits}")
    span = 2 ** span_bits - 1
    positions = torch.nonzero(mask.reshape(-1).cpu()).reshape(-1).numpy().astype(np.int64)
    gaps = np.diff(positions, prepend=-1)                       # (nonzero,), each >= 1
    fillers = (gaps - 1) // span                                # fillers before each gap
    last = gaps - fillers * span                                # what is left, 1..span
    out = np.zeros(int(fillers.sum()) + len(gaps), np.int64)    # fillers are 0
    ends = np.cumsum(fillers + 1) - 1                           # where each non-zero's symbol goes
    out[ends] = last
    return out


def mask_from_relative(symbols: np.ndarray, span_bits: int, shape: tuple[int, ...]) -> torch.Tensor:
    """The inverse of relative_symbols: a bool tensor of `shape`."""
    span, numel = 2 ** span_bits - 1, int(np.prod(shape))
    symbols = np.asarray(symbols, np.int64)
    reached = np.cumsum(np.where(symbols == 0, span, symbols)) - 1
    positions = reached[symbols != 0]
    if len(positions) and (positions[-1] >= numel or symbols.min() < 0 or symbols.max() > span):
        raise ValueError(f"relative indices point past the {numel} weights")
    mask = torch.zeros(numel, dtype=torch.bool)
    mask[torch.from_numpy(positions)] = True
    return mask.reshape(shape)
