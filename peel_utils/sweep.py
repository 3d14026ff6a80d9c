"""Pruning-ratio sweep with torch.nn.utils.prune, as in source 000: global vs per-layer L1 magnitude.

"global" ranks every Conv2d and Linear weight together (one threshold: layers with many small
weights lose more); "per-layer" prunes each layer by the same ratio, which is what source 000's
code does (`prune.l1_unstructured` layer by layer) although its text says global.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import torch
import torch.nn as nn
import torch.nn.utils.prune as prune
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from .checkpoints import _atomic_write
from .prune import get_model_sparsity
from .train import evaluate_testset

METHODS = ("global", "per-layer")


def check_ratio(ratio: float) -> float:
    """`ratio` as a float, or ValueError unless 0 <= ratio < 1 (1 would zero every weight)."""
    ratio = float(ratio)
    if math.isnan(ratio) or not 0.0 <= ratio < 1.0:
        raise ValueError(f"pruning ratio must be in [0, 1) (the fraction of weights set to zero), "
                         f"not {ratio}")
    return ratio


def prunable_modules(model: nn.Module) -> list[tuple[nn.Module, str]]:
    """(module, 'weight') for every Conv2d and Linear: what source 000 prunes."""
    return [(m, "weight") for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


class MagnitudeRanking:
    """The |w| rank of every Conv2d and Linear weight, sorted once, over all of them ("global") or
    within each layer ("per-layer"), so the masks of any ratio cost one comparison.

    masks(ratio) zeroes the round(ratio * n) smallest |w| of each group: the masks of
    prune.global_unstructured / prune.l1_unstructured with L1Unstructured (which break ties at the
    threshold their own way), without their topk over millions of weights at every ratio.
    """

    def __init__(self, model: nn.Module, method: str):
        if method not in METHODS:
            raise ValueError(f"unknown pruning method {method!r}; choose one of {METHODS}")
        weights = [getattr(m, name).detach() for m, name in prunable_modules(model)]
        groups = [torch.cat([w.reshape(-1) for w in weights])] if method == "global" else \
            [w.reshape(-1) for w in weights]
        self.ranks = [self._ranks(g) for g in groups]  # one flat int64 tensor per group
        self.shapes = [w.shape for w in weights]
        self.method = method

    @staticmethod
    def _ranks(values: torch.Tensor) -> torch.Tensor:
        order = values.abs().argsort()  # (n,) indices from the smallest |w| up
        ranks = torch.empty_like(order)
        ranks[order] = torch.arange(order.numel(), device=order.device)
        return ranks

    def masks(self, ratio: float) -> list[torch.Tensor]:
        """One keep-mask (bool, shaped like the weight) per prunable module, in module order."""
        ratio = check_ratio(ratio)
        flat = [r >= round(ratio * r.numel()) for r in self.ranks]  # False for the smallest
        if self.method == "global":
            flat = torch.split(flat[0], [math.prod(s) for s in self.shapes])
        return [m.view(s) for m, s in zip(flat, self.shapes)]


def prune_with_masks(model: nn.Module, masks: Sequence[torch.Tensor]) -> nn.Module:
    """Zero `model`'s Conv2d/Linear weights where `masks` is False, through torch's prune
    (custom_from_mask, then prune.remove); returns the model."""
    for (module, name), mask in zip(prunable_modules(model), masks, strict=True):
        prune.custom_from_mask(module, name, mask)
    return make_permanent(model)


def make_permanent(model: nn.Module) -> nn.Module:
    """prune.remove on every pruned module: the zeros stay in `weight`, the mask goes. Returns model."""
    for module in model.modules():
        for name in [k[: -len("_orig")] for k, _ in module.named_parameters(recurse=False)
                     if k.endswith("_orig")]:
            prune.remove(module, name)
    return model


def pruned_copy(model: nn.Module, ratio: float, method: str) -> nn.Module:
    """A copy of `model` pruned at `ratio` by `method`, made permanent; `model` is left untouched."""
    return prune_with_masks(copy.deepcopy(model), MagnitudeRanking(model, method).masks(ratio))


def weight_sparsity(model: nn.Module) -> float:
    """Fraction of the Conv2d and Linear weights that are exactly zero (what the ratio sets)."""
    weights = [getattr(m, name) for m, name in prunable_modules(model)]
    total = sum(w.numel() for w in weights)
    return 1 - sum(int(w.count_nonzero()) for w in weights) / total


def sweep(model: nn.Module, loader: DataLoader, ratios: Sequence[float],
          methods: Sequence[str] = METHODS) -> pd.DataFrame:
    """evaluate_testset of `model` pruned at each ratio by each method: one row per (method, ratio).

    The weights are ranked once per method (MagnitudeRanking); each ratio's masks are applied to a
    copy through torch's prune and made permanent. Run it on the validation loader: the ratio is
    chosen from it (so the metric columns drop the source's `test_` prefix: loss, accuracy,
    precision, recall, f1-score). `model` is left untouched. Introduced in notebook 02.
    """
    ratios = [check_ratio(r) for r in ratios]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown pruning method(s) {unknown}; choose from {METHODS}")
    rows = []
    for method in methods:
        ranking = MagnitudeRanking(model, method)
        for ratio in tqdm(ratios, desc=f"sweep {method}", leave=False):
            pruned = prune_with_masks(copy.deepcopy(model), ranking.masks(ratio))
            rows.append({"method": method, "ratio": ratio, "weight_sparsity": weight_sparsity(pruned),
                         "model_sparsity": get_model_sparsity(pruned),
                         **{k.removeprefix("test_"): v
                            for k, v in evaluate_testset(pruned, loader, progress=False).items()}})
    return pd.DataFrame(rows)


def choose_ratio(table: pd.DataFrame, method: str, max_drop: float) -> float:
    """The largest ratio of `method` whose accuracy is at most `max_drop` below its ratio-0 row.

    Accuracy is source 000's fraction (0.02 = 2 points). The table needs a ratio-0 row (the
    unpruned model) for the method.
    """
    if not 0.0 <= max_drop < 1.0:
        raise ValueError(f"max_drop is an accuracy fraction in [0, 1), not {max_drop}")
    rows = table[table["method"] == method]
    if not (rows["ratio"] == 0).any():
        raise ValueError(f"the table has no ratio 0 row for method {method!r}; sweep with ratio 0 "
                         "included so the drop is measured against the unpruned model")
    dense = rows.loc[rows["ratio"] == 0, "accuracy"].iloc[0]
    ok = rows[rows["accuracy"] >= dense - max_drop - 1e-6]  # 1e-6: float32 accuracies
    return float(ok["ratio"].max())


def save_sweep_table(table: pd.DataFrame, path: str | Path) -> Path:
    """Write the sweep table as CSV atomically (a failed run leaves an older table intact)."""
    path = Path(path)
    text = table.to_csv(index=False).encode()
    _atomic_write(path, lambda f: f.write(text))
    return path
