"""peel_utils.checks: each check passes on the notebook's own solution and fails, with a message
that names the mistake, on typical wrong answers; stubs' NotImplementedError passes through."""

import copy
import re
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from peel_utils import checks, distill, prune, structured, sweep

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


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


def test_check_failed_is_an_assertion_error():
    assert issubclass(checks.CheckFailed, AssertionError)


# --- get_model_sparsity ------------------------------------------------------------------------

def test_get_model_sparsity_passes_on_solution_and_reference(nb01, capsys):
    checks.check_get_model_sparsity(nb01["get_model_sparsity"])
    checks.check_get_model_sparsity(prune.get_model_sparsity)
    assert capsys.readouterr().out.count("✓ passed: get_model_sparsity") == 2


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


@pytest.mark.parametrize("wrong, message", [
    (weights_only, "counts only the weight matrices"),
    (density, "fraction of non-zero parameters"),
    (near_zero_counted, "tiny non-zero value"),
    (as_tensor, "returned a torch.Tensor"),
])
def test_get_model_sparsity_catches(wrong, message):
    with fails_with(message):
        checks.check_get_model_sparsity(wrong)


# --- calc_mask -------------------------------------------------------------------------------

def test_calc_mask_passes_on_solution_and_reference(nb01, capsys):
    checks.check_calc_mask(nb01["calc_mask"])
    checks.check_calc_mask(prune.calc_mask)
    assert capsys.readouterr().out.count("✓ passed: calc_mask") == 2


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
    return prune.calc_mask(tensor, sparsity).float()


def at_or_above(tensor, sparsity):
    importance = tensor.detach().abs()
    return importance >= importance.view(-1).kthvalue(max(_k(tensor, sparsity), 1)).values


def flat(tensor, sparsity):
    return prune.calc_mask(tensor, sparsity).view(-1)


def in_place_abs(tensor, sparsity):
    mask = prune.calc_mask(tensor, sparsity)
    tensor.data.abs_()
    return mask


def no_edge_cases(tensor, sparsity):
    importance = tensor.detach().abs()
    return importance > importance.view(-1).kthvalue(_k(tensor, sparsity)).values


def clamps(tensor, sparsity):
    return prune.calc_mask(tensor, min(max(sparsity, 0.0), 1.0))


def keeps_fraction(tensor, sparsity):
    return prune.calc_mask(tensor, 1 - sparsity)


@pytest.mark.parametrize("wrong, message", [
    (keeps_smallest, "keeps the smallest-magnitude weights"),
    (signed, "ranks the signed values"),
    (float_mask, "wrong dtype"),
    (at_or_above, "one too few"),
    (flat, "wrong shape"),
    (in_place_abs, "changed the tensor it was given"),
    (no_edge_cases, r"calc_mask\(w, 0.0\), which should keep every weight \(all True\), raised RuntimeError"),
    (clamps, r"calc_mask\(w, 1.5\) returned a mask; .* should raise ValueError"),
    (keeps_fraction, "pruned 1 - sparsity"),
])
def test_calc_mask_catches(wrong, message):
    with fails_with(message):
        checks.check_calc_mask(wrong)


# --- SparsePruner.prune ----------------------------------------------------------------------

def test_sparse_pruner_passes_on_solution_and_reference(nb01, capsys):
    checks.check_sparse_pruner(nb01["SparsePruner"])
    checks.check_sparse_pruner(prune.SparsePruner)
    assert capsys.readouterr().out.count("✓ passed: SparsePruner.prune") == 2


class CopyPruner(prune.SparsePruner):
    @torch.no_grad()
    def prune(self, model):
        return super().prune(copy.deepcopy(model))


class RebindPruner(prune.SparsePruner):
    @torch.no_grad()
    def prune(self, model):
        for name, param in model.named_parameters():
            if name in self.masks:
                param = param * self.masks[name]  # noqa: F841 (the mistake: rebinding a local name)
        return model


class ReplacePruner(prune.SparsePruner):
    @torch.no_grad()
    def prune(self, model):
        for name, mask in self.masks.items():
            module_name, attr = name.rsplit(".", 1)
            module = model.get_submodule(module_name)
            setattr(module, attr, nn.Parameter(getattr(module, attr) * mask))
        return model


