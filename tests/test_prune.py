import copy
import math

import pandas as pd
import pytest
import torch
import torch.nn.utils.prune as torch_prune

from peel_utils import data, models, prune, sweep, train

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


@pytest.mark.parametrize("bad", [None, "0.5", True])
def test_calc_mask_names_a_sparsity_that_is_not_a_number(bad):
    with pytest.raises(TypeError, match=rf"sparsity must be a number in \[0, 1\], not {bad!r}"):
        prune.calc_mask(torch.randn(4), bad)


def test_calc_mask_takes_a_one_element_tensor_sparsity():
    assert int((~prune.calc_mask(torch.arange(1.0, 5.0), torch.tensor(0.5))).sum()) == 2


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
    scan = sweep.sensitivity_scan(model, loader, [0.0, 1.0], ["fc3.weight"])
    assert len(scan) == 2
    assert scan.iloc[1]["accuracy"] == pytest.approx(0.1)  # all-zero last layer: every logit = bias (a fraction)
    chosen = prune.choose_sparsity_dict(scan.assign(accuracy=[0.9, 0.5]), 0.9, 1.0)
    assert chosen == {"fc3.weight": 0.0}


SCAN = pd.DataFrame({"layer": ["fc3.weight"] * 3, "sparsity": [0.0, 0.5, 0.9],  # accuracies are fractions
                     "accuracy": [0.9, 0.895, 0.8]})


def test_choose_sparsity_dict_keeps_the_largest_sparsity_within_max_drop():
    assert prune.choose_sparsity_dict(SCAN, 0.9, 0.5) == {"fc3.weight": 0.5}  # a drop of exactly 0.5 points passes
    assert prune.choose_sparsity_dict(SCAN, 0.9, 0.4) == {"fc3.weight": 0.0}
    assert prune.choose_sparsity_dict(SCAN, 0.9, 0.0) == {"fc3.weight": 0.0}
    assert prune.choose_sparsity_dict(SCAN, 0.9, 10.0) == {"fc3.weight": 0.9}


@pytest.mark.parametrize("bad, error, expected", [
    (None, TypeError, "max_drop must be a number of percentage points in \\[0, 100\\).*not None"),
    ("1.0", TypeError, "max_drop must be a number.*not '1.0'"),
    (-1, ValueError, "max_drop is in percentage points, in \\[0, 100\\).*not -1.0"),
    (math.nan, ValueError, "max_drop is in percentage points.*not nan"),
    (math.inf, ValueError, "max_drop is in percentage points.*not inf"),
    (100, ValueError, "max_drop is in percentage points.*not 100.0"),
])
def test_choose_sparsity_dict_refuses_a_bad_max_drop(bad, error, expected):
    with pytest.raises(error, match=expected):
        prune.choose_sparsity_dict(SCAN, 0.9, bad)


@pytest.mark.parametrize("bad, error", [(None, TypeError), (math.nan, ValueError), (90.0, ValueError)])  # 90.0: percent
def test_choose_sparsity_dict_refuses_a_bad_dense_accuracy(bad, error):
    with pytest.raises(error, match="dense_accuracy"):
        prune.choose_sparsity_dict(SCAN, bad, 1.0)


def test_accuracy_at_global_sparsity_leaves_model(seeded, mnist5k):
    loader = data.make_loaders(mnist5k, 256).val
    model = models.LeNet()
    before = copy.deepcopy(model.state_dict())
    result = sweep.accuracy_at_global_sparsity(model, loader, 0.5)
    assert result["weight_sparsity"] == 0.5
    assert 0.49 < result["model_sparsity"] < 0.5  # biases stay dense
    expected = train.evaluate(prune.GlobalPruner(model, 0.5).prune(copy.deepcopy(model)), loader, progress=False)
    assert result["accuracy"] == expected  # the pruned copy's accuracy, a fraction
    assert 0.0 <= expected <= 1.0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_cubic_sparsity_follows_zhu_and_gupta():
    assert prune.cubic_sparsity(0, 10, 0.9) == 0.0
    assert prune.cubic_sparsity(5, 10, 0.9) == pytest.approx(0.9 - 0.9 * 0.5 ** 3)  # 0.7875: fast at first
    assert prune.cubic_sparsity(10, 10, 0.9) == pytest.approx(0.9)
    assert prune.cubic_sparsity(25, 10, 0.9, initial=0.5) == pytest.approx(0.9)  # held after the ramp
    with pytest.raises(ValueError, match="ramp_steps"):
        prune.cubic_sparsity(1, 0, 0.9)
    with pytest.raises(ValueError, match="sparsity"):
        prune.cubic_sparsity(1, 10, 1.5)


