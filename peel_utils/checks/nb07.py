"""Checks of notebook 07 (Deep Compression): the k-means weight sharing kmeans_share and the Huffman
code huffman_code.

Until this notebook is merged into the workbook, its two catalog entries (`EXERCISES`) and its expected
values (the `answer_key.answer` functions below) live here and register themselves on import; NOTES_07.md
gives the text that moves them into catalog.EXERCISES and answer_key.py.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.nn as nn

from . import answer_key, catalog, fixtures
from .core import call, exercise_check, fail, passed

M = catalog.Mistake
EXERCISES = (
    catalog.Exercise("07", "kmeans_share", "k-means weight sharing `kmeans_share`", "check_kmeans_share",
                     "checks.check_kmeans_share(kmeans_share)",
                     ("peel_utils.sharing:kmeans_1d", "peel_utils.sharing:share_weights"), {
                         "zeros": M("zeros clustered (a pruned weight gets a centroid)",
                                    "a weight that was zero is not zero any more: the pruned weights stay zero and "
                                    "outside the clustering"),
                         "zeros_in_kmeans": M("zeros counted in the means",
                                              "the zeros stay zero but they pull the centroids: cluster only the "
                                              "non-zero weights"),
                         "random_init": M("random instead of linear initialisation",
                                          "two runs on the same model give different codebooks: initialise the "
                                          "centroids linearly between the layer's smallest and largest non-zero "
                                          "weight (torch.linspace), as Han et al."),
                         "not_updated": M("centroids never updated",
                                          "the codebook is still the linear initialisation: move each centroid to "
                                          "the mean of its weights and assign again, until the assignments no "
                                          "longer change"),
                         "one_codebook": M("one codebook for the whole model",
                                           "every layer shares one codebook: cluster each layer on its own (its "
                                           "weights have their own range)"),
                         "k_bits": M("bits centroids instead of 2**bits",
                                     "the codebook has `bits` values: b bits index 2**b centroids"),
                         "not_in_place": M("the model left unchanged",
                                           "the model's weights are unchanged: write each shared value back into the "
                                           "weight, in place"),
                         "bias": M("biases shared", "only the weights with more than one dimension are shared; "
                                                    "biases stay as they are"),
                         "returns": M("not returning the codebooks",
                                      "return a dict {parameter name: codebook tensor of 2**bits centroids}"),
                         "other": M("other values", "the shared weights differ from linear-initialised k-means run "
                                                    "to convergence, per layer, on the non-zeros"),
                     }),
    catalog.Exercise("07", "huffman_code", "Huffman code `huffman_code`", "check_huffman_code",
                     "checks.check_huffman_code(huffman_code)", ("peel_utils.huffman:code_lengths",), {
                         "not_prefix_free": M("a code that is the prefix of another",
                                              "one code is the start of another, so a stream cannot be cut into "
                                              "codes: read each code off the path from the root of the tree"),
                         "not_optimal": M("a prefix-free code longer than Huffman's",
                                          "the code is prefix-free but longer in total than the optimum: always merge "
                                          "the two rarest subtrees"),
                         "single": M("an empty code for a single symbol",
                                     "a lone symbol still needs a code of one bit ('0'), not an empty string"),
                         "missing": M("a symbol without a code", "every symbol with a non-zero count needs a code"),
                         "not_bits": M("codes that are not strings of '0' and '1'",
                                       "return a dict {symbol: code}, each code a non-empty string of '0' and '1'"),
                         "changes": M("changing the counts", "it changed the counts it was given; building a code "
                                                             "must only read them"),
                     }),
)
del M
for _exercise in EXERCISES:
    catalog.BY_NAME.setdefault(_exercise.name, _exercise)
    catalog.BY_CHECK.setdefault(_exercise.check, _exercise)

# --- fixed inputs --------------------------------------------------------------------------------

SHARE_BITS = (2, 3)
HUFFMAN_COUNTS = (
    {0: 5, 1: 9, 2: 12, 3: 13, 4: 16, 5: 45},   # the textbook case: 224 bits
    {7: 10},                                    # one symbol
    {3: 1, 9: 1},                               # two
    {0: 1, 1: 1, 2: 2, 3: 4, 4: 8, 5: 16, 6: 32, 7: 64, 8: 128},  # a skewed one: codes up to 8 bits
    {s: (s * 37) % 23 + 1 for s in range(20)} | {99: 0},  # twenty, and a symbol that never occurs
)


def sharing_model() -> nn.Sequential:
    """Two linear layers (10x12, 6x10) with about half of each weight zero, at fixed places."""
    model = fixtures.two_layer(seed=12, sizes=(12, 10, 6))
    gen = torch.Generator().manual_seed(13)
    with torch.no_grad():
        for param in (model[0].weight, model[2].weight):
            param.mul_(torch.rand(param.shape, generator=gen) > 0.5)
    return model


# --- expected values -----------------------------------------------------------------------------

def _kmeans(values: torch.Tensor, k: int, update: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Linear-initialised 1-D k-means of `values` (written out, for the mistakes' variants)."""
    centroids = torch.linspace(float(values.min()), float(values.max()), k)
    assignment = None
    for _ in range(100):
        new = (values[:, None] - centroids[None, :]).abs().argmin(dim=1)
        if assignment is not None and torch.equal(new, assignment):
            break
        assignment = new
        if update:
            for j in range(k):
                if (assignment == j).any():
                    centroids[j] = values[assignment == j].mean()
    return centroids, assignment


