"""peel_course.challenge: a class's folders scored into a leaderboard; bad entries refused (a pickle never runs),
an empty folder missing, the files written with exactly the leaderboard's columns."""

import pickle

import pandas as pd
import pytest
import torch
import torch.nn as nn

from peel_course import challenge
from peel_utils import entry


class Payload:
    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (open, (self.target, "w"))


def tiny_entry(path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                          nn.Linear(16, 10)).eval()
    return entry.write(model, path, (1, 16, 16), bits=4)


@pytest.fixture
def classroom(tmp_path):
    root = tmp_path / "class"
    for name in ("ada", "bob", "cyd", "dee", "eve"):
        (root / name).mkdir(parents=True)
    good = tiny_entry(root / "ada" / "ada.peel")
    marker = tmp_path / "payload_ran.txt"
    (root / "bob" / "model.peel").write_bytes(pickle.dumps(Payload(marker)))
    (root / "cyd" / "cut.peel").write_bytes(good.read_bytes()[:-25])
    (root / "eve" / "a.peel").write_bytes(good.read_bytes())
    (root / "eve" / "b.peel").write_bytes(good.read_bytes())
    return root, marker


def test_class_is_scored_and_bad_entries_refused(classroom, tmp_path, capsys):
    root, marker = classroom
    assert challenge.main(["--submissions", str(root), "--test", "mnist5k", "--max-images", "100",
                           "--teacher-accuracy", "0.977", "--data-root", str(tmp_path / "data")]) == 0
    assert not marker.exists()  # the pickle never ran
    table = pd.read_csv(root / "leaderboard.csv")
    assert list(table.columns) == entry.COLUMNS
    assert (root / "leaderboard.png").stat().st_size > 1000
    rows = table.set_index("student")
    assert rows.loc["ada", "status"] == "ok" and table.student.iloc[0] == "ada"
    assert rows.loc["ada", "bytes"] == (root / "ada" / "ada.peel").stat().st_size
    assert float(rows.loc["ada", "size_ratio"]) == pytest.approx(94_421_503 / rows.loc["ada", "bytes"])
    assert rows.loc["ada", "parameters"] == 4 * 9 + 4 + 16 * 10 + 10
    assert 0 <= float(rows.loc["ada", "test_accuracy"]) <= 1 and float(rows.loc["ada", "latency_b1_ms"]) > 0
    assert rows.loc["ada", "tier"] == "none"  # a random tiny model: far from the teacher's accuracy
    assert rows.loc["bob", "status"] == "refused" and "a Python pickle" in rows.loc["bob", "message"]
    assert "model.peel" in rows.loc["bob", "message"]
    assert rows.loc["cyd", "status"] == "refused" and "truncated" in rows.loc["cyd", "message"]
    assert rows.loc["dee", "status"] == "missing"
    assert rows.loc["eve", "status"] == "refused" and "holds 2 files" in rows.loc["eve", "message"]
    out = capsys.readouterr().out
    assert "5 students: 1 ok, 3 refused, 1 missing" in out and "torch threads" in out


def test_tiers_come_from_the_teacher_accuracy(classroom, tmp_path):
    root, _ = classroom
    table = entry.leaderboard(root, "mnist5k", teacher_accuracy=0.05, data_root=tmp_path / "data", max_images=100,
                              rounds=1, repeats=1)
    ratio = float(table.set_index("student").loc["ada", "size_ratio"])
    assert ratio > 500 and table.set_index("student").loc["ada", "tier"] == "500x"
    assert entry.leaderboard(root, "mnist5k", teacher_accuracy=None, data_root=tmp_path / "data", max_images=100,
                             rounds=1, repeats=1).set_index("student").loc["ada", "tier"] == "n/a"


def test_bad_command_lines_get_our_error(tmp_path, capsys):
    assert challenge.main(["--submissions", str(tmp_path / "nowhere"), "--test", "mnist5k"]) == 2
    assert "no submissions folder" in capsys.readouterr().err
    assert challenge.main(["--submissions", str(tmp_path), "--test", "mnist5k", "--teacher-accuracy", "97.7"]) == 2
    assert "a fraction" in capsys.readouterr().err
    (tmp_path / "ada").mkdir()
    tiny_entry(tmp_path / "ada" / "e.peel")
    assert challenge.main(["--submissions", str(tmp_path), "--test", "nosuchset", "--teacher-accuracy", "0.9"]) == 2
    assert "unknown dataset 'nosuchset'" in capsys.readouterr().err


def test_a_hidden_imagefolder_set_is_loaded_in_the_entrys_shape(tmp_path):
    from PIL import Image

    hidden = tmp_path / "hidden"
    for split in ("train", "test"):
        for label, shade in (("cat", 30), ("dog", 220)):
            folder = hidden / split / label
            folder.mkdir(parents=True)
            for i in range(3):
                Image.new("RGB", (40, 30), (shade, shade + i, shade)).save(folder / f"{i}.png")
    root = tmp_path / "class"
    (root / "ada").mkdir(parents=True)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 2)).eval()
    entry.write(model, root / "ada" / "ada.peel", (1, 16, 16))
    (root / "bob").mkdir()
    entry.write(nn.Sequential(nn.Flatten(), nn.Linear(256, 10)).eval(), root / "bob" / "bob.peel", (1, 16, 16))
    assert challenge.main(["--submissions", str(root), "--test", f"imagefolder:{hidden}", "--teacher-accuracy", "1.0",
                           "--out", str(tmp_path / "board")]) == 0
    table = pd.read_csv(tmp_path / "board" / "leaderboard.csv").set_index("student")
    assert table.loc["ada", "status"] == "ok" and table.loc["ada", "test_accuracy"] * 6 == pytest.approx(
        round(table.loc["ada", "test_accuracy"] * 6))  # six hidden test images
    assert table.loc["bob", "status"] == "refused" and "10 classes, the test set 2" in table.loc["bob", "message"]
