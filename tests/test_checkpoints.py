import json

import numpy as np
import pytest
import torch

from peel_utils import checkpoints, models


def test_round_trip_with_meta(seeded, tmp_path):
    model = models.LeNet()
    path = checkpoints.save_checkpoint(model, tmp_path / "sub" / "m.pt", {"arch": "lenet", "epochs": 2})
    loaded = checkpoints.load_checkpoint(models.LeNet(), path)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))
    assert checkpoints.load_meta(path) == {"arch": "lenet", "epochs": 2}
    assert not list((tmp_path / "sub").glob(".*tmp"))


def test_saved_file_is_a_plain_state_dict(tmp_path):
    path = checkpoints.save_checkpoint(models.LeNet(), tmp_path / "m.pt")
    state = torch.load(path, weights_only=True)
    assert isinstance(state, dict) and "conv1.weight" in state


def test_wrong_architecture_names_mismatch_and_keeps_model(tmp_path):
    path = checkpoints.save_checkpoint(models.LeNet(num_classes=10), tmp_path / "m.pt")
    target = models.LeNet(num_classes=5)
    before = {k: v.clone() for k, v in target.state_dict().items()}
    with pytest.raises(checkpoints.CheckpointMismatchError, match=r"fc3.weight: checkpoint \(10, 84\) vs model \(5, 84\)"):
        checkpoints.load_checkpoint(target, path)
    assert all(torch.equal(before[k], v) for k, v in target.state_dict().items())
    with pytest.raises(checkpoints.CheckpointMismatchError, match="does not fit ResNet; missing: bn1.weight"):
        checkpoints.load_checkpoint(models.resnet18(10), path)


def test_missing_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        checkpoints.load_checkpoint(models.LeNet(), tmp_path / "absent.pt")


def test_failed_write_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = checkpoints.save_checkpoint(models.LeNet(), tmp_path / "m.pt", {"v": 1})
    original = path.read_bytes()

    def broken_save(obj, f):
        f.write(b"partial")
        raise RuntimeError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(RuntimeError, match="disk full"):
        checkpoints.save_checkpoint(models.LeNet(), path, {"v": 2})
    assert path.read_bytes() == original
    assert json.loads(path.with_suffix(".json").read_text()) == {"v": 1}
    assert not list(tmp_path.glob(".*tmp"))


def test_checkpoint_has_usual_permissions(tmp_path):
    import os

    umask = os.umask(0)
    os.umask(umask)
    path = checkpoints.save_checkpoint(models.LeNet(), tmp_path / "m.pt")
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_atomic_write_replaces_whole_or_not_at_all(tmp_path):
    path = tmp_path / "sub" / "table.csv"
    checkpoints.atomic_write(str(path), lambda f: f.write(b"old"))

    def crash(f):
        f.write(b"half")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        checkpoints.atomic_write(path, crash)
    assert path.read_bytes() == b"old"
    assert [p.name for p in path.parent.iterdir()] == ["table.csv"]  # no temporary file left


def _checkpoint_bytes(tmp_path):
    return checkpoints.save_checkpoint(models.LeNet(), tmp_path / "good.pt").read_bytes()


class _Code:
    """Pickles as a call to print: what weights_only=True refuses to run."""

    def __reduce__(self):
        return (print, ("this ran",))


