"""Notebook 05's checks: hessian_taylor_stats and CPDImportance pass on the solution and name each
mistake of the table."""


import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from check_helpers import fails_with, mistake, stub

from peel_utils import checks

# --- Hessian statistics and CPD importance (notebook 05) --------------------------------------

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


def test_notebook_05_checks_leave_the_global_random_state_alone():
    torch.manual_seed(5)
    state = torch.random.get_rng_state()
    checks.check_hessian_taylor_stats(hessian_stats())
    checks.check_cpd_importance(cpd_importance())
    assert torch.equal(torch.random.get_rng_state(), state)


@pytest.mark.parametrize("check", [checks.check_hessian_taylor_stats, checks.check_cpd_importance])
def test_notebook_05_stubs_raise_their_own_error(check):
    with pytest.raises(NotImplementedError):
        check(stub)
