"""peel_utils.checks: each check passes on the notebook's own solution and fails, with the message of
its mistake table, on typical wrong answers and on answers that call the workbook's own
implementation; stubs' NotImplementedError passes through."""

import copy
import functools
import re
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from peel_utils import checks, distill, measure, prune, structured, sweep, train
from peel_utils.checks import answer_key, catalog, fixtures

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


@functools.cache
def notebook_namespace(prefix: str) -> dict:
    """Run the code cells of a solution notebook that define the exercised functions (and nothing else)."""
    path = next(NOTEBOOKS.glob(f"{prefix}_*.ipynb"))
    import torch_pruning as tp

    namespace = {"torch": torch, "nn": nn, "F": F, "pd": pd, "tp": tp, "structured": structured, "tqdm": tqdm,
                 "device": torch.device("cpu")}
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type == "code" and "### BEGIN SOLUTION" in cell.source:
            exec(compile(cell.source, str(path), "exec"), namespace)
    return namespace


@pytest.fixture(scope="module")
def nb01():
    return notebook_namespace("01")


def fails_with(pattern: str):
    return pytest.raises(checks.CheckFailed, match=pattern)


def mistake(exercise: str, key: str) -> str:
    """A regex matching the catalog's message for `key` (the check reads the same table)."""
    return re.escape(catalog.BY_NAME[exercise].mistake(key))


def solution(prefix: str, name: str):
    """The solution notebook's own answer (the notebook cells holding exercises, executed)."""
    return notebook_namespace(prefix)[name]


def test_check_failed_is_an_assertion_error():
    assert issubclass(checks.CheckFailed, AssertionError)


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

def stub(*args, **kwargs):
    raise NotImplementedError("exercise: write your code here")


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


# --- distillation loss (notebook 04) ---------------------------------------------------------

def kl_rows(s, t, temperature):
    log_s, log_t = F.log_softmax(s / temperature, dim=1), F.log_softmax(t.detach() / temperature, dim=1)
    return (log_t.exp() * (log_t - log_s)).sum(dim=1)


def mix(kl, s, targets, alpha, temperature=1.0):
    return alpha * kl + (1 - alpha) * F.cross_entropy(s / temperature, targets)


def no_t_squared(s, t, targets, temperature, alpha):
    return mix(kl_rows(s, t, temperature).mean(), s, targets, alpha)


def mean_over_classes(s, t, targets, temperature, alpha):
    kl = F.kl_div(F.log_softmax(s / temperature, dim=1), F.softmax(t.detach() / temperature, dim=1),
                  reduction="mean")
    return mix(temperature ** 2 * kl, s, targets, alpha)


def summed_over_batch(s, t, targets, temperature, alpha):
    return mix(temperature ** 2 * kl_rows(s, t, temperature).sum(), s, targets, alpha)


def reversed_kl(s, t, targets, temperature, alpha):
    return mix(temperature ** 2 * kl_rows(t.detach(), s, temperature).mean(), s, targets, alpha)


def soft_cross_entropy(s, t, targets, temperature, alpha):
    soft = -(F.softmax(t.detach() / temperature, dim=1) * F.log_softmax(s / temperature, dim=1)).sum(dim=1)
    return mix(temperature ** 2 * soft.mean(), s, targets, alpha)


def probabilities_into_kl_div(s, t, targets, temperature, alpha):
    kl = F.kl_div(F.softmax(s / temperature, dim=1), F.softmax(t.detach() / temperature, dim=1),
                  reduction="batchmean")
    return mix(temperature ** 2 * kl, s, targets, alpha)


def ce_at_temperature(s, t, targets, temperature, alpha):
    return mix(temperature ** 2 * kl_rows(s, t, temperature).mean(), s, targets, alpha, temperature)


def alpha_swapped(s, t, targets, temperature, alpha):
    return mix(temperature ** 2 * kl_rows(s, t, temperature).mean(), s, targets, 1 - alpha)


def teacher_not_detached(s, t, targets, temperature, alpha):
    log_s, log_t = F.log_softmax(s / temperature, dim=1), F.log_softmax(t / temperature, dim=1)
    kl = (log_t.exp() * (log_t - log_s)).sum(dim=1).mean()
    return mix(temperature ** 2 * kl, s, targets, alpha)


def per_image(s, t, targets, temperature, alpha):
    rows = temperature ** 2 * kl_rows(s, t, temperature)
    return alpha * rows + (1 - alpha) * F.cross_entropy(s, targets, reduction="none")


