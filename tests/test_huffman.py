"""peel_utils.huffman: optimal prefix-free codes, canonical codes, and streams that decode exactly."""

import heapq
import math

import numpy as np
import pytest

from peel_utils import huffman


def reference_total(counts):
    """The optimal total length, by the textbook: sum of the merged weights (heapq)."""
    heap = [c for c in counts.values() if c > 0]
    if len(heap) == 1:
        return heap[0]
    heapq.heapify(heap)
    total = 0
    while len(heap) > 1:
        merged = heapq.heappop(heap) + heapq.heappop(heap)
        total += merged
        heapq.heappush(heap, merged)
    return total


@pytest.mark.parametrize("seed, symbols", [(0, 2), (1, 5), (2, 17), (3, 64), (4, 256)])
def test_code_lengths_are_optimal_and_prefix_free(seed, symbols):
    rng = np.random.default_rng(seed)
    counts = {s: int(c) for s, c in enumerate(rng.integers(1, 10_000, symbols))}
    lengths = huffman.code_lengths(counts)
    assert huffman.total_bits(counts, lengths) == reference_total(counts)
    assert sum(2.0 ** -length for length in lengths.values()) <= 1.0  # Kraft: a prefix-free code exists
    codes = [format(code, f"0{length}b") for code, length in huffman.canonical_codes(lengths).values()]
    ordered = sorted(codes)
    assert not any(b.startswith(a) for a, b in zip(ordered, ordered[1:]))


def test_textbook_case_and_edges():
    counts = {"a": 5, "b": 9, "c": 12, "d": 13, "e": 16, "f": 45}
    assert huffman.code_lengths(counts) == {"a": 4, "b": 4, "c": 3, "d": 3, "e": 3, "f": 1}
    assert huffman.code_lengths({7: 3}) == {7: 1}
    assert huffman.code_lengths({1: 0, 2: 4, 3: 4}) == {2: 1, 3: 1}  # a zero count gets no code
    assert huffman.code_lengths({}) == {}
    with pytest.raises(ValueError, match="negative"):
        huffman.code_lengths({1: -1, 2: 3})


def test_canonical_codes_follow_the_lengths():
    assert huffman.canonical_codes({0: 2, 1: 1, 2: 3, 3: 3}) == {1: (0, 1), 0: (2, 2), 2: (6, 3), 3: (7, 3)}


@pytest.mark.parametrize("seed, alphabet, n", [(0, 1, 10), (1, 2, 1000), (2, 9, 5000), (3, 200, 20_000)])
def test_encode_decode_round_trip(seed, alphabet, n):
    rng = np.random.default_rng(seed)
    weights = rng.random(alphabet) ** 4
    symbols = rng.choice(alphabet, size=n, p=weights / weights.sum())
    counts = huffman.counts_of(symbols)
    lengths = huffman.code_lengths(counts)
    data, nbits = huffman.encode(symbols, lengths)
    assert nbits == huffman.total_bits(counts, lengths) and len(data) == math.ceil(nbits / 8)
    np.testing.assert_array_equal(huffman.decode(data, nbits, n, lengths), symbols)
    assert nbits / n >= huffman.entropy_bits(counts) - 1e-9  # no symbol code beats the entropy
    assert nbits / n <= huffman.entropy_bits(counts) + 1     # Huffman stays within one bit of it


def test_decode_refuses_a_broken_stream():
    symbols = np.array([0, 1, 2, 2, 2, 1])
    lengths = huffman.code_lengths(huffman.counts_of(symbols))
    data, nbits = huffman.encode(symbols, lengths)
    with pytest.raises(ValueError, match="ends or breaks"):
        huffman.decode(data, nbits, len(symbols) + 1, lengths)
    with pytest.raises(ValueError, match="left after"):
        huffman.decode(data, nbits, len(symbols) - 1, lengths)
    with pytest.raises(ValueError, match="bits"):
        huffman.decode(data[:-1], nbits, len(symbols), lengths)
    with pytest.raises(ValueError, match="no code"):
        huffman.encode(np.array([5]), lengths)


def test_entropy():
    assert huffman.entropy_bits({0: 1, 1: 1}) == 1.0
    assert huffman.entropy_bits({3: 10}) == 0.0
    assert huffman.entropy_bits({0: 1, 1: 1, 2: 2}) == 1.5


def test_an_empty_stream_codes_to_nothing():
    symbols = np.zeros(0, np.int64)  # the indices or relative positions of a layer that pruning emptied
    counts = huffman.counts_of(symbols)
    assert counts == {} and huffman.code_lengths(counts) == {} and huffman.total_bits(counts, {}) == 0
    assert huffman.entropy_bits(counts) == 0.0 and huffman.entropy_bytes(symbols) == 0.0
    assert huffman.encode(symbols, {}) == (b"", 0)
    assert huffman.decode(b"", 0, 0, {}).tolist() == []
    assert huffman.bound_reading("fc1 indices", counts) == "fc1 indices: no symbol, nothing to code (0 bytes)."


def test_entropy_bytes_is_symbols_times_entropy():
    assert huffman.entropy_bytes(np.array([0, 1, 2, 2] * 4)) == 16 * 1.5 / 8


def test_bound_reading_sets_the_code_beside_the_entropy_and_says_where_the_floor_bites():
    assert huffman.bound_reading("worked example", {0: 10, 1: 45, 2: 30, 3: 15}) == (
        "worked example: 100 symbols, Huffman 1.80 bits a symbol (180 bits in all) beside an entropy of 1.78 (178 "
        "bits), 0.02 bits a symbol above it.")
    assert huffman.bound_reading("skewed", {0: 90, 1: 10}) == (
        "skewed: 100 symbols, Huffman 1.00 bits a symbol (100 bits in all) beside an entropy of 0.47 (47 bits), 0.53 "
        "bits a symbol above it; the entropy is under one bit a symbol, and a Huffman code spends at least one bit on "
        "every symbol: its floor bites here.")
