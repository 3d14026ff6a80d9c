import copy
import math

import pytest
import torch
import torch.nn.utils.prune as torch_prune

from peel_utils import data, models, prune

SOURCE_DICT = {"conv1.weight": 0.85, "conv2.weight": 0.8, "fc1.weight": 0.75,
               "fc2.weight": 0.7, "fc3.weight": 0.8}


def test_count_parameters_lenet():
    assert prune.count_parameters(models.LeNet()) == 44426


def test_calc_mask_known_tensor():
    w = torch.tensor([[0.5, -0.1, 0.3], [-0.7, 0.2, -0.05]])
    mask = calc = prune.calc_mask(w, 0.5)  # 3 smallest |w|: 0.05, 0.1, 0.2
    assert calc.dtype == torch.bool and mask.shape == w.shape
    assert mask.tolist() == [[True, False, True], [True, False, False]]


@pytest.mark.parametrize("sparsity, zeros", [(0.0, 0), (0.25, 16), (0.5, 32), (1.0, 64)])
def test_calc_mask_zero_count(seeded, sparsity, zeros):
    mask = prune.calc_mask(torch.randn(8, 8), sparsity)
    assert int((~mask).sum()) == zeros


def test_calc_mask_tiny_sparsity_rounds_to_no_zeros():
    assert prune.calc_mask(torch.randn(3), 0.1).all()


@pytest.mark.parametrize("bad", [-0.1, 1.01, math.nan, 2])
def test_calc_mask_rejects_bad_sparsity(bad):
    with pytest.raises(ValueError, match="sparsity"):
        prune.calc_mask(torch.randn(4), bad)


def test_source_dict_gives_source_sparsity(seeded):
    model = models.LeNet()
    assert prune.get_model_sparsity(model) == 0.0
    prune.SparsePruner(model, SOURCE_DICT).prune(model)
    assert round(prune.get_model_sparsity(model), 4) == 0.7387


def test_sparse_pruner_unknown_and_missing_names():
    model = models.LeNet()
    with pytest.raises(ValueError, match=r"unknown names \['fc4.weight'\]"):
        prune.SparsePruner(model, {**SOURCE_DICT, "fc4.weight": 0.5})
    partial = dict(SOURCE_DICT)
    del partial["fc2.weight"]
    with pytest.raises(ValueError, match=r"missing names \['fc2.weight'\]"):
        prune.SparsePruner(model, partial)


def test_sparse_pruner_bad_sparsity_names_layer():
    with pytest.raises(ValueError, match="fc1.weight"):
        prune.SparsePruner(models.LeNet(), {**SOURCE_DICT, "fc1.weight": -1})


def test_sparse_pruner_prune_other_architecture():
    pruner = prune.SparsePruner(models.LeNet(), SOURCE_DICT)
    with pytest.raises(ValueError, match="no parameters named"):
        pruner.prune(torch.nn.Sequential(torch.nn.Linear(4, 2)))


def test_global_pruner_matches_torch_global_unstructured(seeded):
    model = models.LeNet()
    reference = copy.deepcopy(model)
    targets = [(m, "weight") for m in reference.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    torch_prune.global_unstructured(targets, pruning_method=torch_prune.L1Unstructured, amount=0.6)
    ours = prune.GlobalPruner(model, 0.6)
    for name, mask in ours.masks.items():
        module = dict(reference.named_modules())[name.rsplit(".", 1)[0]]
        assert torch.equal(mask, module.weight_mask.bool()), name


def test_global_pruner_total_zero_count(seeded):
    model = models.LeNet()
    pruner = prune.GlobalPruner(model, 0.9)
    total = sum(m.numel() for m in pruner.masks.values())
    assert sum(int((~m).sum()) for m in pruner.masks.values()) == round(total * 0.9)


def test_layer_sparsity_table(seeded):
    model = prune.SparsePruner(models.LeNet(), SOURCE_DICT).prune(models.LeNet())
    table = prune.layer_sparsity_table(model)
    assert list(table["layer"]) == list(SOURCE_DICT)
    assert table.loc[table.layer == "fc1.weight", "nonzero"].item() == 7680


def test_sensitivity_scan_and_choice(seeded, mnist5k):
    loader = data.make_loaders(mnist5k, 256).val
    model = models.LeNet()
    scan = prune.sensitivity_scan(model, loader, [0.0, 1.0], ["fc3.weight"])
    assert len(scan) == 2
    assert scan.iloc[1]["accuracy"] == pytest.approx(10.0)  # all-zero last layer: every logit = bias
    chosen = prune.choose_sparsity_dict(scan.assign(accuracy=[90.0, 50.0]), 90.0, 1.0)
    assert chosen == {"fc3.weight": 0.0}


def test_accuracy_at_global_sparsity_leaves_model(seeded, mnist5k):
    loader = data.make_loaders(mnist5k, 256).val
    model = models.LeNet()
    before = copy.deepcopy(model.state_dict())
    result = prune.accuracy_at_global_sparsity(model, loader, 0.5)
    assert result["weight_sparsity"] == 0.5
    assert 0.49 < result["model_sparsity"] < 0.5  # biases stay dense
    assert 0.0 <= result["accuracy"] <= 100.0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
