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


def table_of(accuracies: dict[float, int], val_images: int, method: str = "global") -> pd.DataFrame:
    """A sweep table whose accuracies are `correct images / val_images` at each ratio (as evaluate_testset gives)."""
    return pd.DataFrame({"method": method, "ratio": list(accuracies),
                         "accuracy": [correct / val_images for correct in accuracies.values()]})


def test_val_images_per_point_and_bound_images():
    assert sweep.val_images_per_point(135) == 1.35
    assert sweep.val_images_per_point(500) == 5.0
    assert sweep.bound_images(2.0, 135) == 2  # 2.7 images: two fit under the bound
    assert sweep.bound_images(2.0, 500) == 10  # exactly 10: the bound passes a drop of exactly max_drop
    assert sweep.bound_images(3.8, 135) == 5
    assert sweep.bound_images(0.0, 10_000) == 0
    for bad in (0, -3):
        with pytest.raises(ValueError, match=rf"whole number >= 1, not {bad}; pass len\(splits.val\)"):
            sweep.val_images_per_point(bad)
    for bad in (135.0, None, True, "135"):
        with pytest.raises(TypeError, match=rf"val_images must be the number of validation images.*not {bad!r}"):
            sweep.bound_images(2.0, bad)


def test_ratio_reading_on_135_images_says_the_set_is_too_small_and_that_ratio_0_was_kept():
    table = table_of({0.0: 131, 0.3: 126, 0.5: 120}, 135)  # 0.3 costs 5 images = 3.7 points
    assert sweep.choose_ratio(table, "global", 2.0) == 0.0
    reading = sweep.ratio_reading(table, "global", 2.0, 135, rule=0.0)
    assert reading == (
        "On 135 validation images, 1 point is 1.35 images (one image is 0.74 points), so the bound of 2 points allows "
        "2 images more wrong than the unpruned model. That is fewer than 5 images: this validation set is too small "
        "to resolve a 2-point bound, so single images decide the rule's choice, which is noise. Fix: more validation "
        "images (at least 250 for a 2-point bound to hold 5; an imagefolder set takes them from its val/ folder, and "
        "max_images, when set, cuts the split) or a larger max_drop (at least 3.8 points on these 135 images). "
        "The rule keeps ratio 0: no weight is pruned. Even the smallest swept ratio, 0.3, scores 93.3% (5 images "
        "below the unpruned model's 97.0%), more than the bound allows.")
    # the fixes it names do resolve the bound: 250 images hold 5 at 2 points, 3.8 points hold 5 of 135
    assert sweep.bound_images(2.0, 250) == 5 and sweep.bound_images(3.8, 135) == 5
    assert sweep.choose_ratio(table, "global", 3.8) == 0.3


def test_ratio_reading_on_a_resolving_set_states_the_images_and_the_ratio_kept():
    table = table_of({0.0: 484, 0.3: 481, 0.5: 476, 0.7: 470}, 500)
    reading = sweep.ratio_reading(table, "global", 2.0, 500, sweep.choose_ratio(table, "global", 2.0))
    assert reading == ("On 500 validation images, 1 point is 5 images (one image is 0.2 points), so the bound of "
                       "2 points allows 10 images more wrong than the unpruned model. The rule keeps ratio 0.5: "
                       "validation accuracy 95.2%, 8 images below the unpruned model's 96.8%.")
    assert "too small" not in reading
    above = sweep.ratio_reading(table_of({0.0: 480, 0.5: 482}, 500), "global", 2.0, 500, rule=0.5)
    assert above.endswith("The rule keeps ratio 0.5: validation accuracy 96.4%, 2 images above the unpruned model's 96.0%.")


def test_ratio_reading_edges_max_drop_0_tiny_sets_and_no_ratio_swept():
    zero = sweep.ratio_reading(table_of({0.0: 900, 0.5: 900}, 1000), "global", 0.0, 1000, rule=0.5)
    assert "allows 0 images more wrong" in zero and "a max_drop of 0 allows none on any number of images" in zero
    assert zero.endswith("The rule keeps ratio 0.5: validation accuracy 90.0%, level with the unpruned model's 90.0%.")
    tiny = sweep.ratio_reading(table_of({0.0: 3, 0.5: 2}, 4), "global", 2.0, 4, rule=0.0)
    assert "1 point is 0.04 images (one image is 25 points)" in tiny
    assert "; no max_drop below 100 points allows 5 of 4 images." in tiny
    only_dense = sweep.ratio_reading(table_of({0.0: 400}, 500), "global", 2.0, 500, rule=0.0)
    assert only_dense.endswith("The sweep holds no global ratio above 0, so the rule keeps ratio 0: no weight is pruned.")
    with pytest.raises(ValueError, match="no ratio 0 row"):
        sweep.ratio_reading(table_of({0.5: 400}, 500), "global", 2.0, 500, rule=0.5)


