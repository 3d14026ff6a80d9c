"""Instant checks for the workbook's exercises: one function per exercise, run in the cell after it.

A check runs the student's code on small fixed inputs with known answers (and on seeded random
ones, against the reference in peel_utils), then prints one line, "✓ passed: ...", or raises
CheckFailed (an AssertionError) saying in plain words what is wrong. It never shows solution code.
A stub's NotImplementedError passes through unchanged; any other error in the student's code is
reported as CheckFailed, chained to the original so its traceback stays visible. The checks
leave the global random state as they found it.
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Callable

import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from . import distill, prune


class CheckFailed(AssertionError):
    """An exercise's answer is wrong; the message says how."""


def _passed(message: str) -> None:
    print(f"✓ passed: {message}")


def _fail(exercise: str, message: str) -> None:
    __tracebackhide__ = True  # IPython and pytest hide this frame: the message is what matters
    raise CheckFailed(f"{exercise}: {message}")


def _call(exercise: str, what: str, fn: Callable, *args, **kwargs):
    """fn(*args, **kwargs); an error other than the stub's becomes CheckFailed naming the call."""
    __tracebackhide__ = True
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise
    except Exception as err:
        raise CheckFailed(f"{exercise}: {what} raised {type(err).__name__}: {err}") from err


def _keep_rng(check: Callable) -> Callable:
    """Run a check without moving the global (CPU) random state, so later cells are unaffected."""
    @functools.wraps(check)
    def wrapper(*args, **kwargs):
        __tracebackhide__ = True
        with torch.random.fork_rng(devices=[]):
            return check(*args, **kwargs)
    return wrapper


