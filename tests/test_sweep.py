import copy
import math

import pandas as pd
import pytest
import torch
import torch.nn as nn
import torch.nn.utils.prune as torch_prune
from torch.utils.data import DataLoader, TensorDataset

from peel_utils import sweep
from peel_utils.models import LeNet
from peel_utils.prune import GlobalPruner


@pytest.fixture
def lenet():
    torch.manual_seed(0)
    return LeNet()


def test_validate_ratio_accepts_zero_and_rejects_outside():
    assert sweep.validate_ratio(0) == 0.0
    assert sweep.validate_ratio(0.55) == 0.55
    for bad in (-0.1, 1.0, 1.5, math.nan):
        with pytest.raises(ValueError, match=r"\[0, 1\)"):
            sweep.validate_ratio(bad)
    with pytest.raises(TypeError, match=r"ratio must be a number in \[0, 1\).*not None"):
        sweep.validate_ratio(None)


def test_prunable_modules_are_conv_and_linear(lenet):
    assert [type(m).__name__ for m, _ in sweep.prunable_modules(lenet)] == ["Conv2d", "Conv2d", "Linear",
                                                                          "Linear", "Linear"]


def test_per_layer_prunes_each_layer_by_the_ratio(lenet):
    pruned = sweep.pruned_copy(lenet, 0.5, "per-layer")
    for module, _ in sweep.prunable_modules(pruned):
        assert module.weight.count_nonzero() == module.weight.numel() - round(0.5 * module.weight.numel())
        assert not hasattr(module, "weight_orig") and not hasattr(module, "weight_mask")
    assert sweep.prunable_modules(lenet)[0][0].weight.count_nonzero() == 150  # original untouched


def torch_pruned(model, ratio, method):
    """The source's calls, literally: what the ranking must reproduce."""
    model = copy.deepcopy(model)
    modules = sweep.prunable_modules(model)
    if method == "global":
        torch_prune.global_unstructured(modules, pruning_method=torch_prune.L1Unstructured, amount=ratio)
    else:
        for module, name in modules:
            torch_prune.l1_unstructured(module, name=name, amount=ratio)
    return sweep.make_permanent(model)


@pytest.mark.parametrize("method", sweep.METHODS)
@pytest.mark.parametrize("ratio", [0.0, 0.3, 0.55, 0.95])
def test_ranking_masks_equal_torch_prune(lenet, method, ratio):
    ours, theirs = sweep.pruned_copy(lenet, ratio, method), torch_pruned(lenet, ratio, method)
    for (a, _), (b, _) in zip(sweep.prunable_modules(ours), sweep.prunable_modules(theirs)):
        assert torch.equal(a.weight, b.weight)


def test_global_uses_one_threshold_and_matches_global_pruner(lenet):
    pruned = sweep.pruned_copy(lenet, 0.7, "global")
    assert sweep.weight_sparsity(pruned) == pytest.approx(0.7, abs=1e-4)
    expected = GlobalPruner(lenet, 0.7).prune(copy.deepcopy(lenet))
    for (a, _), (b, _) in zip(sweep.prunable_modules(pruned), sweep.prunable_modules(expected)):
        assert torch.equal(a.weight != 0, b.weight != 0)
    # one threshold: layers prune by different fractions
    fractions = {round(1 - float(m.weight.count_nonzero()) / m.weight.numel(), 2)
                 for m, _ in sweep.prunable_modules(pruned)}
    assert len(fractions) > 1


def test_make_permanent_keeps_zeros_and_drops_masks(lenet):
    model = lenet
    torch_prune.global_unstructured(sweep.prunable_modules(model), pruning_method=torch_prune.L1Unstructured,
                                    amount=0.5)
    assert any(k.endswith("weight_mask") for k in model.state_dict())
    masked = model.fc1.weight.detach().clone()
    sweep.make_permanent(model)
    assert not any(k.endswith(("_orig", "_mask")) for k in model.state_dict())
    assert torch.equal(model.fc1.weight, masked)


def test_sweep_table_and_choose_ratio(lenet):
    torch.manual_seed(1)
    loader = DataLoader(TensorDataset(torch.randn(40, 1, 28, 28), torch.randint(0, 10, (40,))), batch_size=20)
    table = sweep.sweep(lenet, loader, [0, 0.5, 0.9])
    assert table[["method", "ratio"]].values.tolist() == [["global", 0.0], ["global", 0.5], ["global", 0.9],
                                                         ["per-layer", 0.0], ["per-layer", 0.5],
                                                         ["per-layer", 0.9]]
    assert {"loss", "accuracy", "precision", "recall", "f1-score", "weight_sparsity",
            "model_sparsity"} <= set(table.columns)
    assert table["weight_sparsity"].round(3).tolist() == [0.0, 0.5, 0.9, 0.0, 0.5, 0.9]
    assert (table.loc[table["ratio"] == 0, "model_sparsity"] == 0).all()


def test_choose_ratio_rule():
    table = pd.DataFrame({"method": ["global"] * 4 + ["per-layer"] * 2,
                          "ratio": [0.0, 0.5, 0.7, 0.9, 0.0, 0.5],
                          "accuracy": [0.96, 0.95, 0.94, 0.50, 0.96, 0.80]})
    assert sweep.choose_ratio(table, "global", max_drop=2.0) == 0.7  # points: a drop of exactly 2 points passes
    assert sweep.choose_ratio(table, "global", max_drop=0.5) == 0.0
    assert sweep.choose_ratio(table, "per-layer", max_drop=2.0) == 0.0
    assert sweep.choose_ratio(table, "global", max_drop=0.02) == 0.0  # a fraction read as points: 0.02 points
    with pytest.raises(ValueError, match="no ratio 0 row"):
        sweep.choose_ratio(table[table["ratio"] > 0], "global", 2.0)
    for bad in (100, 150.0, -1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="max_drop is in percentage points"):
            sweep.choose_ratio(table, "global", bad)
    for bad in (None, "2"):
        with pytest.raises(TypeError, match=rf"max_drop must be a number of percentage points.*not {bad!r}"):
            sweep.choose_ratio(table, "global", max_drop=bad)


def test_bad_method_and_ratio(lenet):
    with pytest.raises(ValueError, match="unknown pruning method"):
        sweep.rank_weights(lenet, "random")
    with pytest.raises(ValueError, match="unknown pruning method"):
        sweep.sweep(lenet, [], [0.5], methods=["structured"])
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        sweep.sweep(lenet, [], [0, 1.0])
    assert isinstance(lenet.fc1, nn.Linear) and not hasattr(lenet.fc1, "weight_mask")


def test_save_sweep_table_round_trip(tmp_path):
    table = pd.DataFrame({"method": ["global", "global"], "ratio": [0.0, 0.55], "accuracy": [0.9, 0.88]})
    path = sweep.save_sweep_table(table, tmp_path / "sub" / "02_sweep.csv")
    pd.testing.assert_frame_equal(pd.read_csv(path), table)
    assert [p.name for p in path.parent.iterdir()] == ["02_sweep.csv"]  # no temporary file left
