import pytest
import torch

from peel_utils import models
from peel_utils.prune import count_parameters


def test_lenet_shapes_and_count():
    model = models.LeNet()
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    assert count_parameters(model) == 44426


def test_resnets_classes_and_small_input():
    r50 = models.resnet50(num_classes=7)
    assert r50(torch.zeros(2, 3, 32, 32)).shape == (2, 7)
    assert count_parameters(r50) == 23_522_375
    small = models.resnet18(num_classes=10, small_input=True)
    assert small.conv1.stride == (1, 1) and isinstance(small.maxpool, torch.nn.Identity)
    assert small(torch.zeros(1, 3, 32, 32)).shape == (1, 10)


def test_build_model_by_name():
    assert isinstance(models.build_model("lenet", 10), models.LeNet)
    assert models.build_model("resnet18", 3).fc.out_features == 3
    with pytest.raises(ValueError, match="unknown architecture 'vgg16'"):
        models.build_model("vgg16", 10)


def test_pretrained_offline_names_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # empty hub cache; no network here or in CI
    import torchvision

    def no_network(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(torchvision.models._api.WeightsEnum, "get_state_dict", no_network)
    with pytest.raises(models.WeightsNotAvailableError, match="pretrained=False"):
        models.resnet18(num_classes=10, pretrained=True)


def test_channel_counts_and_shrink_to_round_trip():
    narrow = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Conv2d(4, 4, 1, groups=4),
                                 torch.nn.Flatten(), torch.nn.Linear(4 * 3 * 3, 2))
    counts = models.channel_counts(narrow)
    assert counts == {"0": [4, 3, 1], "1": [4], "2": [4, 4, 4], "4": [2, 36]}
    wide = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.Conv2d(8, 8, 1, groups=8),
                               torch.nn.Flatten(), torch.nn.Linear(8 * 3 * 3, 2))
    rebuilt = models.shrink_to(wide, counts)
    assert models.channel_counts(rebuilt) == counts
    rebuilt.load_state_dict(narrow.state_dict())  # every tensor has the narrow shape
    x = torch.randn(2, 3, 5, 5)
    with torch.no_grad():
        assert torch.equal(rebuilt.eval()(x), narrow.eval()(x))


def test_shrink_to_refuses_unknown_layers_and_types():
    with pytest.raises(ValueError, match=r"layers the model lacks: \['conv9'\]"):
        models.shrink_to(models.LeNet(), {"conv9": [1, 1, 1]})
    with pytest.raises(ValueError, match="layer 0 is a Embedding"):
        models.shrink_to(torch.nn.Sequential(torch.nn.Embedding(4, 2)), {"0": [4]})
