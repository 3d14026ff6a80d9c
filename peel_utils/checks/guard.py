"""Delegation guard: while a check runs the student's code, the workbook's own implementations
of that exercise are out of reach.

`blocked(references)` swaps the code object of each reference function for one that raises
ReferenceCalled, and puts the original back on exit (even on error). Swapping the code, not the
module attribute, catches every way of reaching the function: `prune.calc_mask(...)`, a name
bound before the check (`calc_mask = prune.calc_mask`), a `functools.wraps` wrapper, a lambda, a
subclass that inherits a method, or another package function that calls it.
"""

from __future__ import annotations

import contextlib
import importlib
import types
from collections.abc import Iterable, Iterator

GUARD_MODULE = __name__


class ReferenceCalled(Exception):
    """The student's answer reached one of the workbook's own implementations of the exercise."""

    def __init__(self, reference: str):
        super().__init__(reference)
        self.reference = reference


def resolve(reference: str) -> types.FunctionType:
    """'peel_utils.prune:SparsePruner.prune' -> the plain function object behind it (decorators
    that keep `__wrapped__`, such as torch.no_grad and functools.wraps, are looked through)."""
    module_name, _, qualname = reference.partition(":")
    obj = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    while hasattr(obj, "__wrapped__"):
        obj = obj.__wrapped__
    if not isinstance(obj, types.FunctionType):
        raise TypeError(f"{reference} is not a Python function")
    return obj


def _guard_code(function: types.FunctionType, reference: str) -> types.CodeType:
    """A code object that raises ReferenceCalled(reference), usable as `function.__code__`: same
    name and free variables, and no globals of its own (it imports this module by name)."""
    freevars = function.__code__.co_freevars
    lines = ["def outer():", *(f"    {name} = None" for name in freevars),
             "    def blocked(*args, **kwargs):",
             *(f"        {name}" for name in freevars),  # referenced, so they stay free variables
             f"        raise __import__({GUARD_MODULE!r}, fromlist=['_']).ReferenceCalled({reference!r})",
             "    return blocked"]
    namespace: dict = {}
    exec(compile("\n".join(lines), f"<blocked {reference}>", "exec"), namespace)
    code = namespace["outer"]().__code__
    names = {"co_name": function.__code__.co_name}
    if hasattr(code, "co_qualname"):  # Python 3.11+; on 3.10 a code object has no qualified name
        names["co_qualname"] = function.__code__.co_qualname
    return code.replace(**names)


_ACTIVE: dict[types.FunctionType, tuple[types.CodeType, types.CodeType]] = {}  # function: (original, guard)


@contextlib.contextmanager
def blocked(references: Iterable[str]) -> Iterator[None]:
    """Within the block, calling any of `references` ('module:qualname') raises ReferenceCalled."""
    functions = {resolve(reference): reference for reference in references}
    mine = [function for function in functions if function not in _ACTIVE]
    try:
        for function in mine:
            _ACTIVE[function] = (function.__code__, _guard_code(function, functions[function]))
            function.__code__ = _ACTIVE[function][1]
        yield
    finally:
        for function in mine:
            function.__code__ = _ACTIVE.pop(function)[0]


@contextlib.contextmanager
def unblocked() -> Iterator[None]:
    """The blocked functions work again within this block: for the checks' own expected values."""
    try:
        for function, (original, _) in _ACTIVE.items():
            function.__code__ = original
        yield
    finally:
        for function, (_, guard_code) in _ACTIVE.items():
            function.__code__ = guard_code


def display(reference: str) -> str:
    """'peel_utils.prune:calc_mask' -> 'peel_utils.prune.calc_mask'."""
    return reference.replace(":", ".")
