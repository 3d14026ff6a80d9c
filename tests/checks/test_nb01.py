"""Notebook 01's checks: get_model_sparsity, calc_mask, SparsePruner.prune and the masked training step
pass on the solution, name each mistake of the table, and let a stub's NotImplementedError through."""

import copy
import re

import pytest
import torch
import torch.nn as nn
from check_helpers import fails_with, mistake, solution, stub

from peel_utils import checks, prune, train
from peel_utils.checks import answer_key, fixtures

# --- get_model_sparsity ------------------------------------------------------------------------

def test_get_model_sparsity_passes_on_solution(nb01, capsys):
    checks.check_get_model_sparsity(nb01["get_model_sparsity"])
    assert capsys.readouterr().out.count("✓ passed: get_model_sparsity") == 1


def weights_only(model):
    weights = [p for p in model.parameters() if p.dim() > 1]
    return 1 - sum(int(p.count_nonzero()) for p in weights) / sum(p.numel() for p in weights)


def density(model):
    return sum(int(p.count_nonzero()) for p in model.parameters()) / sum(p.numel() for p in model.parameters())


def near_zero_counted(model):
    params = list(model.parameters())
    return sum(int((p.abs() < 1e-6).sum()) for p in params) / sum(p.numel() for p in params)


def as_tensor(model):
    params = list(model.parameters())
    return 1 - sum(p.count_nonzero() for p in params) / sum(p.numel() for p in params)


def zero_count(model):
    return float(sum(p.numel() - int(p.count_nonzero()) for p in model.parameters()))


def zeroes_the_model(model):
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    return 1.0


@pytest.mark.parametrize("wrong, key", [
    (weights_only, "weights_only"),
    (density, "density"),
    (near_zero_counted, "tiny"),
    (as_tensor, "tensor"),
    (zero_count, "count"),
    (zeroes_the_model, "changes"),
])
def test_get_model_sparsity_catches(wrong, key):
    with fails_with(mistake("get_model_sparsity", key)):
        checks.check_get_model_sparsity(wrong)


# --- calc_mask -------------------------------------------------------------------------------

def test_calc_mask_passes_on_solution(nb01, capsys):
    checks.check_calc_mask(nb01["calc_mask"])
    assert capsys.readouterr().out.count("✓ passed: calc_mask") == 1


def good_mask(tensor, sparsity):
    return solution("01", "calc_mask")(tensor, sparsity)


def _k(tensor, sparsity):
    return round(tensor.numel() * sparsity)


def keeps_smallest(tensor, sparsity):
    k = _k(tensor, sparsity)
    importance = tensor.detach().abs()
    return importance < importance.view(-1).kthvalue(tensor.numel() - k + 1).values if k else importance >= 0


def signed(tensor, sparsity):
    k = _k(tensor, sparsity)
    return tensor.detach() > tensor.detach().view(-1).kthvalue(k).values


def float_mask(tensor, sparsity):
    return good_mask(tensor, sparsity).float()


def at_or_above(tensor, sparsity):
    importance = tensor.detach().abs()
    return importance >= importance.view(-1).kthvalue(max(_k(tensor, sparsity), 1)).values


def flat(tensor, sparsity):
    return good_mask(tensor, sparsity).view(-1)


def in_place_abs(tensor, sparsity):
    mask = good_mask(tensor, sparsity)
    tensor.data.abs_()
    return mask


def no_edge_cases(tensor, sparsity):
    importance = tensor.detach().abs()
    return importance > importance.view(-1).kthvalue(_k(tensor, sparsity)).values


def clamps(tensor, sparsity):
    return good_mask(tensor, min(max(sparsity, 0.0), 1.0))


def keeps_fraction(tensor, sparsity):
    return good_mask(tensor, 1 - sparsity)


def one_too_many(tensor, sparsity):
    mask = good_mask(tensor, sparsity)
    if 0 < sparsity < 1:
        mask.view(-1)[mask.view(-1).nonzero()[0]] = False
    return mask