@answer_key.answer(cases=tuple((bits,) for bits in SHARE_BITS))
def kmeans_share_expected(bits: int) -> dict[str, dict[str, torch.Tensor]]:
    """The weights of sharing_model() after sharing at `bits`: 'right' (sharing.share_weights) and the
    mistakes 'zeros_in_kmeans', 'not_updated', 'one_codebook' and 'k_bits'; plus 'codebooks' (sorted)."""
    from .. import sharing
    model = sharing_model()
    shared = sharing.share_weights(model, bits)
    out = {"right": {n: layer.weight() for n, layer in shared.items()},
           "codebooks": {n: layer.codebook.sort().values for n, layer in shared.items()}}
    weights = {n: p.detach() for n, p in model.named_parameters() if p.dim() > 1}
    variants = {"zeros_in_kmeans": {}, "not_updated": {}, "k_bits": {}}
    for n, w in weights.items():
        mask = w != 0
        for key, values, k, update in (("zeros_in_kmeans", w.reshape(-1), 2 ** bits, True),
                                       ("not_updated", w[mask], 2 ** bits, False), ("k_bits", w[mask], bits, True)):
            centroids, assignment = _kmeans(values, k, update)
            shared_values = centroids[assignment]
            variants[key][n] = torch.zeros_like(w).masked_scatter_(
                mask, shared_values.reshape(w.shape)[mask] if key == "zeros_in_kmeans" else shared_values)
    every = torch.cat([w[w != 0] for w in weights.values()])
    centroids, assignment = _kmeans(every, 2 ** bits)
    parts = centroids[assignment].split([int((w != 0).sum()) for w in weights.values()])
    variants["one_codebook"] = {n: torch.zeros_like(w).masked_scatter_(w != 0, part)
                                for (n, w), part in zip(weights.items(), parts)}
    return {**out, **variants}


@answer_key.answer(cases=tuple((i,) for i in range(len(HUFFMAN_COUNTS))))
def huffman_optimal_bits(case: int) -> int:
    """The total coded bits of HUFFMAN_COUNTS[case] under an optimal prefix-free code."""
    from .. import huffman
    counts = HUFFMAN_COUNTS[case]
    return huffman.total_bits(counts, huffman.code_lengths(counts))


# --- the checks ----------------------------------------------------------------------------------

def _matches(got: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> bool:
    return all(torch.allclose(got[n], expected[n], atol=1e-5) for n in expected)


@exercise_check("kmeans_share")
def check_kmeans_share(kmeans_share: Callable[[nn.Module, int], dict]) -> None:
    """`kmeans_share(model, bits)` on a two-layer model with half its weights zero, at 2 and 3 bits: each
    weight's non-zeros replaced in place by their centroid (linear initialisation, k-means to convergence,
    one codebook per layer), the zeros and the biases unchanged, the codebooks returned by name."""
    __tracebackhide__ = True
    name = "kmeans_share"
    mistake = catalog.BY_NAME[name].mistake
    for bits in SHARE_BITS:
        expected = kmeans_share_expected(bits)
        what = f"kmeans_share(model, bits={bits})"
        model = sharing_model()
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
                        if _matches(weights, expected[key])), "other")
            fail(name, f"{what}: {mistake(why)}")
        if not isinstance(codebooks, dict) or set(codebooks) != set(weights):
            fail(name, f"{what} returned {type(codebooks).__name__}: {mistake('returns')}")
        for n, codebook in codebooks.items():
            codebook = torch.as_tensor(codebook).detach().reshape(-1).float()
            if codebook.numel() != 2 ** bits or not torch.allclose(codebook.sort().values, expected["codebooks"][n],
                                                                   atol=1e-5):
                fail(name, f"{what}: the codebook of {n} is {codebook.tolist()}; {mistake('returns')}")
    passed("kmeans_share clusters each layer's non-zero weights into 2**bits linearly initialised centroids, "
           "zeros and biases untouched")


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
    for case, counts in enumerate(HUFFMAN_COUNTS):
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
        optimal, got = huffman_optimal_bits(case), _total(counts, codes)
        if got != optimal:
            fail(name, f"{what}: {got} bits in all, the optimum is {optimal}: {mistake('not_optimal')}")
    passed("huffman_code gives a prefix-free code of optimal total length, a one-bit code for a lone symbol")
