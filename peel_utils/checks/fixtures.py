"""The checks' fixed inputs: small models, tensors and tables with known answers.

Shared by the checks and by answer_key (which works out the expected values from them); no
solution code lives here.
"""

from __future__ import annotations

import pandas as pd
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset


def fill_(model: nn.Module, seed: int) -> nn.Module:
    """Overwrite every parameter with seeded normal values (a private generator)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.randn(param.shape, generator=gen))
    return model


def two_layer(seed: int, sizes: tuple[int, int, int] = (6, 4, 3)) -> nn.Sequential:
    """A tiny MLP, Linear-ReLU-Linear; its weights are '0.weight' and '2.weight'."""
    return fill_(nn.Sequential(nn.Linear(sizes[0], sizes[1]), nn.ReLU(), nn.Linear(sizes[1], sizes[2])), seed)


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU copy of every parameter, by name."""
    return {name: param.detach().cpu().clone() for name, param in model.named_parameters()}


# --- notebook 01 -----------------------------------------------------------------------------

W = torch.tensor([[-0.12, -0.10, -0.17, 0.07, -0.01],
                  [-0.06, -0.11, 0.19, -0.22, -0.13],
                  [-0.15, -0.25, -0.18, -0.08, -0.24],
                  [0.05, 0.20, -0.04, -0.16, -0.09],
                  [0.03, -0.23, -0.21, -0.02, -0.14]])  # (5, 5), 25 distinct magnitudes
W_MASK_60 = torch.tensor([[0, 0, 1, 0, 0],
                          [0, 0, 1, 1, 0],
                          [0, 1, 1, 0, 1],
                          [0, 1, 0, 1, 0],
                          [0, 1, 1, 0, 0]], dtype=torch.bool)  # keeps the 10 largest |w|
RANDOM_MASK_CASES = (((3, 4), 0.5), ((4, 2, 3, 3), 0.85), ((16, 8), 0.7))


def random_mask_inputs() -> list[tuple[nn.Parameter, float]]:
    """Seeded random parameters (the pruner passes parameters) and a sparsity for each."""
    gen = torch.Generator().manual_seed(7)
    return [(nn.Parameter(torch.randn(shape, generator=gen)), sparsity) for shape, sparsity in RANDOM_MASK_CASES]


def pruner_masks() -> dict[str, torch.Tensor]:
    """Fixed random masks for two_layer's weights (the pruner check sets them as self.masks)."""
    gen = torch.Generator().manual_seed(1)
    return {n: torch.rand(p.shape, generator=gen) > 0.5 for n, p in two_layer(seed=0).named_parameters()
            if p.dim() > 1}


PRUNED_MODEL_SEED = 2  # the model the pruner check prunes


def training_batches() -> DataLoader:
    """4 fixed batches of 6 (8 features, 3 classes) for the masked-training check."""
    gen = torch.Generator().manual_seed(3)
    inputs, targets = torch.randn(24, 8, generator=gen), torch.randint(0, 3, (24,), generator=gen)
    return DataLoader(TensorDataset(inputs, targets), batch_size=6, shuffle=False)


def training_start() -> nn.Sequential:
    """The model the masked-training check starts from, half of each weight zero at fixed random
    places; prune.ZeroMaskPruner of it is the pruner the check hands to train_one_epoch."""
    model = two_layer(seed=4, sizes=(8, 6, 3))
    with torch.no_grad():
        for name, mask in masks_for_training().items():
            model.get_parameter(name).mul_(mask)
    return model


def masks_for_training() -> dict[str, torch.Tensor]:
    """Half of each weight of training_start's model pruned, at fixed random places."""
    gen = torch.Generator().manual_seed(9)
    return {"0.weight": torch.rand(6, 8, generator=gen) > 0.5, "2.weight": torch.rand(3, 6, generator=gen) > 0.5}


def sgd(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)


# --- notebooks 02 and 03 ---------------------------------------------------------------------

