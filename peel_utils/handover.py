"""Hand-over files: what one notebook passes to the next, and the one way to save and load them (notebooks 01-06).

Each notebook runs in a fresh kernel, so models travel between notebooks as files in
`data/checkpoints/<profile>/`: a `state_dict` checkpoint and, beside it, a JSON record (`Meta`) that says how to
rebuild the model and what it was trained on. `REGISTRY` lists every such file and the notebook that writes it;
`load` rebuilds and loads one, or says which notebook to run first; `train_or_load` trains only when the file
is missing or was made with another recipe.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch.nn as nn

from .checkpoints import load_checkpoint, load_meta, save_checkpoint
from .models import build_model, shrink_to


@dataclass(frozen=True)
class HandOver:
    """One hand-over file: its name, the notebook that writes it, what it holds, and the recipe entries
    (`Meta.extra` keys) it `provides`: those a later notebook or a benchmark reads, so `save` refuses a
    record without them and `read_meta` names the notebook to re-run when an old file lacks one."""

    file: str
    notebook: str
    what: str
    provides: tuple[str, ...] = ()


REGISTRY: dict[str, HandOver] = {
    "lenet": HandOver("01_lenet_dense.pt", "01_lenet_mnist_pruning", "the dense LeNet"),
    "lenet_pruned": HandOver("01_lenet_pruned.pt", "01_lenet_mnist_pruning",
                             "the LeNet pruned by the source's sparsity dict and fine-tuned"),
    "teacher": HandOver("02_resnet50_teacher.pt", "02_resnet50_pruning_sweep", "the dense ResNet50 teacher"),
    "pruned": HandOver("02_resnet50_pruned.pt", "02_resnet50_pruning_sweep", "the teacher pruned once, at the chosen ratio",
                       provides=("prune_method", "ratio", "max_drop", "chosen_by")),  # notebook 03 says how it was made
    "finetuned": HandOver("03_resnet50_finetuned.pt", "03_resnet50_finetune", "the pruned ResNet50, fine-tuned with its masks kept"),
    "gmp": HandOver("03_resnet50_gmp.pt", "03_resnet50_finetune", "the ResNet50 pruned gradually to 90%+ weight sparsity",
                    provides=("dense_same_budget_test_accuracy",  # notebook 06's accuracy bar, a fraction
                              "dense_same_budget_test_outcomes")),  # notebook 07's paired interval: 1/0 per test image
    "student": HandOver("04_resnet18_student.pt", "04_resnet18_distillation", "the ResNet18 distilled from a ResNet50"),
    "control": HandOver("04_resnet18_control.pt", "04_resnet18_distillation", "the ResNet18 trained without a teacher"),
    "structured": HandOver("05_resnet50_structured.pt", "05_structured_pruning_cpd", "the ResNet50 with whole channels removed",
                           provides=("variant", "mac_target", "dense_same_budget_test_accuracy")),  # 06 reads the third
}


@dataclass(frozen=True)
class Meta:
    """The record beside a hand-over file: what rebuilds the model, the data it saw, and its recipe (`extra`).

    `in_channels` is the input's channel count; `layer_channels` (notebook 05 only) the number of channels each
    pruned layer kept, which rebuilds the narrower network.
    """

    arch: str
    num_classes: int
    small_input: bool
    image_size: int
    in_channels: int
    dataset: str
    layer_channels: dict[str, int] | None = None
    extra: dict = field(default_factory=dict)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one input image."""
        return (self.in_channels, self.image_size, self.image_size)

    def with_extra(self, **extra) -> Meta:
        """A copy with more recipe entries (epochs, lr, ...)."""
        return dataclasses.replace(self, extra={**self.extra, **extra})

    def to_json(self) -> dict:
        """The flat JSON record written beside the checkpoint."""
        record = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        if self.layer_channels is None:
            del record["layer_channels"]
        return {**record, **self.extra}

    @classmethod
    def from_json(cls, record: dict, source: str = "the record") -> Meta:
        """Parse a flat record; a missing field is a ValueError naming `source`."""
        required = [f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING
                    and f.default_factory is dataclasses.MISSING]
        missing = [name for name in required if name not in record]
        if missing:
            raise ValueError(f"{source} lacks {missing}")
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        return cls(**{k: v for k, v in record.items() if k in known},
                   extra={k: v for k, v in record.items() if k not in known})


def _entry(key: str) -> HandOver:
    if key not in REGISTRY:
        raise ValueError(f"no hand-over file {key!r}; the registry holds {sorted(REGISTRY)}")
    return REGISTRY[key]


