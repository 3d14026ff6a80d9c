"""What every check shares: the verdicts (a '✓ passed' line or CheckFailed), calling the
student's code, and the `exercise_check` decorator that runs a check with the global random state
kept and the exercise's reference implementations blocked (see guard)."""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch

from . import catalog, guard


class CheckFailed(AssertionError):
    """An exercise's answer is wrong; the message says how."""


def passed(message: str) -> None:
    print(f"✓ passed: {message}")


def fail(exercise: str, message: str) -> None:
    __tracebackhide__ = True  # IPython and pytest hide this frame: the message is what matters
    raise CheckFailed(f"{exercise}: {message}")


def call(exercise: str, what: str, fn: Callable, *args, **kwargs):
    """fn(*args, **kwargs); an error other than the stub's (or the guard's) becomes CheckFailed naming the call."""
    __tracebackhide__ = True
    try:
        return fn(*args, **kwargs)
    except (NotImplementedError, guard.ReferenceCalled):
        raise
    except Exception as err:
        raise CheckFailed(f"{exercise}: {what} raised {type(err).__name__}: {err}") from err


def exercise_check(name: str) -> Callable[[Callable], Callable]:
    """Decorate the check of exercise `name`: while it runs, the global (CPU) random state is kept
    and the exercise's references are blocked; reaching one fails the check with a plain message."""
    exercise = catalog.BY_NAME[name]

    def decorate(check: Callable) -> Callable:
        @functools.wraps(check)
        def wrapper(*args, **kwargs):
            __tracebackhide__ = True
            with torch.random.fork_rng(devices=[]):
                try:
                    with guard.blocked(exercise.references):
                        return check(*args, **kwargs)
                except guard.ReferenceCalled as err:
                    message = catalog.DELEGATION.format(reference=guard.display(err.reference))
                    raise CheckFailed(f"{name}: {message}") from None
        return wrapper
    return decorate