@pytest.fixture(scope="module")
def nb04():
    return notebook_namespace("04")


def test_distillation_loss_passes_on_solution(nb04, capsys):
    checks.check_distillation_loss(nb04["distillation_loss"])
    assert capsys.readouterr().out.count("✓ passed: distillation_loss") == 1


@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides")
def as_float(s, t, targets, temperature, alpha):
    return float(solution("04", "distillation_loss")(s, t, targets, temperature, alpha))


def clamps_the_logits(s, t, targets, temperature, alpha):
    loss = solution("04", "distillation_loss")(s, t, targets, temperature, alpha)
    s.data.clamp_(min=-0.9)
    return loss


@pytest.mark.parametrize("wrong, key", [
    (no_t_squared, "no_t2"),
    (mean_over_classes, "mean_classes"),
    (summed_over_batch, "sum_batch"),
    (reversed_kl, "reversed"),
    (soft_cross_entropy, "soft_ce"),
    (probabilities_into_kl_div, "not_zero"),
    (ce_at_temperature, "ce_at_t"),
    (alpha_swapped, "swapped"),
    (teacher_not_detached, "teacher_grad"),
    (per_image, "per_image"),
    (as_float, "not_tensor"),
    (clamps_the_logits, "changes"),
])
def test_distillation_loss_catches(wrong, key):
    with fails_with(mistake("distillation_loss", key)):
        checks.check_distillation_loss(wrong)


def test_distillation_loss_names_the_shape_it_got():
    with fails_with(r"returned shape \(4,\)"):
        checks.check_distillation_loss(per_image)


def test_distillation_stub_raises_its_own_error():
    with pytest.raises(NotImplementedError):
        checks.check_distillation_loss(stub)


# --- ratio rule (notebook 02) and bitmask size (notebook 03) ---------------------------------

@pytest.fixture(scope="module")
def nb02():
    return notebook_namespace("02")


@pytest.fixture(scope="module")
def nb03():
    return notebook_namespace("03")


def test_choose_ratio_passes_on_solution(nb02, capsys):
    checks.check_choose_ratio(nb02["choose_ratio"])
    assert capsys.readouterr().out.count("✓ passed: choose_ratio") == 1


def ratio_rule(*, filter_method=True, reference="dense", strict=False, first_failure=False, give="ratio",
               smallest=False, mutate=False, units=False):
    def choose(table, method, max_drop):
        rows = table[table["method"] == method] if filter_method else table
        own = table[table["method"] == method]
        dense = own.loc[own["ratio"] == 0, "accuracy"].iloc[0] if reference == "dense" else own["accuracy"].max()
        drop = max_drop if units else max_drop / 100  # units: points compared with a fraction
        ok = rows["accuracy"] > dense - drop if strict else rows["accuracy"] >= dense - drop
        if first_failure:
            ok = ok.cummin()
        within = rows[ok]
        if mutate:
            table.drop(index=table.index[-1], inplace=True)
        if smallest:
            return float(within["ratio"].min())
        return float(within[give].max()) if give == "ratio" else float(within["accuracy"].min())
    return choose


@pytest.mark.parametrize("wrong, key", [
    (ratio_rule(reference="best"), "best"),
    (ratio_rule(strict=True), "strict"),
    (ratio_rule(first_failure=True), "first_failure"),
    (ratio_rule(filter_method=False), "mixing"),
    (ratio_rule(give="accuracy"), "accuracy"),
    (ratio_rule(smallest=True), "smallest"),
    (ratio_rule(mutate=True), "changes"),
    (ratio_rule(units=True), "units"),
    (lambda table, method, max_drop: table[table["method"] == method]["ratio"], "not_float"),
])
def test_choose_ratio_catches(wrong, key):
    with fails_with(mistake("choose_ratio", key)):
        checks.check_choose_ratio(wrong)


def test_choose_ratio_gives_the_expected_and_the_wrong_value():
    with fails_with("expected 0.4, got 0.9"):
        checks.check_choose_ratio(lambda table, method, max_drop: table["ratio"].max())


def test_bitmask_bytes_passes_on_solution(nb03, capsys):
    checks.check_bitmask_bytes(nb03["bitmask_bytes"])
    assert "✓ passed: bitmask_bytes" in capsys.readouterr().out


