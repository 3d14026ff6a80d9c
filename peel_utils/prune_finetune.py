"""CPD's iterative loop: prune a step, recalibrate BatchNorm, fine-tune, repeat until each MAC target.

Each variant (a score, with or without distillation) runs on its own copy of the teacher; its same-budget
control runs the very same steps with the pruning left out. Every variant and control of a run fine-tunes on
the same images (each step's subset is seeded by the seed, the run and the step), so their outcomes are paired.
The score is the caller's: `make_importance(criterion, model, batches)` returns a torch-pruning importance,
for instance the Hessian/Taylor score a student writes. Introduced in notebook 05.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from itertools import islice

import pandas as pd
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm.auto import tqdm

from . import distill, runtime, structured, train

MakeImportance = Callable[[str, nn.Module, list], structured.Importance]


@dataclasses.dataclass(frozen=True)
class Recipe:
    """The loop's settings, named as notebook 05's parameters: the MAC targets (dense MACs / pruned MACs)
    reached one after the other in `steps_per_target` geometric steps each; per step `finetune_images` fresh
    training images (None: all) for `finetune_epochs` of SGD (momentum 0.9, weight decay 5e-4) at `lr`, the
    first `score_batches` of them for the score and `recal_batches` for each BatchNorm recalibration; the
    distillation's `temperature` and `alpha`; at most `max_group_ratio` of a group's channels ever go."""

    speedups: Sequence[float]
    seed: int = 0
    steps_per_target: int = 1
    finetune_images: int | None = None
    finetune_epochs: int = 1
    batch_size: int = 64
    score_batches: int = 2
    recal_batches: int = 4
    lr: float = 0.01
    temperature: float = 4.0
    alpha: float = 0.5
    max_group_ratio: float = 0.9


def step_targets(speedups: Sequence[float], steps_per_target: int) -> list[tuple[float, float, bool]]:
    """(speed-up of the step, its target, last step of that target?) for every step: geometric steps from
    the previous target (1 at first) to each target, so every step cuts the MACs by the same factor."""
    steps, previous = [], 1.0
    for target in speedups:
        steps += [(previous * (target / previous) ** ((k + 1) / steps_per_target), target, k == steps_per_target - 1)
                  for k in range(steps_per_target)]
        previous = target
    return steps


def finetune_loader(train_set: Dataset, recipe: Recipe, run: int, step: int) -> DataLoader:
    """A fresh random subset of `recipe.finetune_images` images of `train_set` (all when None), shuffled; the
    same for every variant and control of a run, whatever ran before (its generator is seeded by the step)."""
    generator = torch.Generator().manual_seed(runtime.seed_phase(recipe.seed, f"fine-tune subset {run} {step}"))
    order = torch.randperm(len(train_set), generator=generator)[:recipe.finetune_images or len(train_set)]
    return DataLoader(Subset(train_set, order.tolist()), batch_size=recipe.batch_size, shuffle=True,
                      generator=generator)


def prune_and_finetune(teacher: nn.Module, input_shape: Sequence[int], train_set: Dataset, val_loader: DataLoader,
                       recipe: Recipe, criterion: str | None, kd: bool, run: int, make_importance: MakeImportance,
                       teacher_logits: distill.TeacherLogits | None = None
                       ) -> tuple[list[dict], dict[float, tuple[nn.Module, float]]]:
    """CPD's loop on a copy of `teacher` (criterion None: the same-budget control, nothing pruned).

    Each step: score on the step's first batches and prune to the step's MACs, recalibrate BatchNorm,
    fine-tune (distilling `teacher` when `kd`), recalibrate again; validation accuracy (a fraction) after each part.
    Returns the step rows (run, step, speedup_target, mac_cut, pruned, bn_recalibrated, fine_tuned) and, per
    target, a copy of the model reached (eval mode) and its validation accuracy. `teacher_logits` reads back the
    teacher's logits of batches another variant has already been distilled on.
    """
    runtime.seed_phase(recipe.seed, f"prune {criterion} {kd} {run}")
    pruner = structured.ChannelPruner(teacher, input_shape, max_group_ratio=recipe.max_group_ratio)
    dense_macs = pruner.macs()
    history, snapshots = [], {}
    steps = step_targets(recipe.speedups, recipe.steps_per_target)
    for step, (speedup, target, last) in enumerate(tqdm(steps, desc=f"{criterion or 'control'}, kd={kd}"), 1):
        subset = finetune_loader(train_set, recipe, run, step)
        if criterion is None:
            model = pruner.model
        else:
            importance = make_importance(criterion, pruner.model, list(islice(subset, recipe.score_batches)))
            model = pruner.prune_to(importance, dense_macs / speedup)
        row = {"run": run, "step": step, "speedup_target": round(speedup, 2),
               "mac_cut": dense_macs / pruner.macs(), "pruned": train.evaluate(model, val_loader, progress=False)}
        structured.recalibrate_bn(model, subset, recipe.recal_batches)
        row["bn_recalibrated"] = train.evaluate(model, val_loader, progress=False)
        optimizer = torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=0.9, weight_decay=5e-4)
        for _ in range(recipe.finetune_epochs):  # the optimizer is new each step: pruning replaced the weights
            if kd:
                distill.train_kd(model, teacher, subset, optimizer, temperature=recipe.temperature, alpha=recipe.alpha,
                                 teacher_logits=teacher_logits)
            else:
                train.train(model, subset, nn.CrossEntropyLoss(), optimizer)
        structured.recalibrate_bn(model, subset, recipe.recal_batches)
        row["fine_tuned"] = train.evaluate(model, val_loader, progress=False)
        history.append(row)
        if last:
            snapshots[target] = (copy.deepcopy(model).eval(), row["fine_tuned"])
    return history, snapshots


@dataclasses.dataclass
class Runs:
    """What `run_variants` returns: one row per step of every variant and run (`steps`), the models reached at
    each (variant, target), one per run (`models`), and run 0's validation accuracy there (`val_accuracy`)."""

    steps: pd.DataFrame
    models: dict[tuple[str, float], list[nn.Module]]
    val_accuracy: dict[tuple[str, float], float]


def run_variants(variants: Mapping[str, tuple[str | None, bool]], make_importance: MakeImportance,
                 teacher: nn.Module, input_shape: Sequence[int], train_set: Dataset, val_loader: DataLoader,
                 recipe: Recipe, seeds: int = 1) -> Runs:
    """`prune_and_finetune` for every variant, name -> (criterion or None for a control, distil?), in `seeds`
    runs; the teacher is never changed. Each run starts from its own seeded state, so a variant's result does
    not depend on which variants ran before it; the variants that distil share one `distill.TeacherLogits`, so a
    batch another has seen costs no teacher pass."""
    if seeds < 1:
        raise ValueError(f"seeds must be at least 1, not {seeds}")
    history, models, val_accuracy = [], {}, {}
    teacher_logits = distill.TeacherLogits(teacher)
    for run in range(seeds):
        for name, (criterion, kd) in variants.items():
            steps, snapshots = prune_and_finetune(teacher, input_shape, train_set, val_loader, recipe,
                                                  criterion, kd, run, make_importance, teacher_logits)
            history += [dict(variant=name, **row) for row in steps]
            for target, (model, accuracy) in snapshots.items():
                models.setdefault((name, target), []).append(model)
                if run == 0:
                    val_accuracy[name, target] = accuracy
    return Runs(pd.DataFrame(history), models, val_accuracy)
