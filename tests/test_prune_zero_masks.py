import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from peel_utils import sweep, train
from peel_utils.models import LeNet
from peel_utils.prune import ZeroMaskPruner, get_model_sparsity


@pytest.fixture
def pruned():
    torch.manual_seed(0)
    return sweep.pruned_copy(LeNet(), 0.6, "per-layer")


def test_masks_are_the_existing_zeros(pruned):
    pruner = ZeroMaskPruner(pruned)
    assert list(pruner.masks) == ["conv1.weight", "conv2.weight", "fc1.weight", "fc2.weight", "fc3.weight"]
    assert int(pruner.masks["conv1.weight"].sum()) == 150 - 90  # 60% of 150 zeroed
    for name, param in pruned.named_parameters():
        if name in pruner.masks:
            assert torch.equal(pruner.masks[name], param != 0)


def test_fine_tuning_with_the_pruner_keeps_the_sparsity(pruned):
    """Notebook 03's promise: the fine-tuned model's zeros are exactly the pruned model's."""
    torch.manual_seed(1)
    data = TensorDataset(torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,)))
    loader = DataLoader(data, batch_size=16)
    before = {name: (param != 0).clone() for name, param in pruned.named_parameters() if param.dim() > 1}
    sparsity = get_model_sparsity(pruned)
    weights = pruned.fc1.weight.detach().clone()
    optimizer = torch.optim.SGD(pruned.parameters(), lr=0.1, momentum=0.9)
    history, best_state = train.fit(pruned, loader, loader, optimizer, 2, pruner=ZeroMaskPruner(pruned))
    assert len(history) == 2
    assert not torch.equal(pruned.fc1.weight, weights)  # it did train
    assert get_model_sparsity(pruned) == sparsity
    for name, param in pruned.named_parameters():
        if name in before:
            assert torch.equal(param != 0, before[name]), name
    pruned.load_state_dict(best_state)
    assert get_model_sparsity(pruned) == sparsity


def test_without_the_pruner_zeros_fill_in(pruned):
    torch.manual_seed(1)
    data = TensorDataset(torch.randn(32, 1, 28, 28), torch.randint(0, 10, (32,)))
    sparsity = get_model_sparsity(pruned)
    train.train(pruned, DataLoader(data, batch_size=16), torch.nn.CrossEntropyLoss(),
                torch.optim.SGD(pruned.parameters(), lr=0.1))
    assert get_model_sparsity(pruned) < sparsity
