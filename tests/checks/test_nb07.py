"""peel_utils.checks.nb07: both checks pass on notebook 07's own solutions and fail, with the message of
their mistake table, on typical wrong answers and on answers that call the workbook's implementation."""

import functools
import re
from pathlib import Path

import nbformat
import pytest
import torch
import torch.nn as nn

from peel_utils import huffman, sharing
from peel_utils.checks import CheckFailed, answer_key, catalog, fixtures, nb07

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "07_deep_compression.ipynb"


@functools.cache
def solutions() -> dict:
    """The code cells of notebook 07 that hold its exercises, executed."""
    namespace = {"torch": torch, "nn": nn}
    for cell in nbformat.read(NOTEBOOK, as_version=4).cells:
        if cell.cell_type == "code" and "### BEGIN SOLUTION" in cell.source:
            exec(compile(cell.source, str(NOTEBOOK), "exec"), namespace)
    return namespace


def fails_with(exercise: str, key: str):
    return pytest.raises(CheckFailed, match=re.escape(catalog.BY_NAME[exercise].mistake(key)))


# --- kmeans_share ----------------------------------------------------------------------------------

def test_kmeans_share_passes_on_solution(capsys):
    nb07.check_kmeans_share(solutions()["kmeans_share"])
    assert "✓ passed: kmeans_share" in capsys.readouterr().out


def reference_share(model, bits):
    """A right answer through a route of its own: scikit-learn-free, sharing's per-value argmin."""
    codebooks = {}
    for name, param in model.named_parameters():
        if param.dim() > 1:
            mask = param != 0
            if not mask.any():  # emptied by pruning: nothing to share
                codebooks[name] = torch.tensor([])
                continue
            centroids, assignment = answer_key._kmeans(param.detach()[mask], 2 ** bits)
            with torch.no_grad():
                param[mask] = centroids[assignment]
            codebooks[name] = centroids
    return codebooks


def test_kmeans_share_passes_on_another_right_answer(capsys):
    nb07.check_kmeans_share(reference_share)
    assert "✓ passed" in capsys.readouterr().out


def clusters_zeros(model, bits):
    for param in model.parameters():
        if param.dim() > 1:
            centroids, assignment = answer_key._kmeans(param.detach().reshape(-1), 2 ** bits)
            with torch.no_grad():
                param.copy_(centroids[assignment].reshape(param.shape))
    return {}


def zeros_in_means(model, bits):
    for param in model.parameters():
        if param.dim() > 1:
            mask = param != 0
            centroids, assignment = answer_key._kmeans(param.detach().reshape(-1), 2 ** bits)
            with torch.no_grad():
                param.copy_(centroids[assignment].reshape(param.shape) * mask)
    return {}


def random_init(model, bits):
    for param in model.parameters():
        if param.dim() > 1:
            mask = param != 0
            values = param.detach()[mask]
            centroids = values[torch.randperm(len(values))[:2 ** bits]].clone()
            for _ in range(50):
                assignment = (values[:, None] - centroids).abs().argmin(1)
                for j in range(len(centroids)):
                    if (assignment == j).any():
                        centroids[j] = values[assignment == j].mean()
            with torch.no_grad():
                param[mask] = centroids[assignment]
    return {}


def never_updated(model, bits):
    for param in model.parameters():
        if param.dim() > 1:
            mask = param != 0
            centroids, assignment = answer_key._kmeans(param.detach()[mask], 2 ** bits, update=False)
            with torch.no_grad():
                param[mask] = centroids[assignment]
    return {}


def one_codebook(model, bits):
    weights = [p for p in model.parameters() if p.dim() > 1]
    every = torch.cat([w.detach()[w != 0] for w in weights])
    centroids, _ = answer_key._kmeans(every, 2 ** bits)
    for w in weights:
        mask = w != 0
        with torch.no_grad():
            w[mask] = centroids[(w.detach()[mask][:, None] - centroids).abs().argmin(1)]
    return {}


def k_bits(model, bits):
    for param in model.parameters():
        if param.dim() > 1:
            mask = param != 0
            centroids, assignment = answer_key._kmeans(param.detach()[mask], bits)
            with torch.no_grad():
                param[mask] = centroids[assignment]
    return {}


