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
