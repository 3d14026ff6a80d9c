"""Checks of notebook 05 (Comb, Prune, Distill), the three steps of the Hessian/Taylor score:
finite_difference_hv, hessian_taylor_stats and CPDImportance."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from . import answer_key, catalog, fixtures
from .core import call, exercise_check, fail, passed


def _relative_error(got: list[torch.Tensor], expected: list[torch.Tensor]) -> float:
    num = sum(float((g - e).pow(2).sum()) for g, e in zip(got, expected))
    den = sum(float(e.pow(2).sum()) for e in expected)
    return math.sqrt(num / max(den, 1e-30))


def _scale_mistake(got: list[torch.Tensor], expected: list[torch.Tensor], known: dict[float, str],
                   tolerance: float) -> str:
    """If `got` is `expected` times one of the known factors, the key of the mistake that factor means."""
    for factor, key in known.items():
        if _relative_error(got, [factor * e for e in expected]) < tolerance:
            return key
    return ""


@exercise_check("finite_difference_hv")
def check_finite_difference_hv(finite_difference_hv: Callable) -> None:
    """`finite_difference_hv(loss_fn, weights, grad, probe, h)` on a tiny float64 conv net (eval mode), one
    batch, a fixed probe v and h = 1e-3: (∇L(θ + h v) - ∇L(θ)) / h per weight, compared with the exact Hv
    (double backpropagation); the weights must end where they began."""
    __tracebackhide__ = True
    name = "finite_difference_hv"
    mistake = catalog.BY_NAME[name].mistake
    model, inputs, targets, probe = fixtures.hv_inputs()
    weights = [m.weight for m in model.modules() if getattr(m, "weight", None) is not None]

    def loss_fn() -> torch.Tensor:
        return F.cross_entropy(model(inputs), targets)

    grad = [g.detach() for g in torch.autograd.grad(loss_fn(), weights)]  # ∇L(θ), as the notebook passes it
    before = [w.detach().clone() for w in weights]
    out = call(name, "finite_difference_hv(loss_fn, weights, grad, probe, h=1e-3)", finite_difference_hv,
               loss_fn, weights, [g.clone() for g in grad], [v.clone() for v in probe], fixtures.HV_STEP)
    if any(not torch.allclose(w.detach(), b, rtol=0, atol=1e-10) for w, b in zip(weights, before)):
        fail(name, mistake("not_restored"))
    if not (isinstance(out, (list, tuple)) and len(out) == len(weights)
            and all(isinstance(t, torch.Tensor) and t.shape == w.shape for t, w in zip(out, weights))):
        fail(name, mistake("not_list"))
    got = [t.detach().cpu().to(torch.float64) for t in out]
    exact = answer_key.hv_expected()
    error = _relative_error(got, exact)
    if error <= 1e-2:
        passed(f"finite_difference_hv gives (∇L(θ + h v) - ∇L(θ)) / h, within {error:.1e} (relative) of the "
               "exact Hv, and puts the weights back")
        return
    if all(float(t.abs().max()) == 0.0 for t in got):
        fail(name, mistake("no_step"))
    key = _scale_mistake(got, exact, {1e-3: "not_divided", 1e3: "divided_twice", -1.0: "sign"}, 1e-2)
    fail(name, f"Hv is {error:.2g} (relative error) away from the exact Hv" + (f": {mistake(key)}" if key else
         "; it should be (∇L(θ + h v) - grad) / h, the gradient at the stepped weights minus the one given"))


@exercise_check("hessian_taylor_stats")
def check_hessian_taylor_stats(hessian_taylor_stats: Callable, device: str | torch.device = "cpu") -> None:
    """`first, second = hessian_taylor_stats(model, batches)` on a tiny float64 conv net and two
    batches: first must be θ ⊙ ∂L/∂θ and second θ² ⊙ v ⊙ Hv (v the function's own Gaussian
    probe), both averaged over the batches; Hv is compared with its exact autograd value."""
    __tracebackhide__ = True
    name = "hessian_taylor_stats"
    mistake = catalog.BY_NAME[name].mistake
    device = torch.device(device)
    dtype = fixtures.hessian_dtype(device)
    expected = answer_key.hessian_expected(str(device))
    model, batches = fixtures.hessian_inputs(device, dtype)
    weighted = [m for m in model.modules() if getattr(m, "weight", None) is not None]
    with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
        torch.manual_seed(fixtures.HESSIAN_SEED)  # the probes v the function draws are then known
        out = call(name, "hessian_taylor_stats(model, batches)", hessian_taylor_stats, model, batches)
    if not (isinstance(out, tuple) and len(out) == 2 and all(isinstance(d, dict) for d in out)):
        fail(name, mistake("not_dicts"))
    if any(m not in out[0] for m in weighted):
        fail(name, "first should hold one entry per layer with weights (Conv2d, Linear, BatchNorm2d)")
    for label, got_dict in zip(("first", "second"), out):
        got = [got_dict.get(m) for m in weighted]
        for m, g in zip(weighted, got):
            if not isinstance(g, torch.Tensor) or g.shape != m.weight.shape:
                shape = tuple(g.shape) if isinstance(g, torch.Tensor) else type(g).__name__
                fail(name, f"{label}[{type(m).__name__}] should be a tensor shaped like its weight "
                           f"{tuple(m.weight.shape)}, got {shape}")
        got = [g.detach().cpu() for g in got]
        ref = expected[label]
        tolerance = 1e-6 if label == "first" and dtype == torch.float64 else 3e-2
        if _relative_error(got, ref) <= tolerance:
            continue
        key = _scale_mistake(got, ref, {2.0: "summed", -1.0: "sign"},
                             tolerance)
        variants = {f"last_{label}": "last_batch"}
        if label == "second":
            variants.update({"no_probe": "no_probe", "not_squared": "not_squared"})
        for variant, mistake_key in variants.items():
            if not key and _relative_error(got, expected[variant]) < tolerance:
                key = mistake_key
        what = "θ ⊙ ∂L/∂θ" if label == "first" else "θ² ⊙ v ⊙ Hv"
        fail(name, f"{label} is not {what} averaged over the batches (relative error "
                   f"{_relative_error(got, ref):.2g})" + (f": {mistake(key)}" if key else ""))
    passed("hessian_taylor_stats gives θ ⊙ ∂L/∂θ and θ² ⊙ v ⊙ Hv (finite differences within 3% of "
           "the exact Hv), averaged over the batches")


@exercise_check("CPDImportance")
def check_cpd_importance(importance_class: type) -> None:
    """`importance_class(first, second, memory)(group)` on the two coupled groups of a tiny conv net
    (conv1 -> bn1 -> conv2 -> fc), with hand-set first/second/memory: each channel's score must be
    |sum over the group's weights of -first + second / 2| divided by the memory its removal frees."""
    __tracebackhide__ = True
    # Imported here: every notebook imports peel_utils.checks, and structured brings torch-pruning, which only
    # notebook 05 uses; so notebooks 01-04 run even where torch-pruning cannot be imported (as handover does).
    from .. import structured

    name = "CPDImportance"
    mistake = catalog.BY_NAME[name].mistake
    scores = answer_key.cpd_expected()
    model, first, second, memory = fixtures.cpd_inputs()
    graph = structured.dependency_graph(model, (1, 6, 6))
    groups = {}
    for group in structured.all_groups(graph, ignored_layers=[model.fc]):
        root = group[0].dep.target.module
        groups["conv1" if root is model.conv1 else "conv2"] = group
    importance = call(name, "CPDImportance(first, second, memory)", importance_class, first, second, memory)
    for key, group in groups.items():
        what = f"importance(group) for the group of {key}'s output channels"
        got = call(name, what, importance, group)
        want = scores["right"][key]
        if not isinstance(got, torch.Tensor) or got.shape != want.shape:
            shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            fail(name, f"{what} should return one score per channel, shape {tuple(want.shape)}, got {shape}")
        got = got.detach().cpu().to(want.dtype)
        if torch.allclose(got, want, rtol=1e-4, atol=1e-7):
            continue
        why = next((mistake(k) for k, s in scores.items()
                    if k != "right" and torch.allclose(got, s[key], rtol=1e-4, atol=1e-7)), "")
        fail(name, f"{what}: expected {[round(v, 4) for v in want.tolist()]}, got "
                   f"{[round(v, 4) for v in got.tolist()]}" + (f": {why}" if why else ""))
    passed("CPDImportance sums -first + second / 2 over every weight of a channel's group and "
           "divides |ΔL| by the memory its outputs free")