def _fill_(model: nn.Module, seed: int) -> nn.Module:
    """Overwrite every parameter with seeded normal values (a private generator)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.randn(param.shape, generator=gen))
    return model


def _two_layer(seed: int, sizes: tuple[int, int, int] = (6, 4, 3)) -> nn.Sequential:
    """A tiny MLP, Linear-ReLU-Linear; its weights are '0.weight' and '2.weight'."""
    return _fill_(nn.Sequential(nn.Linear(sizes[0], sizes[1]), nn.ReLU(), nn.Linear(sizes[1], sizes[2])), seed)


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: param.detach().clone() for name, param in model.named_parameters()}


# --- notebook 01 -----------------------------------------------------------------------------

@_keep_rng
def check_get_model_sparsity(get_model_sparsity: Callable[[nn.Module], float]) -> None:
    """Exact answers on a two-layer model with 12 of its 23 parameters zero (3 of them biases)."""
    __tracebackhide__ = True
    name = "get_model_sparsity"
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))  # 12 + 3 + 6 + 2 = 23 parameters
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[0.0, 0.5, 0.0, -0.2],
                                            [0.3, 0.0, 0.0, 0.1],
                                            [0.0, -0.4, 1e-12, 0.0]]))  # 6 zeros; 1e-12 is not zero
        model[0].bias.copy_(torch.tensor([0.0, 0.1, 0.0]))                # 2 zeros
        model[2].weight.copy_(torch.tensor([[0.7, 0.0, -0.1],
                                            [0.0, 0.2, 0.0]]))            # 3 zeros
        model[2].bias.copy_(torch.tensor([0.2, 0.0]))                     # 1 zero
    before = _snapshot(model)
    got = _call(name, "get_model_sparsity(model)", get_model_sparsity, model)
    if isinstance(got, torch.Tensor):
        _fail(name, "it returned a torch.Tensor; return a plain Python float (a one-element tensor's "
                    ".item() gives one)")
    if isinstance(got, bool) or not isinstance(got, (int, float)):
        _fail(name, f"it returned {type(got).__name__} {got!r}; it should return a float between 0 and 1")
    if any(not torch.equal(before[n], p) for n, p in model.named_parameters()):
        _fail(name, "it changed the model's parameters; measuring sparsity must only read them")
    expected = 12 / 23
    wrong = {9 / 18: "it counts only the weight matrices (9 of 18 zero); biases are parameters too, "
                     "so count every parameter of the model",
             11 / 23: "it returned the fraction of non-zero parameters; sparsity is the fraction that is "
                      "exactly zero",
             13 / 23: "it counted a tiny non-zero value (1e-12) as zero; count exact zeros only",
             12.0: "it returned the number of zeros; return the fraction of all parameters that are zero"}
    if not math.isclose(got, expected, abs_tol=1e-9):
        for value, why in wrong.items():
            if math.isclose(got, value, abs_tol=1e-9):
                _fail(name, f"got {got:.4f}, expected {expected:.4f} (12 of 23 parameters are zero): {why}")
        _fail(name, f"got {got!r}, expected {expected:.4f}: 12 of this model's 23 parameters are exactly zero")
    dense = _fill_(nn.Linear(3, 2), seed=1)
    got = _call(name, "get_model_sparsity on a dense model", get_model_sparsity, dense)
    if not math.isclose(float(got), 0.0, abs_tol=1e-9):
        _fail(name, f"a model without zeros should have sparsity 0.0, got {got!r}")
    with torch.no_grad():
        dense.weight.zero_()
        dense.bias.zero_()
    got = _call(name, "get_model_sparsity on an all-zero model", get_model_sparsity, dense)
    if not math.isclose(float(got), 1.0, abs_tol=1e-9):
        _fail(name, f"a model whose parameters are all zero should have sparsity 1.0, got {got!r}")
    _passed("get_model_sparsity counts exact zeros over all parameters (biases included) "
            "and returns a float fraction")


_W = torch.tensor([[-0.12, -0.10, -0.17, 0.07, -0.01],
                   [-0.06, -0.11, 0.19, -0.22, -0.13],
                   [-0.15, -0.25, -0.18, -0.08, -0.24],
                   [0.05, 0.20, -0.04, -0.16, -0.09],
                   [0.03, -0.23, -0.21, -0.02, -0.14]])  # (5, 5), 25 distinct magnitudes
_W_MASK_60 = torch.tensor([[0, 0, 1, 0, 0],
                           [0, 0, 1, 1, 0],
                           [0, 1, 1, 0, 1],
                           [0, 1, 0, 1, 0],
                           [0, 1, 1, 0, 0]], dtype=torch.bool)  # keeps the 10 largest |w|


def _check_mask(name: str, mask, shape: torch.Size, call: str) -> torch.Tensor:
    __tracebackhide__ = True
    if not isinstance(mask, torch.Tensor):
        _fail(name, f"{call} returned {type(mask).__name__}, not a tensor")
    if mask.shape != shape:
        _fail(name, f"wrong shape: {call} returned a mask of shape {tuple(mask.shape)}; it must have the "
                    f"input's shape {tuple(shape)}, one entry per weight")
    if mask.dtype != torch.bool:
        _fail(name, f"wrong dtype: {call} returned {mask.dtype}; the mask should be torch.bool "
                    "(True keeps a weight, False prunes it)")
    return mask


@_keep_rng
def check_calc_mask(calc_mask: Callable[[torch.Tensor, float], torch.Tensor]) -> None:
    """A 5x5 tensor with a known mask at sparsity 0.6, the edge sparsities 0 and 1, random
    tensors of several shapes against prune.calc_mask, and a ValueError outside [0, 1]."""
    __tracebackhide__ = True
    name = "calc_mask"
    w = _W.clone()
    call = "calc_mask(w, 0.6) on a 5x5 tensor"
    mask = _check_mask(name, _call(name, call, calc_mask, w, 0.6), w.shape, call)
    if not torch.equal(w, _W):
        _fail(name, "it changed the tensor it was given; computing a mask must only read the weights")
    zeros = int((~mask).sum())
    if zeros != 15:
        why = {10: ": it pruned 1 - sparsity of the weights; sparsity is the fraction removed",
               14: ": one too few; the k-th smallest magnitude itself is pruned (keep what lies strictly above it)",
               16: ": one too many; exactly round(numel * sparsity) weights go"}.get(zeros, "")
        _fail(name, f"wrong count of zeros: expected exactly 15 zeros (round(25 * 0.6)) and 10 kept, "
                    f"got {zeros} zeros{why}")
    if not torch.equal(mask, _W_MASK_60):
        kept = w[mask].abs()
        if torch.equal(mask, w > w.view(-1).kthvalue(15).values):
            why = "it ranks the signed values, so large negative weights are pruned; rank by magnitude |w|"
        elif float(kept.max()) < float(w[~mask].abs().max()):
            why = "it keeps the smallest-magnitude weights; it should keep the largest |w|"
        else:
            why = f"{int((mask != _W_MASK_60).sum()) // 2} kept weights are not among the 10 largest |w|"
        _fail(name, f"the mask keeps the wrong weights: {why}")
    for sparsity, keep_all in ((0.0, True), (1.0, False)):
        should = "keep every weight (all True)" if keep_all else "prune every weight (all False)"
        call = f"calc_mask(w, {sparsity}), which should {should},"
        edge = _check_mask(name, _call(name, call, calc_mask, w, sparsity), w.shape, call)
        if not bool((edge == keep_all).all()):
            _fail(name, f"{call} prunes {int((~edge).sum())} of 25")
    gen = torch.Generator().manual_seed(7)
    for shape, sparsity in (((3, 4), 0.5), ((4, 2, 3, 3), 0.85), ((16, 8), 0.7)):
        tensor = nn.Parameter(torch.randn(shape, generator=gen))  # the pruner passes parameters
        call = f"calc_mask on a random {shape} parameter at sparsity {sparsity}"
        got = _check_mask(name, _call(name, call, calc_mask, tensor, sparsity), tensor.shape, call)
        expected = prune.calc_mask(tensor, sparsity)
        if not torch.equal(got, expected):
            _fail(name, f"{call}: expected {int((~expected).sum())} zeros at the smallest magnitudes, got "
                        f"{int((~got).sum())} zeros, {int((got != expected).sum())} entries differ")
    for bad in (1.5, -0.1):
        try:
            calc_mask(w, bad)
        except ValueError:
            continue
        except NotImplementedError:
            raise
        except Exception as err:
            _fail(name, f"calc_mask(w, {bad}) raised {type(err).__name__}; a sparsity outside [0, 1] "
                        "should raise ValueError with a message saying so")
        _fail(name, f"calc_mask(w, {bad}) returned a mask; a sparsity outside [0, 1] should raise ValueError")
    _passed("calc_mask keeps the largest magnitudes, prunes exactly round(numel * sparsity) weights, "
            "returns a bool mask of the input's shape and refuses a sparsity outside [0, 1]")


@_keep_rng
def check_sparse_pruner(pruner_class: type) -> None:
    """`prune(model)` must zero exactly the masked weights of the model it is given, in place,
    keep the rest (biases included) and return that model. Tested with fixed masks."""
    __tracebackhide__ = True
    name = "SparsePruner.prune"
    source = _two_layer(seed=0)
    pruner = _call(name, "SparsePruner(model, sparsity_dict)", pruner_class, source,
                   {"0.weight": 0.5, "2.weight": 0.5})
    gen = torch.Generator().manual_seed(1)
    masks = {n: torch.rand(p.shape, generator=gen) > 0.5 for n, p in source.named_parameters() if p.dim() > 1}
    pruner.masks = masks  # fixed masks, so this checks prune whatever calc_mask did
    model = _two_layer(seed=2)  # another model of the same architecture, as after training
    before = _snapshot(model)
    identities = {n: p for n, p in model.named_parameters()}
    result = _call(name, "pruner.prune(model)", pruner.prune, model)
    after = _snapshot(model)
    if all(torch.equal(before[n], after[n]) for n in before):
        if isinstance(result, nn.Module) and result is not model:
            _fail(name, "it pruned a copy and left the model it was given unchanged; prune must change "
                        "the given model in place (the fine-tuning loop calls it after every step)")
        _fail(name, "the model's weights are unchanged after prune; the masked weights must become zero in the "
                    "model's own parameters (an in-place operation; assigning to a local name changes nothing)")
    if any(p is not identities[n] for n, p in model.named_parameters()):
        _fail(name, "it replaced the model's parameter objects; an optimizer built before pruning would keep "
                    "updating the old ones. Change the values of the existing parameters in place")
    for n, mask in masks.items():
        if not torch.equal(after[n], before[n] * mask):
            fresh = prune.calc_mask(before[n], 0.5)
            if torch.equal(after[n], before[n] * fresh):
                _fail(name, f"{n}: it computed a new mask from the model's current weights; prune must apply "
                            "the masks made in __init__ (self.masks), so the zeros stay where they were")
            still = int(((after[n] != 0) & ~mask).sum())
            changed = int(((after[n] != before[n]) & mask).sum())
            _fail(name, f"{n}: {still} weights whose mask is False are not zero and {changed} weights whose "
                        "mask is True were changed; multiply each weight by its own mask")
    for n in before:
        if n not in masks and not torch.equal(before[n], after[n]):
            _fail(name, f"it changed {n}; only the weights that have a mask in self.masks are pruned")
    if result is not model:
        _fail(name, f"it returned {type(result).__name__ if result is not None else 'None'}; return the "
                    "model it was given, so `pruned = pruner.prune(copy.deepcopy(model))` works")
    _passed("SparsePruner.prune zeroes exactly the masked weights, in place, keeps biases "
            "and returns the model")


def _masked_epoch(model: nn.Module, loader: DataLoader, loss_fn: Callable, optimizer: torch.optim.Optimizer,
                  pruner: prune.SparsePruner, *, zero_grad: bool = True, prune_each_step: bool = True) -> None:
    """peel_utils.train.train's epoch without its progress bar (a test checks they agree), or, with
    a flag off, one of two typical mistakes, to name the mistake a student made."""
    device = next(model.parameters()).device
    model.train()
    for inputs, targets in loader:
        if zero_grad:
            optimizer.zero_grad()
        loss_fn(model(inputs.to(device)), targets.to(device)).backward()
        optimizer.step()
        if prune_each_step:
            pruner.prune(model)
    if not prune_each_step:
        pruner.prune(model)


@_keep_rng
def check_masked_training_step(train_one_epoch: Callable, device: str | torch.device = "cpu") -> None:
    """One epoch on 4 fixed batches with momentum SGD, against peel_utils.train.train's: the pruned
    weights must stay exactly zero and the others must train as one masked step per batch."""
    __tracebackhide__ = True
    name = "train_one_epoch"
    device = torch.device(device)
    gen = torch.Generator().manual_seed(3)
    inputs, targets = torch.randn(24, 8, generator=gen), torch.randint(0, 3, (24,), generator=gen)
    loader = DataLoader(TensorDataset(inputs, targets), batch_size=6, shuffle=False)  # 4 batches
    base = _two_layer(seed=4, sizes=(8, 6, 3)).to(device)
    pruner = prune.SparsePruner(base, {"0.weight": 0.5, "2.weight": 0.5})
    pruner.prune(base)
    loss_fn = nn.CrossEntropyLoss()

    def run(epoch: Callable, **kwargs) -> dict[str, torch.Tensor]:
        model = copy.deepcopy(base)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        epoch(model, loader, loss_fn, optimizer, pruner, **kwargs)
        return _snapshot(model)

    got = _call(name, "train_one_epoch(model, loader, loss_fn, optimizer, pruner)", run, train_one_epoch)
    start = _snapshot(base)
    if all(torch.equal(got[n], start[n]) for n in start):
        _fail(name, "the weights did not change in one epoch of 4 batches: no optimizer step was taken")
    grown = sum(int(((got[n] != 0) & ~mask).sum()) for n, mask in pruner.masks.items())
    if grown:
        _fail(name, f"{grown} pruned weights are non-zero after training; re-apply the masks after every "
                    "optimizer step, or the pruned weights grow back")

    def close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
        return all(torch.allclose(a[n], b[n], rtol=1e-4, atol=1e-6) for n in a)

    reference = run(_masked_epoch)
    if not close(got, reference):
        if close(got, run(_masked_epoch, zero_grad=False)):
            _fail(name, "the gradients accumulate from batch to batch; clear them before each backward pass")
        if close(got, run(_masked_epoch, prune_each_step=False)):
            _fail(name, "the masks are applied only after the last batch; the pruned weights must be back at "
                        "zero after every step, while the other weights train")
        diff = max(float((got[n] - reference[n]).abs().max()) for n in got)
        _fail(name, f"after 4 batches the weights differ from the expected ones by up to {diff:.3g}: each batch "
                    "should take one optimizer step on that batch's loss, then re-apply the masks")
    _passed("train_one_epoch takes one optimizer step per batch and keeps the pruned weights at zero")


# --- notebook 04 -----------------------------------------------------------------------------

_STUDENT = torch.tensor([[2.0, 0.5, -1.0], [0.1, 1.5, 0.3], [-0.5, 0.2, 2.2], [1.0, 1.0, 0.0]])  # (4, 3)
_TEACHER = torch.tensor([[3.0, -1.0, 0.0], [0.0, 2.5, -0.5], [0.5, 0.5, 1.0], [2.0, 0.0, -1.0]])  # (4, 3)
_TARGETS = torch.tensor([0, 1, 2, 0])


def _kl_variants(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> dict[str, torch.Tensor]:
    """The distillation term (alpha = 1) as written correctly and with typical mistakes."""
    log_s = F.log_softmax(student / temperature, dim=1)
    log_t = F.log_softmax(teacher / temperature, dim=1)
    kl_rows = (log_t.exp() * (log_t - log_s)).sum(dim=1)  # (N,)
    reverse_rows = (log_s.exp() * (log_s - log_t)).sum(dim=1)
    soft_ce_rows = -(log_t.exp() * log_s).sum(dim=1)
    t2 = temperature ** 2
    return {"right": t2 * kl_rows.mean(),
            "it does not multiply the soft term by T² (the gradients of a softened KL shrink as 1/T², "
            "T² restores them)": kl_rows.mean(),
            "it averages the KL over the classes as well ('mean'); average over the batch only "
            "(F.kl_div's reduction='batchmean')": t2 * kl_rows.mean() / student.size(1),
            "it sums the KL over the batch; average it over the batch": t2 * kl_rows.sum(),
            "the KL runs the wrong way: it should be KL(teacher || student), the teacher's soft "
            "probabilities weighing the log-ratio": t2 * reverse_rows.mean(),
            "it uses the cross-entropy with the soft targets, which adds the teacher's entropy; the KL "
            "subtracts it, so that the term is zero when the student matches the teacher": t2 * soft_ce_rows.mean()}


@_keep_rng
def check_distillation_loss(distillation_loss: Callable) -> None:
    """`distillation_loss(student_logits, teacher_logits, targets, temperature, alpha)` on hand-made
    logits (4 images, 3 classes): 0 for equal logits at alpha = 1, the plain cross-entropy at
    alpha = 0, peel_utils.distill.kd_loss's values for several T and alpha, one number per batch,
    and gradients to the student only."""
    __tracebackhide__ = True
    name = "distillation_loss"
    student, teacher, targets = _STUDENT.clone(), _TEACHER.clone(), _TARGETS.clone()

    def loss(s, t, temperature, alpha):
        __tracebackhide__ = True
        call = f"distillation_loss(student, teacher, targets, temperature={temperature}, alpha={alpha})"
        out = _call(name, call, distillation_loss, s, t, targets, temperature, alpha)
        if not isinstance(out, torch.Tensor):
            _fail(name, f"{call} returned {type(out).__name__}; return the loss as a tensor, so that "
                        "loss.backward() can train the student")
        if out.dim() != 0:
            _fail(name, f"wrong shape: {call} returned shape {tuple(out.shape)}; the loss is one number for "
                        "the batch (a 0-dim tensor): average the per-image terms over the batch")
        return float(out)

    swapped = "alpha weighs the wrong term: alpha multiplies the distillation term, 1 - alpha the cross-entropy"
    ce, ce_soft = F.cross_entropy(student, targets), F.cross_entropy(student / 4.0, targets)
    got = loss(student, student.clone(), 4.0, 1.0)
    if abs(got) > 1e-5:
        known = [why for why, value in _kl_variants(student, student, 4.0).items()
                 if abs(float(value)) > 1e-5 and math.isclose(got, float(value), rel_tol=1e-4)]
        known += [swapped] if math.isclose(got, float(ce), rel_tol=1e-4) else []
        _fail(name, f"with alpha = 1 and the student's logits equal to the teacher's, the loss should be 0 "
                    f"(a distribution's KL divergence from itself), got {got:.4f}" + "".join(f": {w}" for w in known))
    if not torch.equal(student, _STUDENT) or not torch.equal(teacher, _TEACHER):
        _fail(name, "it changed the logits it was given; a loss must only read them")
    got = loss(student, teacher, 4.0, 0.0)
    if not math.isclose(got, float(ce), rel_tol=1e-4, abs_tol=1e-6):
        if math.isclose(got, float(ce_soft), rel_tol=1e-4):
            why = "the cross-entropy on the labels uses the logits divided by T; use the raw logits (T = 1)"
        elif math.isclose(got, float(_kl_variants(student, teacher, 4.0)["right"]), rel_tol=1e-4):
            why = swapped
        else:
            why = "at alpha = 0 only the cross-entropy on the labels is left"
        _fail(name, f"with alpha = 0 the loss should be the plain cross-entropy, {float(ce):.4f}, got {got:.4f}: {why}")
    for temperature in (1.0, 2.0, 4.0):
        got = loss(student, teacher, temperature, 1.0)
        variants = _kl_variants(student, teacher, temperature)
        expected = float(variants.pop("right"))
        if not math.isclose(got, expected, rel_tol=1e-4, abs_tol=1e-6):
            for why, value in variants.items():
                if math.isclose(got, float(value), rel_tol=1e-4):
                    _fail(name, f"at T = {temperature}, alpha = 1: expected {expected:.4f}, got {got:.4f}: {why}")
            _fail(name, f"at T = {temperature}, alpha = 1 the loss should be T² times the batch-mean "
                        f"KL(teacher || student) of the softened distributions, {expected:.4f}, got {got:.4f}")
    for temperature, alpha in ((2.0, 0.3), (4.0, 0.5), (3.0, 0.9)):
        expected = float(distill.kd_loss(student, teacher, targets, temperature, alpha))
        got = loss(student, teacher, temperature, alpha)
        if not math.isclose(got, expected, rel_tol=1e-4, abs_tol=1e-6):
            _fail(name, f"at T = {temperature}, alpha = {alpha}: expected alpha * T² * KL + (1 - alpha) * CE "
                        f"= {expected:.4f}, got {got:.4f}")
    s, t = student.clone().requires_grad_(), teacher.clone().requires_grad_()
    out = _call(name, "distillation_loss(...).backward()", lambda: distillation_loss(s, t, targets, 4.0, 0.5))
    _call(name, "loss.backward()", out.backward)
    if t.grad is not None and bool(t.grad.abs().gt(0).any()):
        _fail(name, "gradients flow into the teacher's logits; detach them (the teacher is not trained)")
    if s.grad is None or not bool(s.grad.abs().gt(0).any()):
        _fail(name, "no gradient reaches the student's logits; build the loss from them with torch operations")
    _passed("distillation_loss is 0 for equal logits, the plain cross-entropy at alpha = 0, scales the "
            "batch-mean KL by T² and trains the student only")


# --- notebook 05 -----------------------------------------------------------------------------

class _TinyConvNet(nn.Module):
    """conv1 -> bn1 -> tanh -> conv2 -> mean over space -> fc: two coupled groups, small enough to
    work out each channel's score by hand. tanh, not ReLU: finite differences across a ReLU's
    kink would not match the exact Hessian."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 3, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(3)
        self.conv2 = nn.Conv2d(3, 2, 1, bias=False)
        self.fc = nn.Linear(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 1, 6, 6) -> (B, 2)
        x = self.conv2(torch.tanh(self.bn1(self.conv1(x))))  # (B, 2, 4, 4)
        return self.fc(x.mean(dim=(2, 3)))


