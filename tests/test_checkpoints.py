import json

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
