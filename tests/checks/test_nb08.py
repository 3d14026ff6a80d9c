"""peel_utils.checks.nb08: the tier check passes on notebook 08's own solution and on another right answer, and
fails, with the message of its mistake table, on typical wrong answers and on an answer that calls the workbook's
implementation."""

import functools
import re
from pathlib import Path

import nbformat
import pytest

from peel_utils import entry
from peel_utils.checks import CheckFailed, catalog, nb08

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "08_compression_challenge.ipynb"


@functools.cache
def solutions() -> dict:
    """The code cells of notebook 08 that hold its exercise, executed."""
    namespace: dict = {}
    for cell in nbformat.read(NOTEBOOK, as_version=4).cells:
        if cell.cell_type == "code" and "### BEGIN SOLUTION" in cell.source:
            exec(compile(cell.source, str(NOTEBOOK), "exec"), namespace)
    return namespace


def fails_with(key: str):
    return pytest.raises(CheckFailed, match=re.escape(catalog.BY_NAME["tier"].mistake(key)))


def test_passes_on_the_notebooks_solution(capsys):
    nb08.check_tier(solutions()["tier"])
    assert "✓ passed: tier" in capsys.readouterr().out


def rule(*, order="largest", accuracy=True, strict_accuracy=False, strict_ratio=False, direction=">=",
         use_max_drop=True, use_tiers=True, nothing="none", as_number=False):
    def tier(size_ratio, test_accuracy, teacher_accuracy, tiers=(500, 200, 50), max_drop=1.0):
        tiers = tiers if use_tiers else (500, 200, 50)
        drop = (max_drop if use_max_drop else 1.0) / 100
        bound = teacher_accuracy - drop
        if accuracy and (test_accuracy <= bound - 1e-12 if not strict_accuracy else test_accuracy <= bound + 1e-12):
            return nothing
        for times in sorted(tiers, reverse=order == "largest"):
            reached = {">=": size_ratio >= times, ">": size_ratio > times, "<=": size_ratio <= times}[
                ">" if strict_ratio else direction]
            if reached:
                return times if as_number else f"{times}x"
        return nothing
    return tier


def test_passes_on_another_right_answer(capsys):
    nb08.check_tier(rule())
    assert "✓ passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, key", [
    (rule(order="smallest"), "smallest_first"),
    (rule(accuracy=False), "accuracy"),
    (rule(strict_accuracy=True), "strict_accuracy"),
    (rule(strict_ratio=True), "strict_ratio"),
    (rule(direction="<="), "ratio_direction"),
    (rule(use_max_drop=False), "ignores_max_drop"),
    (rule(use_tiers=False), "ignores_tiers"),
    (rule(nothing=None), "none"),
    (rule(as_number=True), "format"),
    (lambda size_ratio, test_accuracy, teacher_accuracy, tiers=(500, 200, 50), max_drop=1.0:
        "500x" if test_accuracy >= teacher_accuracy - max_drop else "none", "accuracy"),  # points against a fraction
])
def test_catches(wrong, key):
    with fails_with(key):
        nb08.check_tier(wrong)


def test_names_the_call_and_the_values():
    with pytest.raises(CheckFailed, match=re.escape("tier(600, 0.97, 0.977): expected '500x', got '50x'")):
        nb08.check_tier(rule(order="smallest"))


def test_calling_the_workbook_fails():
    with pytest.raises(CheckFailed, match="calls the workbook's own implementation"):
        nb08.check_tier(lambda *args, **kwargs: entry.tier(*args, **kwargs))


def test_the_stub_raises_its_own_error():
    def stub(*args, **kwargs):
        raise NotImplementedError("exercise: write your code here")
    with pytest.raises(NotImplementedError):
        nb08.check_tier(stub)


def test_the_cases_agree_with_the_workbook():
    for args, kwargs, answer, _ in nb08.TIER_CASES:
        assert entry.tier(*args, **kwargs) == answer
