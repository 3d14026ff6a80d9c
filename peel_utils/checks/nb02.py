"""Check of notebook 02 (ResNet50 pruning sweep): the ratio rule choose_ratio."""

from __future__ import annotations

import math
from collections.abc import Callable

from . import catalog, fixtures
from .core import call, exercise_check, fail, passed


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
