"""Check of notebook 08 (the compression challenge): the tier rule tier."""

from __future__ import annotations

from collections.abc import Callable

from . import catalog
from .core import call, exercise_check, fail, passed

# (size_ratio, test_accuracy, teacher_accuracy, {keyword arguments}), the answer, {a wrong answer: the mistake}.
# The bounds use numbers a float holds exactly (0.75 - 25 / 100 == 0.5), so a right `>=` is never let down by rounding.
TIER_CASES: tuple[tuple[tuple, dict, object, dict], ...] = (
    ((600.0, 0.970, 0.977), {}, "500x", {"50x": "smallest_first", "200x": "smallest_first", "none": "ratio_direction",
                                         500: "format", None: "none"}),
    ((600.0, 0.950, 0.977), {}, "none", {"500x": "accuracy", "50x": "accuracy", "": "none", None: "none"}),
    ((200.0, 0.98, 0.977), {}, "200x", {"50x": "strict_ratio", "500x": "ratio_direction", 200: "format"}),
    ((120.0, 0.6, 0.75), {"max_drop": 25.0}, "50x", {"none": "ignores_max_drop"}),
    ((120.0, 0.5, 0.75), {"max_drop": 25.0}, "50x", {"none": "strict_accuracy"}),
    ((120.0, 0.45, 0.75), {"max_drop": 25.0}, "none", {"50x": "accuracy"}),
    ((150.0, 0.99, 0.977), {"tiers": (10, 100, 1000)}, "100x", {"50x": "ignores_tiers", "10x": "smallest_first",
                                                                "1000x": "ratio_direction"}),
    ((30.0, 0.99, 0.977), {}, "none", {None: "none", "": "none", "50x": "ratio_direction"}),
)


def _words(args: tuple, kwargs: dict) -> str:
    size_ratio, accuracy, teacher = args
    extra = "".join(f", {key}={value!r}" for key, value in kwargs.items())
    return f"tier({size_ratio:g}, {accuracy:g}, {teacher:g}{extra})"


@exercise_check("tier")
def check_tier(tier: Callable) -> None:
    """`tier(size_ratio, test_accuracy, teacher_accuracy, tiers=(500, 200, 50), max_drop=1.0)` on hand-made cases:
    the largest tier the size ratio reaches (bounds included) as '500x', when the accuracy is at most `max_drop`
    points below the teacher's (bounds included); 'none' otherwise."""
    __tracebackhide__ = True
    name = "tier"
    mistake = catalog.BY_NAME[name].mistake
    for args, kwargs, answer, wrong in TIER_CASES:
        what = _words(args, kwargs)
        got = call(name, what, tier, *args, **kwargs)
        if got == answer and isinstance(got, str):
            continue
        why = next((mistake(key) for value, key in wrong.items() if got == value and type(got) is type(value)), "")
        if not why and not isinstance(got, str):
            why = mistake("none" if got is None else "format")
        fail(name, f"{what}: expected {answer!r}, got {got!r}" + (f": {why}" if why else ""))
    passed("tier returns the largest tier the size ratio reaches, within max_drop points of the teacher's accuracy "
           "(bounds included), and 'none' otherwise")
