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
import numbers
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


def reestimate_bn(model: nn.Module, batches: Iterable) -> nn.Module:
    """Re-estimate every BatchNorm layer's running statistics on `batches` (input tensors, or (inputs, targets)
    pairs): `structured.recalibrate_bn` over all of them, the plain mean over those batches in place of the statistics
    of training, no weight changed. Pruning shifts the activations a BatchNorm layer sees, so the statistics it
    stored no longer fit them. Returns `model` in eval mode. Introduced in notebook 02."""
    from .structured import recalibrate_bn  # imported here: structured loads torch_pruning, which 01-02 never need

    return recalibrate_bn(model, batches, num_batches=None).eval()


def sweep(model: nn.Module, loader: DataLoader, ratios: Sequence[float],
          methods: Sequence[str] = METHODS, bn_batches: Sequence | None = None) -> pd.DataFrame:
    """evaluate_testset of `model` pruned at each ratio by each method: one row per (method, ratio).

    The weights are ranked once per method (`rank_weights`); each ratio's masks are applied to a
    copy through torch's prune and made permanent. Run it on the validation loader: the ratio is
    chosen from it (so the metric columns drop the source's `test_` prefix: loss, accuracy,
    precision, recall, f1-score). With `bn_batches` (a few training batches), every copy, ratio 0
    included, has its BatchNorm statistics re-estimated on them (`reestimate_bn`) before it is
    evaluated. `model` is left untouched. Introduced in notebook 02.
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
            if bn_batches is not None:
                reestimate_bn(pruned, bn_batches)
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


MIN_BOUND_IMAGES = 5
"""A `max_drop` bound that allows fewer validation images than this is too coarse for the rule to resolve: its
choice turns on one or two images, which is noise (`ratio_reading` says so, with the fix)."""


def _validate_val_images(val_images: int) -> int:
    """`val_images` as an int, or TypeError/ValueError naming the value unless a whole number >= 1."""
    message = f"val_images must be the number of validation images, a whole number >= 1, not {val_images!r}; " \
              "pass len(splits.val)"
    if isinstance(val_images, bool) or not isinstance(val_images, numbers.Integral):
        raise TypeError(message)
    if val_images < 1:
        raise ValueError(message)
    return int(val_images)


def val_images_per_point(val_images: int) -> float:
    """How many validation images one percentage point of accuracy is: `val_images / 100` (1.35 on 135 images).
    Introduced in notebook 02."""
    return _validate_val_images(val_images) / 100


def bound_images(max_drop: float, val_images: int) -> int:
    """How many more wrong validation images than the unpruned model `choose_ratio`'s bound of `max_drop` points
    allows on `val_images` images: floor(max_drop / 100 * val_images), with choose_ratio's float tolerance (2 points
    of 135 images: 2). Introduced in notebook 02."""
    max_drop, val_images = validate_max_drop(max_drop), _validate_val_images(val_images)
    return math.floor(val_images * (max_drop / 100 + 1e-6))  # choose_ratio's 1e-6, in images


def _accuracy_by_ratio(table: pd.DataFrame, method: str) -> pd.Series:
    """`method`'s accuracies indexed by ratio; ValueError when the table has no ratio-0 row for it."""
    rows = table[table["method"] == method].set_index("ratio")["accuracy"]
    if 0.0 not in rows.index:
        raise ValueError(f"the table has no ratio 0 row for method {method!r}; sweep with ratio 0 "
                         "included so the drop is measured against the unpruned model")
    return rows


def _images(count: int) -> str:
    return f"{count} image{'' if count == 1 else 's'}"