def byte_count(*, bitmask=lambda n: -(-n // 8), always_sparse=False, integers_too=False, dense_own_size=False,
               mutate=False):
    def count(state_dict, bytes_per_value):
        if mutate:
            state_dict["a.weight"].zero_()
        total = 0
        for tensor in state_dict.values():
            if not integers_too and (not tensor.is_floating_point() or tensor.dim() == 0):
                total += tensor.numel() * tensor.element_size()
                continue
            dense = tensor.numel() * (tensor.element_size() if dense_own_size else bytes_per_value)
            sparse = bitmask(tensor.numel()) + int(tensor.count_nonzero()) * bytes_per_value
            total += sparse if always_sparse else min(dense, sparse)
        return total
    return count


@pytest.mark.parametrize("wrong, key", [
    (byte_count(bitmask=lambda n: n // 8), "round_down"),
    (byte_count(bitmask=lambda n: n / 8), "fractional"),
    (byte_count(bitmask=lambda n: n), "one_byte"),
    (byte_count(always_sparse=True), "always_sparse"),
    (byte_count(integers_too=True), "integers"),
    (byte_count(dense_own_size=True), "fp16_dense"),
    (byte_count(mutate=True), "changes"),
    (lambda state_dict, bytes_per_value: torch.tensor(86), "not_int"),
])
def test_bitmask_bytes_catches(wrong, key):
    with fails_with(mistake("bitmask_bytes", key)):
        checks.check_bitmask_bytes(wrong)


# --- Hessian statistics and CPD importance (notebook 05) --------------------------------------

@pytest.fixture(scope="module")
def nb05():
    return notebook_namespace("05")


def test_hessian_taylor_stats_passes_on_solution(nb05, capsys):
    checks.check_hessian_taylor_stats(nb05["hessian_taylor_stats"], "cpu")
    assert "✓ passed: hessian_taylor_stats" in capsys.readouterr().out


def hessian_stats(*, divide_h=True, square=True, probe=True, mean=True, accumulate=True, sign=1, h_power=1):
    def stats(model, batches, h=1e-3):
        layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear, nn.BatchNorm2d))]
        weights = [m.weight for m in layers]
        first = {m: torch.zeros_like(m.weight) for m in layers}
        second = {m: torch.zeros_like(m.weight) for m in layers}
        model.eval()
        scale = 1 / len(batches) if mean else 1.0
        for inputs, targets in batches:
            grad = torch.autograd.grad(F.cross_entropy(model(inputs), targets), weights)
            vs = [torch.randn_like(w) for w in weights]
            with torch.no_grad():
                for w, v in zip(weights, vs):
                    w.add_(h * v)
            grad_h = torch.autograd.grad(F.cross_entropy(model(inputs), targets), weights)
            with torch.no_grad():
                for w, v in zip(weights, vs):
                    w.sub_(h * v)
            for m, w, g, g_h, v in zip(layers, weights, grad, grad_h, vs):
                hv = (g_h - g) / h ** h_power if divide_h else g_h - g
                new_first = sign * w.detach() * g * scale
                new_second = (w.detach() ** 2 if square else w.detach()) * (v if probe else 1) * hv * scale
                first[m] = first[m] + new_first if accumulate else new_first
                second[m] = second[m] + new_second if accumulate else new_second
        return first, second
    return stats


def test_the_hessian_test_helper_is_right():
    checks.check_hessian_taylor_stats(hessian_stats())


@pytest.mark.parametrize("wrong, label, key", [
    (hessian_stats(divide_h=False), "second", "not_divided"),
    (hessian_stats(h_power=2), "second", "divided_twice"),
    (hessian_stats(square=False), "second", "not_squared"),
    (hessian_stats(probe=False), "second", "no_probe"),
    (hessian_stats(mean=False), "first", "summed"),
    (hessian_stats(accumulate=False), "first", "last_batch"),
    (hessian_stats(sign=-1), "first", "sign"),
    (lambda model, batches: {}, "", "not_dicts"),
])
def test_hessian_taylor_stats_catches(wrong, label, key):
    with fails_with(f"{label}.*" + mistake("hessian_taylor_stats", key)):
        checks.check_hessian_taylor_stats(wrong)


def test_cpd_importance_passes_on_solution(nb05, capsys):
    checks.check_cpd_importance(nb05["CPDImportance"])
    assert "✓ passed: CPDImportance" in capsys.readouterr().out


