import pytest
import torch
import torch.nn as nn
import torch_pruning as tp

from peel_utils import measure, models, structured

SHAPE = (3, 16, 16)  # small inputs keep the tests fast; layer4 still sees 1x1 maps


@pytest.fixture
def resnet18(seeded):
    return models.resnet18(10).eval()


def state_copy(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_a_residual_add_couples_the_channels_of_a_stage(resnet18):
    graph = structured.dependency_graph(resnet18, SHAPE)
    groups = structured.all_groups(graph, [resnet18.fc])
    # one group per block's inner conv (8) + one residual group per stage (4); layer1 has no
    # downsample conv, so the stem's conv1 sits in layer1's residual group
    assert len(groups) == 12
    table = structured.groups_table(graph, groups)
    stage4 = table[(table.layer == "fc") & (table.dimension == "in channels")].group.iloc[0]
    rows = table[table.group == stage4]
    assert set(rows[rows.dimension == "out channels"].layer) == {
        "layer4.0.downsample.0", "layer4.0.conv2", "layer4.1.conv2"}
    assert set(rows[rows.dimension == "in channels"].layer) == {"layer4.1.conv1", "fc"}
    assert rows["residual add"].all() and (rows.channels == 512).all()
    inner = table[(table.layer == "layer1.0.conv1") & (table.dimension == "out channels")].group.iloc[0]
    assert not table[table.group == inner]["residual add"].any()


def test_prune_to_macs_runs_shrinks_and_leaves_the_input_model_alone(resnet18):
    before = state_copy(resnet18)
    dense_macs = measure.count_macs(resnet18, SHAPE)
    dense_params = sum(p.numel() for p in resnet18.parameters())
    pruner = structured.ChannelPruner(resnet18, SHAPE)
    counted = pruner.macs()
    pruned = pruner.prune_to(tp.importance.GroupMagnitudeImportance(p=2), counted / 2)
    assert pruner.macs() <= counted / 2 < pruner.macs() * 1.01  # just past the target
    assert measure.count_macs(pruned, SHAPE) < 0.51 * dense_macs
    assert sum(p.numel() for p in pruned.parameters()) < dense_params
    assert pruned.fc.out_features == 10
    assert pruned(torch.randn(2, *SHAPE)).shape == (2, 10)
    after = resnet18.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert resnet18.layer1[0].conv1.out_channels == 64


def test_iterative_steps_and_an_unreachable_target(resnet18):
    pruner = structured.ChannelPruner(resnet18, SHAPE, max_group_ratio=0.5)
    dense = pruner.macs()
    pruner.prune_to(tp.importance.RandomImportance(), dense / 1.5)
    step1 = models.channel_counts(pruner.model)
    with pytest.raises(ValueError, match="cannot be reached.*Nothing was removed"):
        pruner.prune_to(tp.importance.RandomImportance(), dense / 100)
    assert models.channel_counts(pruner.model) == step1  # a failed step removes nothing
    pruner.prune_to(tp.importance.RandomImportance(), dense / 2)
    assert pruner.macs() <= dense / 2
    assert pruner.model.layer1[0].conv1.out_channels >= 32  # at most half of a group goes
    with pytest.raises(ValueError, match="positive"):
        pruner.prune_to(tp.importance.RandomImportance(), 0)


def test_recalibrate_bn_refreshes_running_stats_only(resnet18):
    data = [(torch.randn(4, *SHAPE) * 3 + 1, torch.zeros(4, dtype=torch.long)) for _ in range(2)]
    weights = {k: v.clone() for k, v in resnet18.named_parameters()}
    structured.recalibrate_bn(resnet18, data, num_batches=2)
    assert not resnet18.training and resnet18.bn1.momentum == 0.1
    assert resnet18.bn1.num_batches_tracked.item() == 2
    with torch.no_grad():  # momentum None during recalibration: a plain average of the batch stats
        stem = [resnet18.conv1(x) for x, _ in data]  # 2 x (4, 64, 8, 8)
    mean = torch.stack([o.mean(dim=(0, 2, 3)) for o in stem]).mean(0)
    var = torch.stack([o.transpose(0, 1).flatten(1).var(dim=1) for o in stem]).mean(0)
    assert torch.allclose(resnet18.bn1.running_mean, mean, atol=1e-5)
    assert torch.allclose(resnet18.bn1.running_var, var, rtol=1e-4)
    assert all(torch.equal(weights[k], v) for k, v in resnet18.named_parameters())


def test_recalibrate_bn_restores_momenta_and_mode_when_the_loader_fails(resnet18):
    resnet18.bn1.momentum = 0.3
    resnet18.layer1[0].bn1.momentum = None

    def failing():
        yield torch.randn(4, *SHAPE), torch.zeros(4, dtype=torch.long)
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        structured.recalibrate_bn(resnet18, failing(), num_batches=3)
    assert not resnet18.training
    assert resnet18.bn1.momentum == 0.3 and resnet18.layer1[0].bn1.momentum is None
    assert resnet18.layer2[0].bn1.momentum == 0.1
    resnet18.train()
    structured.recalibrate_bn(resnet18, [(torch.randn(4, *SHAPE), None)] * 5, num_batches=3)
    assert resnet18.training and resnet18.bn1.num_batches_tracked.item() == 3  # only num_batches batches


class Scaled(nn.Module):
    """A layer with its own weight that torch-pruning's pruner here cannot shrink."""

    def __init__(self, channels: int):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(channels, 1, 1))

    def forward(self, x):
        return x * self.scale


class Detached(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        return self.conv(x).detach().mean(dim=(2, 3))


def test_bad_models_raise_clear_errors():
    unsupported = nn.Sequential(nn.Conv2d(3, 8, 3), Scaled(8), nn.Conv2d(8, 4, 3))
    with pytest.raises(ValueError, match=r"unsupported type: 1 \(Scaled\)"):
        structured.ChannelPruner(unsupported, SHAPE, ignored_layers=())
    grouped = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Conv2d(8, 8, 3, groups=2))
    with pytest.raises(ValueError, match="Conv2d"):
        structured.dependency_graph(grouped, SHAPE)
    with pytest.raises(RuntimeError, match="could not trace"):
        structured.dependency_graph(nn.Sequential(nn.Conv2d(1, 4, 3)), SHAPE)  # 1 channel, input has 3
    with pytest.raises(RuntimeError, match="traced no Conv2d"):
        structured.dependency_graph(Detached(), SHAPE)
    with pytest.raises(ValueError, match="no parameters"):
        structured.dependency_graph(nn.Sequential(nn.ReLU()), SHAPE)
    with pytest.raises(ValueError, match="no layer of the model"):
        structured.ChannelPruner(models.resnet18(10), SHAPE, ignored_layers=("head",))