def test_gradual_pruner_raises_sparsity_on_schedule_and_keeps_pruned_weights_pruned():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(20, 10), torch.nn.ReLU(), torch.nn.Linear(10, 5))  # 250 weights
    pruner = prune.GradualPruner(model, 0.8, ramp_steps=4, every=2)
    sparsities, zeros_before = [], None
    for step in range(1, 7):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.01)  # an "optimizer step" that would revive pruned weights
        pruner.prune(model)
        zeros = torch.cat([(p == 0).flatten() for p in prune.prunable_parameters(model).values()])
        if zeros_before is not None:
            assert bool((zeros | ~zeros_before).all())  # once pruned, always pruned
        zeros_before = zeros
        sparsities.append(round(zeros.float().mean().item(), 3))
    # steps 1 and 3 only re-apply; step 2 prunes to 0.7; step 4 to the final 0.8; then fixed
    assert sparsities == [0.0, 0.7, 0.7, 0.8, 0.8, 0.8]
    assert pruner.sparsity == pytest.approx(0.8)
    with pytest.raises(ValueError, match="every"):
        prune.GradualPruner(model, 0.8, ramp_steps=4, every=0)


def test_global_pruner_can_leave_a_layer_dense():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(20, 10), torch.nn.ReLU(), torch.nn.Linear(10, 5))
    with torch.no_grad():
        model[2].weight.mul_(1e-3)  # a head of tiny weights: one global threshold would empty it first
    emptied = prune.GlobalPruner(model, 0.5).masks["2.weight"]
    assert not emptied.any()
    pruner = prune.GlobalPruner(model, 0.5, exclude=("2.weight",))
    assert pruner.masks["2.weight"].all()
    assert (~pruner.masks["0.weight"]).sum() == 100  # half of the 200 ranked weights
    with pytest.raises(ValueError, match="not weights of the model"):
        prune.GlobalPruner(model, 0.5, exclude=("fc.weight",))


def test_prune_imports_nothing_else_of_the_package():
    """The core ranks and masks; what evaluates models (sensitivity scans) lives in sweep, which imports train."""
    import subprocess
    import sys

    loaded = subprocess.run([sys.executable, "-c", "import sys, peel_utils.prune; "
                             "print(sorted(m for m in sys.modules if m.startswith('peel_utils')))"],
                            capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "['peel_utils', 'peel_utils.prune']"


def test_one_definition_of_the_prunable_weights():
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2), torch.nn.Flatten(),
                                torch.nn.Linear(8, 3))
    weights = prune.prunable_parameters(model)
    assert list(weights) == ["0.weight", "3.weight"]  # BatchNorm's weight and every bias stay dense
    assert [w for w in weights.values()] == [m.weight for m, _ in prune.prunable_modules(model)]
    assert sweep.prunable_modules is prune.prunable_modules and sweep.weight_sparsity is prune.weight_sparsity
    assert list(prune.prunable_parameters(model, exclude=("3.weight",))) == ["0.weight"]
    assert list(prune.prunable_parameters(torch.nn.Linear(2, 2))) == ["weight"]  # a bare layer as the model
    with pytest.raises(ValueError, match="not weights of the model"):
        prune.prunable_parameters(model, exclude=("1.weight",))


def test_counting_has_one_implementation_under_each_notebook_name(seeded):
    from peel_utils import measure

    model = prune.SparsePruner(models.LeNet(), SOURCE_DICT).prune(models.LeNet())
    assert measure.count_nonzero_parameters is prune.count_nonzero_parameters
    params, nonzero = prune.count_parameters(model), prune.count_nonzero_parameters(model)
    assert params == 44426 and nonzero == sum(int(p.count_nonzero()) for p in model.parameters())
    assert prune.get_model_sparsity(model) == 1 - nonzero / params
    table = prune.layer_sparsity_table(model)
    assert prune.weight_sparsity(model) == 1 - table["nonzero"].sum() / table["params"].sum()