class FreshMaskPruner(prune.SparsePruner):
    @torch.no_grad()
    def prune(self, model):
        for name, param in model.named_parameters():
            if name in self.masks:
                param.mul_(prune.calc_mask(param, 0.5))
        return model


class NoReturnPruner(prune.SparsePruner):
    @torch.no_grad()
    def prune(self, model):
        super().prune(model)


class BiasPruner(prune.SparsePruner):
    @torch.no_grad()
    def prune(self, model):
        super().prune(model)
        for name, param in model.named_parameters():
            if name.endswith("bias"):
                param.zero_()
        return model


@pytest.mark.parametrize("wrong, message", [
    (CopyPruner, "pruned a copy and left the model it was given unchanged"),
    (RebindPruner, "weights are unchanged after prune"),
    (ReplacePruner, "replaced the model's parameter objects"),
    (FreshMaskPruner, "computed a new mask"),
    (NoReturnPruner, "it returned None"),
    (BiasPruner, "it changed 0.bias"),
])
def test_sparse_pruner_catches(wrong, message):
    with fails_with(message):
        checks.check_sparse_pruner(wrong)


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

    from peel_utils import train
    loader = DataLoader(TensorDataset(torch.randn(20, 8), torch.randint(0, 3, (20,))), batch_size=5)
    base = checks._two_layer(seed=0, sizes=(8, 6, 3))
    pruner = prune.SparsePruner(base, {"0.weight": 0.5, "2.weight": 0.7})
    models = [pruner.prune(copy.deepcopy(base)) for _ in range(2)]
    for model, epoch in zip(models, (train.train, checks._masked_epoch)):
        epoch(model, loader, nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), pruner)
    for (name, a), b in zip(models[0].named_parameters(), models[1].parameters()):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("wrong, message", [
    (forgets_masks, "pruned weights are non-zero after training"),
    (prunes_before_step, "pruned weights are non-zero after training"),
    (forgets_zero_grad, "gradients accumulate"),
    (prunes_at_the_end, "applied only after the last batch"),
    (no_step, "no optimizer step was taken"),
    (two_steps_per_batch, "differ from the expected ones"),
])
def test_masked_training_step_catches(wrong, message):
    with fails_with(message):
        checks.check_masked_training_step(wrong)


# --- all checks ------------------------------------------------------------------------------

def stub(*args, **kwargs):
    raise NotImplementedError("exercise: write your code here")


class StubPruner(prune.SparsePruner):
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


def test_distillation_loss_passes_on_solution_and_reference(nb04, capsys):
    checks.check_distillation_loss(nb04["distillation_loss"])
    checks.check_distillation_loss(distill.kd_loss)
    assert capsys.readouterr().out.count("✓ passed: distillation_loss") == 2


@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides")
@pytest.mark.parametrize("wrong, message", [
    (no_t_squared, "does not multiply the soft term by T²"),
    (mean_over_classes, "averages the KL over the classes"),
    (summed_over_batch, "sums the KL over the batch"),
    (reversed_kl, "the KL runs the wrong way"),
    (soft_cross_entropy, "should be 0 .* adds the teacher's entropy"),
    (probabilities_into_kl_div, "should be 0"),
    (ce_at_temperature, "uses the logits divided by T"),
    (alpha_swapped, "alpha weighs the wrong term"),
    (teacher_not_detached, "gradients flow into the teacher's logits"),
    (per_image, "wrong shape: .* returned shape \\(4,\\)"),
])
def test_distillation_loss_catches(wrong, message):
    with fails_with(message):
        checks.check_distillation_loss(wrong)


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


def test_choose_ratio_passes_on_solution_and_reference(nb02, capsys):
    checks.check_choose_ratio(nb02["choose_ratio"])
    checks.check_choose_ratio(sweep.choose_ratio)
    assert capsys.readouterr().out.count("✓ passed: choose_ratio") == 2


def ratio_rule(*, filter_method=True, reference="dense", strict=False, first_failure=False, give="ratio"):
    def choose(table, method, max_drop):
        rows = table[table["method"] == method] if filter_method else table
        own = table[table["method"] == method]
        dense = own.loc[own["ratio"] == 0, "accuracy"].iloc[0] if reference == "dense" else own["accuracy"].max()
        ok = rows["accuracy"] > dense - max_drop if strict else rows["accuracy"] >= dense - max_drop
        if first_failure:
            ok = ok.cummin()
        within = rows[ok]
        return float(within[give].max()) if give == "ratio" else float(within["accuracy"].min())
    return choose


