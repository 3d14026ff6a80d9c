"""Training and evaluation loops, with the source documents' names.

`train` is source 001's one-epoch loop (masks re-applied after every step when a pruner is
given); `evaluate` is its accuracy, as a fraction (source 001 prints percent: format it with `:.2%`);
`evaluate_testset` returns source 000's metrics dict.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Protocol

import torch
import torch.nn as nn
from sklearn.metrics import precision_recall_fscore_support
from torch.optim.lr_scheduler import LRScheduler
from torch.utils.data import DataLoader
from tqdm.auto import tqdm


class Pruner(Protocol):
    def prune(self, model: nn.Module) -> nn.Module: ...


def _model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _to_device(inputs: torch.Tensor, device: torch.device) -> torch.Tensor:
    inputs = inputs.to(device, non_blocking=True)
    if device.type == "cuda" and inputs.dim() == 4:
        inputs = inputs.contiguous(memory_format=torch.channels_last)
    return inputs


@torch.no_grad()
def predict(model: nn.Module, loader: DataLoader, progress: bool = True,
            desc: str = "eval") -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and targets of `model` over `loader`, on the CPU: (N, classes), (N,)."""
    model.eval()
    device = _model_device(model)
    all_logits, all_targets = [], []
    for inputs, targets in tqdm(loader, desc=desc, disable=not progress, leave=False):
        with torch.autocast(device.type, enabled=device.type == "cuda"):
            logits = model(_to_device(inputs, device))
        all_logits.append(logits.float().cpu())
        all_targets.append(targets)
    return torch.cat(all_logits), torch.cat(all_targets)


def evaluate(model: nn.Module, loader: DataLoader, progress: bool = True) -> float:
    """Accuracy of `model` on `loader`: the fraction of images classified right, in [0, 1] (source 001's accuracy,
    which it prints in percent; every accuracy in the workbook is a fraction). Introduced in notebook 01."""
    logits, targets = predict(model, loader, progress)
    return (logits.argmax(dim=1) == targets).float().mean().item()


def evaluate_testset(model: nn.Module, loader: DataLoader, progress: bool = True) -> dict[str, float]:
    """Source 000's metrics dict: mean cross-entropy, accuracy (a fraction, as the source) and
    weighted precision, recall and F1. Introduced in notebook 02."""
    logits, targets = predict(model, loader, progress)
    preds = logits.argmax(dim=1)
    precision, recall, f1, _ = precision_recall_fscore_support(
        targets.numpy(), preds.numpy(), average="weighted", zero_division=0)
    return {"test_loss": nn.functional.cross_entropy(logits, targets).item(),
            "test_accuracy": (preds == targets).float().mean().item(),
            "test_precision": float(precision), "test_recall": float(recall), "test_f1-score": float(f1)}


def run_epoch(model: nn.Module, loader: DataLoader, optimizer: torch.optim.Optimizer,
              batch_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], pruner: Pruner | None = None,
              *, batch_scheduler: LRScheduler | None = None, amp: bool = False, desc: str = "train") -> float:
    """The training loop behind `train` and distill.train_kd; returns the mean training loss.

    `batch_loss(inputs, targets)` runs the forward pass of one batch (under autocast) and returns
    its loss; then one optimizer step (and one step of `batch_scheduler`, a schedule counted in
    batches such as `one_cycle`'s), and with a pruner its masks are re-applied so pruned weights
    stay exactly zero. amp turns on CUDA mixed precision (ignored on the CPU).
    """
    model.train()
    device = _model_device(model)
    amp = amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    total, count = 0.0, 0
    for inputs, targets in tqdm(loader, desc=desc, leave=False):
        inputs, targets = _to_device(inputs, device), targets.to(device, non_blocking=True)
        optimizer.zero_grad()
        with torch.autocast(device.type, enabled=amp):
            loss = batch_loss(inputs, targets)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        if batch_scheduler is not None:
            batch_scheduler.step()
        if pruner is not None:
            pruner.prune(model)
        total += loss.item() * targets.size(0)
        count += targets.size(0)
    return total / count


