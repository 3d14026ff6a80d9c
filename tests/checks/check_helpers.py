"""Helpers of the checks' tests: the solution notebooks' own answers, and the failure each mistake gives."""

import functools
import re
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from peel_utils import checks, structured
from peel_utils.checks import catalog

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


@functools.cache
def notebook_namespace(prefix: str) -> dict:
    """Run the code cells of a solution notebook that define the exercised functions (and nothing else)."""
    path = next(NOTEBOOKS.glob(f"{prefix}_*.ipynb"))
    import torch_pruning as tp

    namespace = {"torch": torch, "nn": nn, "F": F, "pd": pd, "tp": tp, "structured": structured, "tqdm": tqdm,
                 "device": torch.device("cpu")}
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type == "code" and "### BEGIN SOLUTION" in cell.source:
            exec(compile(cell.source, str(path), "exec"), namespace)
    return namespace


def fails_with(pattern: str):
    return pytest.raises(checks.CheckFailed, match=pattern)


def mistake(exercise: str, key: str) -> str:
    """A regex matching the catalog's message for `key` (the check reads the same table)."""
    return re.escape(catalog.BY_NAME[exercise].mistake(key))


def solution(prefix: str, name: str):
    """The solution notebook's own answer (the notebook cells holding exercises, executed)."""
    return notebook_namespace(prefix)[name]


def stub(*args, **kwargs):
    """An exercise cell as handed out: not written yet."""
    raise NotImplementedError("exercise: write your code here")