def one_round(model, bits):
    """Stops after one update: neither the initialisation nor the converged centroids."""
    for param in model.parameters():
        if param.dim() > 1:
            mask = param != 0
            values = param.detach()[mask]
            centroids = torch.linspace(float(values.min()), float(values.max()), 2 ** bits)
            assignment = (values[:, None] - centroids).abs().argmin(1)
            centroids = torch.stack([values[assignment == j].mean() if (assignment == j).any() else centroids[j]
                                     for j in range(len(centroids))])
            assignment = (values[:, None] - centroids).abs().argmin(1)
            with torch.no_grad():
                param[mask] = centroids[assignment]
    return {}


def crashes_on_emptied(model, bits):
    """Right, except that a layer with no non-zero weight crashes it (the min of an empty tensor)."""
    codebooks = {}
    for name, param in model.named_parameters():
        if param.dim() > 1:
            mask = param != 0
            centroids, assignment = answer_key._kmeans(param.detach()[mask], 2 ** bits)
            with torch.no_grad():
                param[mask] = centroids[assignment]
            codebooks[name] = centroids
    return codebooks


def emptied_as(codebook=None, skip=False, weight=None):
    """Right, except for an emptied layer: `codebook(bits)` as its codebook, or none with `skip`, and `weight`
    written into it."""
    def answer(model, bits):
        emptied = [n for n, p in model.named_parameters() if p.dim() > 1 and not p.any()]
        codebooks = reference_share(model, bits)
        for name in emptied:
            if skip:
                del codebooks[name]
            if codebook is not None:
                codebooks[name] = codebook(bits)
            if weight is not None:
                with torch.no_grad():
                    model.get_parameter(name).fill_(weight)
        return codebooks
    return answer


def biases_too(model, bits):
    codebooks = reference_share(model, bits)
    with torch.no_grad():
        model[0].bias.zero_()
    return codebooks


@pytest.mark.parametrize("answer, key", [
    (clusters_zeros, "zeros"), (zeros_in_means, "zeros_in_kmeans"), (random_init, "random_init"),
    (never_updated, "not_updated"), (one_codebook, "one_codebook"), (k_bits, "k_bits"),
    (lambda model, bits: {}, "not_in_place"), (biases_too, "bias"),
    (lambda model, bits: reference_share(model, bits) and None, "returns"), (crashes_on_emptied, "emptied"),
])
def test_kmeans_share_names_each_mistake(answer, key):
    with fails_with("kmeans_share", key):
        nb07.check_kmeans_share(answer)


@pytest.mark.parametrize("answer, shown", [
    (crashes_on_emptied, "raised RuntimeError"),
    (emptied_as(codebook=lambda bits: torch.tensor([0.0, 0.5])), "the codebook of 0.weight is [0.0, 0.5]"),
    (emptied_as(codebook=lambda bits: torch.full((2 ** bits,), float("nan"))), "the codebook of 0.weight is [nan"),
    (emptied_as(skip=True), "no codebook for 0.weight"),
    (emptied_as(weight=float("nan")), "0.weight is not all zero any more"),
])
def test_kmeans_share_names_an_emptied_layer_mishandled(answer, shown):
    """Each answer is right on the model with no emptied layer: only the emptied-layer case catches it."""
    with pytest.raises(CheckFailed) as caught:
        nb07.check_kmeans_share(answer)
    message = str(caught.value)
    assert "on a model whose 0.weight is all zero (a layer that pruning emptied)" in message
    assert shown in message and catalog.BY_NAME["kmeans_share"].mistake("emptied") in message


def test_kmeans_share_says_what_right_looks_like_for_another_wrong_answer():
    with pytest.raises(CheckFailed, match="differ from linear-initialised k-means run to convergence"):
        nb07.check_kmeans_share(one_round)


def test_kmeans_share_blocks_the_package():
    def delegates(model, bits):
        shared = sharing.share_weights(model, bits)
        sharing.apply_shared(model, shared)
        return {n: layer.codebook for n, layer in shared.items()}

    with pytest.raises(CheckFailed, match="workbook's own implementation.*peel_utils.sharing"):
        nb07.check_kmeans_share(delegates)
    assert sharing.kmeans_1d(torch.tensor([1.0, 2.0]), 1)[0].tolist() == [1.0, 2.0]  # unblocked again


# --- huffman_code ----------------------------------------------------------------------------------

def test_huffman_code_passes_on_solution(capsys):
    nb07.check_huffman_code(solutions()["huffman_code"])
    assert "✓ passed: huffman_code" in capsys.readouterr().out


