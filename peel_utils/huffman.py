"""Huffman coding (Deep Compression's third stage): frequent symbols get short codes, rare ones long.

`code_lengths` builds the optimal prefix-free code's lengths from the symbol counts (Huffman 1952:
merge the two rarest subtrees until one is left; a symbol's length is its depth). The codes themselves
are *canonical* (`canonical_codes`): given the lengths they are fixed, so a file stores only the
lengths. `encode` and `decode` work on numpy arrays of symbols; `entropy_bits` is the bound no code
that spends a whole number of bits per symbol beats (Huffman comes within one bit per symbol of it, and
never goes below one bit a symbol: `bound_reading` says where that floor bites). An empty stream (a layer
that pruning emptied) codes to nothing: no code, zero bits. Introduced in notebook 07.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Mapping

import numpy as np

MAX_LENGTH = 56  # a code fits a 64-bit window with room to shift; counts below 2**38 never need more


def code_lengths(counts: Mapping[int, int]) -> dict[int, int]:
    """{symbol: code length} of a Huffman code for symbols with these counts (zero counts are left out).

    A single symbol gets length 1 (a code needs at least one bit). Ties are broken by first appearance,
    so the result is deterministic."""
    if any(count < 0 for count in counts.values()):
        raise ValueError(f"counts must not be negative: {dict(counts)}")
    present = {symbol: int(count) for symbol, count in counts.items() if count > 0}
    if not present:
        return {}
    if len(present) == 1:
        return {next(iter(present)): 1}
    order = itertools.count()
    heap = [(count, next(order), [symbol]) for symbol, count in present.items()]
    heapq.heapify(heap)
    lengths = dict.fromkeys(present, 0)
    while len(heap) > 1:
        count_a, _, a = heapq.heappop(heap)
        count_b, _, b = heapq.heappop(heap)
        for symbol in a + b:
            lengths[symbol] += 1  # every symbol under the merged node moves one level down
        heapq.heappush(heap, (count_a + count_b, next(order), a + b))
    if max(lengths.values()) > MAX_LENGTH:
        raise ValueError(f"a code longer than {MAX_LENGTH} bits: the counts are too skewed to code here")
    return lengths


def canonical_codes(lengths: Mapping[int, int]) -> dict[int, tuple[int, int]]:
    """{symbol: (code as an integer, length)}: the canonical code for these lengths (symbols sorted by
    length, then value; each code is the previous one plus one, shifted left when the length grows)."""
    codes, code, previous = {}, 0, 0
    for symbol, length in sorted(lengths.items(), key=lambda item: (item[1], item[0])):
        code <<= length - previous
        codes[symbol] = (code, length)
        code, previous = code + 1, length
    return codes


def total_bits(counts: Mapping[int, int], lengths: Mapping[int, int]) -> int:
    """Bits of the coded stream: the sum of count * length."""
    return sum(int(count) * lengths[symbol] for symbol, count in counts.items() if count > 0)


def entropy_bits(counts: Mapping[int, int]) -> float:
    """Shannon entropy of the counts, in bits per symbol (0.0 for a single symbol)."""
    n = sum(counts.values())
    return 0.0 - sum(c / n * math.log2(c / n) for c in counts.values() if c > 0) if n else 0.0  # 0.0, never -0.0


def entropy_bytes(symbols: np.ndarray) -> float:
    """The entropy bound of a whole stream in bytes: symbols times entropy bits over 8, what no code of one
    symbol at a time makes smaller (its code table aside); 0.0 for an empty stream."""
    return entropy_bits(counts_of(symbols)) * np.asarray(symbols).size / 8


def bound_reading(what: str, counts: Mapping[int, int]) -> str:
    """The sentence that sets a Huffman code's size beside its entropy bound, generated from the counts: bits a
    symbol and in all of both, and, where the entropy is under one bit a symbol, that Huffman's floor of one bit a
    symbol (every code has at least one) is what keeps the code above it."""
    n = sum(int(count) for count in counts.values())
    if n == 0:
        return f"{what}: no symbol, nothing to code (0 bytes)."
    coded, entropy = total_bits(counts, code_lengths(counts)), entropy_bits(counts)
    text = (f"{what}: {n:,} symbols, Huffman {coded / n:.2f} bits a symbol ({coded:,} bits in all) beside an entropy "
            f"of {entropy:.2f} ({round(entropy * n):,} bits), {coded / n - entropy:.2f} bits a symbol above it")
    if entropy < 1:
        text += ("; the entropy is under one bit a symbol, and a Huffman code spends at least one bit on every "
                 "symbol: its floor bites here")
    return text + "."


def counts_of(symbols: np.ndarray) -> dict[int, int]:
    """{symbol: how often it occurs} of an integer array."""
    values, counts = np.unique(np.asarray(symbols), return_counts=True)
    return {int(v): int(c) for v, c in zip(values, counts)}


def encode(symbols: np.ndarray, lengths: Mapping[int, int]) -> tuple[bytes, int]:
    """The symbols' canonical codes, concatenated: (bytes, the last one zero-padded; number of bits)."""
    symbols = np.asarray(symbols, dtype=np.int64).reshape(-1)
    if symbols.size == 0:
        return b"", 0
    codes = canonical_codes(lengths)
    missing = set(np.unique(symbols).tolist()) - set(codes)
    if missing:
        raise ValueError(f"symbols {sorted(missing)[:5]} have no code")
    table_size = max(codes) + 1
    code_of, length_of = np.zeros(table_size, np.int64), np.zeros(table_size, np.int64)
    for symbol, (code, length) in codes.items():
        code_of[symbol], length_of[symbol] = code, length
    code, length = code_of[symbols], length_of[symbols]        # (n,)
    nbits = int(length.sum())
    starts = np.cumsum(length) - length                        # where each symbol's code begins
    bits = np.zeros(nbits, np.uint8)
    for j in range(int(length.max())):                         # the j-th bit of every code at least j + 1 long
        longer = np.flatnonzero(length > j)
        bits[starts[longer] + j] = (code[longer] >> (length[longer] - 1 - j)) & 1
    return np.packbits(bits).tobytes(), nbits