def path(checkpoint_dir: str | Path, key: str, run: int = 0) -> Path:
    """Where hand-over file `key` lives; run r > 0 (a further seed) gets its own file, `<name>_run<r>.pt`."""
    name = Path(_entry(key).file)
    return Path(checkpoint_dir) / (name.name if run == 0 else f"{name.stem}_run{run}{name.suffix}")


def save(model: nn.Module, checkpoint_dir: str | Path, key: str, meta: Meta, run: int = 0) -> Path:
    """Write `model`'s state_dict and its record `meta` (atomically; creates the folder).

    A `meta` lacking a recipe entry the registry says this file provides is a ValueError; nothing is written."""
    entry = _entry(key)
    missing = [name for name in entry.provides if name not in meta.extra]
    if missing:
        raise ValueError(f"hand-over file {key!r} ({entry.file}) must record {', '.join(map(repr, missing))} in its "
                         f"Meta: later notebooks read {'them' if len(missing) > 1 else 'it'}. Add "
                         f"meta.with_extra({', '.join(f'{name}=...' for name in missing)}); nothing was written")
    return save_checkpoint(model, path(checkpoint_dir, key, run), meta.to_json())


def read_meta(checkpoint_dir: str | Path, key: str, *, dataset: str | None = None, run: int = 0) -> Meta:
    """The record of hand-over file `key`. A missing file names the notebook that writes it; a model trained on
    another dataset than `dataset` (when given) is a ValueError saying how to make them agree."""
    entry, file = _entry(key), path(checkpoint_dir, key, run)
    rerun = f"notebooks/{entry.notebook}.ipynb"
    if not file.exists() or not file.with_suffix(".json").exists():
        raise FileNotFoundError(f"{file} (or its .json record) is missing: it is {entry.what}, written by {rerun}; "
                                f"run that notebook first with the same profile")
    meta = Meta.from_json(load_meta(file), f"{file.with_suffix('.json')} (re-run {rerun} to rewrite it)")
    missing = [name for name in entry.provides if name not in meta.extra]
    if missing:
        raise ValueError(f"{file.with_suffix('.json')} lacks {', '.join(map(repr, missing))}, which later notebooks "
                         f"read; it was written by an older {rerun}: re-run that notebook with the same profile")
    if dataset is not None and meta.dataset != dataset:
        raise ValueError(f"{file} was trained on {meta.dataset!r}, not {dataset!r}: set dataset={meta.dataset!r} "
                         f"here, or re-run {rerun} with dataset={dataset!r}")
    return meta


def build(meta: Meta) -> nn.Module:
    """A randomly initialised model of the shape `meta` describes (narrower layers when it has layer_channels)."""
    model = build_model(meta.arch, meta.num_classes, meta.small_input)
    return model if meta.layer_channels is None else shrink_to(model, meta.layer_channels)


def load(checkpoint_dir: str | Path, key: str, *, dataset: str | None = None, run: int = 0) -> tuple[nn.Module, Meta]:
    """Hand-over file `key` rebuilt from its record and loaded, on the CPU in eval mode, with its record."""
    meta = read_meta(checkpoint_dir, key, dataset=dataset, run=run)
    return load_checkpoint(build(meta), path(checkpoint_dir, key, run)).eval(), meta


def is_current(checkpoint_dir: str | Path, key: str, meta: Meta, run: int = 0) -> bool:
    """True when the file exists and was written with exactly this record (the same data and recipe)."""
    file = path(checkpoint_dir, key, run)
    written = json.loads(json.dumps(meta.to_json()))  # as JSON reads it back: tuples become lists
    return file.exists() and file.with_suffix(".json").exists() and load_meta(file) == written


def train_or_load(model: nn.Module, checkpoint_dir: str | Path, key: str, meta: Meta,
                  train: Callable[[], pd.DataFrame], run: int = 0) -> pd.DataFrame:
    """Fill `model` with the weights of hand-over file `key` when it was made with this very `meta`; otherwise
    call `train()` (which trains `model` in place and returns its history), then save the model and the history
    (`<name>.csv`). Returns the history either way, so a cached run reads exactly like a fresh one. A history
    whose `val_accuracy` holds percentages (above 1, written before accuracies became fractions) is not reused:
    the model is trained again, so a cached run never prints other units than a fresh one."""
    file = path(checkpoint_dir, key, run)
    history_path = file.with_suffix(".csv")
    if is_current(checkpoint_dir, key, meta, run) and history_path.exists():
        history = pd.read_csv(history_path)
        if "val_accuracy" not in history or history["val_accuracy"].max() <= 1.0:
            load_checkpoint(model, file)
            print(f"reusing {file} (same recipe)")
            return history
        print(f"training again: {history_path} holds accuracies in percent, from an earlier version of the workbook")
    history = pd.DataFrame(train())
    save(model, checkpoint_dir, key, meta, run)
    history.to_csv(history_path, index=False)
    return history