def _relative_error(got: list[torch.Tensor], expected: list[torch.Tensor]) -> float:
    num = sum(float((g - e).pow(2).sum()) for g, e in zip(got, expected))
    den = sum(float(e.pow(2).sum()) for e in expected)
    return math.sqrt(num / max(den, 1e-30))


def _scale_mistake(got: list[torch.Tensor], expected: list[torch.Tensor], known: dict[float, str],
                   tolerance: float) -> str:
    """If `got` is `expected` times one of the known factors, the mistake that factor means."""
    for factor, why in known.items():
        if _relative_error(got, [factor * e for e in expected]) < tolerance:
            return why
    return ""


@_keep_rng
def check_hessian_taylor_stats(hessian_taylor_stats: Callable, device: str | torch.device = "cpu") -> None:
    """`first, second = hessian_taylor_stats(model, batches)` on a tiny float64 conv net and two
    batches: first must be θ ⊙ ∂L/∂θ and second θ² ⊙ v ⊙ Hv (v the function's own Gaussian
    probe), both averaged over the batches; Hv is compared with its exact autograd value."""
    __tracebackhide__ = True
    name = "hessian_taylor_stats"
    device = torch.device(device)
    dtype = torch.float32 if device.type == "mps" else torch.float64  # MPS has no float64
    gen = torch.Generator().manual_seed(5)
    model = _fill_(_TinyConvNet(), seed=6).to(device, dtype)
    batches = [(torch.randn(4, 1, 6, 6, generator=gen, dtype=dtype), torch.randint(0, 2, (4,), generator=gen))
               for _ in range(2)]
    with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
        torch.manual_seed(11)
        out = _call(name, "hessian_taylor_stats(model, batches)", hessian_taylor_stats, model, batches)
        if not (isinstance(out, tuple) and len(out) == 2 and all(isinstance(d, dict) for d in out)):
            _fail(name, "it should return two dicts, (first, second), each mapping a layer to a tensor "
                        "shaped like its weight")
        layers = [m for m in model.modules() if m in out[0]]
        if not layers:
            _fail(name, "first is empty: it should hold one entry per layer with weights")
        weights = [m.weight for m in layers]
        expected = {key: [torch.zeros_like(w) for w in weights] for key in
                    ("first", "second", "last first", "last second", "without v", "θ not squared")}
        torch.manual_seed(11)  # the same probes v as the function drew, in the same order
        model.eval()
        for inputs, targets in batches:
            inputs, targets = inputs.to(device), targets.to(device)
            probe = [torch.randn_like(w) for w in weights]
            grad = torch.autograd.grad(F.cross_entropy(model(inputs), targets), weights, create_graph=True)
            hv = torch.autograd.grad(grad, weights, grad_outputs=probe)  # the exact H v
            for i, (w, g, v, h) in enumerate(zip(weights, grad, probe, hv)):
                w, g = w.detach(), g.detach()
                terms = {"first": w * g, "second": w ** 2 * v * h,
                         "without v": w ** 2 * h, "θ not squared": w * v * h}
                for key, term in terms.items():
                    expected[key][i] += term / len(batches)
                expected["last first"][i] = terms["first"] / len(batches)  # '=' where '+=' was meant
                expected["last second"][i] = terms["second"] / len(batches)
    for label, got_dict in zip(("first", "second"), out):
        got = [got_dict.get(m) for m in layers]
        for m, g, w in zip(layers, got, weights):
            if not isinstance(g, torch.Tensor) or g.shape != w.shape:
                shape = tuple(g.shape) if isinstance(g, torch.Tensor) else type(g).__name__
                _fail(name, f"{label}[{type(m).__name__}] should be a tensor shaped like its weight "
                            f"{tuple(w.shape)}, got {shape}")
        got = [g.detach() for g in got]
        ref = expected[label]
        tolerance = 1e-6 if label == "first" and dtype == torch.float64 else 3e-2
        if _relative_error(got, ref) <= tolerance:
            continue
        why = _scale_mistake(got, ref, {2.0: "it sums over the batches; average them (divide by their number)",
                                        -1.0: "its sign is flipped",
                                        1e-3: "Hv is not divided by the step h",
                                        1e3: "it divides by h once too often"}, tolerance)
        variants = {f"last {label}": "it keeps only the last batch's value; add up every batch's contribution"}
        if label == "second":
            variants.update({"without v": "it leaves out the probe: the estimate of diag(H) is v ⊙ Hv",
                             "θ not squared": "it multiplies by θ, not θ² (the mask Hessian's diagonal is "
                                              "θ² ⊙ diag(H))"})
        for key, mistake in variants.items():
            if not why and _relative_error(got, expected[key]) < tolerance:
                why = mistake
        what = "θ ⊙ ∂L/∂θ" if label == "first" else "θ² ⊙ v ⊙ Hv"
        _fail(name, f"{label} is not {what} averaged over the batches (relative error "
                    f"{_relative_error(got, ref):.2g})" + (f": {why}" if why else ""))
    _passed("hessian_taylor_stats gives θ ⊙ ∂L/∂θ and θ² ⊙ v ⊙ Hv (finite differences within 3% of "
            "the exact Hv), averaged over the batches")