def test_unpruned_note_only_at_ratio_0():
    assert sweep.unpruned_note(0.3, 0.3) == ""
    note = sweep.unpruned_note(0.0, 0.0)
    assert note.startswith('The "pruned" model notebook 02 handed over has ratio 0 (weight sparsity 0.0000): no weight '
                           "was pruned, so it is the unpruned teacher")
    assert "Fix: re-run notebook 02 with more validation images, a larger max_drop or a ratio above 0." in note
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        sweep.unpruned_note(1.5, 0.0)


def test_choice_reading_names_the_model_the_rule_and_the_accuracies_behind_it():
    table = pd.concat([table_of({0.0: 488, 0.3: 482, 0.4: 469, 0.5: 251}, 500),
                       table_of({0.0: 488, 0.3: 483, 0.5: 317, 0.55: 336}, 500, method="per-layer")])
    assert sweep.choice_reading(table, "global", 0.3, 2.0, "rule") == (
        "This notebook fine-tunes notebook 02's ResNet50 pruned by global magnitude pruning (one threshold over every "
        "Conv2d and Linear weight) at ratio 0.3, the largest swept ratio whose validation accuracy right after pruning "
        "stayed within 2 points of the unpruned teacher (notebook 02's rule, Step 7). At 0.3 it scored 96.4%, 1.2 "
        "points below the teacher's 97.6%; the next swept ratio, 0.4, scored 93.8%, 3.8 points below, past the bound.")
    assert sweep.choice_reading(table, "per-layer", 0.3, 1.0, "rule").startswith(
        "This notebook fine-tunes notebook 02's ResNet50 pruned by per-layer magnitude pruning (every Conv2d and "
        "Linear layer loses the same fraction) at ratio 0.3, the largest swept ratio whose validation accuracy right "
        "after pruning stayed within 1 point of")
    assert "At 0.3 it scored 96.6%, 1 point below the teacher's 97.6%" in sweep.choice_reading(
        table, "per-layer", 0.3, 1.0, "rule")
    assert sweep.choice_reading(table, "global", 0.5, 2.0, "rule").endswith(
        "At 0.5 it scored 50.2%, 47.4 points below the teacher's 97.6%; it is the largest ratio swept.")


def test_choice_reading_says_when_the_ratio_parameter_set_the_ratio_and_when_0_was_kept():
    table = pd.concat([table_of({0.0: 488, 0.3: 482, 0.5: 251}, 500),
                       table_of({0.0: 488, 0.3: 483, 0.5: 317, 0.55: 336}, 500, method="per-layer")])
    assert sweep.choice_reading(table, "global", 0.35, 2.0, "ratio parameter").endswith(
        "at ratio 0.35, set by notebook 02's `ratio` parameter instead of its rule; its sweep did not evaluate that "
        "ratio.")
    assert sweep.choice_reading(table, "per-layer", 0.5, 2.0, "ratio parameter").endswith(
        "at ratio 0.5, set by notebook 02's `ratio` parameter instead of its rule. At 0.5 it scored 63.4%, 34.2 points "
        "below the teacher's 97.6%; the next swept ratio, 0.55, scored 67.2%, 30.4 points below.")
    assert sweep.choice_reading(table, "global", 0.0, 1.0, "rule") == (
        "This notebook fine-tunes notebook 02's \"pruned\" ResNet50 at ratio 0, which prunes no weight, the largest "
        "swept ratio whose validation accuracy right after pruning stayed within 1 point of the unpruned teacher "
        "(notebook 02's rule, Step 7): the smallest swept ratio, 0.3, scored 96.4%, 1.2 points below the teacher's "
        "97.6%.")
    assert sweep.choice_reading(table_of({0.0: 400}, 500), "global", 0.0, 2.0, "rule").endswith(
        "; its sweep holds no global ratio above 0.")
    with pytest.raises(ValueError, match="chosen_by must be one of"):
        sweep.choice_reading(table, "global", 0.3, 2.0, "by eye")


def test_choice_reading_without_the_sweep_table_names_the_model_and_where_the_numbers_are(tmp_path):
    assert sweep.read_sweep_table(tmp_path / "02_sweep.csv") is None
    missing = ("Notebook 02's sweep table (02_sweep.csv) is not beside its record, so the validation accuracies "
               "behind that ratio are not shown here; notebook 02's Step 7 prints them.")
    assert sweep.choice_reading(None, "global", 0.3, 2.0, "ratio parameter") == (
        "This notebook fine-tunes notebook 02's ResNet50 pruned by global magnitude pruning (one threshold over every "
        f"Conv2d and Linear weight) at ratio 0.3, set by notebook 02's `ratio` parameter instead of its rule. {missing}")
    assert sweep.choice_reading(table_of({0.0: 400}, 500, method="per-layer"), "global", 0.0, 2.0, "rule").endswith(
        missing)
    table = table_of({0.0: 488, 0.3: 482}, 500)
    read = sweep.read_sweep_table(sweep.save_sweep_table(table, tmp_path / "02_sweep.csv"))
    assert sweep.choice_reading(read, "global", 0.3, 2.0, "rule") == sweep.choice_reading(table, "global", 0.3, 2.0, "rule")
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        sweep.choice_reading(table, "global", 1.0, 2.0, "rule")


