import json

import pandas as pd

from peel_utils import report


def test_record_writes_to_the_runner_file(tmp_path, monkeypatch):
    path = tmp_path / "rec.json"
    monkeypatch.setenv(report.RECORD_ENV, str(path))
    report.record(a=1)
    assert report.record(b=2.5) == {"b": 2.5}
    assert json.loads(path.read_text()) == {"a": 1, "b": 2.5}


def test_record_interactive_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv(report.RECORD_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert report.record(a=1) == {"a": 1}
    assert list(tmp_path.iterdir()) == []


def test_plots_return_axes_with_lines(mnist5k):
    frame = pd.DataFrame({"s": [0, 0.5, 0, 0.5], "acc": [90, 80, 91, 70], "layer": ["a", "a", "b", "b"]})
    ax = report.plot_curves(frame, "s", ["acc"], by="layer")
    assert [line.get_label() for line in ax.get_lines()] == ["a", "b"]
    ax = report.plot_history({"kd": [{"epoch": 1, "val_accuracy": 50}], "ce": [{"epoch": 1, "val_accuracy": 40}]})
    assert len(ax.get_lines()) == 2
    fig = report.show_images(mnist5k.train, num=4, seed=0)
    assert len(fig.axes) == 4


def test_record_writes_unrounded_and_returns_readable(tmp_path, monkeypatch):
    path = tmp_path / "rec.json"
    monkeypatch.setenv(report.RECORD_ENV, str(path))
    shown = report.record(accuracy=0.984000027179718, kb=92208.4990234375, n=7, ok=True)
    assert shown == {"accuracy": 0.984, "kb": 92208.0, "n": 7, "ok": True}
    assert json.loads(path.read_text())["accuracy"] == 0.984000027179718  # the record keeps every digit


def test_significant_and_readable():
    assert [report.significant(v) for v in (0.9769999980926514, 188.34, -1.4000000000000001, 92208.5, 0.0)] == \
        [0.977, 188.3, -1.4, 92208.0, 0.0]
    assert report.significant(float("nan")) != report.significant(float("nan"))  # NaN passes through
    frame = pd.DataFrame({"name": ["a", "b"], "loss": [1.1476123, 2.2774], "count": [3, 4], "mixed": [0.123456, "x"]})
    out = report.readable(frame)
    assert out["loss"].tolist() == [1.148, 2.277] and out["count"].tolist() == [3, 4]
    assert out["mixed"].tolist() == [0.1235, "x"] and out["name"].tolist() == ["a", "b"]
    assert report.readable({"a": [0.333333, (2.71828, 1)]}) == {"a": [0.3333, (2.718, 1)]}


def write_notebook(path, cells):
    path.write_text(json.dumps({"cells": [{"cell_type": kind, "source": text} for kind, text in cells]}))
    return path


def test_lab_words_splits_core_and_going_further(tmp_path):
    notebook = write_notebook(tmp_path / "01_x.ipynb", [
        ("markdown", "# Title\n\nfour words here"),                 # core: 5 words
        ("code", "print('not counted at all')"),
        ("markdown", "## Going further 1: more\n\ntext"),          # optional: 6
        ("markdown", "### a sub-section\ncounted as optional"),   # optional: 6
        ("markdown", "## Key figures"),                            # core again: 3
    ])
    assert report.lab_words(notebook) == {"core_words": 8, "going_further_words": 12}
    try:
        report.lab_words(tmp_path / "missing.ipynb")
    except FileNotFoundError as err:
        assert "missing.ipynb" in str(err) and "file name" in str(err)
    else:
        raise AssertionError("a missing notebook must raise FileNotFoundError")


def test_weight_histograms_show_the_zeros_on_a_log_axis():
    import numpy as np

    values = np.concatenate([np.zeros(700), np.linspace(-1, 1, 300)])
    fig = report.plot_weight_histograms({"fc.weight": values})
    ax = fig.axes[0]
    assert ax.get_yscale() == "log" and ax.get_xlabel() == "weight value" and "count" in ax.get_ylabel()
    assert "700 of 1,000 exactly 0" in ax.get_title()
    heights = [patch.get_height() for patch in ax.patches]
    assert max(heights) >= 700  # the bin at 0 holds every exact zero


def test_first_cell_finds_a_lesson_by_pattern(tmp_path):
    notebook = write_notebook(tmp_path / "n.ipynb", [("markdown", "# T `compare.verdict`"), ("code", "x = 1\nd.verdict[0]"),
                                                      ("markdown", "## Step 9: how sure")])
    assert report.first_cell(notebook, r"\.verdict\b") == 0
    assert report.first_cell(notebook, r"\.verdict\b", cell_type="code") == 1
    assert report.first_cell(notebook, r"^## Step 9") == 2
    try:
        report.first_cell(notebook, "nowhere")
    except ValueError as err:
        assert "nowhere" in str(err)
    else:
        raise AssertionError("no match must raise ValueError")
