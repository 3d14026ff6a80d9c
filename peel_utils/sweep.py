"""Pruning-ratio sweep with torch.nn.utils.prune, as in source 000: global vs per-layer L1 magnitude;
and the other loops that prune copies of a model and evaluate them (source 001's sensitivity scan).

"global" ranks every Conv2d and Linear weight together (one threshold: layers with many small
weights lose more); "per-layer" prunes each layer by the same ratio, which is what source 000's
code does (torch's `prune.l1_unstructured` layer by layer) although its text says global. The masks come
from `prune.MagnitudeRanking`, the rule of every pruner of the workbook.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd
import torch
import torch.nn as nn
import torch.nn.utils.prune as tprune
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from .checkpoints import atomic_write
from .prune import (
    GlobalPruner,
    MagnitudeRanking,
    as_number,
    get_model_sparsity,
    layer_sparsity_table,
    prunable_modules,
    prunable_parameters,
    validate_max_drop,
    weight_sparsity,
)
from .train import evaluate, evaluate_testset

METHODS = ("global", "per-layer")


def validate_ratio(ratio: float) -> float:
    """`ratio` as a float, or ValueError unless 0 <= ratio < 1 (1 would zero every weight).
    Introduced in notebook 02."""
    ratio = as_number("ratio", ratio, "in [0, 1) (the fraction of weights set to zero)")
    if math.isnan(ratio) or not 0.0 <= ratio < 1.0:
        raise ValueError(f"pruning ratio must be in [0, 1) (the fraction of weights set to zero), "
                         f"not {ratio}")
    return ratio


def rank_weights(model: nn.Module, method: str) -> list[MagnitudeRanking]:
    """The prunable weights of `model` ranked by |w| once for `method`: one ranking over all of them
    ("global") or one per layer ("per-layer"), sorted so that each ratio's masks cost one comparison
    instead of a topk over millions of weights. Introduced in notebook 02."""
    if method not in METHODS:
        raise ValueError(f"unknown pruning method {method!r}; choose one of {METHODS}")
    weights = [module.weight for module, _ in prunable_modules(model)]
    if method == "global":
        return [MagnitudeRanking(weights, sort=True)]
    return [MagnitudeRanking([weight], sort=True) for weight in weights]


def ratio_masks(rankings: Sequence[MagnitudeRanking], ratio: float) -> list[torch.Tensor]:
    """One keep-mask per prunable module, in module order, zeroing `ratio` of each ranking's weights:
    the masks of tprune.global_unstructured / tprune.l1_unstructured with L1Unstructured (up to how
    they break exact ties at the threshold). Introduced in notebook 02."""
    ratio = validate_ratio(ratio)
    return [mask for ranking in rankings for mask in ranking.masks(ratio)]


def prune_with_masks(model: nn.Module, masks: Sequence[torch.Tensor]) -> nn.Module:
    """Zero `model`'s Conv2d/Linear weights where `masks` is False, through torch's prune
    (custom_from_mask, then tprune.remove); returns the model. Introduced in notebook 02."""
    for (module, name), mask in zip(prunable_modules(model), masks, strict=True):
        tprune.custom_from_mask(module, name, mask)
    return make_permanent(model)


def make_permanent(model: nn.Module) -> nn.Module:
    """tprune.remove on every pruned module: the zeros stay in `weight`, the mask goes (a state_dict
    without weight_orig / weight_mask). Returns model. Introduced in notebook 02."""
    for module in model.modules():
        for name in [k[: -len("_orig")] for k, _ in module.named_parameters(recurse=False)
                     if k.endswith("_orig")]:
            tprune.remove(module, name)
    return model


def pruned_copy(model: nn.Module, ratio: float, method: str) -> nn.Module:
    """A copy of `model` pruned at `ratio` by `method`, made permanent; `model` is left untouched.
    Introduced in notebook 02."""
    return prune_with_masks(copy.deepcopy(model), ratio_masks(rank_weights(model, method), ratio))


def sweep(model: nn.Module, loader: DataLoader, ratios: Sequence[float],
          methods: Sequence[str] = METHODS) -> pd.DataFrame:
    """evaluate_testset of `model` pruned at each ratio by each method: one row per (method, ratio).

    The weights are ranked once per method (`rank_weights`); each ratio's masks are applied to a
    copy through torch's prune and made permanent. Run it on the validation loader: the ratio is
    chosen from it (so the metric columns drop the source's `test_` prefix: loss, accuracy,
    precision, recall, f1-score). `model` is left untouched. Introduced in notebook 02.
    """
    ratios = [validate_ratio(r) for r in ratios]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown pruning method(s) {unknown}; choose from {METHODS}")
    rows = []
    for method in methods:
        rankings = rank_weights(model, method)
        for ratio in tqdm(ratios, desc=f"sweep {method}", leave=False):
            pruned = prune_with_masks(copy.deepcopy(model), ratio_masks(rankings, ratio))
            rows.append({"method": method, "ratio": ratio, "weight_sparsity": weight_sparsity(pruned),
                         "model_sparsity": get_model_sparsity(pruned),
                         **{k.removeprefix("test_"): v
                            for k, v in evaluate_testset(pruned, loader, progress=False).items()}})
    return pd.DataFrame(rows)


def choose_ratio(table: pd.DataFrame, method: str, max_drop: float) -> float:
    """The largest ratio of `method` whose accuracy is at most `max_drop` points below its ratio-0 row.

    `max_drop` is in percentage points (2.0: two points), as everywhere in the workbook; the table's
    accuracy is source 000's fraction, so the bound is `dense - max_drop / 100`. The table needs a
    ratio-0 row (the unpruned model) for the method. Introduced in notebook 02.
    """
    max_drop = validate_max_drop(max_drop)
    rows = table[table["method"] == method]
    if not (rows["ratio"] == 0).any():
        raise ValueError(f"the table has no ratio 0 row for method {method!r}; sweep with ratio 0 "
                         "included so the drop is measured against the unpruned model")
    dense = rows.loc[rows["ratio"] == 0, "accuracy"].iloc[0]
    ok = rows[rows["accuracy"] >= dense - max_drop / 100 - 1e-6]  # points to a fraction; 1e-6: float32 accuracies
    return float(ok["ratio"].max())


def save_sweep_table(table: pd.DataFrame, path: str | Path) -> Path:
    """Write the sweep table as CSV atomically (a failed run leaves an older table intact).
    Introduced in notebook 02."""
    path = Path(path)
    text = table.to_csv(index=False).encode()
    atomic_write(path, lambda f: f.write(text))
    return path


def sensitivity_scan(model: nn.Module, loader: DataLoader, sparsities: Sequence[float],
                     layer_names: Iterable[str] | None = None) -> pd.DataFrame:
    """Accuracy (%) with one layer pruned at a time to each sparsity, others dense (source 001).

    Each layer's weights are ranked once (`prune.MagnitudeRanking`, so each mask is `calc_mask`'s)
    and each sparsity is applied to a copy; `model` is left untouched. Run it on the validation
    loader: it is what the sparsity dict is chosen from (`prune.choose_sparsity_dict`). Introduced
    in notebook 01.
    """
    names = list(layer_names) if layer_names is not None else list(prunable_parameters(model))
    params = dict(model.named_parameters())
    rows = []
    for name in tqdm(names, desc="sensitivity scan"):
        ranking = MagnitudeRanking([params[name]], sort=True)
        for sparsity in sparsities:
            pruned = copy.deepcopy(model)
            with torch.no_grad():
                dict(pruned.named_parameters())[name].mul_(ranking.masks(sparsity)[0])
            rows.append({"layer": name, "sparsity": sparsity,
                         "accuracy": evaluate(pruned, loader, progress=False)})
    return pd.DataFrame(rows)


def accuracy_at_global_sparsity(model: nn.Module, loader: DataLoader, sparsity: float) -> dict:
    """Prune a copy of `model` globally to `sparsity` (`prune.GlobalPruner`); return its accuracy (%),
    model sparsity and each prunable layer's sparsity (`layer_sparsity`: {weight name: fraction}, as
    `prune.layer_sparsity_table` counts it). What notebook 01's slider draws; `model` itself is left
    untouched. Introduced in notebook 01."""
    pruned = GlobalPruner(model, sparsity).prune(copy.deepcopy(model))
    layers = layer_sparsity_table(pruned)
    return {"weight_sparsity": sparsity, "model_sparsity": get_model_sparsity(pruned),
            "accuracy": evaluate(pruned, loader, progress=False),
            "layer_sparsity": dict(zip(layers["layer"], layers["sparsity"].astype(float)))}
