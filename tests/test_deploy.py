"""peel_utils.deploy on tiny models: int8 close to fp32, the size formula, bad layers, the model untouched."""

import math

import pytest
import torch
import torch.nn as nn

from peel_utils import deploy, storage


class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                                      nn.Conv2d(8, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                                      nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(16, 4)

    def forward(self, x):
        return self.fc(self.features(x))


class DataDependentGate(nn.Module):
    """A layer torch.export cannot trace: Python control flow on a tensor's value."""

    def forward(self, x):
        if x.mean() > 0:
            return x
        return -x


def _tiny(seed=0):
    torch.manual_seed(seed)
    model = TinyNet().eval()
    with torch.no_grad():  # BatchNorm statistics that are not the identity
        for bn in (model.features[1], model.features[4]):
            bn.running_mean.uniform_(-0.2, 0.2)
            bn.running_var.uniform_(0.5, 2.0)
    return model


def _calibration(seed=1, batches=4):
    generator = torch.Generator().manual_seed(seed)
    return [(torch.randn(8, 3, 8, 8, generator=generator), torch.zeros(8, dtype=torch.long)) for _ in range(batches)]


def test_int8_output_close_to_fp32_and_float_model_unchanged():
    model = _tiny()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    quantized = deploy.quantize_int8(model, _calibration(), (3, 8, 8), calibration_batches=4)
    x = _calibration(seed=2, batches=1)[0][0]
    with torch.no_grad():
        reference, result = model(x), quantized(x)
    assert result.shape == reference.shape
    # int8 error: a few quantisation steps of the output's range
    assert (result - reference).abs().max() < 0.1 * reference.abs().max() + 0.05
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert type(model.features[0]) is nn.Conv2d and not model.training


def test_int8_any_batch_size():
    quantized = deploy.quantize_int8(_tiny(), _calibration(), (3, 8, 8))
    with torch.no_grad():
        assert quantized(torch.randn(1, 3, 8, 8)).shape == (1, 4)
        assert quantized(torch.randn(5, 3, 8, 8)).shape == (5, 4)


def test_compiled_int8_matches_uncompiled():
    quantized = deploy.quantize_int8(_tiny(), _calibration(), (3, 8, 8))
    deployed = deploy.compile_frozen(quantized)
    x = torch.randn(4, 3, 8, 8)
    with torch.no_grad():
        assert torch.allclose(deployed(x), quantized(x), atol=0.05)
    import torch._inductor.config as inductor_config
    assert inductor_config.freezing is False  # switched on only around the calls
    assert deploy.correct_fixed_batch(deployed, [(x[:3], torch.zeros(3, dtype=torch.long))], 4).shape == (3,)


def test_unexportable_layer_is_named_and_model_unchanged():
    model = _tiny()
    model.features.insert(3, DataDependentGate())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=r"features\.3 \(DataDependentGate\)"):
        deploy.quantize_int8(model, _calibration(), (3, 8, 8))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert isinstance(model.features[3], DataDependentGate)


def test_bf16_autocast_wrapper_returns_fp32_close_to_fp32():
    model = _tiny()
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        out = deploy.Autocast(model)(x)
        assert out.dtype == torch.float32
        assert torch.allclose(out, model(x), atol=0.05, rtol=0.05)


def test_int8_sizes_against_hand_computed_bytes():
    weight = torch.zeros(4, 2, 3, 3)  # 72 entries, 8 non-zero
    weight[0, 0, 0, :] = torch.tensor([1.0, -0.5, 0.25])
    weight[1, 1, 2, :] = torch.tensor([2.0, 1.0, -2.0])
    weight[3, 0, 1, 1:] = torch.tensor([0.1, 0.2])
    state = {"conv.weight": weight, "bn.bias": torch.ones(4)}
    sparse = deploy.int8_state_dict(state, sparse=True)
    # bitmask ceil(72 / 8) = 9 bytes + 8 int8 values + 4 fp32 scales + the shape (4 int64) + bias 4 fp32
    assert deploy.payload_bytes(sparse) == 9 + 8 + 4 * 4 + 4 * 8 + 4 * 4
    dense = deploy.int8_state_dict(state, sparse=False)
    assert deploy.payload_bytes(dense) == 72 + 4 * 4 + 4 * 4
    assert sparse["conv.weight" + storage.BITS_SUFFIX].dtype == torch.uint8
    # round trip: int8 weights back within half a step of each channel's scale
    restored = deploy.load_int8_state_dict(sparse)
    scales = weight.abs().amax(dim=(1, 2, 3)).clamp_min(1e-12) / 127
    assert ((restored["conv.weight"] - weight).abs() <= scales.view(-1, 1, 1, 1) / 2 + 1e-7).all()
    assert torch.equal(restored["conv.weight"] == 0, weight == 0)
    assert torch.equal(deploy.load_int8_state_dict(dense)["conv.weight"], restored["conv.weight"])
    assert torch.equal(restored["bn.bias"], state["bn.bias"])


def test_quantize_weight_per_channel():
    weight = torch.tensor([[1.0, -0.5], [0.0, 0.0], [0.03, -0.04]])
    q, scale = deploy.quantize_weight(weight)
    assert q.dtype == torch.int8
    assert q.tolist() == [[127, -64], [0, 0], [95, -127]]
    assert math.isclose(scale[0].item(), 1 / 127, rel_tol=1e-6) and scale[1].item() == 1.0


def test_compressed_bytes(tmp_path):
    path = tmp_path / "zeros.bin"
    path.write_bytes(bytes(100_000))
    assert deploy.compressed_bytes(path, "lzma") < 1000
    assert deploy.compressed_bytes(path, "zlib") < 1000
    with pytest.raises(ValueError, match="unknown compressor"):
        deploy.compressed_bytes(path, "zip")


def test_cpu_capability_states_plainly():
    cap = deploy.cpu_capability()
    assert cap.capability == torch.backends.cpu.get_cpu_capability()
    sentence = cap.describe()
    assert sentence.startswith("torch's CPU capability is") and sentence.endswith(".")
    none = deploy.CpuCapability("DEFAULT", vnni=False, amx=False, avx512_bf16=False)
    assert "without VNNI" in none.describe() and "little or no gain" in none.describe()