@pytest.mark.parametrize("wrong, message", [
    (ratio_rule(reference="best"), "drop from the best accuracy"),
    (ratio_rule(strict=True), "exactly max_drop below .* is within the tolerance"),
    (ratio_rule(first_failure=True), "stops at the first ratio outside the tolerance"),
    (ratio_rule(filter_method=False), "looks at every method's rows"),
    (ratio_rule(give="accuracy"), "returned an accuracy"),
    (lambda table, method, max_drop: table["ratio"].max(), "expected 0.4, got 0.9"),
    (lambda table, method, max_drop: table[table["method"] == method]["ratio"], "returned Series"),
])
def test_choose_ratio_catches(wrong, message):
    with fails_with(message):
        checks.check_choose_ratio(wrong)


def test_bitmask_bytes_passes_on_solution(nb03, capsys):
    checks.check_bitmask_bytes(nb03["bitmask_bytes"])
    assert "✓ passed: bitmask_bytes" in capsys.readouterr().out


def byte_count(*, bitmask=lambda n: -(-n // 8), always_sparse=False, integers_too=False, dense_own_size=False):
    def count(state_dict, bytes_per_value):
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


@pytest.mark.parametrize("wrong, message", [
    (byte_count(bitmask=lambda n: n // 8), "rounds the bitmask down"),
    (byte_count(bitmask=lambda n: n / 8), "not a whole number of bytes"),
    (byte_count(bitmask=lambda n: n), "one bit per entry"),
    (byte_count(always_sparse=True), "stores a tensor sparse even where the dense tensor is smaller"),
    (byte_count(integers_too=True), "integer tensors .* count as they are"),
    (byte_count(dense_own_size=True), "dense size in fp16 is numel \\* bytes_per_value"),
    (lambda state_dict, bytes_per_value: torch.tensor(86), "returned Tensor"),
])
def test_bitmask_bytes_catches(wrong, message):
    with fails_with(message):
        checks.check_bitmask_bytes(wrong)


# --- Hessian statistics and CPD importance (notebook 05) --------------------------------------

@pytest.fixture(scope="module")
def nb05():
    return notebook_namespace("05")


def test_hessian_taylor_stats_passes_on_solution(nb05, capsys):
    checks.check_hessian_taylor_stats(nb05["hessian_taylor_stats"], "cpu")
    assert "✓ passed: hessian_taylor_stats" in capsys.readouterr().out


def hessian_stats(*, divide_h=True, square=True, probe=True, mean=True, accumulate=True, sign=1):
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
                hv = (g_h - g) / h if divide_h else g_h - g
                new_first = sign * w.detach() * g * scale
                new_second = (w.detach() ** 2 if square else w.detach()) * (v if probe else 1) * hv * scale
                first[m] = first[m] + new_first if accumulate else new_first
                second[m] = second[m] + new_second if accumulate else new_second
        return first, second
    return stats


def test_the_hessian_test_helper_is_right():
    checks.check_hessian_taylor_stats(hessian_stats())


@pytest.mark.parametrize("wrong, message", [
    (hessian_stats(divide_h=False), "second .* Hv is not divided by the step h"),
    (hessian_stats(square=False), "second .* multiplies by θ, not θ²"),
    (hessian_stats(probe=False), "second .* leaves out the probe"),
    (hessian_stats(mean=False), "first .* sums over the batches"),
    (hessian_stats(accumulate=False), "first .* keeps only the last batch"),
    (hessian_stats(sign=-1), "first .* sign is flipped"),
    (lambda model, batches: {}, "should return two dicts"),
])
def test_hessian_taylor_stats_catches(wrong, message):
    with fails_with(message):
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


@pytest.mark.parametrize("wrong, message", [
    (cpd_importance(bn=False), "leaves out the BatchNorm scales"),
    (cpd_importance(inputs=False), "leaves out the next layers' input weights"),
    (cpd_importance(absolute=False), "absolute value"),
    (cpd_importance(freed="none"), "not divided by the memory"),
    (cpd_importance(freed="all"), "divides by the memory of every layer"),
    (cpd_importance(sign=1.0), "first-order term has the wrong sign"),
    (cpd_importance(half=1.0), "needs its factor ½"),
])
def test_cpd_importance_catches(wrong, message):
    with fails_with(message):
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
