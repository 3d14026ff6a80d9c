"""The delegation guard: an answer that calls the workbook's own implementation fails every check, whatever
way it reaches it, and the implementations work again afterwards."""

import functools
import re
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from check_helpers import fails_with, solution

from peel_utils import checks, compare, distill, entry, huffman, measure, prune, sharing, storage, sweep, train
from peel_utils.checks import catalog, fixtures

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


Solution = solution("01", "SparsePruner")  # the notebook's own answer


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


def sparsity_by_ranking(weights, ratio):
    """notebook 02's prediction through the workbook's global ranking."""
    masks = prune.MagnitudeRanking(list(weights.values())).masks(ratio)
    return {name: 1 - mask.float().mean().item() for name, mask in zip(weights, masks)}


def sparsity_by_calc_mask(weights, ratio):
    """notebook 02's prediction through calc_mask on every weight at once."""
    mask = prune.calc_mask(torch.cat([w.flatten() for w in weights.values()]), ratio)
    return {name: 1 - part.float().mean().item() for name, part in
            zip(weights, mask.split([w.numel() for w in weights.values()]))}


def interval_by_bootstrap(a, b, resamples, seed):
    """notebook 03's interval through peel_utils.compare."""
    d = compare.paired_bootstrap(a, b, resamples=resamples, seed=seed)
    return d.points, d.low, d.high


def interval_by_table(a, b, resamples, seed):
    row = compare.comparison_table({"A": a, "B": b}, [("A", "B")], resamples=resamples, seed=seed).iloc[0]
    return row["A - B (points)"], row["low"], row["high"]


def share_by_package(model, bits):
    """notebook 07's k-means through peel_utils.sharing."""
    shared = sharing.share_weights(model, bits)
    sharing.apply_shared(model, shared)
    return {name: layer.codebook for name, layer in shared.items()}


def code_by_package(counts):
    """notebook 07's Huffman code through peel_utils.huffman."""
    return {s: format(code, f"0{length}b") for s, (code, length) in
            huffman.canonical_codes(huffman.code_lengths(counts)).items()}


def quantize_by_storage(w, bits, symmetric, value_range=None):
    q, scale = storage.quantize_weight(w.reshape(1, -1))
    return q.reshape(w.shape).to(torch.int32), float(scale), 0


def dequantize_by_hand(q, scale, zero_point):
    return (q.float() - zero_point) * scale


def per_channel_by_storage(w, bits, symmetric):
    q, scale = storage.quantize_weight(w)
    return q.to(torch.int32), scale.view(-1, *[1] * (w.dim() - 1)), torch.zeros(1)


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
    ("global_layer_sparsity", sparsity_by_ranking), ("global_layer_sparsity", sparsity_by_calc_mask),
    ("bitmask_bytes", bytes_by_saving), ("paired_interval", interval_by_bootstrap), ("paired_interval", interval_by_table),
    ("distillation_loss", distill.kd_loss), ("distillation_loss", _wrapped(distill.kd_loss)),
    ("distillation_loss", _through_module("distillation_loss")), ("distillation_loss", kl_from_package),
    ("kmeans_share", share_by_package), ("huffman_code", code_by_package),
    ("quantize_tensor", (quantize_by_storage, dequantize_by_hand)), ("quantize_per_channel", per_channel_by_storage),
    ("tier", entry.tier), ("tier", _wrapped(entry.tier)),
]  # an answer of two functions (quantize_tensor, dequantize) is a tuple: the check takes both


@pytest.mark.parametrize("exercise, answer", DELEGATING,
                         ids=[f"{e}-{getattr(a, '__name__', type(a).__name__)}" for e, a in DELEGATING])
def test_calling_the_workbooks_own_implementation_fails_the_check(exercise, answer):
    check = getattr(checks, catalog.BY_NAME[exercise].check)
    with fails_with(f"^{re.escape(exercise)}: your answer calls the workbook's own implementation "
                    r"\(peel_utils\.\w+\.[\w.]+\); write it yourself$"):
        check(*answer) if isinstance(answer, tuple) else check(answer)


def test_a_name_bound_to_the_reference_before_the_check_is_caught():
    calc_mask = prune.calc_mask  # what an exercise cell could do
    with fails_with(r"\(peel_utils\.prune\.calc_mask\)"):
        checks.check_calc_mask(calc_mask)


def float_mask(tensor, sparsity):
    return solution("01", "calc_mask")(tensor, sparsity).float()


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


def test_a_blocked_function_keeps_its_names_on_every_python():
    """The guard's code object keeps the function's name and, from Python 3.11, its qualified name."""
    from peel_utils.checks import guard

    reference = "peel_utils.prune:SparsePruner.prune"
    original = guard.resolve(reference).__code__
    code = guard._guard_code(guard.resolve(reference), reference)
    assert code.co_name == original.co_name == "prune"
    assert getattr(code, "co_qualname", None) == getattr(original, "co_qualname", None)
