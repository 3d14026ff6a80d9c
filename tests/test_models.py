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
