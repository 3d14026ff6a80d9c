"""Checks of notebook 07 (Deep Compression): the k-means weight sharing kmeans_share and the Huffman
code huffman_code.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.nn as nn

from . import answer_key, catalog, fixtures
from .core import CheckFailed, call, exercise_check, fail, passed

# --- the checks ----------------------------------------------------------------------------------

def _matches(got: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> bool:
    return all(torch.allclose(got[n], expected[n], atol=1e-5) for n in expected)


@exercise_check("kmeans_share")
def check_kmeans_share(kmeans_share: Callable[[nn.Module, int], dict]) -> None:
    """`kmeans_share(model, bits)` on a two-layer model with half its weights zero, at 2 and 3 bits: each
    weight's non-zeros replaced in place by their centroid (linear initialisation, k-means to convergence,
    one codebook per layer), the zeros and the biases unchanged, the codebooks returned by name. Then, at 2
    bits, the same model with its first weight all zero (a layer that pruning emptied): that layer left all
    zero with an empty codebook (or one of zeros only), the other shared as before."""
    __tracebackhide__ = True
    name = "kmeans_share"
    mistake = catalog.BY_NAME[name].mistake
    for bits in fixtures.SHARE_BITS:
        expected = answer_key.kmeans_share_expected(bits)
        what = f"kmeans_share(model, bits={bits})"
        model = fixtures.sharing_model()
        before = fixtures.snapshot(model)
        runs = []
        for seed in (0, 1):
            model_ = copy.deepcopy(model)
            torch.manual_seed(seed)
            codebooks = call(name, what, kmeans_share, model_, bits)
            runs.append((model_, codebooks))
        model, codebooks = runs[0]
        after = {n: p.detach() for n, p in model.named_parameters()}
        weights = {n: after[n] for n in expected["right"]}
        if all(torch.equal(after[n], before[n]) for n in weights):
            fail(name, f"{what}: {mistake('not_in_place')}")
        if any(not torch.equal(after[n], before[n]) for n in after if n not in weights):
            fail(name, f"{what}: {mistake('bias')}")
        if any(bool((weights[n][before[n] == 0] != 0).any()) for n in weights):
            fail(name, f"{what}: {mistake('zeros')}")
        other = {n: p.detach() for n, p in runs[1][0].named_parameters() if n in weights}
        if not _matches(weights, other):
            fail(name, f"{what}: {mistake('random_init')}")
        if not _matches(weights, expected["right"]):
            why = next((key for key in ("zeros_in_kmeans", "not_updated", "one_codebook", "k_bits")
                        if _matches(weights, expected[key])), "")
            fail(name, f"{what}: " + (mistake(why) if why else "the shared weights differ from linear-initialised "
                                      "k-means run to convergence, per layer, on the non-zeros"))
        if not isinstance(codebooks, dict) or set(codebooks) != set(weights):
            fail(name, f"{what} returned {type(codebooks).__name__}: {mistake('returns')}")
        for n, codebook in codebooks.items():
            codebook = torch.as_tensor(codebook).detach().reshape(-1).float()
            if codebook.numel() != 2 ** bits or not torch.allclose(codebook.sort().values, expected["codebooks"][n],
                                                                   atol=1e-5):
                fail(name, f"{what}: the codebook of {n} is {codebook.tolist()}; {mistake('returns')}")
    _check_emptied_layer(kmeans_share, name, mistake)
    passed("kmeans_share clusters each layer's non-zero weights into 2**bits linearly initialised centroids, "
           "zeros and biases untouched, an emptied layer left zero with an empty codebook")


def _check_emptied_layer(kmeans_share: Callable[[nn.Module, int], dict], name: str,
                         mistake: Callable[[str], str]) -> None:
    """kmeans_share on fixtures.emptied_sharing_model(): no crash, the emptied weight still all zero (no NaN)
    with an empty codebook or one of zeros only (`sharing.share_weights` keeps 2**bits zeros there, which no weight
    points at), the other weight shared as on its own, the biases unchanged."""
    __tracebackhide__ = True
    bits, empty = fixtures.SHARE_BITS[0], fixtures.EMPTIED
    expected = answer_key.kmeans_share_emptied_expected(bits)
    what = f"kmeans_share(model, bits={bits}) on a model whose {empty} is all zero (a layer that pruning emptied)"
    model = fixtures.emptied_sharing_model()
    before = fixtures.snapshot(model)
    try:
        codebooks = call(name, what, kmeans_share, model, bits)
    except CheckFailed as err:
        fail(name, f"{str(err).removeprefix(f'{name}: ').rstrip('.')}; {mistake('emptied')}")
    after = {n: p.detach() for n, p in model.named_parameters()}
    if bool(after[empty].any()):  # a NaN counts as non-zero too
        fail(name, f"{what}: {empty} is not all zero any more; {mistake('emptied')}")
    if any(not torch.equal(after[n], before[n]) for n in after if n not in expected["right"]):
        fail(name, f"{what}: {mistake('bias')}")
    if not _matches(after, expected["right"]):
        fail(name, f"{what}: the other layer's shared weights differ from those it gets when no layer is emptied: "
                   "share each layer on its own, skipping only the emptied one")
    if isinstance(codebooks, dict) and empty not in codebooks:
        fail(name, f"{what}: no codebook for {empty} in the dict returned; {mistake('emptied')}")
    if not isinstance(codebooks, dict) or set(codebooks) != set(expected["right"]):
        got = sorted(codebooks) if isinstance(codebooks, dict) else type(codebooks).__name__
        fail(name, f"{what} returned {got}: {mistake('returns')}")
    for n, codebook in codebooks.items():
        codebook = torch.as_tensor(codebook).detach().reshape(-1).float()
        if n == empty and bool(codebook.any()):  # empty, or zeros no weight points at (as share_weights keeps); NaN fails
            fail(name, f"{what}: the codebook of {n} is {codebook.tolist()}; {mistake('emptied')}")
        if n != empty and (codebook.numel() != 2 ** bits or not torch.allclose(codebook.sort().values,
                                                                               expected["codebooks"][n], atol=1e-5)):
            fail(name, f"{what}: the codebook of {n} is {codebook.tolist()}; {mistake('returns')}")


def _total(counts: dict[int, int], codes: dict) -> int:
    return sum(count * len(codes[symbol]) for symbol, count in counts.items() if count > 0)


@exercise_check("huffman_code")
def check_huffman_code(huffman_code: Callable[[dict[int, int]], dict[int, str]]) -> None:
    """`huffman_code(counts)` on five count tables (the textbook six symbols, one symbol, two, a skewed
    one, twenty with an unused symbol): a prefix-free code of '0'/'1' strings for every symbol that
    occurs, of optimal total length (Huffman's; ties may give other codes of the same total)."""
    __tracebackhide__ = True
    name = "huffman_code"
    mistake = catalog.BY_NAME[name].mistake
    for case, counts in enumerate(fixtures.HUFFMAN_COUNTS):
        given = dict(counts)
        what = f"huffman_code({counts if len(counts) < 7 else f'<{len(counts)} symbols>'})"
        codes = call(name, what, huffman_code, given)
        if given != counts:
            fail(name, mistake("changes"))
        if not isinstance(codes, dict):
            fail(name, f"{what} returned {type(codes).__name__}; {mistake('not_bits')}")
        used = [symbol for symbol, count in counts.items() if count > 0]
        if any(symbol not in codes for symbol in used):
            fail(name, f"{what}: {mistake('missing')} (no code for {[s for s in used if s not in codes][:3]})")
        if len(used) == 1 and codes[used[0]] == "":
            fail(name, f"{what}: {mistake('single')}")
        if any(not isinstance(codes[s], str) or not codes[s] or set(codes[s]) - {"0", "1"} for s in used):
            fail(name, f"{what}: {mistake('not_bits')}")
        ordered = sorted(codes[s] for s in used)
        clash = next(((a, b) for a, b in zip(ordered, ordered[1:]) if b.startswith(a)), None)
        if clash:
            fail(name, f"{what}: '{clash[0]}' starts '{clash[1]}': {mistake('not_prefix_free')}")
        optimal, got = answer_key.huffman_optimal_bits(case), _total(counts, codes)
        if got != optimal:
            fail(name, f"{what}: {got} bits in all, the optimum is {optimal}: {mistake('not_optimal')}")
    passed("huffman_code gives a prefix-free code of optimal total length, a one-bit code for a lone symbol")
