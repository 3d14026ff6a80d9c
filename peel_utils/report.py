"""Plots, tables and the key figures each notebook records for the run summary."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from torch.utils.data import Dataset

RECORD_ENV = "PEEL_RECORD_FILE"


def record(**figures: float | int | str) -> dict:
    """Record a notebook's key figures for the run summary and return them.

    The runner (peel_course.run) sets PEEL_RECORD_FILE for each notebook; figures recorded there
    end up in results/<profile>/summary.json and summary.md. Interactively, nothing is written.
    """
    path = os.environ.get(RECORD_ENV)
    if path:
        path = Path(path)
        current = json.loads(path.read_text()) if path.exists() else {}
        current.update(figures)
        path.write_text(json.dumps(current, indent=2, default=float))
    return figures


def show_images(dataset: Dataset, num: int = 10, seed: int = 0, class_names: Sequence[str] | None = None):
    """A row of `num` random samples with their labels (source 001's `show_image`)."""
    rng = np.random.default_rng(seed)
    indices = rng.choice(len(dataset), num, replace=False)
    fig, axes = plt.subplots(1, num, figsize=(num * 0.9, 1.3))
    for ax, i in zip(np.atleast_1d(axes), indices):
        image, label = dataset[int(i)]
        image = image.numpy()
        image = image[0] if image.shape[0] == 1 else np.moveaxis(image, 0, -1)
        image = (image - image.min()) / (image.max() - image.min() + 1e-8)
        ax.imshow(image, cmap="gray")
        ax.set_title(class_names[label] if class_names else str(int(label)), fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    return fig


def plot_curves(frame: pd.DataFrame, x: str, ys: Sequence[str], by: str | None = None, *,
                title: str = "", xlabel: str | None = None, ylabel: str = "", ax=None):
    """Line plot of columns `ys` against `x`, one line per column (and per group of `by`)."""
    if ax is None:
        _, ax = plt.subplots()
    groups = frame.groupby(by, sort=False) if by else [(None, frame)]
    for key, rows in groups:
        for y in ys:
            label = " ".join(str(p) for p in (key, y if len(ys) > 1 else None) if p is not None)
            ax.plot(rows[x], rows[y], marker="o", markersize=3, label=label or y)
    ax.set(title=title, xlabel=xlabel or x, ylabel=ylabel)
    ax.legend(fontsize=8)
    return ax


def plot_history(histories: Mapping[str, Sequence[dict]], metric: str = "val_accuracy", ax=None):
    """Per-epoch curves of `metric` for several runs (a fit() history each)."""
    frame = pd.concat([pd.DataFrame(h).assign(run=name) for name, h in histories.items()])
    return plot_curves(frame, "epoch", [metric], by="run", ylabel=metric, ax=ax)


def plot_weight_histograms(weights: Mapping[str, np.ndarray], bins: int = 80):
    """Histogram of each named weight tensor's values, zeros included (pruned ones pile at 0)."""
    fig, axes = plt.subplots(1, len(weights), figsize=(2.2 * len(weights), 2.0))
    for ax, (name, values) in zip(np.atleast_1d(axes), weights.items()):
        ax.hist(np.asarray(values).ravel(), bins=bins, color="tab:blue")
        ax.set_title(name, fontsize=8)
        ax.tick_params(labelsize=6)
    fig.tight_layout()
    return fig