@pytest.mark.parametrize("kind, expected", [
    ("truncated", r"bad\.pt is truncated \(its zip index is missing.*re-running the notebook that writes it"),
    ("garbage", r"bad\.pt is damaged or not a PyTorch checkpoint"),
    ("text", r"bad\.pt is damaged or not a PyTorch checkpoint"),
    ("empty", r"bad\.pt is empty \(0 bytes"),
    ("folder", r"bad\.pt is a folder, not a checkpoint file"),
    ("code", r"bad\.pt holds Python objects other than tensors \(code that would run on loading\), which "
             r"loading with weights_only=True refused; re-create it"),
    ("list", r"bad\.pt holds a list, not a state_dict"),
    ("number", r"bad\.pt is not a state_dict: entry 'epochs' \(str key, int value\) is not a name mapped to a tensor"),
    ("zip", r"bad\.pt is a zip archive but not a PyTorch checkpoint"),
])
def test_unreadable_checkpoint_gets_our_error(tmp_path, capsys, kind, expected):
    path = tmp_path / "bad.pt"
    if kind == "truncated":
        good = _checkpoint_bytes(tmp_path)
        path.write_bytes(good[: len(good) // 2])
    elif kind == "garbage":
        path.write_bytes(bytes(range(256)) * 3)
    elif kind == "text":
        path.write_text("hello, this is not a checkpoint\n")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "folder":
        path.mkdir()
    elif kind == "code":
        torch.save({"w": _Code()}, path)
    elif kind == "list":
        torch.save([torch.ones(2)], path)
    elif kind == "zip":
        import zipfile

        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("notes.txt", "not a checkpoint")
    else:
        torch.save({"w": torch.ones(2), "epochs": 3}, path)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(checkpoints.CheckpointError, match=expected) as caught:
        checkpoints.read_state_dict(path)
    assert "weights_only=False" not in str(caught.value)
    with pytest.raises(checkpoints.CheckpointError, match=expected):
        checkpoints.load_checkpoint(models.LeNet(), path)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing removed or added
    assert "this ran" not in capsys.readouterr().out  # pickled code is refused, never run


def test_checkpoint_error_is_a_value_error():
    assert issubclass(checkpoints.CheckpointError, ValueError)


def test_read_state_dict_returns_the_tensors(tmp_path):
    model = models.LeNet()
    path = checkpoints.save_checkpoint(model, tmp_path / "m.pt")
    state = checkpoints.read_state_dict(str(path))
    assert type(state) is dict and list(state) == list(model.state_dict())
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize("text, expected", [
    ("{not json", r"m\.json cannot be read \(Expecting property name"),
    ("[1, 2]", r"m\.json holds a JSON list, not an object"),
])
def test_broken_record_names_the_file_and_the_fix(tmp_path, text, expected):
    path = checkpoints.save_checkpoint(models.LeNet(), tmp_path / "m.pt", {"v": 1})
    path.with_suffix(".json").write_text(text)
    with pytest.raises(checkpoints.CheckpointError, match=expected + r".*re-running the notebook that writes it "
                                                                     r"\(it rewrites m\.pt and its record\)"):
        checkpoints.load_meta(path)
    assert path.with_suffix(".json").read_text() == text


def test_meta_json_cannot_write_keeps_the_old_pair(tmp_path):
    path = checkpoints.save_checkpoint(models.LeNet(), tmp_path / "m.pt", {"v": 1})
    old_checkpoint, old_record = path.read_bytes(), path.with_suffix(".json").read_text()
    with pytest.raises(checkpoints.CheckpointError,
                       match=r"meta\['extra'\]\['epochs'\] = \S*3\)? \(int64\) cannot be written"):
        checkpoints.save_checkpoint(models.LeNet(), path, {"v": 2, "extra": {"epochs": np.int64(3)}})
    assert path.read_bytes() == old_checkpoint
    assert path.with_suffix(".json").read_text() == old_record
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.pt"]


def test_meta_entries_json_writes_are_accepted(tmp_path):
    meta = {"ratio": np.float64(0.5), "shape": (1, 28), "tags": ["a", None, True]}
    path = checkpoints.save_checkpoint(models.LeNet(), tmp_path / "m.pt", meta)
    assert checkpoints.load_meta(path) == {"ratio": 0.5, "shape": [1, 28], "tags": ["a", None, True]}


@pytest.mark.parametrize("meta, expected", [
    ({"ids": {1, 2}}, r"meta\['ids'\] = \{1, 2\} \(set\)"),
    ({"acc": [0.5, np.float32(0.25)]}, r"meta\['acc'\]\[1\] = \S*0\.25\)? \(float32\)"),
    ({3: "x"}, r"meta key 3"),
    ("lenet", r"meta must be a dict"),
])
def test_unwritable_meta_is_refused_before_writing(tmp_path, meta, expected):
    with pytest.raises(checkpoints.CheckpointError, match=expected):
        checkpoints.save_checkpoint(models.LeNet(), tmp_path / "m.pt", meta)
    assert list(tmp_path.iterdir()) == []


def test_save_refuses_what_is_not_a_state_dict(tmp_path):
    with pytest.raises(TypeError, match="model must be an nn.Module or a state_dict, not NoneType"):
        checkpoints.save_checkpoint(None, tmp_path / "m.pt")
    with pytest.raises(checkpoints.CheckpointError, match=r"entry 'epochs' \(str key, int value\)"):
        checkpoints.save_checkpoint({"w": torch.ones(1), "epochs": 3}, tmp_path / "m.pt")
    assert list(tmp_path.iterdir()) == []
