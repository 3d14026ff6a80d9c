import copy

import matplotlib.pyplot as plt
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from peel_utils import data, distill, models, prune, sliders, sweep


@pytest.fixture
def lenet_at(seeded, mnist5k):
    """accuracy_at_global_sparsity of one seeded LeNet on mnist5k's validation split, by sparsity."""
    model, loader = models.LeNet(), data.make_loaders(mnist5k, 256).val
    return model, lambda sparsity: sweep.accuracy_at_global_sparsity(model, loader, sparsity)


def test_accuracy_at_global_sparsity_returns_the_layer_sparsities(lenet_at):
    model, at = lenet_at
    result = at(0.7)
    table = prune.layer_sparsity_table(prune.GlobalPruner(model, 0.7).prune(copy.deepcopy(model)))
    assert result["layer_sparsity"] == dict(zip(table["layer"], table["sparsity"]))
    sizes = {name: p.numel() for name, p in prune.prunable_parameters(model).items()}
    overall = sum(result["layer_sparsity"][n] * size for n, size in sizes.items()) / sum(sizes.values())
    assert overall == pytest.approx(0.7, abs=1e-3)
    assert len(set(result["layer_sparsity"].values())) > 1  # one threshold: the layers lose different fractions


def test_global_sparsity_figure_marks_the_slider_point_and_draws_the_layers(lenet_at):
    _, at = lenet_at
    curve = pd.DataFrame([at(s) for s in (0.0, 0.5, 0.9)])
    result = at(0.7)
    open_before = len(plt.get_fignums())
    fig = sliders.global_sparsity_figure(curve, result)
    assert len(plt.get_fignums()) == open_before + 1  # only the returned figure, for the caller to show and close
    curve_ax, layer_ax = fig.axes
    lines = {line.get_label(): line for line in curve_ax.get_lines()}
    assert list(lines["global pruning, no fine-tuning"].get_xdata()) == [0.0, 0.5, 0.9]
    assert list(lines["global pruning, no fine-tuning"].get_ydata()) == list(curve["accuracy"])
    assert list(lines["slider"].get_xdata()) == [0.7] and list(lines["slider"].get_ydata()) == [result["accuracy"]]
    assert [t.get_text() for t in curve_ax.texts] == [f"70% of weights pruned: {result['accuracy']:.1%}"]
    assert curve_ax.get_ylim() == (0, 1.05) and curve_ax.yaxis.get_major_formatter()(0.5, 0) == "50%"  # fractions, read in %
    assert curve_ax.get_ylabel() == "validation accuracy (%)"
    assert [t.get_text() for t in layer_ax.get_yticklabels()] == list(result["layer_sparsity"])
    assert list(layer_ax.containers[0].datavalues) == list(result["layer_sparsity"].values())
    plt.close(fig)


TEACHER = torch.tensor([[4.0, 1.0, 0.5, 0.0, -1.0], [0.0, 2.0, 0.0, 0.0, 0.0]])  # (2, 5)
STUDENT = torch.tensor([[0.5, 0.2, 0.0, 0.1, 0.0], [0.0, 0.3, 0.1, 0.0, 0.2]])   # (2, 5)
TARGETS = torch.tensor([0, 1])                                                      # (2,)


def test_loss_terms_figure_softens_the_teacher_and_draws_the_loss_terms():
    terms = distill.kd_loss_terms(STUDENT, TEACHER, TARGETS, temperature=4.0, alpha=0.3)
    open_before = len(plt.get_fignums())
    fig = sliders.loss_terms_figure(TEACHER[0], terms, class_names=list("abcde"))
    assert len(plt.get_fignums()) == open_before + 1
    prob_ax, loss_ax = fig.axes
    at_1, at_t = (c.datavalues for c in prob_ax.containers)
    assert list(at_1) == pytest.approx(F.softmax(TEACHER[0], dim=0).tolist())
    assert list(at_t) == pytest.approx(F.softmax(TEACHER[0] / 4, dim=0).tolist())
    assert at_1.sum() == pytest.approx(1.0) and at_t.sum() == pytest.approx(1.0)
    assert at_t.max() < at_1.max()  # T = 4 is flatter
    assert [t.get_text() for t in prob_ax.get_legend().get_texts()] == ["T = 1", "T = 4"]
    assert [t.get_text() for t in prob_ax.get_xticklabels()] == list("abcde")
    heights = list(loss_ax.containers[0].datavalues)
    assert heights == pytest.approx([terms["kl_term"], terms["ce_term"], terms["total"]])
    assert heights[0] == pytest.approx(0.3 * 16 * terms["kl"]) and heights[1] == pytest.approx(0.7 * terms["ce"])
    assert [t.get_text() for t in loss_ax.texts] == [f"{v:.3f}" for v in heights]
    assert loss_ax.get_title() == "loss terms at T = 4, alpha = 0.3"
    plt.close(fig)


@pytest.mark.parametrize("env, expected", [({"PEEL_SLIDERS": "on"}, True), ({"PEEL_SLIDERS": "OFF"}, False),
                                           ({"JPY_SESSION_NAME": "01.ipynb"}, True), ({}, False),
                                           ({"PEEL_SLIDERS": "off", "JPY_SESSION_NAME": "01.ipynb"}, False)])
def test_a_front_end_is_detected_from_the_kernels_environment(monkeypatch, env, expected):
    for name in ("PEEL_SLIDERS", "JPY_SESSION_NAME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert sliders.front_end_attached() is expected


def test_a_bad_sliders_setting_is_our_error(monkeypatch):
    monkeypatch.setenv("PEEL_SLIDERS", "yes")
    with pytest.raises(ValueError, match="PEEL_SLIDERS='yes': use 'on' .* or 'off'"):
        sliders.front_end_attached()


def test_explore_without_a_front_end_makes_no_widget_and_says_so(monkeypatch, capsys):
    monkeypatch.setenv("PEEL_SLIDERS", "off")
    calls = []
    assert sliders.explore(calls.append, x=sliders.Slider(0.0, 1.0, 0.1, 0.5)) is None
    assert calls == [] and capsys.readouterr().out.startswith("No front end to draw sliders (a headless run)")
