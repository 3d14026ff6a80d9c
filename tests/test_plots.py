"""peel_utils.plots: each figure has its lines, labels and the counts it promises."""

import matplotlib.pyplot as plt
import pandas as pd
import pytest
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


def _variants_table():
    """Notebook 06's table in brief (accuracies as fractions): a dense baseline, the sparse model as fp32 and int8, the
    distilled model in int8 exactly 1 point below its control; the sizes of their stored forms; two routes' controls."""
    table = pd.DataFrame([("dense_fp32", "dense", "eager fp32", 1000, 0.977, 1.0),
                          ("gmp90_sparse_fp32", "unstructured", "eager fp32", 200, 0.978, 1.1),
                          ("gmp90_sparse_int8", "unstructured", "int8 + compile", 80, 0.976, 4.1),
                          ("resnet18_kd_int8", "KD", "int8 + compile", 120, 0.9633, 13.0)],
                         columns=["variant", "route", "runs as", "bytes", "test_accuracy", "speedup_b64"])
    sizes = pd.DataFrame({"variant": ["dense_fp32", "gmp90_sparse_fp32", "gmp90_sparse_int8", "gmp90_sparse_int8",
                                      "resnet18_kd_int8"],
                          "bytes": [1000, 200, 80, 50, 120]})
    controls = {"unstructured": ("03's control", 0.982), "KD": ("04's control", 0.9733, "resnet18_control_fp32")}
    return table, sizes, controls


def test_plot_variants_names_every_colour_and_shape_in_the_legend_and_writes_no_labels():
    table, sizes, controls = _variants_table()
    ax = plots.plot_variants(table, sizes, controls, batch=64, max_drop=1.0)
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert legend == ["dense", "unstructured", "KD", "eager fp32", "int8 + compile",
                      "unstructured: its control - 1 point(s)", "KD: its control - 1 point(s)"]
    assert len(ax.texts) == 0 and len(ax.collections) == 4  # one point per variant, no annotation to overlap
    # each control minus max_drop points, as fractions: the distilled int8 model sits exactly on its line
    assert [line.get_ydata()[0] for line in ax.lines] == pytest.approx([0.972, 0.9633])
    kd_point = next(c for c in ax.collections if c.get_offsets()[0][0] == 13.0)
    assert kd_point.get_offsets()[0][1] == pytest.approx(ax.lines[1].get_ydata()[0])
    assert isinstance(ax.yaxis.get_major_formatter(), PercentFormatter)
    assert ax.yaxis.get_major_formatter()(0.9633, 0) == "96.33%" and ax.get_ylabel() == "test accuracy"
    ax.figure.canvas.draw()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1x", "2x", "3x", "5x", "10x"]
    plt.close(ax.figure)


def test_plot_error_against_bits_draws_a_line_per_variant_on_a_log_axis():
    errors = pd.DataFrame({"variant": ["per-tensor affine"] * 2 + ["per-channel symmetric"] * 2, "bits": [2, 3, 2, 3],
                           "relative_mse": [0.1, 0.025, 0.05, 0.0125]})
    ax = plots.plot_error_against_bits(errors, title="layer")
    assert [line.get_label() for line in ax.lines] == ["per-tensor affine", "per-channel symmetric"]
    assert [line.get_marker() for line in ax.lines] == ["o", "x"] and ax.get_yscale() == "log"
    assert list(ax.lines[1].get_ydata()) == [0.05, 0.0125]
    plt.close(ax.figure)
