"""Checks of notebook 01 (LeNet pruning): get_model_sparsity, calc_mask, SparsePruner.prune and
the masked training step."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import torch
import torch.nn as nn

from . import answer_key, catalog, fixtures, guard
from .core import call, exercise_check, fail, passed


@exercise_check("get_model_sparsity")
def check_get_model_sparsity(get_model_sparsity: Callable[[nn.Module], float]) -> None:
    """Exact answers on a two-layer model with 12 of its 23 parameters zero (3 of them biases)."""
    __tracebackhide__ = True
    name = "get_model_sparsity"
    mistake = catalog.BY_NAME[name].mistake
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))  # 12 + 3 + 6 + 2 = 23 parameters
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[0.0, 0.5, 0.0, -0.2],
                                            [0.3, 0.0, 0.0, 0.1],
                                            [0.0, -0.4, 1e-12, 0.0]]))  # 6 zeros; 1e-12 is not zero
        model[0].bias.copy_(torch.tensor([0.0, 0.1, 0.0]))                # 2 zeros
        model[2].weight.copy_(torch.tensor([[0.7, 0.0, -0.1],
                                            [0.0, 0.2, 0.0]]))            # 3 zeros
        model[2].bias.copy_(torch.tensor([0.2, 0.0]))                     # 1 zero
    before = fixtures.snapshot(model)
    got = call(name, "get_model_sparsity(model)", get_model_sparsity, model)
    if isinstance(got, torch.Tensor):
        fail(name, mistake("tensor"))
    if isinstance(got, bool) or not isinstance(got, (int, float)):
        fail(name, f"it returned {type(got).__name__} {got!r}; it should return a float between 0 and 1")
    if any(not torch.equal(before[n], p.detach()) for n, p in model.named_parameters()):
        fail(name, mistake("changes"))
    expected = 12 / 23
    wrong = {9 / 18: "weights_only", 11 / 23: "density", 13 / 23: "tiny", 12.0: "count"}
    if not math.isclose(got, expected, abs_tol=1e-9):
        for value, key in wrong.items():
            if math.isclose(got, value, abs_tol=1e-9):
                fail(name, f"got {got:.4f}, expected {expected:.4f} (12 of 23 parameters are zero): {mistake(key)}")
        fail(name, f"got {got!r}, expected {expected:.4f}: 12 of this model's 23 parameters are exactly zero")
    dense = fixtures.fill_(nn.Linear(3, 2), seed=1)
    got = call(name, "get_model_sparsity on a dense model", get_model_sparsity, dense)
    if not math.isclose(float(got), 0.0, abs_tol=1e-9):
        fail(name, f"a model without zeros should have sparsity 0.0, got {got!r}")
    with torch.no_grad():
        dense.weight.zero_()
        dense.bias.zero_()
    got = call(name, "get_model_sparsity on an all-zero model", get_model_sparsity, dense)
    if not math.isclose(float(got), 1.0, abs_tol=1e-9):
        fail(name, f"a model whose parameters are all zero should have sparsity 1.0, got {got!r}")
    passed("get_model_sparsity counts exact zeros over all parameters (biases included) "
           "and returns a float fraction")


def _check_mask(name: str, mask, shape: torch.Size, what: str) -> torch.Tensor:
    __tracebackhide__ = True
    mistake = catalog.BY_NAME[name].mistake
    if not isinstance(mask, torch.Tensor):
        fail(name, f"{what} returned {type(mask).__name__}, not a tensor")
    if mask.shape != shape:
        fail(name, f"{mistake('shape')}: {what} returned shape {tuple(mask.shape)}, the input's is {tuple(shape)}")
    if mask.dtype != torch.bool:
        fail(name, f"{mistake('dtype')}: {what} returned {mask.dtype}")
    return mask


@exercise_check("calc_mask")
def check_calc_mask(calc_mask: Callable[[torch.Tensor, float], torch.Tensor]) -> None:
    """A 5x5 tensor with a known mask at sparsity 0.6, the edge sparsities 0 and 1, seeded random
    tensors of several shapes with known masks, and a ValueError outside [0, 1]."""
    __tracebackhide__ = True
    name = "calc_mask"
    mistake = catalog.BY_NAME[name].mistake
    random_masks, signed_mask = answer_key.calc_mask_random(), answer_key.calc_mask_signed()
    w = fixtures.W.clone()
    what = "calc_mask(w, 0.6) on a 5x5 tensor"
    mask = _check_mask(name, call(name, what, calc_mask, w, 0.6), w.shape, what)
    if not torch.equal(w, fixtures.W):
        fail(name, mistake("changes"))
    zeros = int((~mask).sum())
    if zeros != 15:
        why = {10: "fraction", 14: "one_too_few", 16: "one_too_many"}.get(zeros)
        fail(name, f"wrong count of zeros: expected exactly 15 zeros (round(25 * 0.6)) and 10 kept, "
                   f"got {zeros} zeros" + (f": {mistake(why)}" if why else ""))
    if not torch.equal(mask, fixtures.W_MASK_60):
        if torch.equal(mask, signed_mask):
            why = mistake("signed")
        elif float(w[mask].abs().max()) < float(w[~mask].abs().max()):
            why = mistake("smallest")
        else:
            why = f"{int((mask != fixtures.W_MASK_60).sum()) // 2} kept weights are not among the 10 largest |w|"
        fail(name, f"the mask keeps the wrong weights: {why}")
    for sparsity, keep_all in ((0.0, True), (1.0, False)):
        what = f"calc_mask(w, {sparsity})"
        edge = _check_mask(name, call(name, f"{what} ({mistake('edges')})", calc_mask, w, sparsity), w.shape, what)
        if not bool((edge == keep_all).all()):
            fail(name, f"{what} prunes {int((~edge).sum())} of 25: {mistake('edges')}")
    for (tensor, sparsity), expected in zip(fixtures.random_mask_inputs(), random_masks):
        what = f"calc_mask on a random {tuple(tensor.shape)} parameter at sparsity {sparsity}"
        got = _check_mask(name, call(name, what, calc_mask, tensor, sparsity), tensor.shape, what)
        if not torch.equal(got, expected):
            fail(name, f"{what}: expected {int((~expected).sum())} zeros at the smallest magnitudes, got "
                       f"{int((~got).sum())} zeros, {int((got != expected).sum())} entries differ")
    for bad in (1.5, -0.1):
        try:
            calc_mask(w, bad)
        except ValueError:
            continue
        except (NotImplementedError, guard.ReferenceCalled):
            raise
        except Exception as err:
            fail(name, f"calc_mask(w, {bad}) raised {type(err).__name__}: {mistake('no_value_error')}")
        fail(name, f"calc_mask(w, {bad}) returned a mask: {mistake('no_value_error')}")
    passed("calc_mask keeps the largest magnitudes, prunes exactly round(numel * sparsity) weights, "
           "returns a bool mask of the input's shape and refuses a sparsity outside [0, 1]")


@exercise_check("SparsePruner.prune")
def check_sparse_pruner(pruner_class: type) -> None:
    """`prune(model)` must zero exactly the masked weights of the model it is given, in place,
    keep the rest (biases included) and return that model. Tested with fixed masks set on a pruner
    made without __init__, so an unwritten calc_mask does not stop this check."""
    __tracebackhide__ = True
    name = "SparsePruner.prune"
    mistake = catalog.BY_NAME[name].mistake
    expected = answer_key.sparse_pruner_weights()
    pruner = pruner_class.__new__(pruner_class)  # without __init__: this checks prune, whatever calc_mask does
    masks = fixtures.pruner_masks()
    pruner.masks = masks
    model = fixtures.two_layer(seed=fixtures.PRUNED_MODEL_SEED)  # another model of the same architecture
    before = fixtures.snapshot(model)
    identities = dict(model.named_parameters())
    result = call(name, "pruner.prune(model)", pruner.prune, model)
    after = fixtures.snapshot(model)
    if all(torch.equal(before[n], after[n]) for n in before):
        if isinstance(result, nn.Module) and result is not model:
            fail(name, mistake("copy"))
        fail(name, mistake("rebind"))
    if any(p is not identities[n] for n, p in model.named_parameters()):
        fail(name, mistake("replace"))
    for n, mask in masks.items():
        if not torch.equal(after[n], expected["right"][n]):
            if torch.equal(after[n], expected["fresh"][n]):
                fail(name, f"{n}: {mistake('fresh')}")
            still = int(((after[n] != 0) & ~mask).sum())
            changed = int(((after[n] != before[n]) & mask).sum())
            fail(name, f"{n}: {still} weights whose mask is False are not zero and {changed} weights whose "
                       f"mask is True were changed; {mistake('wrong_mask')}")
    for n in before:
        if n not in masks and not torch.equal(before[n], after[n]):
            fail(name, f"it changed {n}; {mistake('bias')}")
    if result is not model:
        fail(name, f"it returned {type(result).__name__ if result is not None else 'None'}; {mistake('returns')}")
    passed("SparsePruner.prune zeroes exactly the masked weights, in place, keeps biases "
           "and returns the model")


@exercise_check("train_one_epoch")
def check_masked_training_step(train_one_epoch: Callable, device: str | torch.device = "cpu") -> None:
    """One epoch on 4 fixed batches with momentum SGD, against peel_utils.train.train's: the pruned
    weights must stay exactly zero and the others must train as one masked step per batch."""
    __tracebackhide__ = True
    from .. import prune  # the pruner handed to train_one_epoch: the workbook's (the exercise before)

    name = "train_one_epoch"
    mistake = catalog.BY_NAME[name].mistake
    expected = answer_key.masked_training()
    start = fixtures.training_start()
    pruner = prune.ZeroMaskPruner(start)
    model = copy.deepcopy(start).to(device)
    pruner.masks = {n: mask.to(device) for n, mask in pruner.masks.items()}

    def run() -> None:
        train_one_epoch(model, fixtures.training_batches(), nn.CrossEntropyLoss(), fixtures.sgd(model), pruner)

    call(name, "train_one_epoch(model, loader, loss_fn, optimizer, pruner)", run)
    got, begin = fixtures.snapshot(model), fixtures.snapshot(start)
    if all(torch.equal(got[n], begin[n]) for n in begin):
        fail(name, mistake("no_step"))
    grown = sum(int(((got[n] != 0) & ~mask.cpu()).sum()) for n, mask in pruner.masks.items())
    if grown:
        fail(name, f"{grown} {mistake('grow_back')}")

    def close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
        return all(torch.allclose(a[n], b[n], rtol=1e-4, atol=1e-6) for n in a)

    if not close(got, expected["right"]):
        for key in ("accumulate", "at_end"):
            if close(got, expected[key]):
                fail(name, mistake(key))
        diff = max(float((got[n] - expected["right"][n]).abs().max()) for n in got)
        fail(name, f"after 4 batches the weights differ from the expected ones by up to {diff:.3g}: "
                   f"{mistake('other')}")
    passed("train_one_epoch takes one optimizer step per batch and keeps the pruned weights at zero")
