"""Notebook 05's checks: finite_difference_hv, hessian_taylor_stats and CPDImportance pass on the solution
and name each mistake of the table."""


import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from check_helpers import fails_with, mistake, stub

from peel_utils import checks

# --- Hessian-vector product, Hessian statistics and CPD importance (notebook 05) ------------------

def test_finite_difference_hv_passes_on_solution(nb05, capsys):
    checks.check_finite_difference_hv(nb05["finite_difference_hv"])
    out = capsys.readouterr().out
    assert out.startswith("✓ passed: finite_difference_hv") and out.count("\n") == 1


def finite_hv(*, divide=1, sign=1, step=True, restore=True, as_list=True):
    """finite_difference_hv written right, or with one mistake."""
    def hv(loss_fn, weights, grad, probe, h=1e-3):
        saved = [w.detach().clone() for w in weights]
        if step:
            with torch.no_grad():
                for w, v in zip(weights, probe):
                    w.add_(h * v)
        grad_h = torch.autograd.grad(loss_fn(), weights)
        if restore:
            with torch.no_grad():
                for w, s in zip(weights, saved):
                    w.copy_(s)
        out = [sign * (g_h - g) / h ** divide for g, g_h in zip(grad, grad_h)]
        return out if as_list else torch.cat([t.flatten() for t in out])
    return hv


def test_the_finite_difference_test_helper_is_right():
    checks.check_finite_difference_hv(finite_hv())


def central_difference(loss_fn, weights, grad, probe, h=1e-3):
    """Another right answer: the central difference (∇L(θ + h v) - ∇L(θ - h v)) / 2h, weights restored by sub_."""
    def grad_at(scale):
        with torch.no_grad():
            for w, v in zip(weights, probe):
                w.add_(scale * h * v)
        g = torch.autograd.grad(loss_fn(), weights)
        with torch.no_grad():
            for w, v in zip(weights, probe):
                w.sub_(scale * h * v)
        return g
    plus, minus = grad_at(1.0), grad_at(-1.0)
    return [(p - m) / (2 * h) for p, m in zip(plus, minus)]


def test_finite_difference_hv_passes_on_another_right_answer(capsys):
    checks.check_finite_difference_hv(central_difference)
    assert "✓ passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, key", [
    (finite_hv(divide=0), "not_divided"),
    (finite_hv(divide=2), "divided_twice"),
    (finite_hv(sign=-1), "sign"),
    (finite_hv(step=False), "no_step"),
    (finite_hv(restore=False), "not_restored"),
    (finite_hv(as_list=False), "not_list"),
])
def test_finite_difference_hv_catches(wrong, key):
    with fails_with(mistake("finite_difference_hv", key)):
        checks.check_finite_difference_hv(wrong)


def test_finite_difference_hv_says_what_right_looks_like_for_another_wrong_answer():
    def gradient_only(loss_fn, weights, grad, probe, h=1e-3):
        return [g.clone() for g in grad]

    with fails_with(r"it should be \(∇L\(θ \+ h v\) - grad\) / h"):
        checks.check_finite_difference_hv(gradient_only)


def test_the_exact_hv_is_the_hessian_times_the_probe():
    """answer_key's double backpropagation against the whole Hessian (40 x 40 for TinyConvNet's weights) times v."""
    from peel_utils.checks import answer_key, fixtures
    model, inputs, targets, probe = fixtures.hv_inputs()
    named = [(f"{n}.weight", m.weight) for n, m in model.named_modules() if getattr(m, "weight", None) is not None]

    def loss_of(flat):
        parts = [p.view_as(w) for p, (_, w) in zip(flat.split([w.numel() for _, w in named]), named)]
        params = {n: p for (n, _), p in zip(named, parts)}
        return F.cross_entropy(torch.func.functional_call(model, params, (inputs,)), targets)

    flat = torch.cat([w.detach().flatten() for _, w in named])
    hessian = torch.autograd.functional.hessian(loss_of, flat)  # (40, 40)
    expected = hessian @ torch.cat([v.flatten() for v in probe])
    assert torch.allclose(torch.cat([t.flatten() for t in answer_key.hv_expected()]), expected, atol=1e-10)


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
    checks.check_finite_difference_hv(finite_hv())
    checks.check_hessian_taylor_stats(hessian_stats())
    checks.check_cpd_importance(cpd_importance())
    assert torch.equal(torch.random.get_rng_state(), state)


@pytest.mark.parametrize("check", [checks.check_finite_difference_hv, checks.check_hessian_taylor_stats,
                                   checks.check_cpd_importance])
def test_notebook_05_stubs_raise_their_own_error(check):
    with pytest.raises(NotImplementedError):
        check(stub)
