"""Magnitude pruning with masks, as in source 001, plus a global (one threshold) variant.

A mask is a bool tensor shaped like the weight: True keeps a weight, False zeroes it.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Sequence

import pandas as pd
import torch
import torch.nn as nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from .train import evaluate


def count_parameters(model: nn.Module) -> int:
    """Number of parameters of `model` (source 001's name). Introduced in notebook 01."""
    return sum(param.numel() for param in model.parameters())


def get_model_sparsity(model: nn.Module) -> float:
    """Fraction of all parameters (biases included) that are exactly zero (source 001)."""
    num_nonzeros, num_params = 0, 0
    for param in model.parameters():
        num_nonzeros += int(param.count_nonzero())
        num_params += param.numel()
    return 1 - num_nonzeros / num_params


def prunable_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    """The parameters source 001 prunes: every one with more than one dimension (the weights)."""
    return {name: p for name, p in model.named_parameters() if p.dim() > 1}


def _check_sparsity(sparsity: float) -> float:
    sparsity = float(sparsity)
    if math.isnan(sparsity) or not 0.0 <= sparsity <= 1.0:
        raise ValueError(f"sparsity must be a number in [0, 1], not {sparsity}")
    return sparsity


def calc_mask(tensor: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Keep-mask zeroing the `round(numel * sparsity)` smallest-magnitude entries of `tensor`.

    Source 001's function: the threshold is the k-th smallest |w| (kthvalue) and the mask keeps
    what lies strictly above it. Unlike the source, which clamps, a sparsity outside [0, 1] or
    NaN raises ValueError. Introduced in notebook 01.
    """
    sparsity = _check_sparsity(sparsity)
    num_zeros = round(tensor.numel() * sparsity)
    if num_zeros == 0:
        return torch.ones_like(tensor, dtype=torch.bool)
    if num_zeros == tensor.numel():
        return torch.zeros_like(tensor, dtype=torch.bool)
    importance = tensor.detach().abs()
    threshold = importance.view(-1).kthvalue(num_zeros).values
    return importance > threshold


class SparsePruner:
    """Per-layer magnitude pruner of source 001: one sparsity per weight tensor.

    The masks are computed once, from `model`, in the constructor; `prune(model)` multiplies any
    model of the same architecture by them (in place), e.g. after every optimizer step.
    """

    def __init__(self, model: nn.Module, sparsity_dict: dict[str, float]):
        weights = prunable_parameters(model)
        unknown = sorted(set(sparsity_dict) - set(weights))
        missing = sorted(set(weights) - set(sparsity_dict))
        if unknown or missing:
            raise ValueError("sparsity_dict must name every weight of the model exactly: "
                             + (f"unknown names {unknown} " if unknown else "")
                             + (f"missing names {missing} (give 0.0 to keep a layer dense)" if missing else "")
                             + f"; the model's weights are {list(weights)}")
        self.masks: dict[str, torch.Tensor] = {}
        for name, param in weights.items():
            try:
                self.masks[name] = calc_mask(param, sparsity_dict[name])
            except ValueError as err:
                raise ValueError(f"{name}: {err}") from None

    @torch.no_grad()
    def prune(self, model: nn.Module) -> nn.Module:
        """Zero the masked weights of `model` in place and return it."""
        params = dict(model.named_parameters())
        absent = sorted(set(self.masks) - set(params))
        if absent:
            raise ValueError(f"the model has no parameters named {absent}; was the pruner built for "
                             "another architecture?")
        for name, mask in self.masks.items():
            params[name].mul_(mask)
        return model


class GlobalPruner(SparsePruner):
    """Magnitude pruner with one threshold across all weights (`sparsity` of them zeroed in total).

    Layers with many small weights lose more than others. Its masks equal those of
    torch.nn.utils.prune.global_unstructured with L1Unstructured at the same amount. Weights named
    in `exclude` (e.g. a classifier head whose weights are all small) are neither ranked nor pruned;
    `sparsity` is then the fraction of the other weights that is zeroed.
    """

    def __init__(self, model: nn.Module, sparsity: float, exclude: Sequence[str] = ()):
        weights = prunable_parameters(model)
        unknown = sorted(set(exclude) - set(weights))
        if unknown:
            raise ValueError(f"exclude names {unknown}, which are not weights of the model; its weights are {list(weights)}")
        ranked = {name: p for name, p in weights.items() if name not in exclude}
        flat = torch.cat([p.detach().reshape(-1) for p in ranked.values()])  # (total,)
        flat_mask = calc_mask(flat, sparsity)
        self.masks = {name: torch.ones_like(p, dtype=torch.bool) for name, p in weights.items() if name in exclude}
        start = 0
        for name, param in ranked.items():
            self.masks[name] = flat_mask[start:start + param.numel()].view_as(param)
            start += param.numel()


def cubic_sparsity(step: int, ramp_steps: int, final: float, initial: float = 0.0) -> float:
    """Zhu & Gupta's (2017) gradual schedule: s_t = s_f + (s_i - s_f) (1 - t / n)^3, held at s_f after n.

    It prunes fast while many redundant weights remain and slowly as few are left. Introduced in notebook 01.
    """
    if ramp_steps < 1:
        raise ValueError(f"ramp_steps must be at least 1, not {ramp_steps}")
    final, initial = _check_sparsity(final), _check_sparsity(initial)
    progress = min(max(step, 0), ramp_steps) / ramp_steps
    return final + (initial - final) * (1 - progress) ** 3


class GradualPruner:
    """Gradual magnitude pruning (Zhu & Gupta 2017) as a pruner for `train.fit` / `train.train`.

    `prune(model)` runs after every optimizer step: it re-applies the masks and, every `every` steps
    up to `ramp_steps`, raises the global weight sparsity along `cubic_sparsity` and recomputes the
    masks by magnitude (one threshold across all weights, as `GlobalPruner`). A weight once pruned is
    zero when the masks are recomputed, so it stays pruned. After `ramp_steps` the masks are fixed
    and training goes on at the final sparsity. `exclude` names weights left dense (as in
    `GlobalPruner`). Introduced in notebook 01.
    """

    def __init__(self, model: nn.Module, final_sparsity: float, ramp_steps: int, every: int = 1,
                 initial_sparsity: float = 0.0, exclude: Sequence[str] = ()):
        if every < 1:
            raise ValueError(f"every must be at least 1 step, not {every}")
        cubic_sparsity(0, ramp_steps, final_sparsity, initial_sparsity)  # validates the arguments
        self.final_sparsity, self.ramp_steps, self.every = final_sparsity, ramp_steps, every
        self.initial_sparsity, self.steps, self.exclude = initial_sparsity, 0, tuple(exclude)
        self.sparsity = initial_sparsity
        self.masks = GlobalPruner(model, initial_sparsity, self.exclude).masks

    @torch.no_grad()
    def prune(self, model: nn.Module) -> nn.Module:
        """One step: zero the masked weights, and on a schedule step prune further; returns `model`."""
        SparsePruner.prune(self, model)
        self.steps += 1
        if self.steps <= self.ramp_steps and (self.steps % self.every == 0 or self.steps == self.ramp_steps):
            self.sparsity = cubic_sparsity(self.steps, self.ramp_steps, self.final_sparsity, self.initial_sparsity)
            self.masks = GlobalPruner(model, self.sparsity, self.exclude).masks
            SparsePruner.prune(self, model)
        return model


class ZeroMaskPruner(SparsePruner):
    """Keeps the zeros a pruned model already has: each mask is `weight != 0`.

    For fine-tuning a model pruned elsewhere (e.g. by torch.nn.utils.prune, then made permanent):
    `prune(model)` after every step puts the zeros back. Introduced in notebook 03.
    """

    def __init__(self, model: nn.Module):
        self.masks = {name: param.detach() != 0 for name, param in prunable_parameters(model).items()}


def layer_sparsity_table(model: nn.Module) -> pd.DataFrame:
    """One row per weight tensor: its size, its non-zeros and its sparsity."""
    rows = []
    for name, param in prunable_parameters(model).items():
        nonzero = int(param.count_nonzero())
        rows.append({"layer": name, "shape": tuple(param.shape), "params": param.numel(),
                     "nonzero": nonzero, "sparsity": round(1 - nonzero / param.numel(), 4)})
    return pd.DataFrame(rows)


def sensitivity_scan(model: nn.Module, loader: DataLoader, sparsities: Sequence[float],
                     layer_names: Iterable[str] | None = None) -> pd.DataFrame:
    """Accuracy (%) with one layer pruned at a time to each sparsity, others dense.

    Run it on the validation loader: it is what the sparsity dict is chosen from.
    """
    names = list(layer_names) if layer_names is not None else list(prunable_parameters(model))
    rows = []
    for name in tqdm(names, desc="sensitivity scan"):
        for sparsity in sparsities:
            pruned = copy.deepcopy(model)
            weight = dict(pruned.named_parameters())[name]
            with torch.no_grad():
                weight.mul_(calc_mask(weight, sparsity))
            rows.append({"layer": name, "sparsity": sparsity,
                         "accuracy": evaluate(pruned, loader, progress=False)})
    return pd.DataFrame(rows)


def choose_sparsity_dict(scan: pd.DataFrame, dense_accuracy: float, max_drop: float) -> dict[str, float]:
    """Per layer, the largest scanned sparsity whose accuracy stays within `max_drop` points."""
    chosen = {}
    for name, rows in scan.groupby("layer", sort=False):
        ok = rows[rows["accuracy"] >= dense_accuracy - max_drop]
        chosen[name] = float(ok["sparsity"].max()) if len(ok) else 0.0
    return chosen


def accuracy_at_global_sparsity(model: nn.Module, loader: DataLoader, sparsity: float) -> dict[str, float]:
    """Prune a copy of `model` globally to `sparsity`; return its accuracy and model sparsity.

    The callback behind notebook 01's slider; `model` itself is left untouched.
    """
    pruned = GlobalPruner(model, sparsity).prune(copy.deepcopy(model))
    return {"weight_sparsity": sparsity, "model_sparsity": get_model_sparsity(pruned),
            "accuracy": evaluate(pruned, loader, progress=False)}