def decode(data: bytes, nbits: int, count: int, lengths: Mapping[int, int]) -> np.ndarray:
    """`count` symbols back from `encode`'s (data, nbits): an int64 array. A stream that does not hold
    exactly `count` codes in `nbits` bits is a ValueError."""
    if count == 0:
        if nbits:
            raise ValueError(f"{nbits} bits for no symbol")
        return np.zeros(0, np.int64)
    if not lengths or len(data) * 8 < nbits:
        raise ValueError(f"the stream has {len(data) * 8} bits, not the {nbits} it should")
    codes = canonical_codes(lengths)
    longest = max(lengths.values())
    bits = np.unpackbits(np.frombuffer(data, np.uint8))[:nbits].astype(np.int64)
    bits = np.concatenate([bits, np.zeros(longest, np.int64)])
    window = np.zeros(nbits, np.int64)                         # the next `longest` bits from each position
    for j in range(longest):
        window = (window << 1) | bits[j:j + nbits]
    by_length = sorted(codes.items(), key=lambda item: (item[1][1], item[0]))
    symbols_sorted = np.array([symbol for symbol, _ in by_length], np.int64)
    limits, firsts, offsets, lens = [], [], [], []
    for length, group in itertools.groupby(enumerate(by_length), key=lambda item: item[1][1][1]):
        group = list(group)
        first = group[0][1][1][0]
        limits.append((first + len(group)) << (longest - length))  # left-aligned end of this length's codes
        firsts.append(first)
        offsets.append(group[0][0])
        lens.append(length)
    level = np.searchsorted(np.array(limits, np.int64), window, side="right")  # first length whose range holds it
    valid = level < len(lens)
    level = np.minimum(level, len(lens) - 1)
    lens_at = np.array(lens, np.int64)[level]
    rank = np.array(offsets, np.int64)[level] + (window >> (longest - lens_at)) - np.array(firsts, np.int64)[level]
    symbol_at = symbols_sorted[np.clip(rank, 0, len(symbols_sorted) - 1)].tolist()
    length_at, valid_at = lens_at.tolist(), valid.tolist()
    out, position = [], 0
    for _ in range(count):  # follow the chain of code starts: each code's end is the next one's start
        if position >= nbits or not valid_at[position]:
            raise ValueError(f"the stream ends or breaks after {len(out)} of {count} symbols")
        out.append(symbol_at[position])
        position += length_at[position]
    if position != nbits:
        raise ValueError(f"{nbits - position} bits are left after {count} symbols")
    return np.array(out, np.int64)
