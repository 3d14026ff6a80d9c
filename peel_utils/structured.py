"""Structured (channel) pruning on torch-pruning's dependency graph: CPD's comb and prune steps.

Comb: trace the model into coupled groups, the channels that must go together because a
residual add (or a layer and its BatchNorm) ties them. Prune: rank the channels of all groups
with a pluggable importance and remove the lowest until the model's MACs reach a target.
Export: a plain state_dict plus per-layer channel counts (`models.channel_counts`), rebuilt on load by
`models.shrink_to`. Introduced in notebook 05.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn as nn
import torch_pruning as tp

from .runtime import eval_mode

Group = tp.dependency.Group
Importance = Callable[[Group], "torch.Tensor | None"]
_BN = nn.modules.batchnorm._BatchNorm
SUPPORTED = (nn.Conv2d, nn.Linear, _BN)


def _is_depthwise(conv: nn.Module) -> bool:
    return isinstance(conv, nn.Conv2d) and conv.groups > 1 and conv.groups == conv.in_channels == conv.out_channels


def validate_supported(model: nn.Module) -> None:
    """Raise ValueError naming each layer with weights this pruner cannot shrink.

    Supported: Conv2d (plain or depthwise), Linear and BatchNorm. Layers without weights (ReLU,
    pooling, add) pass channels through and need nothing.
    """
    if next(model.parameters(), None) is None:
        raise ValueError(f"{type(model).__name__} has no parameters: there is nothing to prune")
    bad = [f"{name} ({type(m).__name__})" for name, m in model.named_modules()
           if next(m.parameters(recurse=False), None) is not None
           and (not isinstance(m, SUPPORTED) or (isinstance(m, nn.Conv2d) and m.groups > 1
                                                 and not _is_depthwise(m)))]
    if bad:
        raise ValueError(f"cannot prune layers of an unsupported type: {', '.join(bad[:5])}"
                         f"{' ...' if len(bad) > 5 else ''}. Structured pruning here handles Conv2d "
                         "(plain or depthwise), Linear and BatchNorm; replace those layers, or prune "
                         "with torch-pruning directly and register a customized pruner for them")


def dependency_graph(model: nn.Module, input_shape: Sequence[int]) -> tp.DependencyGraph:
    """Trace `model` on a zero input of shape (1, *input_shape) into torch-pruning's dependency graph.

    Unsupported layers raise ValueError; a forward that fails or returns nothing that depends on
    the weights raises RuntimeError. The model's weights and train/eval mode are left as they were.
    """
    validate_supported(model)
    device = next(model.parameters()).device
    was_training = model.training
    try:
        with torch.enable_grad():
            graph = tp.DependencyGraph().build_dependency(
                model, example_inputs=torch.zeros(1, *input_shape, device=device), verbose=False)
    except Exception as err:
        raise RuntimeError(
            f"torch-pruning could not trace {type(model).__name__} on an input of shape "
            f"(1, {', '.join(map(str, input_shape))}): {type(err).__name__}: {err}. The forward must "
            "run on such a tensor and return tensors computed from the weights (no torch.no_grad "
            "or .detach() inside)") from err
    finally:
        model.train(was_training)
    if not any(isinstance(m, (nn.Conv2d, nn.Linear)) for m in graph.module2node):
        raise RuntimeError(f"torch-pruning traced no Conv2d or Linear layer of {type(model).__name__}: "
                           "its output does not depend on its weights through autograd")
    return graph


def all_groups(graph: tp.DependencyGraph, ignored_layers: Iterable[nn.Module] = ()) -> list[Group]:
    """Every coupled group rooted at a Conv2d or Linear, except those cutting an ignored layer's outputs."""
    return list(graph.get_all_groups(ignored_layers=list(ignored_layers),
                                     root_module_types=[nn.Conv2d, nn.Linear]))


