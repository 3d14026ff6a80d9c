"""Honest comparisons: is model A more accurate than model B, by more than the noise?

Two models are compared on the same test images, so their errors are paired: `paired_bootstrap`
resamples the images (and, with several seeds, the seeds) and gives the difference in accuracy with
a 95% interval. `verdict` turns that into the sentence a notebook prints, so the text can never say
more than the numbers: "not distinguishable" when the interval covers zero. Every "X beats Y" in the
workbook comes from here (Blalock et al. 2020 found most pruning papers compare without controls or
noise estimates; this module is the workbook's answer). Notebook 01, Step 9, builds the interval by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn as nn
from torch.utils.data import DataLoader

from .train import predict

LEVEL = 0.95
RESAMPLES = 2000


@dataclass(frozen=True)
class Difference:
    """Accuracy of A minus accuracy of B, in percentage points, with its interval."""

    a: str
    b: str
    points: float
    low: float
    high: float
    seeds: int
    images: int

    @property
    def distinguishable(self) -> bool:
        """True when the interval lies wholly on one side of zero."""
        return self.low > 0 or self.high < 0


def correct(model: nn.Module, loader: DataLoader) -> torch.Tensor:
    """Which of `loader`'s images `model` classifies correctly: a bool tensor (N,), in loader order."""
    logits, targets = predict(model, loader, progress=False)
    return logits.argmax(dim=1) == targets


def _as_matrix(outcomes) -> np.ndarray:
    matrix = np.asarray(torch.as_tensor(outcomes).cpu(), dtype=np.float64)
    return matrix[None, :] if matrix.ndim == 1 else matrix


_CHUNK_ENTRIES = 2**22  # drawn indices held at once: bounds the memory of a large test set


def _resampled_means(diff: np.ndarray, rng: np.random.Generator, resamples: int) -> np.ndarray:
    """The mean of `diff` (seeds, images) over each of `resamples` bootstrap resamples, (resamples,).

    Resample k draws `seeds` rows (only with several seeds) then `images` columns from `rng`, in that
    order, resample after resample. With one seed the columns of many resamples come from one call
    (numpy gives the same stream as one call per resample). With several, the draws stay one resample
    at a time (rows and columns interleave) and only the means are computed together: per resample, the
    sum over its columns of every seed's row, weighted by how often the resample drew that seed. The
    entries are -1, 0 or 1, so every sum is an exact integer and each mean is exactly diff[rows][:, cols].mean().
    """
    seeds, images = diff.shape
    chunk = max(1, _CHUNK_ENTRIES // images)
    means = []
    for start in range(0, resamples, chunk):
        count = min(chunk, resamples - start)
        if seeds == 1:
            cols = rng.integers(0, images, (count, images))                          # (count, images)
            means.append(diff[0][cols].sum(axis=1) / images)
            continue
        draws = [(rng.integers(0, seeds, seeds), rng.integers(0, images, images)) for _ in range(count)]
        rows = np.stack([r for r, _ in draws])                                       # (count, seeds)
        cols = np.stack([c for _, c in draws])                                       # (count, images)
        seed_counts = np.stack([np.bincount(r, minlength=seeds) for r in rows])      # (count, seeds)
        per_seed = diff[:, cols].sum(axis=2).T                                       # (count, seeds)
        means.append((seed_counts * per_seed).sum(axis=1) / (seeds * images))
    return np.concatenate(means)


def paired_bootstrap(a, b, *, names: tuple[str, str] = ("A", "B"), resamples: int = RESAMPLES,
                     level: float = LEVEL, seed: int = 0) -> Difference:
    """Accuracy of A minus B (points) with a paired bootstrap interval.

    `a` and `b` are 0/1 outcomes per test image, (images,) for one seed or (seeds, images) for
    several, row i of both coming from seed i. Each resample draws the images (the same ones for
    A and B: the comparison is paired) and, with several seeds, the seeds, so the interval covers
    both the test set's noise and the training's. The interval is the percentile interval at `level`.
    """
    a, b = _as_matrix(a), _as_matrix(b)
    if a.shape != b.shape:
        raise ValueError(f"a and b must hold the same seeds and images; got shapes {a.shape} and {b.shape}")
    if a.size == 0:
        raise ValueError("nothing to compare: no images")
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, not {level}")
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, not {resamples}")
    seeds, images = a.shape
    diff = a - b                                                # (seeds, images), values -1, 0, 1
    estimates = _resampled_means(diff, np.random.default_rng(seed), resamples)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(estimates, [tail, 100 - tail]) * 100
    return Difference(names[0], names[1], float(diff.mean() * 100), float(low), float(high), seeds, images)


def verdict(difference: Difference) -> str:
    """The sentence a notebook prints for a comparison, generated from the numbers.

    With one seed the interval covers the test images' noise only (another training run could land
    elsewhere), so a clear difference is said of "this run", not as a finding: "A is 1.2 points above
    B (95% interval +0.4 to +2.0; 1,000 test images, 1 seed): in this run, A is more accurate than B."
    With several seeds it covers training noise too and the sentence drops "in this run". When the
    interval covers zero the two are "not distinguishable"; a difference that rounds to 0.0 points
    reads "level with". Notebook 01, Step 9, builds this interval by hand.
    """
    d = difference
    shown = round(d.points, 1)
    side = "above" if shown > 0 else "below" if shown < 0 else "level with"
    amount = f"{abs(shown):.1f} points {side}" if shown else side
    seeds = f"{d.seeds} seed{'s' if d.seeds != 1 else ''}"
    noise = f"{LEVEL:.0%} interval {d.low:+.1f} to {d.high:+.1f}; {d.images:,} test images, {seeds}"
    scope = "in this run" if d.seeds == 1 else f"over {seeds}"
    if not d.distinguishable:
        return f"{d.a} is {amount} {d.b} ({noise}): not distinguishable from noise ({scope}, the interval covers 0)."
    winner, loser = (d.a, d.b) if d.points > 0 else (d.b, d.a)
    return f"{d.a} is {amount} {d.b} ({noise}): {scope}, {winner} is more accurate than {loser}."


def comparison_table(outcomes: Mapping[str, object], pairs: list[tuple[str, str]], **bootstrap) -> pd.DataFrame:
    """One row per (A, B) pair of `outcomes` (name -> 0/1 outcomes as in `paired_bootstrap`): the
    accuracies (fractions), their difference in points, its interval and the verdict sentence."""
    rows = []
    for a, b in pairs:
        d = paired_bootstrap(outcomes[a], outcomes[b], names=(a, b), **bootstrap)
        rows.append({"A": a, "B": b, "A accuracy": _as_matrix(outcomes[a]).mean(),
                     "B accuracy": _as_matrix(outcomes[b]).mean(), "A - B (points)": d.points,
                     "low": d.low, "high": d.high, "distinguishable": d.distinguishable, "verdict": verdict(d)})
    return pd.DataFrame(rows)
