"""The workbook's figures: sample images, curves, weight histograms, the routes figure and notebook 06's two
(`plot_error_against_bits`, `plot_variants`), each with its axes labelled, returned for the notebook to show."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import PercentFormatter
from torch.utils.data import Dataset


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
    """Line plot of columns `ys` against `x`, one line per column (and per group of `by`). Columns named for an
    accuracy hold fractions; when every column of `ys` is one, the y axis reads them in percent."""
    if ax is None:
        _, ax = plt.subplots()
    groups = frame.groupby(by, sort=False) if by else [(None, frame)]
    for key, rows in groups:
        for y in ys:
            label = " ".join(str(p) for p in (key, y if len(ys) > 1 else None) if p is not None)
            ax.plot(rows[x], rows[y], marker="o", markersize=3, label=label or y)
    if all("accuracy" in y for y in ys):
        ax.yaxis.set_major_formatter(PercentFormatter(xmax=1))
    ax.set(title=title, xlabel=xlabel or x, ylabel=ylabel)
    ax.legend(fontsize=8)
    return ax


def plot_history(histories: Mapping[str, Sequence[dict]], metric: str = "val_accuracy", ax=None):
    """Per-epoch curves of `metric` for several runs (a fit() history each; accuracies as fractions, read in
    percent on the axis)."""
    frame = pd.concat([pd.DataFrame(h).assign(run=name) for name, h in histories.items()])
    return plot_curves(frame, "epoch", [metric], by="run", ylabel=metric, ax=ax)


def plot_weight_histograms(weights: Mapping[str, np.ndarray], bins: int = 81, title: str = ""):
    """Histogram of each named weight tensor's values, zeros included, on a log count axis so that
    the pruned weights' spike at exactly 0 and the thin tails both show; each panel names its zeros."""
    fig, axes = plt.subplots(1, len(weights), figsize=(2.3 * len(weights), 2.3), squeeze=False)
    for ax, (name, values) in zip(axes[0], weights.items()):
        values = np.asarray(values).ravel()
        limit = float(np.abs(values).max()) or 1.0
        ax.hist(values, bins=np.linspace(-limit, limit, bins), color="tab:blue", log=True)  # odd bins: one centred on 0
        zeros = int((values == 0).sum())
        ax.set_title(f"{name}\n{zeros:,} of {values.size:,} exactly 0", fontsize=8)
        ax.set_xlabel("weight value", fontsize=7)
        ax.tick_params(labelsize=6)
    axes[0][0].set_ylabel("count (log scale)", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


ROUTE_MARKERS = ("o", "s", "D", "^", "v", "P", "X", "<", ">", "p", "h", "*")


def plot_routes(table: pd.DataFrame, x: str, y: str, route: str = "route", *, note: str | None = None,
                references: Mapping[str, float] | None = None, xlabel: str | None = None, ylabel: str | None = None,
                title: str = "", near: float = 0.03, figsize: tuple[float, float] = (7.5, 3.6)):
    """One series per route of `table`: `y` against `x`, each route with its own marker and colour, its points
    joined in `x` order when it has several. The figure is returned.

    No point hides another: a point within `near` (a fraction of each axis' data range) of a point drawn before
    it is drawn hollow and larger, a ring around the earlier marker. `note` names a column whose text is written
    beside each point (empty: none). `references` are horizontal lines {label: y} (same-budget controls, say).
    The legend sits outside the axes, on the right, so it covers no data. Introduced in notebook 05.
    """
    fig, ax = plt.subplots(figsize=figsize)
    xs, ys = table[x].astype(float), table[y].astype(float)
    span_x = float(xs.max() - xs.min()) or 1.0
    span_y = float(ys.max() - ys.min()) or 1.0
    drawn: list[tuple[float, float]] = []
    colours = plt.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
    for i, (name, rows) in enumerate(table.groupby(route, sort=False)):
        rows = rows.sort_values(x)
        colour, marker = colours[i % len(colours)], ROUTE_MARKERS[i % len(ROUTE_MARKERS)]
        px, py = rows[x].astype(float).tolist(), rows[y].astype(float).tolist()
        if len(rows) > 1:
            ax.plot(px, py, color=colour, linewidth=1, zorder=2)
        overlaps = [sum(abs(a - u) <= near * span_x and abs(b - w) <= near * span_y for u, w in drawn)
                    for a, b in zip(px, py)]
        sizes = [36 * (1 + 0.8 * k) ** 2 for k in overlaps]
        faces = [colour if k == 0 else "none" for k in overlaps]
        ax.scatter(px, py, s=sizes, marker=marker, facecolors=faces, edgecolors=colour, linewidths=1.3,
                   zorder=3 + i, label=str(name))
        drawn += list(zip(px, py))
        if note:
            for a, b, text in zip(px, py, rows[note]):
                if isinstance(text, str) and text:
                    ax.annotate(text, (a, b), fontsize=7, xytext=(4, -9), textcoords="offset points")
    for (label, level), style in zip((references or {}).items(), ("--", ":", "-.", (0, (5, 1)))):
        ax.axhline(level, color="gray", linestyle=style, linewidth=1, label=label, zorder=1)
    ax.set(title=title, xlabel=xlabel or x, ylabel=ylabel or y)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1), borderaxespad=0)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------
