"""peel_utils.sharing: k-means per layer with linear initialisation, zeros kept, centroid fine-tuning."""

import copy

import pandas as pd
import pytest
import torch
import torch.nn as nn

from peel_utils import sharing


def pruned_mlp(seed=0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(20, 16), nn.ReLU(), nn.Linear(16, 4))
    with torch.no_grad():
        model[0].weight.mul_(torch.rand(16, 20) > 0.6)
        model[2].weight.mul_(torch.rand(4, 16) > 0.5)
    return model


def test_kmeans_1d_linear_init_and_convergence():
    values = torch.tensor([0.0, 0.1, 0.2, 5.0, 5.2, 9.8, 10.0])
    # init 0 and 10; round 1: 5.0 lies half-way and goes lower, means 1.325 and 8.33; round 2: it moves up
    codebook, indices = sharing.kmeans_1d(values, 1)
    assert torch.allclose(codebook, torch.tensor([0.1, 7.5]))
    assert indices.tolist() == [0, 0, 0, 1, 1, 1, 1] and indices.dtype == torch.uint8
    values = torch.tensor([0.0, 0.1, 0.2, 4.9, 5.2, 9.8, 10.0])  # init 0, 3.33, 6.67, 10
    codebook, indices = sharing.kmeans_1d(values, 2)
    assert torch.allclose(codebook, torch.tensor([0.1, 4.9, 5.2, 9.9]))
    assert indices.tolist() == [0, 0, 0, 1, 2, 3, 3]
    codebook, _ = sharing.kmeans_1d(values, 2, max_iterations=1)  # one assignment, one update
    assert torch.allclose(codebook, torch.tensor([0.1, 4.9, 5.2, 9.9]))


def test_kmeans_keeps_an_empty_centroid_where_it_is():
    codebook, indices = sharing.kmeans_1d(torch.tensor([0.0, 0.1, 10.0]), 2)  # init 0, 3.33, 6.67, 10
    assert torch.allclose(codebook, torch.tensor([0.05, 10 / 3, 20 / 3, 10.0]))
    assert indices.tolist() == [0, 0, 3]


def test_share_weights_per_layer_zeros_stay_zero():
    model = pruned_mlp()
    before = copy.deepcopy(model.state_dict())
    shared = sharing.share_weights(model, {"0.weight": 3, "2.weight": 2})
    assert set(shared) == {"0.weight", "2.weight"}
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # only read
    for name, layer in shared.items():
        weight = before[name]
        assert torch.equal(layer.mask, weight != 0)
        assert layer.codebook.numel() == 2 ** layer.bits and layer.indices.numel() == int((weight != 0).sum())
        codebook, _ = sharing.kmeans_1d(weight[weight != 0], layer.bits)
        assert torch.equal(layer.codebook, codebook)  # its own codebook, from its own weights
        rebuilt = layer.weight()
        assert torch.equal(rebuilt == 0, weight == 0)
        assert (rebuilt - weight).abs().max() < (weight.max() - weight.min()) / 2 ** layer.bits
    assert not torch.equal(shared["0.weight"].codebook[:4], shared["2.weight"].codebook)
    sharing.apply_shared(model, shared)
    assert torch.equal(model[0].weight.detach(), shared["0.weight"].weight())
    assert torch.equal(model[0].bias.detach(), before["0.bias"])


def test_a_layer_emptied_by_pruning_has_nothing_to_share():
    codebook, indices = sharing.kmeans_1d(torch.zeros(0), 3)  # no values: no index, 2**bits zeros no index points at
    assert codebook.tolist() == [0.0] * 8 and indices.dtype == torch.uint8 and indices.numel() == 0
    model = pruned_mlp()
    with torch.no_grad():
        model[0].weight.zero_()  # the first layer pruned to nothing
    shared = sharing.share_weights(model, 2)
    empty = shared["0.weight"]
    assert not bool(empty.mask.any()) and empty.indices.numel() == 0 and empty.codebook.tolist() == [0.0] * 4
    assert torch.equal(empty.weight(), torch.zeros(16, 20))
    assert shared["2.weight"].indices.numel() == int((model[2].weight != 0).sum())  # the other layer shared as usual
    sharing.apply_shared(model, shared)
    gen = torch.Generator().manual_seed(2)
    batches = [(torch.randn(8, 20, generator=gen), torch.randint(0, 4, (8,), generator=gen))] * 3
    tuned, losses = sharing.finetune_centroids(model, shared, batches, lr=0.05)
    assert len(losses) == 3 and torch.equal(model[0].weight.detach(), torch.zeros(16, 20))  # still empty
    assert tuned["0.weight"].codebook.tolist() == [0.0] * 4  # no weight, no gradient: the codebook stays
    assert not torch.equal(tuned["2.weight"].codebook, shared["2.weight"].codebook)