def lenet_and_weights(seed=0):
    torch.manual_seed(seed)
    model = models.LeNet()
    return model, prune.prunable_parameters(model)


@pytest.mark.parametrize("sparsity", [0.0, 0.3, 0.55, 0.95, 1.0])
def test_calc_mask_equals_torch_l1_unstructured(sparsity):
    model, weights = lenet_and_weights()
    for name, weight in weights.items():
        layer = copy.deepcopy(dict(model.named_modules())[name.rsplit(".", 1)[0]])
        torch_prune.l1_unstructured(layer, "weight", amount=sparsity)
        assert torch.equal(prune.calc_mask(weight, sparsity), layer.weight_mask.bool()), name


@pytest.mark.parametrize("sparsity", [0.0, 0.3, 0.55, 0.95])
def test_one_ranker_behind_calc_mask_global_pruner_and_the_sweep(sparsity):
    """The masks of calc_mask, GlobalPruner (one layer, or all) and both sweep methods are
    MagnitudeRanking's, and torch's l1_unstructured / global_unstructured ones."""
    model, weights = lenet_and_weights(seed=3)
    one_layer = torch.nn.Sequential(copy.deepcopy(model.fc1))
    theirs = copy.deepcopy(one_layer)
    torch_prune.l1_unstructured(theirs[0], "weight", amount=sparsity)
    expected = theirs[0].weight_mask.bool()
    assert torch.equal(prune.calc_mask(one_layer[0].weight, sparsity), expected)
    assert torch.equal(prune.GlobalPruner(one_layer, sparsity).masks["0.weight"], expected)
    assert torch.equal(prune.MagnitudeRanking([one_layer[0].weight], sort=True).masks(sparsity)[0], expected)

    reference = copy.deepcopy(model)
    torch_prune.global_unstructured(prune.prunable_modules(reference), pruning_method=torch_prune.L1Unstructured,
                                    amount=sparsity)
    torch_masks = [m.weight_mask.bool() for m, _ in prune.prunable_modules(reference)]
    global_masks = list(prune.GlobalPruner(model, sparsity).masks.values())
    sweep_masks = sweep.ratio_masks(sweep.rank_weights(model, "global"), sparsity)
    for ours, sweeps, torchs in zip(global_masks, sweep_masks, torch_masks, strict=True):
        assert torch.equal(ours, torchs) and torch.equal(sweeps, torchs)
    per_layer = sweep.ratio_masks(sweep.rank_weights(model, "per-layer"), sparsity)
    for mask, weight in zip(per_layer, weights.values(), strict=True):
        assert torch.equal(mask, prune.calc_mask(weight, sparsity))


def test_ranking_sorted_or_not_gives_the_same_masks_and_prunes_ties_at_the_threshold():
    w = torch.tensor([0.0, 0.0, 0.0, 0.5, -0.2, 0.2, 0.9, -0.1])  # three zeros, a tie at 0.2
    for sort in (False, True):
        ranking = prune.MagnitudeRanking([w[:4].view(2, 2), w[4:]], sort=sort)
        a, b = ranking.masks(0.25)  # k = 2 of 8: the k-th smallest is 0, so all three zeros go
        assert a.shape == (2, 2) and a.tolist() == [[False, False], [False, True]] and b.all()
        assert torch.cat([m.reshape(-1) for m in ranking.masks(0.75)]).tolist() == \
            [False] * 3 + [True, False, False, True, False]  # k = 6: 0.2 is the 6th smallest, both 0.2 go
        with pytest.raises(ValueError, match="sparsity"):
            ranking.masks(1.5)


def test_pruners_share_the_mask_pruner_base():
    model, _ = lenet_and_weights()
    pruners = [prune.SparsePruner(model, SOURCE_DICT), prune.GlobalPruner(model, 0.5),
               prune.GradualPruner(model, 0.5, ramp_steps=2), prune.ZeroMaskPruner(model)]
    for pruner in pruners:
        assert isinstance(pruner, prune.MaskPruner) and type(pruner).prune in (prune.MaskPruner.prune,
                                                                               prune.GradualPruner.prune)
        assert list(pruner.masks) == list(prune.prunable_parameters(model))
