"""Pruning-ratio sweep with torch.nn.utils.prune, as in source 000: global vs per-layer L1.

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


def apply_pruning(model: nn.Module, ratio: float, method: str) -> nn.Module:
    """Prune `model` in place with torch's prune (weight_orig + weight_mask attached); return it."""
    ratio = check_ratio(ratio)
    if method == "global":
        prune.global_unstructured(prunable_modules(model), pruning_method=prune.L1Unstructured,
                                  amount=ratio)
    elif method == "per-layer":
        for module, name in prunable_modules(model):
            prune.l1_unstructured(module, name=name, amount=ratio)
    else:
        raise ValueError(f"unknown pruning method {method!r}; choose one of {METHODS}")
    return model


def make_permanent(model: nn.Module) -> nn.Module:
    """prune.remove on every pruned module: the zeros stay in `weight`, the mask goes. Returns model."""
    for module in model.modules():
        for name in [k[: -len("_orig")] for k, _ in module.named_parameters(recurse=False)
                     if k.endswith("_orig")]:
            prune.remove(module, name)
    return model


def pruned_copy(model: nn.Module, ratio: float, method: str) -> nn.Module:
    """A pruned copy of `model` with the pruning made permanent; `model` is left untouched."""
    return make_permanent(apply_pruning(copy.deepcopy(model), ratio, method))


def weight_sparsity(model: nn.Module) -> float:
    """Fraction of the Conv2d and Linear weights that are exactly zero (what the ratio sets)."""
    weights = [getattr(m, name) for m, name in prunable_modules(model)]
    total = sum(w.numel() for w in weights)
    return 1 - sum(int(w.count_nonzero()) for w in weights) / total


def sweep(model: nn.Module, loader: DataLoader, ratios: Sequence[float],
          methods: Sequence[str] = METHODS) -> pd.DataFrame:
    """evaluate_testset of `model` pruned at each ratio by each method: one row per (method, ratio).

    Run it on the validation loader: the ratio is chosen from it (so the metric columns drop the
    source's `test_` prefix: loss, accuracy, precision, recall, f1-score). `model` is left
    untouched. Introduced in notebook 02.
    """
    ratios = [check_ratio(r) for r in ratios]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown pruning method(s) {unknown}; choose from {METHODS}")
    rows = []
    for method in methods:
        for ratio in tqdm(ratios, desc=f"sweep {method}", leave=False):
            pruned = pruned_copy(model, ratio, method)
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