def _cpd_scores(dl: dict[str, torch.Tensor], memory: dict[str, int], *, bn: bool = True,
                inputs: bool = True, absolute: bool = True, freed: str = "outputs") -> dict[str, torch.Tensor]:
    """Per channel of _TinyConvNet's two groups (conv1's and conv2's outputs), worked out by hand
    from each weight's loss change `dl`; the flags give typical mistakes' scores."""
    conv1 = (dl["conv1"].flatten(1).sum(1) + (dl["bn1"] if bn else 0)  # (3,) filters, BN scales,
             + (dl["conv2"].sum(0).flatten() if inputs else 0))         # conv2's weights reading them
    conv2 = dl["conv2"].flatten(1).sum(1) + (dl["fc"].sum(0) if inputs else 0)  # (2,)
    mem = {"outputs": (memory["conv1"], memory["conv2"]),
           "all": (memory["conv1"] + memory["conv2"], memory["conv2"] + memory["fc"]),
           "none": (1, 1)}[freed]
    scores = {"conv1": conv1 / mem[0], "conv2": conv2 / mem[1]}
    return {k: v.abs() if absolute else v for k, v in scores.items()}


@_keep_rng
def check_cpd_importance(importance_class: type) -> None:
    """`importance_class(first, second, memory)(group)` on the two coupled groups of a tiny conv net
    (conv1 -> bn1 -> conv2 -> fc), with hand-set first/second/memory: each channel's score must be
    |sum over the group's weights of -first + second / 2| divided by the memory its removal frees."""
    __tracebackhide__ = True
    from . import structured  # here, not at the top: it imports torch-pruning, which only notebook 05 needs

    name = "CPDImportance"
    model = _fill_(_TinyConvNet(), seed=8)
    graph = structured.dependency_graph(model, (1, 6, 6))
    groups = {}
    for group in structured.all_groups(graph, ignored_layers=[model.fc]):
        root = group[0].dep.target.module
        groups["conv1" if root is model.conv1 else "conv2"] = group
    gen = torch.Generator().manual_seed(10)  # a seed whose scores have both signs
    layers = {"conv1": model.conv1, "bn1": model.bn1, "conv2": model.conv2, "fc": model.fc}
    first = {m: torch.randn(m.weight.shape, generator=gen) for m in layers.values()}
    second = {m: 0.2 * torch.randn(m.weight.shape, generator=gen).abs() for m in layers.values()}
    memory = {model.conv1: 50, model.conv2: 20, model.fc: 2}  # activation values one output channel holds
    dl = {k: -first[m] + 0.5 * second[m] for k, m in layers.items()}
    mem = {k: memory[m] for k, m in layers.items() if m in memory}
    expected = _cpd_scores(dl, mem)
    importance = _call(name, "CPDImportance(first, second, memory)", importance_class, first, second, memory)
    mistakes = {
        "it leaves out the BatchNorm scales of the group; each one is a weight whose removal changes the loss":
            _cpd_scores(dl, mem, bn=False),
        "it leaves out the next layers' input weights (those reading the channel); they go with it":
            _cpd_scores(dl, mem, inputs=False),
        "the score should be the absolute value |ΔL|: a channel whose removal lowers the loss is no less important":
            _cpd_scores(dl, mem, absolute=False),
        "it is not divided by the memory the channel frees": _cpd_scores(dl, mem, freed="none"),
        "it divides by the memory of every layer in the group; only the layers whose outputs lose the channel "
        "free activation memory": _cpd_scores(dl, mem, freed="all"),
        "the first-order term has the wrong sign: ΔL ≈ -∂L/∂m + ½ ∂²L/∂m²":
            _cpd_scores({k: first[m] + 0.5 * second[m] for k, m in layers.items()}, mem),
        "the second-order term needs its factor ½":
            _cpd_scores({k: -first[m] + second[m] for k, m in layers.items()}, mem),
    }
    for key, group in groups.items():
        call = f"importance(group) for the group of {key}'s output channels"
        got = _call(name, call, importance, group)
        want = expected[key]
        if not isinstance(got, torch.Tensor) or got.shape != want.shape:
            shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            _fail(name, f"{call} should return one score per channel, shape {tuple(want.shape)}, got {shape}")
        got = got.detach().cpu().to(want.dtype)
        if torch.allclose(got, want, rtol=1e-4, atol=1e-7):
            continue
        why = next((why for why, scores in mistakes.items()
                    if torch.allclose(got, scores[key], rtol=1e-4, atol=1e-7)), "")
        _fail(name, f"{call}: expected {[round(v, 4) for v in want.tolist()]}, got "
                    f"{[round(v, 4) for v in got.tolist()]}" + (f": {why}" if why else ""))
    _passed("CPDImportance sums -first + second / 2 over every weight of a channel's group and "
            "divides |ΔL| by the memory its outputs free")