@pytest.mark.parametrize("wrong, key", [
    (keeps_smallest, "smallest"),
    (signed, "signed"),
    (float_mask, "dtype"),
    (at_or_above, "one_too_few"),
    (one_too_many, "one_too_many"),
    (flat, "shape"),
    (in_place_abs, "changes"),
    (no_edge_cases, "edges"),
    (clamps, "no_value_error"),
    (keeps_fraction, "fraction"),
])
def test_calc_mask_catches(wrong, key):
    with fails_with(mistake("calc_mask", key)):
        checks.check_calc_mask(wrong)


def test_calc_mask_names_the_crash_at_sparsity_0():
    with fails_with(r"calc_mask\(w, 0.0\) \(.*\) raised RuntimeError"):
        checks.check_calc_mask(no_edge_cases)


# --- SparsePruner.prune ----------------------------------------------------------------------

def test_sparse_pruner_passes_on_solution(nb01, capsys):
    checks.check_sparse_pruner(nb01["SparsePruner"])
    assert capsys.readouterr().out.count("✓ passed: SparsePruner.prune") == 1


Solution = solution("01", "SparsePruner")  # the wrong answers below start from it


class CopyPruner(Solution):
    @torch.no_grad()
    def prune(self, model):
        return super().prune(copy.deepcopy(model))


class RebindPruner(Solution):
    @torch.no_grad()
    def prune(self, model):
        for name, param in model.named_parameters():
            if name in self.masks:
                param = param * self.masks[name]  # noqa: F841 (the mistake: rebinding a local name)
        return model


class ReplacePruner(Solution):
    @torch.no_grad()
    def prune(self, model):
        for name, mask in self.masks.items():
            module_name, attr = name.rsplit(".", 1)
            module = model.get_submodule(module_name)
            setattr(module, attr, nn.Parameter(getattr(module, attr) * mask))
        return model


class FreshMaskPruner(Solution):
    @torch.no_grad()
    def prune(self, model):
        for name, param in model.named_parameters():
            if name in self.masks:
                param.mul_(good_mask(param, 0.5))
        return model


class NoReturnPruner(Solution):
    @torch.no_grad()
    def prune(self, model):
        super().prune(model)


class BiasPruner(Solution):
    @torch.no_grad()
    def prune(self, model):
        super().prune(model)
        for name, param in model.named_parameters():
            if name.endswith("bias"):
                param.zero_()
        return model


class HalfPruner(Solution):
    @torch.no_grad()
    def prune(self, model):
        for name, param in model.named_parameters():
            if name in self.masks:
                param.mul_(0.5 + 0.5 * self.masks[name])
        return model


@pytest.mark.parametrize("wrong, key", [
    (CopyPruner, "copy"),
    (RebindPruner, "rebind"),
    (ReplacePruner, "replace"),
    (FreshMaskPruner, "fresh"),
    (HalfPruner, "wrong_mask"),
    (NoReturnPruner, "returns"),
    (BiasPruner, "bias"),
])
def test_sparse_pruner_catches(wrong, key):
    with fails_with(mistake("SparsePruner.prune", key)):
        checks.check_sparse_pruner(wrong)


def test_sparse_pruner_is_checked_whether_or_not_calc_mask_is_written():
    class NoMaskYet(Solution):
        def __init__(self, model, sparsity_dict):
            raise NotImplementedError("exercise: write your code in calc_mask here")
    checks.check_sparse_pruner(NoMaskYet)


# --- masked training step --------------------------------------------------------------------

def test_masked_training_step_passes_on_solution(nb01, capsys):
    checks.check_masked_training_step(nb01["train_one_epoch"], "cpu")
    assert "✓ passed: train_one_epoch" in capsys.readouterr().out


def forgets_masks(model, loader, loss_fn, optimizer, pruner):
    for inputs, targets in loader:
        optimizer.zero_grad()
        loss_fn(model(inputs), targets).backward()
        optimizer.step()


def prunes_before_step(model, loader, loss_fn, optimizer, pruner):
    for inputs, targets in loader:
        optimizer.zero_grad()
        loss_fn(model(inputs), targets).backward()
        pruner.prune(model)
        optimizer.step()