def ratio_reading(table: pd.DataFrame, method: str, max_drop: float, val_images: int, rule: float) -> str:
    """What the rule can resolve on `val_images` validation images, and what it kept: `rule`, the ratio the
    notebook's `choose_ratio(table, method, max_drop)` returned (passed in, as the hand-out's `choose_ratio` here is a
    stub).

    States how many images one point is and how many the bound allows; where that is fewer than
    `MIN_BOUND_IMAGES`, says the validation set is too small to resolve the bound, with the fix (more validation
    images, or a larger `max_drop`, each with the number that would do). Then the rule's ratio against the
    unpruned model, in images; ratio 0 is said plainly: no weight is pruned. Introduced in notebook 02.
    """
    n, allowed = _validate_val_images(val_images), bound_images(max_drop, val_images)
    sentences = [f"On {n:,} validation images, 1 point is {n / 100:.4g} images (one image is {100 / n:.2g} points), so "
                 f"the bound of {max_drop:g} points allows {_images(allowed)} more wrong than the unpruned model."]
    if allowed < MIN_BOUND_IMAGES:
        need_images = math.ceil(MIN_BOUND_IMAGES * 100 / max_drop) if max_drop > 0 else None
        need_drop = math.ceil(MIN_BOUND_IMAGES * 1000 / n) / 10  # points, rounded up to a tenth
        more = (f"at least {need_images:,} for a {max_drop:g}-point bound to hold {MIN_BOUND_IMAGES}"
                if need_images else "a max_drop of 0 allows none on any number of images")
        larger = (f" or a larger max_drop (at least {need_drop:g} points on these {n:,} images)" if need_drop < 100
                  else f"; no max_drop below 100 points allows {MIN_BOUND_IMAGES} of {n:,} images")
        sentences.append(
            f"That is fewer than {MIN_BOUND_IMAGES} images: this validation set is too small to resolve a "
            f"{max_drop:g}-point bound, so single images decide the rule's choice, which is noise. Fix: more "
            f"validation images ({more}; an imagefolder set takes them from its val/ folder, and max_images, when "
            f"set, cuts the split){larger}.")
    rows = _accuracy_by_ratio(table, method)
    dense = float(rows[0.0])

    def below(accuracy: float) -> str:
        images = round((dense - accuracy) * n)
        return ("level with" if images == 0 else
                f"{_images(abs(images))} {'below' if images > 0 else 'above'}") + f" the unpruned model's {dense:.1%}"

    if rule > 0:
        sentences.append(f"The rule keeps ratio {rule:g}: validation accuracy {rows[rule]:.1%}, {below(rows[rule])}.")
        return " ".join(sentences)
    swept = sorted(r for r in rows.index if r > 0)
    if not swept:
        sentences.append(f"The sweep holds no {method} ratio above 0, so the rule keeps ratio 0: no weight is pruned.")
    else:
        first = swept[0]
        sentences.append(
            f"The rule keeps ratio 0: no weight is pruned. Even the smallest swept ratio, {first:g}, scores "
            f"{rows[first]:.1%} ({below(rows[first])}), more than the bound allows.")
    return " ".join(sentences)


def recalibrated_reading(recalibrated: pd.DataFrame, method: str, max_drop: float, rule: float,
                         recalibrated_rule: float, handed_over: float) -> str:
    """The sentence that sets the rule's choice on the sweep read after BatchNorm re-estimation (`recalibrated`, from
    `sweep(..., bn_batches=...)`; `recalibrated_rule` is the notebook's `choose_ratio` of it) against its choice on the
    plain sweep (`rule`) and the ratio handed over.

    The ratios are passed in (the hand-out's `choose_ratio` here is a stub), the accuracies read from the table, so
    the text cannot disagree with them. The hand-over stays the plain rule's choice (or the ratio parameter's), which
    the sentence says, so later notebooks do not change with this reading. Introduced in notebook 02.
    """
    after = recalibrated_rule
    rows = _accuracy_by_ratio(recalibrated, method)
    reading = (f"Read after BatchNorm re-estimation at every swept ratio, the rule ({method}, max_drop {max_drop:g} "
               f"points) would choose ratio {after:g} (validation accuracy {rows[after]:.1%}, the unpruned model "
               f"re-estimated the same way {rows[0.0]:.1%})")
    if after == rule:
        reading += ", the ratio it chose from the plain sweep: in this run stale statistics do not change the choice."
    elif after > rule:
        reading += (f", against {rule:g} from the plain sweep: up to {after:g} the pruned weights keep the accuracy "
                    f"within the bound once the statistics fit them, so stale statistics set the plain rule's limit.")
    else:
        reading += f", below the {rule:g} it chose from the plain sweep: re-estimation lowers the choice in this run."
    source = "the plain rule's choice" if handed_over == rule else "set by the ratio parameter"
    return reading + (f" The hand-over keeps ratio {handed_over:g} ({source}), so the notebooks after this one do not "
                      "change with this reading.")