# --- notebooks 02 and 03 ---------------------------------------------------------------------

def _sweep_table() -> pd.DataFrame:
    """A hand-made sweep table (validation accuracy as a fraction, as source 000) with known answers."""
    ratios = [0.0, 0.2, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    accuracy = {"global": [0.75, 0.76, 0.705, 0.60, 0.55, 0.45, 0.52, 0.30],
                "per-layer": [0.75, 0.75, 0.625, 0.5, 0.375, 0.25, 0.125, 0.0]}  # exact in binary
    return pd.DataFrame([{"method": method, "ratio": r, "accuracy": a, "f1-score": a - 0.01}
                         for method, values in accuracy.items() for r, a in zip(ratios, values)])


def check_choose_ratio(choose_ratio: Callable) -> None:
    """`choose_ratio(table, method, max_drop)` on a hand-made sweep: the largest ratio of `method`
    whose accuracy is at most `max_drop` below that method's ratio-0 accuracy (bounds included)."""
    __tracebackhide__ = True
    name = "choose_ratio"
    table = _sweep_table()
    original = table.copy()
    inclusive = ("a ratio whose accuracy is exactly max_drop below the unpruned model's is within the tolerance "
                 "('at most': >=)")
    cases = [  # (method, max_drop, answer, {a wrong answer: the mistake it means})
        ("global", 0.05, 0.4, {0.2: "it measures the drop from the best accuracy of the sweep; measure it from "
                                    "the unpruned model (the method's ratio-0 row)",
                               0.705: "it returned an accuracy; return the ratio",
                               0.0: "it returned the smallest ratio within the tolerance; return the largest"}),
        ("per-layer", 0.25, 0.5, {0.4: inclusive,
                                  0.8: "it looks at every method's rows; use only the rows of the method asked for"}),
        ("global", 0.25, 0.8, {0.6: "it stops at the first ratio outside the tolerance; the rule takes the largest "
                                    "ratio within it, even after a dip"}),
        ("per-layer", 0.0, 0.2, {0.0: inclusive, math.nan: inclusive}),
    ]
    for method, max_drop, answer, wrong in cases:
        call = f"choose_ratio(table, {method!r}, max_drop={max_drop})"
        got = _call(name, call, choose_ratio, table, method, max_drop)
        if isinstance(got, bool) or not isinstance(got, (int, float)):
            _fail(name, f"{call} returned {type(got).__name__}; it should return one ratio, a float")
        if not table.equals(original):
            _fail(name, "it changed the table it was given; choosing must only read it")
        if math.isclose(got, answer, abs_tol=1e-9):
            continue
        why = next((w for value, w in wrong.items()
                    if math.isclose(got, value, abs_tol=1e-9) or (math.isnan(got) and math.isnan(value))), "")
        _fail(name, f"{call}: expected {answer}, got {got}" + (f": {why}" if why else ""))
    _passed("choose_ratio returns the largest ratio of the method within max_drop of its unpruned accuracy, "
            "bounds included")


def _state_dict_example() -> dict[str, torch.Tensor]:
    """A hand-made state_dict with known bitmask + values sizes (see check_bitmask_bytes)."""
    a = torch.zeros(4, 4)
    a[0, 1], a[1, 3], a[2, 0], a[3, 2] = 1.0, -2.0, 0.5, 3.0  # 4 non-zeros of 16
    b = torch.arange(1.0, 16.0).view(3, 5)
    b[0, :3], b[2, 3:] = 0.0, 0.0                            # 10 non-zeros of 15
    return {"a.weight": a, "a.bias": torch.tensor([0.1, -0.2, 0.3, 0.4]),  # 4 non-zeros of 4
            "b.weight": b, "c.weight": torch.zeros(2, 5),                   # 0 non-zeros of 10
            "bn.num_batches_tracked": torch.tensor(7)}                       # int64 counter, 8 bytes


def check_bitmask_bytes(bitmask_bytes: Callable) -> None:
    """`bitmask_bytes(state_dict, bytes_per_value)` on a hand-made state_dict, in fp32 (4) and fp16 (2):
    per float tensor min(dense, ceil(numel / 8) + nonzero * bytes_per_value); integer tensors as they are."""
    __tracebackhide__ = True
    name = "bitmask_bytes"
    state = _state_dict_example()
    # per tensor, fp32: a.weight min(64, 2 + 16) = 18, a.bias min(16, 1 + 16) = 16, b.weight min(60, 2 + 40) = 42,
    # c.weight min(40, 2 + 0) = 2, num_batches_tracked 8 -> 86; fp16: 10 + 8 + 22 + 2 + 8 = 50
    cases = {4: (86, {84: "it rounds the bitmask down: numel entries need ceil(numel / 8) whole bytes",
                      87: "it stores a tensor sparse even where the dense tensor is smaller; take the smaller "
                          "of the two",
                      82: "integer tensors (such as num_batches_tracked) count as they are: numel * element_size()",
                      121: "the bitmask takes one bit per entry, 8 entries per byte"}),
             2: (50, {48: "it rounds the bitmask down: numel entries need ceil(numel / 8) whole bytes",
                      51: "the dense size in fp16 is numel * bytes_per_value, not the fp32 tensor's own size",
                      44: "integer tensors (such as num_batches_tracked) count as they are: numel * element_size()",
                      80: "the bitmask takes one bit per entry, 8 entries per byte"})}
    before = {k: v.clone() for k, v in state.items()}
    for bytes_per_value, (answer, wrong) in cases.items():
        call = f"bitmask_bytes(state_dict, {bytes_per_value})"
        got = _call(name, call, bitmask_bytes, state, bytes_per_value)
        if isinstance(got, torch.Tensor) or isinstance(got, bool) or not isinstance(got, (int, float)):
            _fail(name, f"{call} returned {type(got).__name__}; return a byte count, a Python int")
        if not float(got).is_integer():
            _fail(name, f"{call} returned {got}, not a whole number of bytes: a bitmask of numel bits takes "
                        "ceil(numel / 8) bytes")
        if any(not torch.equal(before[k], v) for k, v in state.items()):
            _fail(name, "it changed the state_dict it was given; counting bytes must only read it")
        if int(got) != answer:
            why = wrong.get(int(got), "")
            _fail(name, f"{call}: expected {answer} bytes for this state_dict (a 4x4 weight with 4 non-zeros, "
                        f"a dense bias of 4, a 3x5 weight with 10 non-zeros, an all-zero 2x5 weight and an "
                        f"int64 counter), got {int(got)}" + (f": {why}" if why else ""))
    _passed("bitmask_bytes counts ceil(numel / 8) + non-zeros per float tensor where that is smaller, "
            "dense otherwise, and integer tensors as they are")
