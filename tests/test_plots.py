"""peel_utils.plots: each figure has its lines, labels and the counts it promises."""

import pandas as pd
from matplotlib.ticker import PercentFormatter

from peel_utils import plots


def test_plots_return_axes_with_lines(mnist5k):
    frame = pd.DataFrame({"s": [0, 0.5, 0, 0.5], "acc": [90, 80, 91, 70], "layer": ["a", "a", "b", "b"]})
    ax = plots.plot_curves(frame, "s", ["acc"], by="layer")
    assert [line.get_label() for line in ax.get_lines()] == ["a", "b"]
    assert not isinstance(ax.yaxis.get_major_formatter(), PercentFormatter)  # not an accuracy: values as they are
    ax = plots.plot_history({"kd": [{"epoch": 1, "val_accuracy": 0.5}], "ce": [{"epoch": 1, "val_accuracy": 0.4}]})
    assert len(ax.get_lines()) == 2
    assert ax.yaxis.get_major_formatter()(0.5, 0).startswith("50")  # accuracies are fractions, read in percent
    assert isinstance(ax.yaxis.get_major_formatter(), PercentFormatter)
    fig = plots.show_images(mnist5k.train, num=4, seed=0)
    assert len(fig.axes) == 4

def test_weight_histograms_show_the_zeros_on_a_log_axis():
    import numpy as np

    values = np.concatenate([np.zeros(700), np.linspace(-1, 1, 300)])
    fig = plots.plot_weight_histograms({"fc.weight": values})
    ax = fig.axes[0]
    assert ax.get_yscale() == "log" and ax.get_xlabel() == "weight value" and "count" in ax.get_ylabel()
    assert "700 of 1,000 exactly 0" in ax.get_title()
    heights = [patch.get_height() for patch in ax.patches]
    assert max(heights) >= 700  # the bin at 0 holds every exact zero