def fixed_length(counts):
    used = [s for s, c in counts.items() if c > 0]
    width = max(1, (len(used) - 1).bit_length())
    return {s: format(i, f"0{width}b") for i, s in enumerate(used)}


def not_prefix_free(counts):
    return {s: "0" * (i + 1) for i, s in enumerate(counts)}


def empty_single(counts):
    return {s: "" for s in counts} if len(counts) == 1 else solutions()["huffman_code"](counts)


def drops_one(counts):
    codes = solutions()["huffman_code"](counts)
    codes.pop(next(iter(codes)))
    return codes


def changes(counts):
    codes = solutions()["huffman_code"](counts)
    counts.clear()
    return codes


@pytest.mark.parametrize("answer, key", [
    (fixed_length, "not_optimal"), (not_prefix_free, "not_prefix_free"), (empty_single, "single"),
    (drops_one, "missing"), (changes, "changes"),
    (lambda counts: {s: [0, 1] for s in counts}, "not_bits"),
])
def test_huffman_code_names_each_mistake(answer, key):
    with fails_with("huffman_code", key):
        nb07.check_huffman_code(answer)


def test_huffman_code_blocks_the_package():
    def delegates(counts):
        codes = huffman.canonical_codes(huffman.code_lengths(counts))
        return {s: format(code, f"0{length}b") for s, (code, length) in codes.items()}

    with pytest.raises(CheckFailed, match="peel_utils.huffman.code_lengths"):
        nb07.check_huffman_code(delegates)


def test_expected_values_hold_for_the_textbook_case():
    assert answer_key.huffman_optimal_bits(0) == 224  # 5, 9, 12, 13, 16, 45: lengths 4, 4, 3, 3, 3, 1
    right = answer_key.kmeans_share_expected(2)["right"]
    model = fixtures.sharing_model()
    for name, weight in right.items():
        original = model.get_parameter(name).detach()
        assert torch.equal(weight == 0, original == 0)
        assert len(weight[weight != 0].unique()) <= 4


def test_expected_values_of_the_emptied_case():
    expected = answer_key.kmeans_share_emptied_expected(2)
    model = fixtures.emptied_sharing_model()
    assert fixtures.EMPTIED == "0.weight" and not bool(model[0].weight.any()) and bool(model[2].weight.any())
    assert set(expected["right"]) == set(expected["codebooks"]) == {"0.weight", "2.weight"}
    assert torch.equal(expected["right"]["0.weight"], torch.zeros(10, 12))  # still all zero
    assert expected["codebooks"]["0.weight"].shape == (0,)                   # an empty codebook
    whole = answer_key.kmeans_share_expected(2)  # the other layer: as when no layer is emptied
    assert torch.equal(expected["right"]["2.weight"], whole["right"]["2.weight"])
    assert torch.equal(expected["codebooks"]["2.weight"], whole["codebooks"]["2.weight"])
    shared = expected["right"]["2.weight"]
    assert torch.equal(shared == 0, model[2].weight.detach() == 0)
    assert len(shared[shared != 0].unique()) == 4
    assert set(shared[shared != 0].unique().tolist()) == set(expected["codebooks"]["2.weight"].tolist())
    # the package keeps 2**bits unused zeros for an emptied layer; the exercise asks for an empty codebook
    assert sharing.share_weights(model, 2)["0.weight"].codebook.tolist() == [0.0] * 4


def test_kmeans_share_accepts_the_packages_zero_codebook_for_an_emptied_layer():
    """share_weights keeps 2**bits zeros for an emptied layer, which no weight points at: as good as an empty one."""
    nb07.check_kmeans_share(emptied_as(codebook=lambda bits: torch.zeros(2 ** bits)))


def test_the_solutions_handle_a_layer_emptied_by_pruning():
    model = fixtures.sharing_model()
    first = next(name for name, param in model.named_parameters() if param.dim() > 1)
    with torch.no_grad():
        model.get_parameter(first).zero_()
    codebooks = solutions()["kmeans_share"](model, 2)
    assert codebooks[first].numel() == 0 and not bool(model.get_parameter(first).any())  # nothing to share, still zero
    assert all(codebook.numel() == 4 for name, codebook in codebooks.items() if name != first)
    assert solutions()["huffman_code"]({}) == {} and solutions()["huffman_code"]({3: 0}) == {}  # no symbol, no code
