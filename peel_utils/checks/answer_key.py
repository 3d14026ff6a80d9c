"""The checks' expected values, worked out from their fixed inputs (fixtures) with the workbook's
own implementations and, for the typical mistakes, with those mistakes made on purpose.

This module is the only part of the checks that holds solution code. The hand-out
(peel_course.handout) replaces it by the values it returns, stored as data: every function here
takes no argument or one from its `cases`, and returns tensors, numbers, lists and dicts.
The functions run with the delegation guard lifted and the random state kept, and are cached:
callers must not change what they return.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import fixtures, guard

KEYS: dict[str, tuple[Callable, tuple[tuple, ...]]] = {}  # name: (function, the argument tuples to store)


def answer(cases: tuple[tuple, ...] = ((),)) -> Callable[[Callable], Callable]:
    """Register an expected-value function (and the argument tuples the hand-out stores)."""
    def decorate(fn: Callable) -> Callable:
        cached = functools.cache(fn)

        @functools.wraps(fn)
        def wrapper(*args):
            with guard.unblocked(), torch.random.fork_rng(devices=[]):
                return cached(*args)
        KEYS[fn.__name__] = (wrapper, cases)
        return wrapper
    return decorate


# --- notebook 01 -----------------------------------------------------------------------------

@answer()
def calc_mask_random() -> list[torch.Tensor]:
    """prune.calc_mask of each of fixtures.random_mask_inputs()."""
    from .. import prune
    return [prune.calc_mask(tensor, sparsity) for tensor, sparsity in fixtures.random_mask_inputs()]


@answer()
def calc_mask_signed() -> torch.Tensor:
    """The mask of fixtures.W at 0.6 when the signed values are ranked (the mistake)."""
    return fixtures.W > fixtures.W.view(-1).kthvalue(15).values


@answer()
def sparse_pruner_weights() -> dict[str, dict[str, torch.Tensor]]:
    """The pruned model's weights: 'right' (each times its mask) and 'fresh' (new masks at 0.5)."""
    from .. import prune
    before = fixtures.snapshot(fixtures.two_layer(seed=fixtures.PRUNED_MODEL_SEED))
    masks = fixtures.pruner_masks()
    return {"right": {n: before[n] * mask for n, mask in masks.items()},
            "fresh": {n: before[n] * prune.calc_mask(before[n], 0.5) for n in masks}}


def _masked_epoch(model: nn.Module, loader, loss_fn: Callable, optimizer: torch.optim.Optimizer, pruner, *,
                  zero_grad: bool = True, prune_each_step: bool = True) -> None:
    """peel_utils.train.train's epoch without its progress bar (a test checks they agree), or, with
    a flag off, one of two typical mistakes."""
    model.train()
    for inputs, targets in loader:
        if zero_grad:
            optimizer.zero_grad()
        loss_fn(model(inputs), targets).backward()
        optimizer.step()
        if prune_each_step:
            pruner.prune(model)
    if not prune_each_step:
        pruner.prune(model)


@answer()
def masked_training() -> dict[str, dict[str, torch.Tensor]]:
    """The weights after one epoch on fixtures.training_batches(): 'right', and the mistakes
    'accumulate' (no zero_grad) and 'at_end' (masks applied after the last batch only)."""
    from .. import prune
    start = fixtures.training_start()
    pruner = prune.ZeroMaskPruner(start)
    out = {}
    for key, flags in (("right", {}), ("accumulate", {"zero_grad": False}), ("at_end", {"prune_each_step": False})):
        model = copy.deepcopy(start)
        _masked_epoch(model, fixtures.training_batches(), nn.CrossEntropyLoss(), fixtures.sgd(model), pruner, **flags)
        out[key] = fixtures.snapshot(model)
    return out


# --- notebook 04 -----------------------------------------------------------------------------

