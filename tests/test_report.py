import json

import pandas as pd
import pytest

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


@pytest.mark.parametrize("value, target, places, shown", [
    (28.06, 16, 1, "28.1"),      # far from the target: the places asked for
    (11.96, 12, 1, "11.96"),     # "12.0" would read as the 12x target it misses
    (15.999, 16, 1, "15.999"),
    (12.0, 12, 1, "12.0"),       # on the target: it is the target
    (1.04, 1, 1, "1.04"),        # points below a 1-point bound
    (499.6, 500, 0, "499.6"),    # "500" beside a 500x tier it misses
    (6499.2, 500, 0, "6499"),
])
def test_beside_prints_a_value_apart_from_the_target_it_misses(value, target, places, shown):
    assert report.beside(value, target, places) == shown
