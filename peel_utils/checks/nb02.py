"""Checks of notebook 02 (ResNet50 pruning sweep): the prediction global_layer_sparsity and the ratio rule
choose_ratio."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import torch

from . import catalog, fixtures
from .core import call, exercise_check, fail, passed


def layers() -> dict[str, torch.Tensor]:
    """Three weights with 20 distinct magnitudes 0.01 ... 0.20: the head `fc` holds most of the small ones."""
    return {"conv.weight": torch.tensor([[0.06, -0.07, 0.14, -0.15], [0.16, 0.17, -0.18, -0.19]]),
            "layer2.weight": torch.tensor([-0.08, 0.09, -0.10, 0.11, -0.12, 0.20]),
            "fc.weight": torch.tensor([[0.01, -0.02, 0.03], [-0.04, 0.05, -0.13]])}


def _same(got: dict, values: tuple[float, ...]) -> bool:
    return all(math.isclose(float(g), v, abs_tol=1e-6) for g, v in zip(got.values(), values))


@exercise_check("global_layer_sparsity")
def check_global_layer_sparsity(global_layer_sparsity: Callable) -> None:
    """`global_layer_sparsity(weights, ratio)` on three small weights (20 entries, distinct magnitudes): the
    fraction of each weight that one magnitude threshold over all of them zeroes, when it zeroes round(ratio * 20)."""
    __tracebackhide__ = True
    name = "global_layer_sparsity"
    mistake = catalog.BY_NAME[name].mistake
    weights = layers()
    before = {k: v.clone() for k, v in weights.items()}
    sixth = 1 / 6
    cases = [  # (ratio, answer per layer (conv, layer2, fc), {a wrong answer: the mistake it means})
        (0.4, (0.25, sixth, 5 * sixth), {(0.375, 2 * sixth, 2 * sixth): "per_layer", (0.5, 0.5, sixth): "signed",
                                         (0.25, 0.0, 5 * sixth): "one_too_few", (0.25, 2 * sixth, 5 * sixth): "one_too_many",
                                         (0.25, 0.125, 0.625): "share", (0.25, 5 * sixth, 5 * sixth): "fraction",
                                         (0.75, 5 * sixth, sixth): "density", (2, 1, 5): "counts"}),
        (0.65, (0.25, 5 * sixth, 1.0), {(0.625, 4 * sixth, 4 * sixth): "per_layer"}),
        (0.0, (0.0, 0.0, 0.0), {}),
    ]
    for ratio, answer, wrong in cases:
        what = f"global_layer_sparsity(weights, {ratio})"
        got = call(name, f"{what} ({mistake('edges')})" if ratio == 0 else what, global_layer_sparsity, weights, ratio)
        if any(not torch.equal(before[k], v) for k, v in weights.items()):
            fail(name, mistake("changes"))
        if not isinstance(got, dict) or list(got) != list(weights):
            fail(name, f"{what} returned {type(got).__name__}; {mistake('returns')}")
        if any(isinstance(v, torch.Tensor) for v in got.values()):
            fail(name, mistake("tensor"))
        if any(isinstance(v, bool) or not isinstance(v, numbers.Real) for v in got.values()):
            fail(name, f"{what} returned values of type {sorted({type(v).__name__ for v in got.values()})}; "
                       f"{mistake('returns')}")
        if _same(got, answer):
            continue
        why = next((mistake(key) for values, key in wrong.items() if _same(got, values)),
                   mistake("edges") if ratio == 0 else "")
        shown = ", ".join(f"{k} {float(v):.3f}" for k, v in got.items())
        fail(name, f"{what}: expected conv.weight {answer[0]:.3f}, layer2.weight {answer[1]:.3f}, fc.weight "
                   f"{answer[2]:.3f} (one threshold zeroes the {round(ratio * 20)} smallest of all 20 magnitudes), "
                   f"got {shown}" + (f": {why}" if why else ""))
    passed("global_layer_sparsity puts one magnitude threshold over every weight and returns the fraction of each "
           "layer it zeroes")


@exercise_check("choose_ratio")
def check_choose_ratio(choose_ratio: Callable) -> None:
    """`choose_ratio(table, method, max_drop)` on a hand-made sweep: the largest ratio of `method`
    whose accuracy is at most `max_drop` points below that method's ratio-0 accuracy (bounds
    included). The table's accuracy is a fraction, `max_drop` is in points: the bound is
    `dense - max_drop / 100`; comparing with `dense - max_drop` accepts every ratio (0.9 here)."""
    __tracebackhide__ = True
    name = "choose_ratio"
    mistake = catalog.BY_NAME[name].mistake
    table = fixtures.sweep_table()
    original = table.copy()
    cases = [  # (method, max_drop in points, answer, {a wrong answer: the mistake it means})
        ("global", 5.0, 0.4, {0.2: "best", 0.705: "accuracy", 0.0: "smallest", 0.9: "units"}),
        ("per-layer", 25.0, 0.5, {0.4: "strict", 0.8: "mixing", 0.9: "units"}),
        ("global", 25.0, 0.8, {0.6: "first_failure", 0.9: "units"}),
        ("per-layer", 0.0, 0.2, {0.0: "strict", math.nan: "strict"}),
    ]
    for method, max_drop, answer, wrong in cases:
        what = f"choose_ratio(table, {method!r}, max_drop={max_drop})"
        got = call(name, what, choose_ratio, table, method, max_drop)
        if isinstance(got, bool) or not isinstance(got, (int, float)):
            fail(name, f"{what} returned {type(got).__name__}; {mistake('not_float')}")
        if not table.equals(original):
            fail(name, mistake("changes"))
        if math.isclose(got, answer, abs_tol=1e-9):
            continue
        why = next((mistake(key) for value, key in wrong.items()
                    if math.isclose(got, value, abs_tol=1e-9) or (math.isnan(got) and math.isnan(value))), "")
        fail(name, f"{what}: expected {answer}, got {got}" + (f": {why}" if why else ""))
    passed("choose_ratio returns the largest ratio of the method within max_drop points of its unpruned accuracy, "
           "bounds included")