def bn_net() -> nn.Sequential:
    """A conv with BatchNorm whose running statistics are stale: a mean of 5 and a variance of 9 per channel."""
    torch.manual_seed(3)
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    net[1].running_mean.fill_(5.0)
    net[1].running_var.fill_(9.0)
    return net.eval()


def test_reestimate_bn_replaces_the_running_statistics_by_the_batches_own():
    net, batch = bn_net(), torch.randn(16, 1, 8, 8, generator=torch.Generator().manual_seed(4))
    weights = copy.deepcopy(net.state_dict())
    assert sweep.reestimate_bn(net, [(batch, torch.zeros(16))]) is net and not net.training
    conv_out = net[0](batch)  # (16, 4, 6, 6)
    assert torch.allclose(net[1].running_mean, conv_out.mean(dim=(0, 2, 3)), atol=1e-6)
    assert torch.allclose(net[1].running_var, conv_out.var(dim=(0, 2, 3)), atol=1e-5)  # unbiased, as BatchNorm keeps it
    assert all(torch.equal(weights[k], v) for k, v in net.state_dict().items() if "running" not in k
               and "num_batches" not in k)  # no weight changes


def test_sweep_with_bn_batches_reads_every_point_after_reestimation():
    net, gen = bn_net(), torch.Generator().manual_seed(5)
    inputs, targets = torch.randn(48, 1, 8, 8, generator=gen), torch.randint(0, 3, (48,), generator=gen)
    loader = DataLoader(TensorDataset(inputs, targets), batch_size=16)
    bn_batches = [(inputs[:16], targets[:16]), (inputs[16:32], targets[16:32])]
    table = sweep.sweep(net, loader, [0.0, 0.5], methods=["global"], bn_batches=bn_batches)
    plain = sweep.sweep(net, loader, [0.0, 0.5], methods=["global"])
    for ratio, row in zip([0.0, 0.5], table.itertuples()):
        by_hand = sweep.reestimate_bn(sweep.pruned_copy(net, ratio, "global"), bn_batches)
        assert row.loss == pytest.approx(nn.functional.cross_entropy(by_hand(inputs), targets).item(), rel=1e-5)
    assert table["loss"].tolist() != plain["loss"].tolist()  # the stale statistics did change the plain reading
    assert net[1].running_mean.eq(5.0).all() and net[1].running_var.eq(9.0).all()  # the model is left untouched


def test_recalibrated_reading_sets_both_choices_and_the_hand_over_side_by_side():
    plain = table_of({0.0: 488, 0.3: 482, 0.5: 250, 0.7: 50}, 500)
    after = table_of({0.0: 487, 0.3: 485, 0.5: 479, 0.7: 300}, 500)
    rule, rule_after = sweep.choose_ratio(plain, "global", 2.0), sweep.choose_ratio(after, "global", 2.0)
    assert (rule, rule_after) == (0.3, 0.5)
    assert sweep.recalibrated_reading(after, "global", 2.0, rule, rule_after, 0.3) == (
        "Read after BatchNorm re-estimation at every swept ratio, the rule (global, max_drop 2 points) would choose "
        "ratio 0.5 (validation accuracy 95.8%, the unpruned model re-estimated the same way 97.4%), against 0.3 from "
        "the plain sweep: up to 0.5 the pruned weights keep the accuracy within the bound once the statistics fit "
        "them, so stale statistics set the plain rule's limit. The hand-over keeps ratio 0.3 (the plain rule's "
        "choice), so the notebooks after this one do not change with this reading.")
    same = sweep.recalibrated_reading(plain, "global", 2.0, rule, rule, 0.55)
    assert "would choose ratio 0.3 (validation accuracy 96.4%" in same
    assert "the ratio it chose from the plain sweep: in this run stale statistics do not change the choice." in same
    assert same.endswith("The hand-over keeps ratio 0.55 (set by the ratio parameter), so the notebooks after this "
                         "one do not change with this reading.")
    lower = sweep.recalibrated_reading(plain, "global", 2.0, rule_after, rule, 0.5)
    assert "would choose ratio 0.3" in lower and "below the 0.5 it chose from the plain sweep" in lower