def unpruned_note(ratio: float, weight_sparsity: float) -> str:
    """The sentence a notebook prints when the "pruned" model it received has ratio 0 (notebook 02's record,
    `Meta.extra["ratio"]`): no weight was pruned, so comparisons of "pruned" with dense models compare the
    teacher with itself; "" when `ratio` > 0. `weight_sparsity` is the model's measured fraction of zero
    Conv2d/Linear weights. Introduced in notebook 03."""
    ratio = validate_ratio(ratio)
    if ratio > 0:
        return ""
    return (f"The \"pruned\" model notebook 02 handed over has ratio 0 (weight sparsity {weight_sparsity:.4f}): no "
            "weight was pruned, so it is the unpruned teacher, and comparing it with a dense model, or pruning "
            "methods at its ratio, compares the teacher with itself. Notebook 02 chose ratio 0 by its rule (no "
            "swept ratio stayed within max_drop on validation; its Step 7 says by how many images) or by its ratio "
            "parameter. Fix: re-run notebook 02 with more validation images, a larger max_drop or a ratio above 0.")


METHOD_WORDS = {"global": "global magnitude pruning (one threshold over every Conv2d and Linear weight)",
                "per-layer": "per-layer magnitude pruning (every Conv2d and Linear layer loses the same fraction)"}
"""Each method of `METHODS` in words, for the sentences that name how a model was pruned."""


def _from_teacher(accuracy: float, dense: float, named: bool = True) -> str:
    """`accuracy` against the unpruned teacher's `dense` (both fractions), in points: "1.2 points below the
    teacher's 97.6%" ("1.2 points below" when not `named`)."""
    points = round((dense - accuracy) * 100, 1)
    words = "level with" if points == 0 else f"{abs(points):g} point{'' if abs(points) == 1 else 's'} " + (
        "below" if points > 0 else "above")
    return f"{words} the teacher's {dense:.1%}" if named else words.removesuffix(" with")


CHOSEN_BY = ("rule", "ratio parameter")
"""Who set the ratio of notebook 02's pruned model (its hand-over record, `Meta.extra["chosen_by"]`): the rule of its
Step 7, or its `ratio` parameter."""