def groups_table(graph: tp.DependencyGraph, groups: Sequence[Group]) -> pd.DataFrame:
    """One row per layer of each group: the layer, its type, the dimension cut and its channel count.

    `residual add` says whether an addition couples the group (then it spans several blocks).
    """
    names = {m: n for n, m in graph.model.named_modules()}
    rows = []
    for index, group in enumerate(groups):
        adds = any("AddBackward" in str(dep.target.module) for dep, _ in group)
        for dep, idxs in group:
            module = dep.target.module
            if not isinstance(module, SUPPORTED):
                continue
            if isinstance(module, _BN):
                dimension = "BN channels"
            else:
                dimension = "out channels" if graph.is_out_channel_pruning_fn(dep.handler) else "in channels"
            rows.append({"group": index, "layer": names[module], "type": type(module).__name__,
                         "dimension": dimension, "channels": len(idxs), "residual add": adds})
    return pd.DataFrame(rows).drop_duplicates(["group", "layer", "dimension"], ignore_index=True)


@torch.no_grad()
def activation_sizes(model: nn.Module, inputs: torch.Tensor) -> dict[nn.Module, int]:
    """Per Conv2d/Linear: the elements one of its output channels holds for `inputs` (batch * H * W)."""
    sizes: dict[nn.Module, int] = {}

    def hook(module, _, output):
        sizes[module] = output.numel() // output.shape[1 if isinstance(module, nn.Conv2d) else -1]

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        with eval_mode(model):
            model(inputs)
    finally:
        for handle in handles:
            handle.remove()
    return sizes