@pytest.mark.parametrize("bits", [0, 9, 2.0, True, "4"])
def test_bits_outside_1_to_8_is_a_value_error(bits):
    with pytest.raises(ValueError, match=f"bits must be an integer from 1 to 8.*{bits!r}"):
        sharing.share_weights(pruned_mlp(), bits)


def test_model_without_a_pruned_layer_is_a_value_error():
    dense = nn.Sequential(nn.Linear(4, 3))
    with pytest.raises(ValueError, match="no pruned layer.*allow_dense=True"):
        sharing.share_weights(dense, 4)
    shared = sharing.share_weights(dense, 4, allow_dense=True)
    assert bool(shared["0.weight"].mask.all())


def test_finetune_centroids_moves_only_the_codebooks():
    model = pruned_mlp()
    shared = sharing.share_weights(model, 2)
    sharing.apply_shared(model, shared)
    bias = model[0].bias.detach().clone()
    gen = torch.Generator().manual_seed(1)
    inputs, targets = torch.randn(64, 20, generator=gen), torch.randint(0, 4, (64,), generator=gen)
    with torch.no_grad():
        loss_before = float(nn.functional.cross_entropy(model(inputs), targets))
    batches = [(inputs, targets)] * 10  # one batch, ten steps: the training loss must fall
    tuned, losses = sharing.finetune_centroids(model, shared, batches, lr=0.05, steps=8)
    assert len(losses) == 8 and losses[0] == pytest.approx(loss_before)
    with torch.no_grad():
        assert float(nn.functional.cross_entropy(model(inputs), targets)) < loss_before
    assert torch.equal(model[0].bias.detach(), bias)
    for name, layer in tuned.items():
        assert torch.equal(layer.mask, shared[name].mask) and torch.equal(layer.indices, shared[name].indices)
        assert not torch.equal(layer.codebook, shared[name].codebook)
        assert torch.equal(model.get_parameter(name).detach(), layer.weight())


def bits_table(accuracies):
    return pd.DataFrame({"bits": list(accuracies), "val_accuracy": list(accuracies.values())})


def test_choose_bits_takes_the_smallest_width_within_max_drop_of_the_unshared_model():
    table = bits_table({8: 0.964, 1: 0.296, 4: 0.964, 2: 0.914, 3: 0.958})  # in any order
    assert sharing.choose_bits(table, 0.964, 1.0) == 3
    assert sharing.choose_bits(table, 0.964, 0.5) == 4
    assert sharing.choose_bits(table, 0.964, 6.0) == 2
    assert sharing.choose_bits(bits_table({2: 0.956, 3: 0.962}), 0.966, 1.0) == 2  # exactly 1 point below counts
    assert sharing.choose_bits(bits_table({2: 0.9559, 3: 0.962}), 0.966, 1.0) == 3


def test_choose_bits_without_a_close_width_takes_the_best_on_validation():
    assert sharing.choose_bits(bits_table({1: 0.5, 2: 0.8, 4: 0.9, 8: 0.9}), 0.99, 1.0) == 4


def test_choose_bits_refuses_a_bad_bound_and_an_empty_sweep():
    with pytest.raises(ValueError, match="max_drop"):
        sharing.choose_bits(bits_table({3: 0.9}), 0.9, -1.0)
    with pytest.raises(ValueError, match="empty"):
        sharing.choose_bits(bits_table({}), 0.9, 1.0)


def test_bits_reading_says_which_width_and_why():
    table = bits_table({1: 0.86, 2: 0.946, 3: 0.962, 4: 0.956})
    assert sharing.bits_reading(table, 0.966, 1.0, 500, "LeNet") == (
        "LeNet: 3 bits, the smallest width whose validation accuracy (0.962, 0.4 points below) is within 1 point of "
        "the unshared model's (0.966; 1 point = 5 validation images); 2 bits: 0.946, 2.0 points below.")
    assert sharing.bits_reading(table, 0.99, 2.0, 524) == (
        "the model: no width is within 2 points of the unshared model's validation accuracy (0.990; 1 point = 5.24 "
        "validation images), so 3 bits, the best on validation (0.962, 2.8 points below); 2 bits: 0.946, 4.4 points below.")
    assert sharing.bits_reading(bits_table({1: 0.96}), 0.96, 1.0, 100) == (
        "the model: 1 bit, the smallest width whose validation accuracy (0.960, level with it) is within 1 point of the "
        "unshared model's (0.960; 1 point = 1 validation image).")
    assert "(0.970, 0.6 points above)" in sharing.bits_reading(bits_table({2: 0.97}), 0.964, 1.0, 500)