def cpd_importance(*, bn=True, inputs=True, absolute=True, freed="outputs", sign=-1.0, half=0.5):
    import torch_pruning as tp

    outputs = (tp.prune_conv_out_channels, tp.prune_linear_out_channels)
    in_channels = (tp.prune_conv_in_channels, tp.prune_linear_in_channels)

    class Importance:
        def __init__(self, first, second, memory):
            self.first, self.second, self.memory = first, second, memory

        def __call__(self, group):
            delta, total = torch.zeros(len(group[0].idxs)), 0
            for item in group:
                layer, handler = item.dep.target.module, item.dep.handler
                if layer not in self.first:
                    continue
                dl = sign * self.first[layer] + half * self.second[layer]
                if handler in outputs:
                    per_channel = dl.flatten(1).sum(1)
                    total += self.memory[layer]
                elif handler in in_channels:
                    if not inputs:
                        continue
                    per_channel = dl.transpose(0, 1).flatten(1).sum(1)
                    total += self.memory[layer] if freed == "all" else 0
                else:
                    if not bn:
                        continue
                    per_channel = dl
                delta.index_add_(0, torch.tensor(item.root_idxs), per_channel[item.idxs])
            score = delta.abs() if absolute else delta
            return score if freed == "none" else score / total
    return Importance


def test_the_cpd_test_helper_is_right():
    checks.check_cpd_importance(cpd_importance())


@pytest.mark.parametrize("wrong, key", [
    (cpd_importance(bn=False), "no_bn"),
    (cpd_importance(inputs=False), "no_inputs"),
    (cpd_importance(absolute=False), "no_abs"),
    (cpd_importance(freed="none"), "no_memory"),
    (cpd_importance(freed="all"), "all_memory"),
    (cpd_importance(sign=1.0), "sign"),
    (cpd_importance(half=1.0), "half"),
])
def test_cpd_importance_catches(wrong, key):
    with fails_with(mistake("CPDImportance", key)):
        checks.check_cpd_importance(wrong)


@pytest.mark.parametrize("check, answer", [
    (checks.check_choose_ratio, stub),
    (checks.check_bitmask_bytes, stub),
    (checks.check_hessian_taylor_stats, stub),
    (checks.check_cpd_importance, stub),
])
def test_later_stubs_raise_their_own_error(check, answer):
    with pytest.raises(NotImplementedError):
        check(answer)


def test_notebook_05_checks_leave_the_global_random_state_alone():
    torch.manual_seed(5)
    state = torch.random.get_rng_state()
    checks.check_hessian_taylor_stats(hessian_stats())
    checks.check_cpd_importance(cpd_importance())
    assert torch.equal(torch.random.get_rng_state(), state)


# --- every mistake of the table is tested -------------------------------------------------------

CATCH_TESTS = {"get_model_sparsity": test_get_model_sparsity_catches, "calc_mask": test_calc_mask_catches,
               "SparsePruner.prune": test_sparse_pruner_catches, "train_one_epoch": test_masked_training_step_catches,
               "choose_ratio": test_choose_ratio_catches, "bitmask_bytes": test_bitmask_bytes_catches,
               "distillation_loss": test_distillation_loss_catches,
               "hessian_taylor_stats": test_hessian_taylor_stats_catches, "CPDImportance": test_cpd_importance_catches}


@pytest.mark.parametrize("exercise", catalog.EXERCISES, ids=lambda e: e.name)
def test_each_mistake_of_the_table_has_a_wrong_answer_that_triggers_it(exercise):
    cases = next(mark.args[1] for mark in CATCH_TESTS[exercise.name].pytestmark if mark.name == "parametrize")
    assert {case[-1] for case in cases} == set(exercise.mistakes)


# --- delegation: the workbook's own implementations fail every check ----------------------------

def _wrapped(reference):
    @functools.wraps(reference)
    def wrapper(*args, **kwargs):
        return reference(*args, **kwargs)
    return wrapper


def _through_module(name):
    return {"get_model_sparsity": lambda model: prune.get_model_sparsity(model),
            "calc_mask": lambda tensor, sparsity: prune.calc_mask(tensor, sparsity),
            "train_one_epoch": lambda model, loader, loss_fn, optimizer, pruner:
                train.train(model, loader, loss_fn, optimizer, pruner),
            "choose_ratio": lambda table, method, max_drop: sweep.choose_ratio(table, method, max_drop),
            "distillation_loss": lambda s, t, y, temperature, alpha:
                distill.distillation_loss(s, t, y, temperature=temperature, alpha=alpha)}[name]


class InheritsPrune(prune.SparsePruner):
    """Subclasses the workbook's pruner and keeps its prune."""