class ChannelPruner:
    """CPD's prune step on a private deep copy of a model (the model passed in is never changed).

    `prune_to(importance, target_macs)` ranks every removable channel of every coupled group by
    `importance` (any torch-pruning importance: a callable from a group to one score per channel)
    and removes the lowest-scored ones, all groups ranked together, until the MACs of the Conv2d
    and Linear layers reach the target. Call it repeatedly, fine-tuning `pruner.model` in between,
    for iterative pruning. At most `max_group_ratio` of a group's original channels ever go.
    """

    def __init__(self, model: nn.Module, input_shape: Sequence[int], *,
                 ignored_layers: Sequence[str] = ("fc",), max_group_ratio: float = 0.9):
        if not 0.0 < max_group_ratio < 1.0:
            raise ValueError(f"max_group_ratio must be in (0, 1), not {max_group_ratio}")
        self.model = copy.deepcopy(model)
        self.input_shape = tuple(input_shape)
        modules = dict(self.model.named_modules())
        unknown = [name for name in ignored_layers if name not in modules]
        if unknown:
            raise ValueError(f"ignored_layers names no layer of the model: {unknown}; "
                             f"its last layers are {list(modules)[-3:]}")
        self.ignored = [modules[name] for name in ignored_layers]
        self.graph = dependency_graph(self.model, self.input_shape)
        self.max_group_ratio = max_group_ratio
        sizes = activation_sizes(self.model, torch.zeros(1, *self.input_shape,
                                                         device=next(self.model.parameters()).device))
        self._per_channel_macs = {m: s * (m.kernel_size[0] * m.kernel_size[1] if isinstance(m, nn.Conv2d) else 1)
                                  for m, s in sizes.items()}
        self._initial = {self._root(g): len(g[0].idxs) for g in all_groups(self.graph, self.ignored)}

    @staticmethod
    def _root(group: Group) -> nn.Module:
        return group[0].dep.target.module

    def macs(self) -> int:
        """MACs of one forward pass on one input, counted over the Conv2d and Linear layers."""
        return int(sum(self._layer_macs(m, self._out(m), self._in(m)) for m in self._per_channel_macs))

    def _out(self, m: nn.Module) -> int:
        return m.out_channels if isinstance(m, nn.Conv2d) else m.out_features

    def _in(self, m: nn.Module) -> int:
        return m.in_channels if isinstance(m, nn.Conv2d) else m.in_features

    def _layer_macs(self, m: nn.Module, out: int, inp: int) -> float:
        per_group_in = 1 if _is_depthwise(m) else inp / getattr(m, "groups", 1)
        return out * per_group_in * self._per_channel_macs[m]

    def _effects(self, group: Group) -> list[tuple[nn.Module, str]]:
        """(layer, 'out' | 'in') for every Conv2d/Linear dimension the group cuts."""
        effects = {}
        for dep, _ in group:
            module = dep.target.module
            if module in self._per_channel_macs:
                kind = "out" if self.graph.is_out_channel_pruning_fn(dep.handler) else "in"
                if not (kind == "in" and _is_depthwise(module)):
                    effects[(module, kind)] = None
        return list(effects)

    def _macs_after(self, removed: dict[int, int], effects: list[list[tuple[nn.Module, str]]]) -> float:
        shape = {m: [self._out(m), self._in(m)] for m in self._per_channel_macs}
        for g, count in removed.items():
            for module, kind in effects[g]:
                shape[module][0 if kind == "out" else 1] -= count
        return sum(self._layer_macs(m, out, inp) for m, (out, inp) in shape.items())

    def prune_to(self, importance: Importance, target_macs: float) -> nn.Module:
        """Remove the lowest-importance channels until macs() <= target_macs; return the pruned model.

        A target below what the group limits allow raises ValueError before anything is removed.
        """
        current = self.macs()
        if not 0 < target_macs:
            raise ValueError(f"target_macs must be positive, not {target_macs}")
        if target_macs >= current:
            return self.model
        groups = all_groups(self.graph, self.ignored)
        effects = [self._effects(g) for g in groups]
        candidates = []  # (score, group index, channel index) of every channel allowed to go
        for g, group in enumerate(groups):
            score = importance(group)
            if score is None or not effects[g]:
                continue
            score = score.detach().float().cpu()  # (channels,)
            initial = self._initial.get(self._root(group), len(score))
            keep = max(1, math.ceil(initial * (1 - self.max_group_ratio)))
            order = torch.argsort(score)[:max(0, len(score) - keep)].tolist()
            candidates += [(score[c].item(), g, c) for c in order]
        candidates.sort(key=lambda c: c[0])
        gids = np.array([c[1] for c in candidates], dtype=int)

        def macs_if(k: int) -> float:
            counts = np.bincount(gids[:k], minlength=len(groups))
            return self._macs_after({g: int(n) for g, n in enumerate(counts) if n}, effects)

        floor = macs_if(len(candidates))
        if floor > target_macs:
            raise ValueError(
                f"target of {target_macs:,.0f} MACs (a {current / target_macs:.1f}x cut) cannot be reached: "
                f"removing all but {1 - self.max_group_ratio:.0%} of every group's channels still leaves "
                f"{floor:,.0f} MACs ({current / floor:.1f}x). Choose a target above that, or raise "
                "max_group_ratio. Nothing was removed")
        lo, hi = 0, len(candidates)  # smallest k with macs_if(k) <= target
        while lo < hi:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if macs_if(mid) <= target_macs else (mid + 1, hi)
        chosen: dict[int, list[int]] = {}
        for _, g, c in candidates[:lo]:
            chosen.setdefault(g, []).append(c)
        for g, idxs in chosen.items():
            root = groups[g][0].dep
            self.graph.get_pruning_group(root.target.module, root.handler, sorted(idxs)).prune()
        return self.model


def recalibrate_bn(model: nn.Module, loader: Iterable, num_batches: int | None = 10) -> nn.Module:
    """Re-estimate every BatchNorm's running mean and variance from `num_batches` training batches.

    Removing channels shifts what each BatchNorm sees, so its stored statistics go stale. torch's
    `swa_utils.update_bn` refreshes them: statistics reset, a plain average over the batches
    (momentum None), forward passes in train mode without gradients (no weight changes). Every
    BatchNorm's momentum and the model's train/eval mode are restored afterwards, also when the
    loader fails midway. `loader` gives (inputs, targets) batches (None: every batch). Returns `model`.
    """
    bns = [m for m in model.modules() if isinstance(m, _BN)]
    momenta = [m.momentum for m in bns]
    was_training = model.training
    device = next(model.parameters()).device
    try:
        torch.optim.swa_utils.update_bn(itertools.islice(loader, num_batches), model, device)
    finally:
        for m, momentum in zip(bns, momenta):
            m.momentum = momentum
        model.train(was_training)
    return model