def sweep_table() -> pd.DataFrame:
    """A hand-made sweep table (validation accuracy as a fraction, as source 000) with known answers."""
    ratios = [0.0, 0.2, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    accuracy = {"global": [0.75, 0.76, 0.705, 0.60, 0.55, 0.45, 0.52, 0.30],
                "per-layer": [0.75, 0.75, 0.625, 0.5, 0.375, 0.25, 0.125, 0.0]}  # exact in binary
    return pd.DataFrame([{"method": method, "ratio": r, "accuracy": a, "f1-score": a - 0.01}
                         for method, values in accuracy.items() for r, a in zip(ratios, values)])


def state_dict_example() -> dict[str, torch.Tensor]:
    """A hand-made state_dict with known bitmask + values sizes (see check_bitmask_bytes)."""
    a = torch.zeros(4, 4)
    a[0, 1], a[1, 3], a[2, 0], a[3, 2] = 1.0, -2.0, 0.5, 3.0  # 4 non-zeros of 16
    b = torch.arange(1.0, 16.0).view(3, 5)
    b[0, :3], b[2, 3:] = 0.0, 0.0                            # 10 non-zeros of 15
    return {"a.weight": a, "a.bias": torch.tensor([0.1, -0.2, 0.3, 0.4]),  # 4 non-zeros of 4
            "b.weight": b, "c.weight": torch.zeros(2, 5),                   # 0 non-zeros of 10
            "bn.num_batches_tracked": torch.tensor(7)}                       # int64 counter, 8 bytes


# --- notebook 04 -----------------------------------------------------------------------------

STUDENT = torch.tensor([[2.0, 0.5, -1.0], [0.1, 1.5, 0.3], [-0.5, 0.2, 2.2], [1.0, 1.0, 0.0]])  # (4, 3)
TEACHER = torch.tensor([[3.0, -1.0, 0.0], [0.0, 2.5, -0.5], [0.5, 0.5, 1.0], [2.0, 0.0, -1.0]])  # (4, 3)
TARGETS = torch.tensor([0, 1, 2, 0])
TEMPERATURES = (1.0, 2.0, 4.0)              # alpha = 1: the distillation term alone
MIXES = ((2.0, 0.3), (4.0, 0.5), (3.0, 0.9))  # (T, alpha): both terms


# --- notebook 05 -----------------------------------------------------------------------------

class TinyConvNet(nn.Module):
    """conv1 -> bn1 -> tanh -> conv2 -> mean over space -> fc: two coupled groups, small enough to
    work out each channel's score by hand. tanh, not ReLU: finite differences across a ReLU's
    kink would not match the exact Hessian."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 3, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(3)
        self.conv2 = nn.Conv2d(3, 2, 1, bias=False)
        self.fc = nn.Linear(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 1, 6, 6) -> (B, 2)
        x = self.conv2(torch.tanh(self.bn1(self.conv1(x))))  # (B, 2, 4, 4)
        return self.fc(x.mean(dim=(2, 3)))


def hessian_dtype(device: torch.device) -> torch.dtype:
    """float64 for the Hessian check, but float32 on MPS, which has no float64."""
    return torch.float32 if device.type == "mps" else torch.float64


HESSIAN_SEED = 11  # torch.manual_seed before hessian_taylor_stats runs: its probes v are then known


def hessian_inputs(device: torch.device, dtype: torch.dtype) -> tuple[TinyConvNet, list]:
    """The Hessian check's model and two batches, on `device` in `dtype`."""
    gen = torch.Generator().manual_seed(5)
    model = fill_(TinyConvNet(), seed=6).to(device, dtype)
    batches = [(torch.randn(4, 1, 6, 6, generator=gen, dtype=dtype), torch.randint(0, 2, (4,), generator=gen))
               for _ in range(2)]
    return model, batches


HV_STEP = 1e-3  # the step h the finite-difference check passes


def hv_inputs() -> tuple[TinyConvNet, torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """The finite-difference check's float64 model (eval mode), one batch and a fixed probe v per weight."""
    model, batches = hessian_inputs(torch.device("cpu"), torch.float64)
    model.eval()
    inputs, targets = batches[0]
    gen = torch.Generator().manual_seed(12)
    probe = [torch.randn(m.weight.shape, generator=gen, dtype=torch.float64) for m in model.modules()
             if getattr(m, "weight", None) is not None]
    return model, inputs, targets, probe


def cpd_inputs() -> tuple[TinyConvNet, dict, dict, dict]:
    """The CPD check's model and hand-set first, second and memory (keyed by layer)."""
    model = fill_(TinyConvNet(), seed=8)
    gen = torch.Generator().manual_seed(10)  # a seed whose scores have both signs
    layers = (model.conv1, model.bn1, model.conv2, model.fc)
    first = {m: torch.randn(m.weight.shape, generator=gen) for m in layers}
    second = {m: 0.2 * torch.randn(m.weight.shape, generator=gen).abs() for m in layers}
    memory = {model.conv1: 50, model.conv2: 20, model.fc: 2}  # activation values one output channel holds
    return model, first, second, memory


# --- notebook 06 --------------------------------------------------------------------------------

QUANT_SEED = 1  # a seed whose values lie at least 0.003 of a step away from every rounding tie (a test checks it)


def quant_tensors() -> dict[str, torch.Tensor]:
    """The tensors the quantisation checks quantise: 'signed' (3, 5), 'positive' (12,), as after a ReLU;
    'conv' (4, 3, 3, 3) whose output channels have different ranges, channel 1 all zero (a pruned filter) and
    channel 2 all positive; 'linear' (5, 6), rows of different ranges."""
    gen = torch.Generator().manual_seed(QUANT_SEED)
    conv = torch.randn(4, 3, 3, 3, generator=gen) * torch.tensor([0.05, 1.0, 0.5, 2.0]).view(4, 1, 1, 1)
    conv[1] = 0.0
    conv[2] = conv[2].abs()
    return {"signed": torch.randn(3, 5, generator=gen),
            "positive": torch.rand(12, generator=gen) * 3,
            "conv": conv,
            "linear": torch.randn(5, 6, generator=gen) * torch.tensor([0.1, 1.0, 0.3, 3.0, 0.02]).view(5, 1)}


# (tensor, bits, symmetric, value_range): per-tensor quantisation, with and without a calibrated range
QUANT_CASES = (("signed", 4, False, None), ("signed", 4, True, None), ("signed", 8, False, None),
               ("signed", 2, True, None), ("positive", 3, False, None), ("signed", 4, False, (-0.5, 0.6)),
               ("signed", 3, True, (-0.4, 0.3)))
PER_CHANNEL_CASES = (("conv", 4, False), ("conv", 8, True), ("linear", 3, True), ("linear", 5, False))
ZERO_CHANNEL = 1  # conv's all-zero output channel


# --- notebook 07 --------------------------------------------------------------------------------

SHARE_BITS = (2, 3)
HUFFMAN_COUNTS = (
    {0: 5, 1: 9, 2: 12, 3: 13, 4: 16, 5: 45},   # the textbook case: 224 bits
    {7: 10},                                    # one symbol
    {3: 1, 9: 1},                               # two
    {0: 1, 1: 1, 2: 2, 3: 4, 4: 8, 5: 16, 6: 32, 7: 64, 8: 128},  # a skewed one: codes up to 8 bits
    {s: (s * 37) % 23 + 1 for s in range(20)} | {99: 0},  # twenty, and a symbol that never occurs
)


def sharing_model() -> nn.Sequential:
    """Two linear layers (10x12, 6x10) with about half of each weight zero, at fixed places."""
    model = two_layer(seed=12, sizes=(12, 10, 6))
    gen = torch.Generator().manual_seed(13)
    with torch.no_grad():
        for param in (model[0].weight, model[2].weight):
            param.mul_(torch.rand(param.shape, generator=gen) > 0.5)
    return model


EMPTIED = "0.weight"  # the weight that emptied_sharing_model() has pruned to nothing


def emptied_sharing_model() -> nn.Sequential:
    """sharing_model() with its first weight all zero: a layer that pruning emptied, nothing in it to cluster."""
    model = sharing_model()
    with torch.no_grad():
        model.get_parameter(EMPTIED).zero_()
    return model
