"""The sliders of notebooks 01 and 04 and the figures behind them: each slider's callback draws one, so a move shows
where the chosen value sits (on a curve, against the other layers, against T = 1), not only a number.

Each function returns its figure without showing it; the callback shows it with `plt.show()`, which under
`ipywidgets.interact` replaces the previous drawing and closes it, so repeated moves leave no open figures.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import pandas as pd
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

SLIDER_COLOR = "tab:red"  # the slider's value, in every panel


def global_sparsity_figure(curve: pd.DataFrame, result: Mapping) -> Figure:
    """Where the slider's global sparsity sits: notebook 01's slider.

    Left: validation accuracy (a fraction, read in percent on the axis) against weight sparsity along `curve`
    (columns weight_sparsity and accuracy, e.g. `sweep.accuracy_at_global_sparsity` at a handful of sparsities,
    computed once), with the slider's point `result` (one such result) marked and labelled. Right: each prunable
    layer's sparsity at that point (`result["layer_sparsity"]`): one global threshold cuts the layers unevenly.
    Introduced in notebook 01.
    """
    fig, (curve_ax, layer_ax) = plt.subplots(1, 2, figsize=(10, 3.5), gridspec_kw={"width_ratios": [3, 2]})
    curve_ax.plot(curve["weight_sparsity"], curve["accuracy"], marker="o", markersize=3, color="tab:blue",
                  label="global pruning, no fine-tuning")
    x, y = result["weight_sparsity"], result["accuracy"]
    curve_ax.plot([x], [y], marker="o", markersize=9, linestyle="none", color=SLIDER_COLOR, label="slider")
    curve_ax.annotate(f"{x:.0%} of weights pruned: {y:.1%}", (x, y), textcoords="offset points",
                      xytext=(-10 if x > 0.5 else 10, -16 if y > 0.5 else 12), ha="right" if x > 0.5 else "left",
                      color=SLIDER_COLOR)
    curve_ax.set(xlim=(-0.02, 1.02), ylim=(0, 1.05), xlabel="weight sparsity (fraction of weights pruned)",
                 ylabel="validation accuracy (%)", title="accuracy of the pruned copy")
    curve_ax.yaxis.set_major_formatter(PercentFormatter(xmax=1))
    curve_ax.legend(loc="lower left", fontsize=8)

    names, values = list(result["layer_sparsity"]), list(result["layer_sparsity"].values())
    bars = layer_ax.barh(names, values, color=SLIDER_COLOR)
    layer_ax.bar_label(bars, fmt="%.2f", padding=2, fontsize=8)
    layer_ax.invert_yaxis()  # the first layer on top
    layer_ax.set(xlim=(0, 1.15), xlabel="sparsity", title=f"each layer at {x:.0%}")
    fig.tight_layout()
    return fig


def loss_terms_figure(teacher_logits: torch.Tensor, terms: Mapping[str, float],
                      class_names: Sequence[str] | None = None) -> Figure:
    """What the temperature and alpha sliders do: notebook 04's slider.

    Left: the teacher's class probabilities for one image (`teacher_logits`, shape (classes,)) at T = 1 and at
    the slider's T (`terms["temperature"]`), side by side: a larger T flattens them and shows the runner-up
    classes. Right: the two weighted terms of the loss, alpha * T^2 * KL and (1 - alpha) * CE, and their total,
    from `terms` (`distill.kd_loss_terms` on fixed batches), with their values on the bars. Introduced in
    notebook 04.
    """
    temperature, alpha = terms["temperature"], terms["alpha"]
    logits = teacher_logits.detach().float().cpu()  # (classes,)
    classes = range(logits.numel())
    fig, (prob_ax, loss_ax) = plt.subplots(1, 2, figsize=(10, 3.5))
    for offset, T, color in ((-0.2, 1.0, "tab:gray"), (0.2, temperature, SLIDER_COLOR)):
        prob_ax.bar([c + offset for c in classes], F.softmax(logits / T, dim=0).numpy(), width=0.4,
                    color=color, label=f"T = {T:g}")
    names = [str(c) for c in (class_names or classes)]
    prob_ax.set_xticks(list(classes), names, rotation=90 if max(map(len, names)) > 3 else 0)
    prob_ax.set(ylim=(0, 1.25), yticks=[0, 0.25, 0.5, 0.75, 1], xlabel="class", ylabel="probability",
                title="teacher's soft targets, one validation image")
    prob_ax.legend(loc="upper center", ncol=2, fontsize=8)  # above 1, where no bar reaches

    bars = loss_ax.bar(["alpha·T²·KL", "(1 − alpha)·CE", "total"], [terms["kl_term"], terms["ce_term"], terms["total"]],
                       color=[SLIDER_COLOR, "tab:blue", "tab:gray"])
    loss_ax.bar_label(bars, fmt="%.3f", padding=2, fontsize=8)
    loss_ax.margins(y=0.15)  # room for the values
    loss_ax.set(ylabel="loss (fixed batches)", title=f"loss terms at T = {temperature:g}, alpha = {alpha:g}")
    fig.tight_layout()
    return fig


SLIDERS_ENV = "PEEL_SLIDERS"  # "on" or "off" overrides the detection of a front end (the course tools set "off")


@dataclass(frozen=True)
class Slider:
    """A float slider's range and starting value: an ipywidgets FloatSlider, made only when a front end shows it."""

    min: float
    max: float
    step: float
    value: float


def front_end_attached() -> bool:
    """True when a front end that draws widgets runs this kernel: JupyterLab or Notebook (a Jupyter server sets
    JPY_SESSION_NAME in its kernels' environment) or VS Code (it defines `__vsc_ipynb_file__`). A headless
    executor (papermill, nbclient, nbval, nbgrader) sets neither; PEEL_SLIDERS=on/off overrides the detection."""
    setting = os.environ.get(SLIDERS_ENV, "").strip().lower()
    if setting:
        if setting not in ("on", "off"):
            raise ValueError(f"{SLIDERS_ENV}={os.environ[SLIDERS_ENV]!r}: use 'on' (open the sliders) or 'off' "
                             "(draw the default figure only), or unset it to let the notebook detect JupyterLab")
        return setting == "on"
    if os.environ.get("JPY_SESSION_NAME"):
        return True
    from IPython import get_ipython

    shell = get_ipython()
    return shell is not None and "__vsc_ipynb_file__" in shell.user_ns


def explore(function: Callable[..., None], **controls: Slider) -> None:
    """Sliders for `function`'s arguments, one per control, redrawing its figure on every move: in a front end only.

    Without one (a headless run: the runner, nbval, the graders) no widget is made at all and a line says so:
    executors wait for widget messages that can stall them for good (nbclient#312, papermill#723), and the cell
    above already drew the default figure. Introduced in notebook 01.
    """
    if not front_end_attached():
        print("No front end to draw sliders (a headless run): the figure above is the default. In JupyterLab "
              "(make lab), after Run All, the sliders appear here.")
        return
    import ipywidgets as widgets

    widgets.interact(function, **{name: widgets.FloatSlider(min=c.min, max=c.max, step=c.step, value=c.value,
                                                            description=name) for name, c in controls.items()})