def forgets_zero_grad(model, loader, loss_fn, optimizer, pruner):
    for inputs, targets in loader:
        loss_fn(model(inputs), targets).backward()
        optimizer.step()
        pruner.prune(model)


def prunes_at_the_end(model, loader, loss_fn, optimizer, pruner):
    forgets_masks(model, loader, loss_fn, optimizer, pruner)
    pruner.prune(model)


def no_step(model, loader, loss_fn, optimizer, pruner):
    for inputs, targets in loader:
        optimizer.zero_grad()
        loss_fn(model(inputs), targets).backward()
        pruner.prune(model)


def two_steps_per_batch(model, loader, loss_fn, optimizer, pruner):
    for inputs, targets in loader:
        for _ in range(2):
            optimizer.zero_grad()
            loss_fn(model(inputs), targets).backward()
            optimizer.step()
            pruner.prune(model)


def test_the_training_reference_is_peel_utils_train(seeded):
    from torch.utils.data import DataLoader, TensorDataset

    loader = DataLoader(TensorDataset(torch.randn(20, 8), torch.randint(0, 3, (20,))), batch_size=5)
    base = fixtures.two_layer(seed=0, sizes=(8, 6, 3))
    pruner = prune.SparsePruner(base, {"0.weight": 0.5, "2.weight": 0.7})
    models = [pruner.prune(copy.deepcopy(base)) for _ in range(2)]
    for model, epoch in zip(models, (train.train, answer_key._masked_epoch)):
        epoch(model, loader, nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), pruner)
    for (name, a), b in zip(models[0].named_parameters(), models[1].parameters()):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("wrong, key", [
    (forgets_masks, "grow_back"),
    (prunes_before_step, "grow_back"),
    (forgets_zero_grad, "accumulate"),
    (prunes_at_the_end, "at_end"),
    (no_step, "no_step"),
    (two_steps_per_batch, "other"),
])
def test_masked_training_step_catches(wrong, key):
    with fails_with(mistake("train_one_epoch", key)):
        checks.check_masked_training_step(wrong)


# --- all checks ------------------------------------------------------------------------------

class StubPruner(Solution):
    def prune(self, model):
        raise NotImplementedError("exercise: write your code here")


@pytest.mark.parametrize("check, answer", [
    (checks.check_get_model_sparsity, stub),
    (checks.check_calc_mask, stub),
    (checks.check_sparse_pruner, StubPruner),
    (checks.check_masked_training_step, stub),
])
def test_a_stub_raises_its_own_not_implemented_error(check, answer):
    with pytest.raises(NotImplementedError, match="write your code here"):
        check(answer)


def test_an_error_in_the_answer_is_named_and_chained():
    def broken(tensor, sparsity):
        return tensor.numpy()  # fails on a tensor that requires grad... or returns an array
    with pytest.raises(checks.CheckFailed, match=r"calc_mask\(w, 0.6\) on a 5x5 tensor returned ndarray") as info:
        checks.check_calc_mask(broken)
    assert info.value.__cause__ is None

    def typo(tensor, sparsity):
        return tensor.kthvalues(1)
    with pytest.raises(checks.CheckFailed, match="raised AttributeError") as info:
        checks.check_calc_mask(typo)
    assert isinstance(info.value.__cause__, AttributeError)


def test_checks_leave_the_global_random_state_alone(nb01):
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    checks.check_get_model_sparsity(nb01["get_model_sparsity"])
    checks.check_calc_mask(nb01["calc_mask"])
    checks.check_sparse_pruner(nb01["SparsePruner"])
    checks.check_masked_training_step(nb01["train_one_epoch"])
    assert torch.equal(torch.random.get_rng_state(), state)


def test_passing_messages_hold_no_solution_code(nb01, capsys):
    checks.check_calc_mask(nb01["calc_mask"])
    out = capsys.readouterr().out
    assert len(out.strip().splitlines()) == 1
    assert not re.search(r"kthvalue|\.abs\(|mul_", out)