def choice_reading(table: pd.DataFrame | None, method: str, ratio: float, max_drop: float, chosen_by: str) -> str:
    """Which model notebook 03 fine-tunes and why: notebook 02's ResNet50 pruned by `method` at `ratio`, chosen by
    `chosen_by` (one of `CHOSEN_BY`) under `max_drop` points (its hand-over record: `Meta.extra["prune_method"]`,
    `["ratio"]`, `["chosen_by"]`, `["max_drop"]`), with the validation accuracies of notebook 02's sweep `table`
    (`read_sweep_table`) at that ratio, at ratio 0 (the unpruned teacher) and at the next swept ratio.

    With no table (None, or one without the ratio-0 row) the sentence names the model and says where the numbers
    are. Introduced in notebook 03.
    """
    ratio = validate_ratio(ratio)
    if chosen_by not in CHOSEN_BY:
        raise ValueError(f"chosen_by must be one of {CHOSEN_BY}, not {chosen_by!r}")
    model = (f"This notebook fine-tunes notebook 02's ResNet50 pruned by {METHOD_WORDS.get(method, method)} at ratio "
             f"{ratio:g}" if ratio > 0 else
             "This notebook fine-tunes notebook 02's \"pruned\" ResNet50 at ratio 0, which prunes no weight")
    bound = f"{max_drop:g} point{'' if max_drop == 1 else 's'}"
    rule = (f"the largest swept ratio whose validation accuracy right after pruning stayed within {bound} of the "
            "unpruned teacher (notebook 02's rule, Step 7)")
    why = {"rule": f", {rule}", "ratio parameter": ", set by notebook 02's `ratio` parameter instead of its rule"}[chosen_by]
    rows = None if table is None else table[table["method"] == method].groupby("ratio")["accuracy"].first()
    if rows is None or 0.0 not in rows.index:
        return (f"{model}{why}. Notebook 02's sweep table (02_sweep.csv) is not beside its record, so the validation "
                "accuracies behind that ratio are not shown here; notebook 02's Step 7 prints them.")
    dense, swept = float(rows[0.0]), {float(r): float(a) for r, a in rows.items()}
    at = next((r for r in swept if math.isclose(r, ratio, abs_tol=1e-9)), None)
    if at is None:
        return f"{model}{why}; its sweep did not evaluate that ratio."
    larger = sorted(r for r in swept if r > at)
    if at == 0:
        return (f"{model}{why}" + (
            f": the smallest swept ratio, {larger[0]:g}, scored {swept[larger[0]]:.1%}, "
            f"{_from_teacher(swept[larger[0]], dense)}." if larger else f"; its sweep holds no {method} ratio above 0."))
    following = (f"the next swept ratio, {larger[0]:g}, scored {swept[larger[0]]:.1%}, "
                 f"{_from_teacher(swept[larger[0]], dense, named=False)}"
                 + (", past the bound." if chosen_by == "rule" else ".") if larger else
                 "it is the largest ratio swept.")
    return f"{model}{why}. At {at:g} it scored {swept[at]:.1%}, {_from_teacher(swept[at], dense)}; {following}"


def read_sweep_table(path: str | Path) -> pd.DataFrame | None:
    """The sweep table `save_sweep_table` wrote (notebook 02's `02_sweep.csv`, beside its hand-over files), or None
    when there is none (a hand-over folder made without notebook 02's sweep): `choice_reading` then says so.
    Introduced in notebook 03."""
    path = Path(path)
    return pd.read_csv(path) if path.exists() else None


def save_sweep_table(table: pd.DataFrame, path: str | Path) -> Path:
    """Write the sweep table as CSV atomically (a failed run leaves an older table intact).
    Introduced in notebook 02."""
    path = Path(path)
    text = table.to_csv(index=False).encode()
    atomic_write(path, lambda f: f.write(text))
    return path


def sensitivity_scan(model: nn.Module, loader: DataLoader, sparsities: Sequence[float],
                     layer_names: Iterable[str] | None = None) -> pd.DataFrame:
    """Accuracy (a fraction) with one layer pruned at a time to each sparsity, others dense (source 001).

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
    """Prune a copy of `model` globally to `sparsity` (`prune.GlobalPruner`); return its accuracy (a fraction),
    model sparsity and each prunable layer's sparsity (`layer_sparsity`: {weight name: fraction}, as
    `prune.layer_sparsity_table` counts it). What notebook 01's slider draws; `model` itself is left
    untouched. Introduced in notebook 01."""
    pruned = GlobalPruner(model, sparsity).prune(copy.deepcopy(model))
    layers = layer_sparsity_table(pruned)
    return {"weight_sparsity": sparsity, "model_sparsity": get_model_sparsity(pruned),
            "accuracy": evaluate(pruned, loader, progress=False),
            "layer_sparsity": dict(zip(layers["layer"], layers["sparsity"].astype(float)))}