def train(model: nn.Module, loader: DataLoader, loss_fn: Callable, optimizer: torch.optim.Optimizer,
          pruner: Pruner | None = None, *, batch_scheduler: LRScheduler | None = None, amp: bool = False,
          desc: str = "train") -> float:
    """One epoch of training (source 001's `train`); returns the mean training loss.

    With a pruner, its masks are re-applied after every optimizer step, so pruned weights stay
    exactly zero. amp turns on CUDA mixed precision (ignored on the CPU).
    """
    return run_epoch(model, loader, optimizer, lambda inputs, targets: loss_fn(model(inputs), targets),
                     pruner, batch_scheduler=batch_scheduler, amp=amp, desc=desc)


def one_cycle(params, lr: float, total_steps: int, weight_decay: float = 0.05
              ) -> tuple[torch.optim.Optimizer, LRScheduler]:
    """AdamW with a one-cycle schedule counted in batches: warm-up to `lr` over the first 30% of
    `total_steps`, then cosine annealing to lr / 10^4. The quick teacher's recipe (notebook 02);
    pass the scheduler to `fit(..., batch_scheduler=...)`, which steps it after every batch."""
    if total_steps < 1:
        raise ValueError(f"total_steps must be at least 1, not {total_steps}")
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    return optimizer, torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=total_steps)


def fit(model: nn.Module, train_loader: DataLoader, val_loader: DataLoader,
        optimizer: torch.optim.Optimizer, num_epochs: int, *, pruner: Pruner | None = None,
        scheduler: LRScheduler | None = None, batch_scheduler: LRScheduler | None = None, amp: bool = False,
        loss_fn: Callable = nn.CrossEntropyLoss(), select_from: int = 1) -> tuple[list[dict], dict[str, torch.Tensor]]:
    """Train for `num_epochs`, evaluating on validation after each; keep the best epoch's weights.

    `scheduler` steps after every epoch, `batch_scheduler` after every batch (`one_cycle`). The best
    epoch is chosen among epochs `select_from` and later (e.g. once a gradual pruner has reached its
    final sparsity). Returns the history (one dict per epoch: epoch, train_loss, val_accuracy as a fraction) and the
    best state_dict (a copy; load it with model.load_state_dict). Introduced in notebook 01.
    """
    return fit_epochs(model, val_loader, num_epochs,
                      lambda epoch: train(model, train_loader, loss_fn, optimizer, pruner,
                                          batch_scheduler=batch_scheduler, amp=amp, desc=f"epoch {epoch}"),
                      scheduler, select_from)


def fit_epochs(model: nn.Module, val_loader: DataLoader, num_epochs: int, train_epoch: Callable[[int], float],
               scheduler: LRScheduler | None = None, select_from: int = 1
               ) -> tuple[list[dict], dict[str, torch.Tensor]]:
    """The epoch loop behind `fit` and distill.fit_kd: `train_epoch(epoch)` trains one epoch and
    returns its loss; then the scheduler steps and `model` is validated. Returns (history, best state
    among epochs `select_from` and later)."""
    if not 1 <= select_from <= max(num_epochs, 1):
        raise ValueError(f"select_from must be an epoch between 1 and {num_epochs}, not {select_from}")
    history: list[dict] = []
    best_state, best_accuracy = copy.deepcopy(model.state_dict()), -1.0
    for epoch in tqdm(range(1, num_epochs + 1), desc="epochs"):
        loss = train_epoch(epoch)
        if scheduler is not None:
            scheduler.step()
        accuracy = evaluate(model, val_loader, progress=False)
        history.append({"epoch": epoch, "train_loss": loss, "val_accuracy": accuracy})
        if epoch >= select_from and accuracy > best_accuracy:
            best_accuracy, best_state = accuracy, copy.deepcopy(model.state_dict())
    return history, best_state