def _kl_variants(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> dict[str, float]:
    """The distillation term (alpha = 1) as written correctly and with typical mistakes."""
    log_s = F.log_softmax(student / temperature, dim=1)
    log_t = F.log_softmax(teacher / temperature, dim=1)
    kl_rows = (log_t.exp() * (log_t - log_s)).sum(dim=1)  # (N,)
    reverse_rows = (log_s.exp() * (log_s - log_t)).sum(dim=1)
    soft_ce_rows = -(log_t.exp() * log_s).sum(dim=1)
    t2 = temperature ** 2
    values = {"right": t2 * kl_rows.mean(), "no_t2": kl_rows.mean(),
              "mean_classes": t2 * kl_rows.mean() / student.size(1), "sum_batch": t2 * kl_rows.sum(),
              "reversed": t2 * reverse_rows.mean(), "soft_ce": t2 * soft_ce_rows.mean()}
    return {key: float(value) for key, value in values.items()}


@answer()
def distillation_values() -> dict:
    """Loss values on fixtures.STUDENT/TEACHER/TARGETS: 'equal' (student = teacher, T = 4,
    alpha = 1), 'ce' and 'ce_soft' (alpha = 0, right and at T = 4), 'by_t' (alpha = 1 per T) and
    'mixes' (kd_loss per (T, alpha) of fixtures.MIXES)."""
    from .. import distill
    s, t, y = fixtures.STUDENT, fixtures.TEACHER, fixtures.TARGETS
    return {"equal": _kl_variants(s, s, 4.0), "ce": float(F.cross_entropy(s, y)),
            "ce_soft": float(F.cross_entropy(s / 4.0, y)),
            "by_t": {str(temperature): _kl_variants(s, t, temperature) for temperature in fixtures.TEMPERATURES},
            "mixes": [float(distill.kd_loss(s, t, y, temperature, alpha)) for temperature, alpha in fixtures.MIXES]}


# --- notebook 05 -----------------------------------------------------------------------------

@answer()
def hv_expected() -> list[torch.Tensor]:
    """H v for fixtures.hv_inputs(), exact: the gradient differentiated once more along the probe
    (double backpropagation), one tensor per weighted layer of TinyConvNet (module order)."""
    model, inputs, targets, probe = fixtures.hv_inputs()
    weights = [m.weight for m in model.modules() if getattr(m, "weight", None) is not None]
    grad = torch.autograd.grad(F.cross_entropy(model(inputs), targets), weights, create_graph=True)
    return [hv.detach() for hv in torch.autograd.grad(grad, weights, grad_outputs=probe)]


@answer(cases=(("cpu",),))
def hessian_expected(device: str) -> dict[str, list[torch.Tensor]]:
    """Per weighted layer of fixtures.TinyConvNet (module order), averaged over the two batches:
    'first' θ ⊙ ∂L/∂θ and 'second' θ² ⊙ v ⊙ Hv with the exact Hv and the probes v drawn after
    torch.manual_seed(HESSIAN_SEED), and the mistakes 'last_first', 'last_second' (last batch
    only), 'no_probe' and 'not_squared'. On the CPU."""
    device = torch.device(device)
    model, batches = fixtures.hessian_inputs(device, fixtures.hessian_dtype(device))
    weights = [m.weight for m in model.modules() if getattr(m, "weight", None) is not None]
    keys = ("first", "second", "last_first", "last_second", "no_probe", "not_squared")
    expected = {key: [torch.zeros_like(w) for w in weights] for key in keys}
    with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
        torch.manual_seed(fixtures.HESSIAN_SEED)
        model.eval()
        for inputs, targets in batches:
            inputs, targets = inputs.to(device), targets.to(device)
            probe = [torch.randn_like(w) for w in weights]
            grad = torch.autograd.grad(F.cross_entropy(model(inputs), targets), weights, create_graph=True)
            hv = torch.autograd.grad(grad, weights, grad_outputs=probe)  # the exact H v
            for i, (w, g, v, h) in enumerate(zip(weights, grad, probe, hv)):
                w, g = w.detach(), g.detach()
                terms = {"first": w * g, "second": w ** 2 * v * h, "no_probe": w ** 2 * h, "not_squared": w * v * h}
                for key, term in terms.items():
                    expected[key][i] += term / len(batches)
                expected["last_first"][i] = terms["first"] / len(batches)
                expected["last_second"][i] = terms["second"] / len(batches)
    return {key: [t.cpu() for t in tensors] for key, tensors in expected.items()}


def _cpd_scores(dl: dict[str, torch.Tensor], memory: dict[str, int], *, bn: bool = True,
                inputs: bool = True, absolute: bool = True, freed: str = "outputs") -> dict[str, torch.Tensor]:
    """Per channel of TinyConvNet's two groups (conv1's and conv2's outputs), worked out by hand
    from each weight's loss change `dl`; the flags give typical mistakes' scores."""
    conv1 = (dl["conv1"].flatten(1).sum(1) + (dl["bn1"] if bn else 0)  # (3,) filters, BN scales,
             + (dl["conv2"].sum(0).flatten() if inputs else 0))         # conv2's weights reading them
    conv2 = dl["conv2"].flatten(1).sum(1) + (dl["fc"].sum(0) if inputs else 0)  # (2,)
    mem = {"outputs": (memory["conv1"], memory["conv2"]),
           "all": (memory["conv1"] + memory["conv2"], memory["conv2"] + memory["fc"]),
           "none": (1, 1)}[freed]
    scores = {"conv1": conv1 / mem[0], "conv2": conv2 / mem[1]}
    return {k: v.abs() if absolute else v for k, v in scores.items()}


@answer()
def cpd_expected() -> dict[str, dict[str, torch.Tensor]]:
    """Scores per group ('conv1', 'conv2') for fixtures.cpd_inputs(): 'right' and each mistake
    of the catalog's CPDImportance table."""
    model, first, second, memory = fixtures.cpd_inputs()
    layers = {"conv1": model.conv1, "bn1": model.bn1, "conv2": model.conv2, "fc": model.fc}
    dl = {k: -first[m] + 0.5 * second[m] for k, m in layers.items()}
    mem = {k: memory[m] for k, m in layers.items() if m in memory}
    return {"right": _cpd_scores(dl, mem), "no_bn": _cpd_scores(dl, mem, bn=False),
            "no_inputs": _cpd_scores(dl, mem, inputs=False), "no_abs": _cpd_scores(dl, mem, absolute=False),
            "no_memory": _cpd_scores(dl, mem, freed="none"), "all_memory": _cpd_scores(dl, mem, freed="all"),
            "sign": _cpd_scores({k: first[m] + 0.5 * second[m] for k, m in layers.items()}, mem),
            "half": _cpd_scores({k: -first[m] + second[m] for k, m in layers.items()}, mem)}


# --- notebook 06 -----------------------------------------------------------------------------

def _levels(bits: int, symmetric: bool) -> tuple[int, int]:
    """(qmin, qmax): signed codes when symmetric (int8: -128..127), else 0..2**bits - 1 (uint8: 0..255)."""
    return (-2 ** (bits - 1), 2 ** (bits - 1) - 1) if symmetric else (0, 2 ** bits - 1)


def _qparams(lo: float, hi: float, bits: int, symmetric: bool, levels: int = 0) -> tuple[float, int]:
    """(scale, zero_point) for the range [lo, hi] holding 0; `levels` = 1 makes the off-by-one mistake."""
    if symmetric:
        return max(-lo, hi) / (2 ** (bits - 1) - 1 + levels), 0
    scale = (hi - lo) / (2 ** bits - 1 + levels)
    return scale, round(-lo / scale)


def _codes(w: torch.Tensor, scale, zero_point, bits: int, symmetric: bool, rounding=torch.round) -> torch.Tensor:
    qmin, qmax = _levels(bits, symmetric)
    return (rounding(w / scale) + zero_point).clamp(qmin, qmax).long()


def _margin(x: torch.Tensor) -> float:
    """How far (in steps) the nearest of `x` (values divided by their scale) lies from a rounding tie: the
    fixtures keep it above 0.003, so that any order of the same float operations gives the same codes."""
    return float(((x - x.floor()) - 0.5).abs().min())


@answer(cases=tuple((i,) for i in range(len(fixtures.QUANT_CASES))))
def quantize_expected(case: int) -> dict:
    """Per-tensor quantisation of QUANT_CASES[case] (in float64): 'q', 'scale', 'zero_point', 'deq', and
    what the catalog's mistakes give: scales 'levels', 'symmetric_minmax' (a list), 'zero_not_in_range',
    'ignores_range'; 'zp_sign'; codes 'trunc' (a list: truncated before or after adding the zero point);
    'deq_no_zp'; and 'margin' (the distance to the nearest rounding tie, in steps)."""
    name, bits, symmetric, value_range = fixtures.QUANT_CASES[case]
    w = fixtures.quant_tensors()[name].double()
    own = (min(float(w.min()), 0.0), max(float(w.max()), 0.0))
    lo, hi = value_range if value_range is not None else own
    scale, zero_point = _qparams(lo, hi, bits, symmetric)
    q = _codes(w, scale, zero_point, bits, symmetric)
    out = {"q": q, "scale": scale, "zero_point": zero_point, "deq": (q - zero_point) * scale,
           "levels": _qparams(lo, hi, bits, symmetric, levels=1)[0], "symmetric_minmax": [],
           "zero_not_in_range": None, "ignores_range": None, "zp_sign": -zero_point if zero_point else None,
           "trunc": [_codes(w, scale, zero_point, bits, symmetric, torch.trunc),
                     (torch.trunc(w / scale + zero_point)).clamp(*_levels(bits, symmetric)).long()],
           "deq_no_zp": q * scale, "margin": _margin(torch.cat([(w / scale).reshape(-1), torch.tensor([-lo / scale], dtype=w.dtype)]))}
    if symmetric:
        out["symmetric_minmax"] = [hi / (2 ** (bits - 1) - 1), (hi - lo) / (2 ** bits - 1)]
    elif value_range is None and float(w.min()) > 0:
        out["zero_not_in_range"] = _qparams(float(w.min()), float(w.max()), bits, False)[0]
    if value_range is not None:
        out["ignores_range"] = _qparams(*own, bits, symmetric)[0]
    return out


def _per_channel(w: torch.Tensor, bits: int, symmetric: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(q, scale, zero_point) per output channel (dim 0), scale and zero point shaped (C, 1, ...)."""
    flat = w.reshape(w.shape[0], -1)
    lo = flat.amin(dim=1).clamp(max=0)
    hi = flat.amax(dim=1).clamp(min=0)
    shape = (-1, *[1] * (w.dim() - 1))
    if symmetric:
        scale = torch.maximum(-lo, hi) / (2 ** (bits - 1) - 1)
    else:
        scale = (hi - lo) / (2 ** bits - 1)
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    zero_point = torch.zeros_like(scale) if symmetric else torch.round(-lo / scale)
    scale, zero_point = scale.view(shape), zero_point.view(shape)
    return _codes(w, scale, zero_point, bits, symmetric), scale, zero_point.long()


@answer(cases=tuple((i,) for i in range(len(fixtures.PER_CHANNEL_CASES))))
def per_channel_expected(case: int) -> dict:
    """Per-channel quantisation of PER_CHANNEL_CASES[case] (float64): 'q', 'scale' and 'zero_point' (C, 1, ...),
    'zero_channels' (all-zero output channels), 'wrong_axis' (the scales per input channel, dim 1),
    'per_tensor' (the one scale of the whole tensor) and 'margin'."""
    name, bits, symmetric = fixtures.PER_CHANNEL_CASES[case]
    w = fixtures.quant_tensors()[name].double()
    q, scale, zero_point = _per_channel(w, bits, symmetric)
    lo, hi = min(float(w.min()), 0.0), max(float(w.max()), 0.0)
    zero = [c for c in range(w.shape[0]) if not bool(w[c].any())]
    live = [c for c in range(w.shape[0]) if c not in zero]
    return {"q": q, "scale": scale, "zero_point": zero_point, "zero_channels": zero,
            "wrong_axis": _per_channel(w.transpose(0, 1), bits, symmetric)[1].reshape(-1),
            "per_tensor": _qparams(lo, hi, bits, symmetric)[0],
            "margin": _margin(torch.cat([(w[live] / scale[live]).reshape(-1),
                                         (-w.reshape(w.shape[0], -1).amin(1).clamp(max=0)[live] / scale.reshape(-1)[live])]))}


# --- notebook 07 -----------------------------------------------------------------------------

def _kmeans(values: torch.Tensor, k: int, update: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Linear-initialised 1-D k-means of `values` (written out, for the mistakes' variants)."""
    centroids = torch.linspace(float(values.min()), float(values.max()), k)
    assignment = None
    for _ in range(100):
        new = (values[:, None] - centroids[None, :]).abs().argmin(dim=1)
        if assignment is not None and torch.equal(new, assignment):
            break
        assignment = new
        if update:
            for j in range(k):
                if (assignment == j).any():
                    centroids[j] = values[assignment == j].mean()
    return centroids, assignment


@answer(cases=tuple((bits,) for bits in fixtures.SHARE_BITS))
def kmeans_share_expected(bits: int) -> dict[str, dict[str, torch.Tensor]]:
    """The weights of sharing_model() after sharing at `bits`: 'right' (sharing.share_weights) and the
    mistakes 'zeros_in_kmeans', 'not_updated', 'one_codebook' and 'k_bits'; plus 'codebooks' (sorted)."""
    from .. import sharing
    model = fixtures.sharing_model()
    shared = sharing.share_weights(model, bits)
    out = {"right": {n: layer.weight() for n, layer in shared.items()},
           "codebooks": {n: layer.codebook.sort().values for n, layer in shared.items()}}
    weights = {n: p.detach() for n, p in model.named_parameters() if p.dim() > 1}
    variants = {"zeros_in_kmeans": {}, "not_updated": {}, "k_bits": {}}
    for n, w in weights.items():
        mask = w != 0
        for key, values, k, update in (("zeros_in_kmeans", w.reshape(-1), 2 ** bits, True),
                                       ("not_updated", w[mask], 2 ** bits, False), ("k_bits", w[mask], bits, True)):
            centroids, assignment = _kmeans(values, k, update)
            shared_values = centroids[assignment]
            variants[key][n] = torch.zeros_like(w).masked_scatter_(
                mask, shared_values.reshape(w.shape)[mask] if key == "zeros_in_kmeans" else shared_values)
    every = torch.cat([w[w != 0] for w in weights.values()])
    centroids, assignment = _kmeans(every, 2 ** bits)
    parts = centroids[assignment].split([int((w != 0).sum()) for w in weights.values()])
    variants["one_codebook"] = {n: torch.zeros_like(w).masked_scatter_(w != 0, part)
                                for (n, w), part in zip(weights.items(), parts)}
    return {**out, **variants}


@answer(cases=((fixtures.SHARE_BITS[0],),))
def kmeans_share_emptied_expected(bits: int) -> dict[str, dict[str, torch.Tensor]]:
    """emptied_sharing_model() after sharing at `bits`: 'right', the weights (sharing.share_weights; the emptied one
    still all zero), and 'codebooks' (sorted), the emptied layer's empty, as notebook 07 asks (share_weights keeps
    2**bits zeros there that no weight points at, for its file record)."""
    from .. import sharing
    shared = sharing.share_weights(fixtures.emptied_sharing_model(), bits)
    return {"right": {n: layer.weight() for n, layer in shared.items()},
            "codebooks": {n: layer.codebook.sort().values if layer.indices.numel() else layer.codebook.new_zeros(0)
                          for n, layer in shared.items()}}


@answer(cases=tuple((i,) for i in range(len(fixtures.HUFFMAN_COUNTS))))
def huffman_optimal_bits(case: int) -> int:
    """The total coded bits of HUFFMAN_COUNTS[case] under an optimal prefix-free code."""
    from .. import huffman
    counts = fixtures.HUFFMAN_COUNTS[case]
    return huffman.total_bits(counts, huffman.code_lengths(counts))
