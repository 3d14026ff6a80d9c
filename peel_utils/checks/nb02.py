"""Check of notebook 02 (ResNet50 pruning sweep): the ratio rule choose_ratio."""

from __future__ import annotations

import math
from collections.abc import Callable

from . import catalog, fixtures
from .core import call, exercise_check, fail, passed


@exercise_check("choose_ratio")
def check_choose_ratio(choose_ratio: Callable) -> None:
    """`choose_ratio(table, method, max_drop)` on a hand-made sweep: the largest ratio of `method`
    whose accuracy is at most `max_drop` below that method's ratio-0 accuracy (bounds included)."""
    __tracebackhide__ = True
    name = "choose_ratio"
    mistake = catalog.BY_NAME[name].mistake
    table = fixtures.sweep_table()
    original = table.copy()
    cases = [  # (method, max_drop, answer, {a wrong answer: the mistake it means})
        ("global", 0.05, 0.4, {0.2: "best", 0.705: "accuracy", 0.0: "smallest"}),
        ("per-layer", 0.25, 0.5, {0.4: "strict", 0.8: "mixing"}),
        ("global", 0.25, 0.8, {0.6: "first_failure"}),
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
    passed("choose_ratio returns the largest ratio of the method within max_drop of its unpruned accuracy, "
           "bounds included")
