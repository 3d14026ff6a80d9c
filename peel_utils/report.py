"""The key figures each notebook records for the run summary, and the rounding that prints them for people."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

RECORD_ENV = "PEEL_RECORD_FILE"


def record(**figures: float | int | str) -> dict:
    """Record a notebook's key figures for the run summary; return them rounded for reading.

    The runner (peel_course.run) sets PEEL_RECORD_FILE for each notebook; the figures recorded there,
    unrounded (accuracies as fractions), end up in results/<profile>/summary.json and, rounded to four
    significant digits, in summary.md. Interactively, nothing is written.
    """
    path = os.environ.get(RECORD_ENV)
    if path:
        path = Path(path)
        current = json.loads(path.read_text()) if path.exists() else {}
        current.update(figures)
        path.write_text(json.dumps(current, indent=2, default=float))
    return readable(figures)


def beside(value: float, target: float, places: int = 1) -> str:
    """`value` at `places` decimals, or at as many more as tell it apart from the `target` it is judged against:
    a ratio of 11.96 beside a 12x target reads "11.96", not "12.0", and a drop of 1.04 points beside a 1-point bound
    "1.04", not "1.0", so no sentence prints a missed target as the target itself."""
    for shown_places in range(places, places + 6):
        shown = f"{value:.{shown_places}f}"
        if value == target or float(shown) != target:
            return shown
    return repr(float(value))


def significant(value: float, digits: int = 4) -> float:
    """`value` rounded to `digits` significant digits; a number of `digits` or more whole digits to a
    whole number (92208.499 -> 92208.0, 0.984000027 -> 0.984, 188.34 -> 188.3). Not finite: unchanged."""
    if not math.isfinite(value) or value == 0:
        return float(value)
    magnitude = math.floor(math.log10(abs(value)))
    return float(round(value, max(0, digits - 1 - magnitude)))


def readable(value, digits: int = 4):
    """A copy of `value` (a number, dict, list, Series or DataFrame) with every float rounded by
    `significant`, for printing: a reader needs 0.984, not 0.984000027179718. Other values are kept."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (float, np.floating, Mapping, list, tuple,
                                                                       pd.Series, pd.DataFrame)):
        return value
    if isinstance(value, (float, np.floating)):
        return significant(float(value), digits)
    if isinstance(value, pd.DataFrame):
        return value.apply(lambda column: readable(column, digits))
    if isinstance(value, pd.Series):
        if pd.api.types.is_float_dtype(value.dtype):
            return value.map(lambda v: significant(v, digits))
        return value.map(lambda v: readable(v, digits)) if value.dtype == object else value
    if isinstance(value, Mapping):
        return {key: readable(v, digits) for key, v in value.items()}
    return type(value)(readable(v, digits) for v in value)
