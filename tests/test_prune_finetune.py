import math

import pytest
import torch
import torch.nn as nn
import torch_pruning as tp
from torch.utils.data import DataLoader, TensorDataset

from peel_utils import models, prune_finetune

SHAPE = (3, 8, 8)


class Small(nn.Module):
    """Two conv-BatchNorm layers and a classifier `fc` (the layer ChannelPruner leaves alone)."""

    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.conv2, self.bn2 = nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        x = torch.relu(self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))))
        return self.fc(x.mean(dim=(2, 3)))


@pytest.fixture
def setup(seeded):
    """A random-init teacher, 24 training and 8 validation images, seeded."""
    gen = torch.Generator().manual_seed(1)
    train_set = TensorDataset(torch.randn(24, *SHAPE, generator=gen), torch.randint(0, 3, (24,), generator=gen))
    val = DataLoader(TensorDataset(torch.randn(8, *SHAPE, generator=gen), torch.randint(0, 3, (8,), generator=gen)),
                     batch_size=8)
    return Small().eval(), train_set, val


def l2(criterion, model, batches):
    assert criterion == "l2" and len(batches) == 1 and batches[0][0].shape == (4, *SHAPE)  # score_batches of 4
    return tp.importance.GroupMagnitudeImportance(p=2)


RECIPE = prune_finetune.Recipe(speedups=[1.5, 2], seed=3, finetune_images=12, batch_size=4, score_batches=1,
                               recal_batches=2, lr=0.05)


def test_step_targets_are_geometric_and_mark_each_targets_last_step():
    steps = prune_finetune.step_targets([2, 3], 2)
    assert [(t, last) for _, t, last in steps] == [(2, False), (2, True), (3, False), (3, True)]
    assert [s for s, _, _ in steps] == pytest.approx([math.sqrt(2), 2, 2 * math.sqrt(1.5), 3])
    assert prune_finetune.step_targets([2], 1) == [(2.0, 2, True)]


def test_finetune_loader_depends_on_run_and_step_only(setup):
    _, train_set, _ = setup

    def images(run, step):
        return torch.cat([x for x, _ in prune_finetune.finetune_loader(train_set, RECIPE, run, step)])

    first = images(0, 1)
    torch.randn(100)  # whatever ran before: the subset and its order are the same
    assert first.shape == (12, *SHAPE) and torch.equal(images(0, 1), first)
    assert not torch.equal(images(0, 2), first) and not torch.equal(images(1, 1), first)
    everything = prune_finetune.Recipe(speedups=[2], finetune_images=None, batch_size=4)
    assert sum(len(x) for x, _ in prune_finetune.finetune_loader(train_set, everything, 0, 1)) == 24


def test_run_variants_prunes_each_variant_and_leaves_controls_and_teacher_whole(setup):
    teacher, train_set, val = setup
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    variants = {"L2 + KD": ("l2", True), "dense, no KD": (None, False)}
    loop = prune_finetune.run_variants(variants, l2, teacher, SHAPE, train_set, val, RECIPE, seeds=2)
    steps = loop.steps
    assert len(steps) == 8 and list(steps.columns) == ["variant", "run", "step", "speedup_target", "mac_cut",
                                                       "pruned", "bn_recalibrated", "fine_tuned"]
    pruned = steps[steps.variant == "L2 + KD"]
    assert list(pruned.speedup_target) == [1.5, 2.0, 1.5, 2.0]
    assert (pruned.mac_cut >= pruned.speedup_target).all() and (pruned.mac_cut < 1.2 * pruned.speedup_target).all()
    assert (steps[steps.variant == "dense, no KD"].mac_cut == 1).all()
    assert set(loop.models) == set(loop.val_accuracy) == {(v, t) for v in variants for t in (1.5, 2)}
    assert all(len(runs) == 2 for runs in loop.models.values())
    assert loop.models["L2 + KD", 2][0].conv1.out_channels < 8
    assert models.channel_counts(loop.models["dense, no KD", 2][1]) == models.channel_counts(teacher)
    last = pruned[(pruned.run == 0) & (pruned.step == 2)].fine_tuned.item()
    assert loop.val_accuracy["L2 + KD", 2] == last  # run 0's accuracy at the target
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())


def test_run_variants_repeats_itself_and_wants_a_run(setup):
    teacher, train_set, val = setup
    variants = {"L2 + KD": ("l2", True)}
    first, again = (prune_finetune.run_variants(variants, l2, teacher, SHAPE, train_set, val, RECIPE).steps
                    for _ in range(2))
    assert first.equals(again)
    with pytest.raises(ValueError, match="seeds must be at least 1, not 0"):
        prune_finetune.run_variants(variants, l2, teacher, SHAPE, train_set, val, RECIPE, seeds=0)
