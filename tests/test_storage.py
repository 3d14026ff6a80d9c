import math

import pytest
import torch
import torch.nn.utils.prune as torch_prune

from peel_utils import measure, storage
from peel_utils.models import LeNet
from peel_utils.prune import GlobalPruner


@pytest.fixture
def pruned_lenet():
    torch.manual_seed(0)
    model = LeNet()
    return GlobalPruner(model, 0.75).prune(model)


def test_pack_bits_known_pattern():
    mask = torch.tensor([1, 0, 1, 1, 0, 0, 0, 0, 1], dtype=torch.bool)
    bits = storage.pack_bits(mask)
    assert bits.tolist() == [0b10110000, 0b10000000]
    assert torch.equal(storage.unpack_bits(bits, 9), mask)


def test_round_trip_gives_identical_weights(pruned_lenet, tmp_path):
    path = storage.save_sparse(pruned_lenet, tmp_path / "m.pt")
    state = storage.load_sparse(path)
    reference = pruned_lenet.state_dict()
    assert list(state) == list(reference)
    for name, tensor in reference.items():
        assert state[name].dtype == tensor.dtype
        assert torch.equal(state[name], tensor), name
    LeNet().load_state_dict(state)  # loads into a fresh model


def test_half_round_trip_is_fp16_of_the_weights(pruned_lenet, tmp_path):
    state = storage.load_sparse(storage.save_sparse(pruned_lenet.state_dict(), tmp_path / "h.pt", half=True))
    for name, tensor in pruned_lenet.state_dict().items():
        assert torch.equal(state[name], tensor.half()), name


def test_sparse_layers_stored_as_bitmask_dense_ones_as_is(tmp_path):
    state = {"sparse": torch.tensor([0.0] * 30 + [1.5, -2.0]), "dense": torch.arange(1.0, 33.0),
             "count": torch.tensor(7)}
    path = storage.save_sparse(state, tmp_path / "s.pt")
    stored = torch.load(path, weights_only=True)
    assert set(stored) == {"sparse::bits", "sparse::values", "sparse::shape", "dense", "count"}
    assert stored["sparse::values"].tolist() == [1.5, -2.0]
    assert stored["sparse::bits"].numel() == 4  # 32 entries, 8 per byte


def test_size_accounting(pruned_lenet, tmp_path):
    dense = measure.checkpoint_bytes(pruned_lenet)
    sparse = storage.save_sparse(pruned_lenet, tmp_path / "s.pt")
    half = storage.save_sparse(pruned_lenet, tmp_path / "h.pt", half=True)
    table = storage.storage_table({"dense": dense, "sparse": sparse, "fp16": half})
    assert table["form"].tolist() == ["dense", "sparse", "fp16"]
    assert table["bytes"].tolist() == [dense, sparse.stat().st_size, half.stat().st_size]
    assert table["compression_rate"].iloc[0] == 0.0
    # 75% zeros: 1 bit + 25% of 4 bytes per weight is about 0.28 of the dense 4 bytes
    assert 0.5 < table["compression_rate"].iloc[1] < table["compression_rate"].iloc[2] < 1.0
    assert storage.compression_rate(92180, 43750) == pytest.approx(0.5254, abs=1e-4)  # source 000


def test_bad_inputs(pruned_lenet, tmp_path):
    path = storage.save_sparse(pruned_lenet, tmp_path / "m.pt")
    before = path.read_bytes()
    torch_prune.l1_unstructured(pruned_lenet.fc1, "weight", amount=0.5)
    with pytest.raises(ValueError, match="prune.remove"):
        storage.save_sparse(pruned_lenet, path)
    assert path.read_bytes() == before  # a failed save leaves the old file
    with pytest.raises(FileNotFoundError):
        storage.load_sparse(tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="positive"):
        storage.compression_rate(0, 10)
    with pytest.raises(ValueError, match="not one of"):
        storage.storage_table({"dense": 10}, original="sparse")
    with pytest.raises(ValueError, match="empty"):
        storage.storage_table({})


def test_int8_sizes_against_hand_computed_bytes():
    weight = torch.zeros(4, 2, 3, 3)  # 72 entries, 8 non-zero
    weight[0, 0, 0, :] = torch.tensor([1.0, -0.5, 0.25])
    weight[1, 1, 2, :] = torch.tensor([2.0, 1.0, -2.0])
    weight[3, 0, 1, 1:] = torch.tensor([0.1, 0.2])
    state = {"conv.weight": weight, "bn.bias": torch.ones(4)}
    sparse = storage.int8_state_dict(state, sparse=True)
    # bitmask ceil(72 / 8) = 9 bytes + 8 int8 values + 4 fp32 scales + the shape (4 int64) + bias 4 fp32
    assert storage.payload_bytes(sparse) == 9 + 8 + 4 * 4 + 4 * 8 + 4 * 4
    dense = storage.int8_state_dict(state, sparse=False)
    assert storage.payload_bytes(dense) == 72 + 4 * 4 + 4 * 4
    assert sparse["conv.weight" + storage.BITS_SUFFIX].dtype == torch.uint8
    # round trip: int8 weights back within half a step of each channel's scale
    restored = storage.load_int8_state_dict(sparse)
    scales = weight.abs().amax(dim=(1, 2, 3)).clamp_min(1e-12) / 127
    assert ((restored["conv.weight"] - weight).abs() <= scales.view(-1, 1, 1, 1) / 2 + 1e-7).all()
    assert torch.equal(restored["conv.weight"] == 0, weight == 0)
    assert torch.equal(storage.load_int8_state_dict(dense)["conv.weight"], restored["conv.weight"])
    assert torch.equal(restored["bn.bias"], state["bn.bias"])


def test_quantize_weight_per_channel():
    weight = torch.tensor([[1.0, -0.5], [0.0, 0.0], [0.03, -0.04]])
    q, scale = storage.quantize_weight(weight)
    assert q.dtype == torch.int8
    assert q.tolist() == [[127, -64], [0, 0], [95, -127]]
    assert math.isclose(scale[0].item(), 1 / 127, rel_tol=1e-6) and scale[1].item() == 1.0


def test_compressed_bytes(tmp_path):
    path = tmp_path / "zeros.bin"
    path.write_bytes(bytes(100_000))
    assert storage.compressed_bytes(path, "lzma") < 1000
    assert storage.compressed_bytes(path, "zlib") < 1000
    with pytest.raises(ValueError, match="unknown compressor"):
        storage.compressed_bytes(path, "zip")


def test_int8_refuses_prune_reparametrisation():
    attached = LeNet()
    torch_prune.l1_unstructured(attached.fc1, "weight", amount=0.5)
    with pytest.raises(ValueError, match="fc1.weight_mask.*prune.remove"):
        storage.int8_state_dict(attached)
