"""The unstructured-pruning core: which weights are pruned, how a model's parameters and zeros are
counted, one magnitude ranking, and the mask pruners built on it (source 001's per-layer pruner,
plus global, gradual and keep-the-zeros variants).

A mask is a bool tensor shaped like its weight: True keeps a weight, False zeroes it. The prunable
weights are the `weight` of every Conv2d and Linear: what sources 000 and 001 prune. `sweep`
prunes them through torch.nn.utils.prune and evaluates the results; this module never trains or
evaluates a model.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator, Sequence

import pandas as pd
import torch
import torch.nn as nn

PRUNABLE_TYPES = (nn.Conv2d, nn.Linear)  # the modules whose `weight` is pruned


# --- which weights are pruned ------------------------------------------------------------------

def _prunable(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """(qualified weight name, module) for every Conv2d and Linear, in module order."""
    for name, module in model.named_modules():
        if isinstance(module, PRUNABLE_TYPES):
            yield (f"{name}.weight" if name else "weight"), module


def prunable_modules(model: nn.Module) -> list[tuple[nn.Module, str]]:
    """(module, 'weight') for every Conv2d and Linear, in module order: the prunable weights in the
    form torch.nn.utils.prune takes them (source 000's list). Introduced in notebook 02."""
    return [(module, "weight") for _, module in _prunable(model)]


def prunable_parameters(model: nn.Module, exclude: Sequence[str] = ()) -> dict[str, torch.Tensor]:
    """The prunable weights by name ('conv1.weight'), in module order: the weights of
    `prunable_modules`, named as the mask pruners name their masks. Introduced in notebook 01.

    Weights named in `exclude` are left out (a classifier head kept dense); a name there that is
    not a prunable weight raises ValueError, so a typo cannot leave the head pruned. Each value is
    the module's `weight` Parameter (with torch's prune reparametrisation attached, the masked
    weight it computes).
    """
    weights = {name: module.weight for name, module in _prunable(model)}
    unknown = sorted(set(exclude) - set(weights))
    if unknown:
        raise ValueError(f"exclude names {unknown}, which are not weights of the model; "
                         f"its weights are {list(weights)}")
    return {name: weight for name, weight in weights.items() if name not in exclude}


# --- counting ------------------------------------------------------------------------------------

def count_parameters(model: nn.Module) -> int:
    """Number of parameters of `model`, biases included (source 001's name). Introduced in notebook 01."""
    return sum(param.numel() for param in model.parameters())


def count_nonzero_parameters(model: nn.Module) -> int:
    """Parameters that are not exactly zero: what unstructured pruning reduces (the dense shapes,
    and so `count_parameters`, stay). Introduced in notebook 02."""
    return sum(int(param.count_nonzero()) for param in model.parameters())


def get_model_sparsity(model: nn.Module) -> float:
    """Fraction of all parameters (biases included) that are exactly zero (source 001). Introduced
    in notebook 01."""
    return 1 - count_nonzero_parameters(model) / count_parameters(model)


def weight_sparsity(model: nn.Module) -> float:
    """Fraction of the prunable weights (every Conv2d and Linear weight) that are exactly zero: what
    a pruning ratio or a weight sparsity sets, where `get_model_sparsity` also counts the dense
    biases and BatchNorm. Introduced in notebook 02."""
    weights = prunable_parameters(model).values()
    return 1 - sum(int(w.count_nonzero()) for w in weights) / sum(w.numel() for w in weights)


def layer_sparsity_table(model: nn.Module) -> pd.DataFrame:
    """One row per prunable weight: its shape, its size, its non-zeros and its sparsity. Introduced
    in notebook 01."""
    rows = []
    for name, param in prunable_parameters(model).items():
        nonzero = int(param.count_nonzero())
        rows.append({"layer": name, "shape": tuple(param.shape), "params": param.numel(),
                     "nonzero": nonzero, "sparsity": round(1 - nonzero / param.numel(), 4)})
    return pd.DataFrame(rows)


# --- ranking by magnitude ------------------------------------------------------------------------

def as_number(name: str, value: object, allowed: str) -> float:
    """`value` as a float; TypeError naming the parameter `name`, the value and the `allowed` range
    unless it is a real number (a 0-d tensor counts; None, a bool or a string does not)."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number {allowed}, not {value!r}")
    return float(value)


def _validate_sparsity(sparsity: float) -> float:
    sparsity = as_number("sparsity", sparsity, "in [0, 1]")
    if math.isnan(sparsity) or not 0.0 <= sparsity <= 1.0:
        raise ValueError(f"sparsity must be a number in [0, 1], not {sparsity}")
    return sparsity


class MagnitudeRanking:
    """The entries of one or more tensors ranked together by magnitude |w|: the one magnitude rule
    behind `calc_mask`, `GlobalPruner`, `GradualPruner` and the sweep. Introduced in notebook 01.

    `masks(sparsity)` prunes the k = round(n * sparsity) smallest |w| of the n ranked entries: it
    keeps what lies strictly above the k-th smallest |w| (source 001's kthvalue rule), so an entry
    tied with it goes too and weights that are already zero stay pruned when masks are recomputed.
    Without such ties these are the masks of torch.nn.utils.prune's L1Unstructured: l1_unstructured
    for one tensor, global_unstructured (one threshold across layers) for several.

    sort=True sorts the magnitudes once, so masks at many sparsities cost one comparison each (the
    sweep); without it each call finds the k-th smallest by selection (kthvalue), cheaper for one.
    """

    def __init__(self, tensors: Sequence[torch.Tensor], sort: bool = False):
        self.shapes = [t.shape for t in tensors]
        self.magnitudes = torch.cat([t.detach().reshape(-1).abs() for t in tensors])  # (n,)
        self.sorted = self.magnitudes.sort().values if sort else None  # (n,) ascending, or None

    def masks(self, sparsity: float) -> list[torch.Tensor]:
        """One keep-mask (bool, shaped like its tensor) per ranked tensor, in order; sparsity in [0, 1]."""
        sparsity = _validate_sparsity(sparsity)
        n = self.magnitudes.numel()
        k = round(n * sparsity)
        if k == 0:
            flat = torch.ones_like(self.magnitudes, dtype=torch.bool)
        elif k == n:
            flat = torch.zeros_like(self.magnitudes, dtype=torch.bool)
        else:
            threshold = self.sorted[k - 1] if self.sorted is not None else self.magnitudes.kthvalue(k).values
            flat = self.magnitudes > threshold
        return [mask.view(shape) for mask, shape in
                zip(flat.split([math.prod(s) for s in self.shapes]), self.shapes, strict=True)]


def calc_mask(tensor: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Keep-mask zeroing the `round(numel * sparsity)` smallest-magnitude entries of `tensor`.

    Source 001's function: the threshold is the k-th smallest |w| (kthvalue) and the mask keeps
    what lies strictly above it (`MagnitudeRanking` of the one tensor). Unlike the source, which
    clamps, a sparsity outside [0, 1] or NaN raises ValueError. Introduced in notebook 01.
    """
    return MagnitudeRanking([tensor]).masks(sparsity)[0]


# --- mask pruners --------------------------------------------------------------------------------

class MaskPruner:
    """A pruner holding one keep-mask per prunable weight in `masks` ({name: bool tensor}).

    `prune(model)` multiplies the weights of `model` (any model of the same architecture) by the
    masks in place, e.g. after every optimizer step (`train.train`'s pruner). The pruners below
    differ only in how they choose the masks. Introduced in notebook 01 (as SparsePruner's prune).
    """

    def __init__(self, masks: dict[str, torch.Tensor]):
        self.masks = masks

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


class SparsePruner(MaskPruner):
    """Per-layer magnitude pruner of source 001: one sparsity per weight tensor (`calc_mask`).

    The masks are computed once, from `model`, in the constructor. `sparsity_dict` must name every
    prunable weight (0.0 keeps one dense). Introduced in notebook 01.
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
        masks = {}
        for name, param in weights.items():
            try:
                masks[name] = calc_mask(param, sparsity_dict[name])
            except ValueError as err:
                raise ValueError(f"{name}: {err}") from None
        super().__init__(masks)


class GlobalPruner(MaskPruner):
    """Magnitude pruner with one threshold across all weights (`sparsity` of them zeroed in total).

    Layers with many small weights lose more than others. Its masks equal those of
    torch.nn.utils.prune.global_unstructured with L1Unstructured at the same amount (and those of
    the sweep's "global" method). Weights named in `exclude` (e.g. a classifier head whose weights
    are all small) are neither ranked nor pruned; `sparsity` is then the fraction of the other
    weights that is zeroed. Introduced in notebook 01.
    """

    def __init__(self, model: nn.Module, sparsity: float, exclude: Sequence[str] = ()):
        ranked = prunable_parameters(model, exclude)
        masks = dict(zip(ranked, MagnitudeRanking(list(ranked.values())).masks(sparsity), strict=True))
        super().__init__({name: masks[name] if name in masks else torch.ones_like(p, dtype=torch.bool)
                          for name, p in prunable_parameters(model).items()})


def cubic_sparsity(step: int, ramp_steps: int, final: float, initial: float = 0.0) -> float:
    """Zhu & Gupta's (2017) gradual schedule: s_t = s_f + (s_i - s_f) (1 - t / n)^3, held at s_f after n.

    It prunes fast while many redundant weights remain and slowly as few are left. Introduced in notebook 01.
    """
    if ramp_steps < 1:
        raise ValueError(f"ramp_steps must be at least 1, not {ramp_steps}")
    final, initial = _validate_sparsity(final), _validate_sparsity(initial)
    progress = min(max(step, 0), ramp_steps) / ramp_steps
    return final + (initial - final) * (1 - progress) ** 3


class GradualPruner(MaskPruner):
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
        super().__init__(GlobalPruner(model, initial_sparsity, self.exclude).masks)

    @torch.no_grad()
    def prune(self, model: nn.Module) -> nn.Module:
        """One step: zero the masked weights, and on a schedule step prune further; returns `model`."""
        super().prune(model)
        self.steps += 1
        if self.steps <= self.ramp_steps and (self.steps % self.every == 0 or self.steps == self.ramp_steps):
            self.sparsity = cubic_sparsity(self.steps, self.ramp_steps, self.final_sparsity, self.initial_sparsity)
            self.masks = GlobalPruner(model, self.sparsity, self.exclude).masks
            super().prune(model)
        return model


class ZeroMaskPruner(MaskPruner):
    """Keeps the zeros a pruned model already has: each mask is `weight != 0`.

    For fine-tuning a model pruned elsewhere (e.g. by torch.nn.utils.prune, then made permanent):
    `prune(model)` after every step puts the zeros back. Introduced in notebook 03.
    """

    def __init__(self, model: nn.Module):
        super().__init__({name: param.detach() != 0 for name, param in prunable_parameters(model).items()})


# --- choosing sparsities -------------------------------------------------------------------------

def validate_max_drop(max_drop: float) -> float:
    """`max_drop` (the accuracy drop allowed, in percentage points: 2.0 is two points) as a float;
    TypeError unless a number, ValueError unless in [0, 100) (negative, NaN or infinite is refused)."""
    max_drop = as_number("max_drop", max_drop, "of percentage points in [0, 100) (2.0 is two points)")
    if not 0.0 <= max_drop < 100.0:  # NaN fails the comparison too
        raise ValueError(f"max_drop is in percentage points, in [0, 100) (2.0 is two points), not {max_drop}")
    return max_drop


def choose_sparsity_dict(scan: pd.DataFrame, dense_accuracy: float, max_drop: float) -> dict[str, float]:
    """Per layer, the largest scanned sparsity whose accuracy stays within `max_drop` points.

    `scan` is `sweep.sensitivity_scan`'s table (layer, sparsity, accuracy as a fraction), `dense_accuracy`
    the unpruned model's accuracy (a fraction in [0, 1]) and `max_drop` in percentage points, in [0, 100), so
    the bound is `dense_accuracy - max_drop / 100`; anything else raises TypeError or ValueError naming the
    parameter. Introduced in notebook 01.
    """
    max_drop = validate_max_drop(max_drop)
    dense_accuracy = as_number("dense_accuracy", dense_accuracy, "(the unpruned accuracy, a fraction in [0, 1])")
    if not 0.0 <= dense_accuracy <= 1.0:  # NaN fails too
        raise ValueError(f"dense_accuracy is the unpruned accuracy as a fraction, in [0, 1] (0.98 for 98%), "
                         f"not {dense_accuracy}")
    chosen = {}
    for name, rows in scan.groupby("layer", sort=False):
        ok = rows[rows["accuracy"] >= dense_accuracy - max_drop / 100 - 1e-6]  # points to a fraction; 1e-6: float32
        chosen[name] = float(ok["sparsity"].max()) if len(ok) else 0.0
    return chosen

