"""The workbook's models: the source's LeNet and torchvision's ResNet50 / ResNet18, and the architecture of
a pruned one as data (`channel_counts`, `shrink_to`), so a model with channels removed rebuilds from its record."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

_BN = nn.modules.batchnorm._BatchNorm


class WeightsNotAvailableError(RuntimeError):
    """Pretrained weights are neither cached nor downloadable; the message says what to do."""


class LeNet(nn.Module):
    """LeNet exactly as in source 001 (44,426 parameters for 10 classes, 28x28 inputs).

    Introduced in notebook 01.
    """

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels=1, out_channels=6, kernel_size=5)
        self.conv2 = nn.Conv2d(in_channels=6, out_channels=16, kernel_size=5)
        self.maxpool = nn.MaxPool2d(kernel_size=2, stride=2)
        self.fc1 = nn.Linear(in_features=16 * 4 * 4, out_features=120)
        self.fc2 = nn.Linear(in_features=120, out_features=84)
        self.fc3 = nn.Linear(in_features=84, out_features=num_classes)

    def forward(self, x):
        x = self.maxpool(F.relu(self.conv1(x)))  # (N, 6, 12, 12)
        x = self.maxpool(F.relu(self.conv2(x)))  # (N, 16, 4, 4)
        x = x.view(x.size(0), -1)                # (N, 256)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


def _resnet(arch: str, num_classes: int, small_input: bool, pretrained: bool,
            zero_init_residual: bool = False) -> nn.Module:
    builder = getattr(torchvision.models, arch)
    if pretrained:
        weights = torchvision.models.get_model_weights(arch).DEFAULT
        try:
            model = builder(weights=weights)
        except Exception as err:  # offline: urllib / OSError / RuntimeError
            raise WeightsNotAvailableError(
                f"ImageNet weights for {arch} ({weights}) are not cached and could not be downloaded "
                f"({type(err).__name__}). Fix: set pretrained=False to train from scratch, or put "
                f"the file from {weights.url} into the torch hub cache (~/.cache/torch/hub/checkpoints/)."
            ) from err
        model.fc = nn.Linear(model.fc.in_features, num_classes)
    else:
        model = builder(num_classes=num_classes, zero_init_residual=zero_init_residual)
    if small_input:
        # CIFAR-style stem for 32x32 images: a 3x3 stride-1 first conv and no max-pool keep the
        # spatial size, at about 16x the compute of the ImageNet stem.
        model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    return model


def resnet50(num_classes: int, small_input: bool = False, pretrained: bool = False,
             zero_init_residual: bool = False) -> nn.Module:
    """torchvision ResNet50 with `num_classes` outputs (introduced in notebook 02).

    small_input swaps in a CIFAR-style stem; pretrained loads ImageNet weights (all but the
    new classifier head) or raises WeightsNotAvailableError when they cannot be had.
    zero_init_residual (from scratch only) starts every block's last BatchNorm at zero, so each
    block begins as the identity: a deep network then trains from scratch as fast as a shallow one.
    """
    return _resnet("resnet50", num_classes, small_input, pretrained, zero_init_residual)


def resnet18(num_classes: int, small_input: bool = False, pretrained: bool = False,
             zero_init_residual: bool = False) -> nn.Module:
    """torchvision ResNet18, the distillation student (introduced in notebook 04)."""
    return _resnet("resnet18", num_classes, small_input, pretrained, zero_init_residual)


def build_model(arch: str, num_classes: int, small_input: bool = False) -> nn.Module:
    """Build a randomly initialised model by name ('lenet', 'resnet18', 'resnet50').

    Used to rebuild a model from a checkpoint's metadata before loading its state_dict.
    """
    if arch == "lenet":
        return LeNet(num_classes)
    if arch in ("resnet18", "resnet50"):
        return _resnet(arch, num_classes, small_input, pretrained=False)
    raise ValueError(f"unknown architecture {arch!r}; choose 'lenet', 'resnet18' or 'resnet50'")


def channel_counts(model: nn.Module) -> dict[str, list[int]]:
    """The architecture of a pruned model: [out, in, groups] per Conv2d, [out, in] per Linear,
    [features] per BatchNorm. Saved in a checkpoint's metadata to rebuild the model on load."""
    counts: dict[str, list[int]] = {}
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            counts[name] = [m.out_channels, m.in_channels, m.groups]
        elif isinstance(m, nn.Linear):
            counts[name] = [m.out_features, m.in_features]
        elif isinstance(m, _BN):
            counts[name] = [m.num_features]
    return counts


def _empty_like(param: torch.Tensor | None, *shape: int) -> torch.Tensor | None:
    return None if param is None else torch.zeros(*shape, dtype=param.dtype, device=param.device)


def shrink_to(model: nn.Module, counts: dict[str, list[int]]) -> nn.Module:
    """Resize `model`'s layers in place to `counts` (from channel_counts); weights are left
    uninitialised (zeros) for load_state_dict to fill. Returns `model`."""
    modules = dict(model.named_modules())
    unknown = sorted(set(counts) - set(modules))
    if unknown:
        raise ValueError(f"the channel counts name layers the model lacks: {unknown[:5]}; were they "
                         "saved from another architecture?")
    for name, count in counts.items():
        m = modules[name]
        if isinstance(m, nn.Conv2d):
            m.out_channels, m.in_channels, m.groups = count
            m.weight = nn.Parameter(_empty_like(m.weight, m.out_channels, m.in_channels // m.groups,
                                                *m.kernel_size))
            if m.bias is not None:
                m.bias = nn.Parameter(_empty_like(m.bias, m.out_channels))
        elif isinstance(m, nn.Linear):
            m.out_features, m.in_features = count
            m.weight = nn.Parameter(_empty_like(m.weight, *count))
            if m.bias is not None:
                m.bias = nn.Parameter(_empty_like(m.bias, m.out_features))
        elif isinstance(m, _BN):
            (m.num_features,) = count
            for attr in ("weight", "bias"):
                if getattr(m, attr) is not None:
                    setattr(m, attr, nn.Parameter(_empty_like(getattr(m, attr), *count)))
            for attr in ("running_mean", "running_var"):
                if getattr(m, attr) is not None:
                    setattr(m, attr, _empty_like(getattr(m, attr), *count))
        else:
            raise ValueError(f"layer {name} is a {type(m).__name__}; channel counts cover only "
                             "Conv2d, Linear and BatchNorm")
    return model