class CallsPrune(Solution):
    def prune(self, model):
        return prune.SparsePruner.prune(self, model)


def count_with_measure(model):
    return 1 - measure.count_nonzero_parameters(model) / sum(p.numel() for p in model.parameters())


def mask_by_ranking(tensor, sparsity):
    layer = nn.Linear(1, 1)
    layer.weight = nn.Parameter(tensor.detach().reshape(1, -1).clone())
    return sweep.ratio_masks(sweep.rank_weights(layer, "per-layer"), sparsity)[0].view(tensor.shape)


def bytes_by_saving(state_dict, bytes_per_value):
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        return storage_size(state_dict, tmp)


def storage_size(state_dict, tmp):
    from peel_utils import storage
    return storage.save_sparse(state_dict, Path(tmp) / "x.pt").stat().st_size


def kl_from_package(s, t, targets, temperature, alpha):
    return alpha * temperature ** 2 * distill.soft_kl(s, t, temperature) + (1 - alpha) * F.cross_entropy(s, targets)


def ratio_by_sparsity_dict(table, method, max_drop):
    rows = table[table["method"] == method].rename(columns={"ratio": "sparsity", "method": "layer"})
    dense = float(rows.loc[rows["sparsity"] == 0, "accuracy"].iloc[0])
    return prune.choose_sparsity_dict(rows, dense, max_drop / 100)[method]


DELEGATING = [  # (exercise, answer): the reference itself, a wrapper, a call through the module, ...
    ("get_model_sparsity", prune.get_model_sparsity), ("get_model_sparsity", _wrapped(prune.get_model_sparsity)),
    ("get_model_sparsity", _through_module("get_model_sparsity")), ("get_model_sparsity", count_with_measure),
    ("calc_mask", prune.calc_mask), ("calc_mask", _wrapped(prune.calc_mask)),
    ("calc_mask", _through_module("calc_mask")), ("calc_mask", mask_by_ranking),
    ("SparsePruner.prune", prune.SparsePruner), ("SparsePruner.prune", InheritsPrune),
    ("SparsePruner.prune", CallsPrune),
    ("train_one_epoch", train.train), ("train_one_epoch", _wrapped(train.train)),
    ("train_one_epoch", _through_module("train_one_epoch")),
    ("choose_ratio", sweep.choose_ratio), ("choose_ratio", _wrapped(sweep.choose_ratio)),
    ("choose_ratio", _through_module("choose_ratio")), ("choose_ratio", ratio_by_sparsity_dict),
    ("bitmask_bytes", bytes_by_saving),
    ("distillation_loss", distill.kd_loss), ("distillation_loss", _wrapped(distill.kd_loss)),
    ("distillation_loss", _through_module("distillation_loss")), ("distillation_loss", kl_from_package),
]


@pytest.mark.parametrize("exercise, answer", DELEGATING,
                         ids=[f"{e}-{getattr(a, '__name__', type(a).__name__)}" for e, a in DELEGATING])
def test_calling_the_workbooks_own_implementation_fails_the_check(exercise, answer):
    check = getattr(checks, catalog.BY_NAME[exercise].check)
    with fails_with(f"^{re.escape(exercise)}: your answer calls the workbook's own implementation "
                    r"\(peel_utils\.\w+\.[\w.]+\); write it yourself$"):
        check(answer)


def test_a_name_bound_to_the_reference_before_the_check_is_caught():
    calc_mask = prune.calc_mask  # what an exercise cell could do
    with fails_with(r"\(peel_utils\.prune\.calc_mask\)"):
        checks.check_calc_mask(calc_mask)


def test_the_references_work_again_after_a_check_even_a_failed_one():
    with fails_with("write it yourself"):
        checks.check_calc_mask(prune.calc_mask)
    with fails_with("wrong dtype"):
        checks.check_calc_mask(float_mask)
    assert prune.calc_mask(torch.tensor([1.0, -3.0, 2.0, 0.5]), 0.5).tolist() == [False, True, True, False]
    assert sweep.choose_ratio(fixtures.sweep_table(), "global", 5.0) == 0.4


@pytest.mark.parametrize("exercise", catalog.EXERCISES, ids=lambda e: e.name)
def test_every_exercise_has_delegation_cases_or_no_reference(exercise):
    tested = {e for e, _ in DELEGATING}
    assert (exercise.name in tested) == bool(exercise.references), \
        "an exercise with references in peel_utils needs delegation cases here, one without needs none"