# Notebook 06: the error of hand quantisation, and every deployable variant

ERROR_STYLES = {"per-tensor affine": ("o", 8, "none"), "per-tensor symmetric": ("s", 6, "none"),
                "per-channel affine": ("D", 5, None), "per-channel symmetric": ("x", 6, None)}
"""Marker, size and face of each hand quantisation variant (open markers per tensor), so overlapping lines stay
visible."""


def plot_error_against_bits(errors: pd.DataFrame, title: str, ax: plt.Axes | None = None) -> plt.Axes:
    """Relative MSE against bits per weight, one line per variant, on a log axis: `errors` has the columns variant,
    bits and relative_mse (notebook 06's quantisation by hand). A straight line falling 4x per bit is uniform
    quantisation's expected s^2/12 error."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 3.2))
    for variant, group in errors.groupby("variant", sort=False):
        marker, size, face = ERROR_STYLES.get(variant, ("o", 6, None))
        ax.plot(group.bits, group.relative_mse, marker=marker, markersize=size, markerfacecolor=face, label=variant)
    ax.set_yscale("log")
    ax.set(xlabel="bits per weight", ylabel="relative MSE ||w - w_hat||² / ||w||²\n(a fraction, log scale)",
           title=title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=8)
    return ax


ROUTE_COLOURS = {"dense": "black", "unstructured": "tab:blue", "KD": "tab:green", "structured": "tab:orange"}
RUNS_AS_MARKERS = {"eager fp32": "s", "fp32 + compile": "D", "bf16 + compile": "^", "int8 + compile": "o"}
"""Notebook 06's Step 8 figure: a variant's colour is its route, its shape how it runs; the two together name it
(deploy.VARIANTS)."""


def plot_variants(table: pd.DataFrame, sizes: pd.DataFrame, controls: Mapping[str, tuple], *, batch: int,
                  max_drop: float, ax: plt.Axes | None = None) -> plt.Axes:
    """Every variant of notebook 06's `table` as one point: test accuracy (a fraction, read in percent on the axis)
    against the speed-up at `batch` (log axis, labelled at round ratios), coloured by route, shaped by how it runs,
    its area proportional to its smallest stored form in `sizes` (first row: the dense fp32 file). A dashed line per
    route of `controls` (route -> (label, accuracy as a fraction, ...)) marks its control minus `max_drop` points.
    No text labels: colour and shape, both in the legend, name each point, so no label can overlap another. The
    largest markers are drawn first."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.6))
    speedup = f"speedup_b{batch}"
    smallest = sizes.groupby("variant").bytes.min()
    area = [max(300 * smallest.get(name, size) / sizes.bytes.iloc[0], 20)
            for name, size in zip(table.variant, table.bytes)]
    for _, row in table.assign(area=area).sort_values("area", ascending=False).iterrows():
        ax.scatter(row[speedup], row.test_accuracy, s=row.area, color=ROUTE_COLOURS[row.route],
                   marker=RUNS_AS_MARKERS[row["runs as"]], alpha=0.6, edgecolors="black", linewidths=0.5)
    for route, (_, accuracy, *_) in controls.items():  # max_drop in points, accuracy a fraction
        ax.axhline(accuracy - max_drop / 100, color=ROUTE_COLOURS[route], linestyle="--", linewidth=1)
    ax.set_xscale("log")
    low, high = table[speedup].min(), table[speedup].max()
    ax.xaxis.set_major_locator(FixedLocator([t for t in (0.25, 0.5, 1, 2, 3, 5, 10, 20, 50, 100)
                                             if low / 1.5 <= t <= high * 1.5]))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}x"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.margins(x=0.1, y=0.15)
    handles = [Patch(color=ROUTE_COLOURS[route], alpha=0.6, label=route) for route in dict.fromkeys(table.route)]
    handles += [Line2D([], [], marker=RUNS_AS_MARKERS[how], linestyle="", color="grey", markeredgecolor="black",
                       label=how) for how in dict.fromkeys(table["runs as"])]
    handles += [Line2D([], [], color=ROUTE_COLOURS[route], linestyle="--",
                       label=f"{route}: its control - {max_drop:g} point(s)") for route in controls]
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1))
    ax.set(title=f"accuracy against speed-up (batch {batch}); marker area: bytes on disk",
           xlabel="speed-up over eager fp32 dense (log scale)", ylabel="test accuracy")
    return ax
