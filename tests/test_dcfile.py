"""peel_utils.dcfile: the compressed file rebuilds every weight exactly, and a damaged file is refused whole,
with the file named."""

import struct

import pytest
import torch
import torch.nn as nn

from peel_utils import dcfile, sharing


def pruned_net(seed=0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.Flatten(), nn.Linear(8 * 6 * 6, 10))
    with torch.no_grad():
        model[0].weight.mul_(torch.rand(model[0].weight.shape) > 0.5)
        model[3].weight.mul_(torch.rand(model[3].weight.shape) > 0.95)
        model[1].running_mean.uniform_(-1, 1)
    return model


@pytest.mark.parametrize("value_dtype", [torch.float32, torch.float16])
def test_round_trip_rebuilds_every_weight_exactly(tmp_path, value_dtype):
    model = pruned_net()
    shared = sharing.share_weights(model, {"0.weight": 8, "3.weight": 3})
    sharing.apply_shared(model, shared)
    packed = dcfile.pack(model, shared, value_dtype)
    path = dcfile.write(tmp_path / "model.dc", packed)
    assert path.stat().st_size == packed.file_bytes
    state = dcfile.read(path)
    assert list(state) == list(model.state_dict())
    for name, tensor in model.state_dict().items():  # every float in value_dtype: codebooks and raw tensors
        expected = tensor.to(value_dtype).float() if tensor.is_floating_point() else tensor
        assert torch.equal(state[name], expected), name
    assert state["1.num_batches_tracked"].dtype == torch.int64
    assert set(packed.table.positions.dropna()) <= {"bitmask", *(f"relative {s} bits" for s in range(1, 9))}


def test_a_dense_layer_needs_no_positions(tmp_path):
    model = nn.Sequential(nn.Linear(6, 4))
    shared = sharing.share_weights(model, 2, allow_dense=True)
    sharing.apply_shared(model, shared)
    packed = dcfile.pack(model, shared, torch.float32)
    assert packed.table.position_bytes.iloc[0] == 0
    state = dcfile.read(dcfile.write(tmp_path / "dense.dc", packed))
    assert torch.equal(state["0.weight"], model[0].weight.detach())


@pytest.fixture
def written(tmp_path):
    model = pruned_net()
    shared = sharing.share_weights(model, 4)
    path = dcfile.write(tmp_path / "model.dc", dcfile.pack(sharing.apply_shared(model, shared), shared))
    return path, path.read_bytes()


def damaged(path, blob):
    path.write_bytes(blob)
    return path


@pytest.mark.parametrize("damage, message", [
    (lambda b: b[:-10], "truncated or extended: its header says"),
    (lambda b: b[:10], "not a compressed model file"),
    (lambda b: b"", "not a compressed model file"),
    (lambda b: b[:-40] + bytes([b[-40] ^ 1]) + b[-39:], "fails its checksum"),
    (lambda b: b"XXXXXX" + b[6:], "not a compressed model file"),
    (lambda b: b[:6] + struct.pack("<H", 9) + b[8:], "format version 9; this reader reads version 1"),
])
def test_a_damaged_file_is_refused_with_its_name(written, damage, message):
    path, blob = written
    with pytest.raises(dcfile.CompressedFileError, match=message) as err:
        dcfile.read(damaged(path, damage(blob)))
    assert str(path) in str(err.value)
    assert isinstance(err.value, ValueError)


def test_a_payload_that_passes_its_checksum_but_does_not_decode(written):
    path, blob = written
    (payload,) = dcfile.unframe(blob, dcfile.MAGIC, dcfile.VERSION, 1)
    with pytest.raises(dcfile.CompressedFileError, match="passes its checksum but does not decode"):
        dcfile.read(damaged(path, dcfile.frame(dcfile.MAGIC, dcfile.VERSION, [payload[:-3]])))  # a consistent frame


def test_the_frame_is_magic_version_lengths_and_crc32_checked_in_that_order():
    blob = dcfile.frame(b"MAGIC!", 3, [b"abc", b"de"])
    assert blob[:8] == b"MAGIC!\x03\x00" and blob[8:16] == struct.pack("<II", 3, 2) and len(blob) == 20 + 5
    assert struct.unpack("<I", blob[16:20])[0] == __import__("zlib").crc32(b"abcde")
    assert dcfile.unframe(blob, b"MAGIC!", 3, 2) == [b"abc", b"de"]
    for bad, kind, found, expected in ((b"OTHER!" + blob[6:], "magic", 0, 0), (blob, "version", 3, 4),
                                       (blob[:-1], "length", 4, 5), (blob[:-1] + b"x", "checksum", None, None)):
        with pytest.raises(dcfile.FrameError) as err:
            dcfile.unframe(bad, b"MAGIC!", 4 if kind == "version" else 3, 2)
        assert err.value.kind == kind and (found is None or (err.value.found, err.value.expected) == (found, expected))


def test_a_failed_write_leaves_the_old_file(written, monkeypatch):
    path, blob = written

    class Broken(dcfile.Packed):
        @property
        def payload(self):
            raise OSError("disk full")

    with pytest.raises(OSError):
        dcfile.write(path, Broken.__new__(Broken))
    assert path.read_bytes() == blob
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_missing_file_and_bad_arguments(tmp_path):
    with pytest.raises(FileNotFoundError, match="no compressed model file at .*nothing.dc"):
        dcfile.read(tmp_path / "nothing.dc")
    model = pruned_net()
    shared = sharing.share_weights(model, 2)
    with pytest.raises(ValueError, match="value_dtype"):
        dcfile.pack(model, shared, torch.int8)
    with pytest.raises(ValueError, match="not in the model's state_dict"):
        dcfile.pack(nn.Linear(2, 2), shared)


def test_folded_batchnorm_computes_the_same_and_stores_constants(tmp_path):
    model = pruned_net().eval()
    with torch.no_grad():
        model[1].running_var.uniform_(0.5, 2.0)
        model[1].weight.uniform_(0.5, 1.5)
    statistics = model[1].running_var.clone()
    folded = dcfile.fold_batchnorm(model)
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(folded(x), model(x), atol=1e-5)
    assert torch.equal(model[1].running_var, statistics)  # the original is untouched
    assert not torch.equal(folded[1].weight, model[1].weight)
    shared = sharing.share_weights(folded, 4)
    packed = dcfile.pack(folded, shared, torch.float16)
    kinds = packed.table.set_index("name").kind
    assert kinds["1.running_mean"] == kinds["1.running_var"] == "constant" and kinds["1.weight"] == "raw"
    state = dcfile.read(dcfile.write(tmp_path / "folded.dc", packed))
    assert torch.equal(state["1.running_var"], torch.full((8,), 1 - 1e-5))
    assert torch.equal(state["1.running_mean"], torch.zeros(8))
    assert state["1.num_batches_tracked"].dtype == torch.int64
