"""peel_utils.deploy on tiny models: int8 close to fp32, the size formula, bad layers, the model untouched."""

import pytest
import torch
import torch.nn as nn

from peel_utils import deploy


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


def test_cpu_capability_states_plainly():
    cap = deploy.cpu_capability()
    assert cap.capability == torch.backends.cpu.get_cpu_capability()
    sentence = cap.describe()
    assert sentence.startswith("torch's CPU capability is") and sentence.endswith(".")
    none = deploy.CpuCapability("DEFAULT", vnni=False, amx=False, avx512_bf16=False)
    assert "without VNNI" in none.describe() and "little or no gain" in none.describe()


def test_variant_table_names_registered_hand_over_files():
    from peel_utils import handover

    assert set(deploy.MODELS.values()) <= set(handover.REGISTRY)
    assert {variant.model for variant in deploy.VARIANTS.values()} == set(deploy.MODELS)
    assert {variant.runs_as for variant in deploy.VARIANTS.values()} == {
        "eager fp32", "fp32 + compile", "bf16 + compile", "int8 + compile"}


def test_build_variant_eager_is_the_float_model_and_bad_names_are_refused():
    floats = {"dense": _tiny()}
    assert deploy.build_variant("dense_fp32", floats, [], (3, 8, 8), (1,)) is floats["dense"]
    with pytest.raises(ValueError, match="no deployable variant 'dense_int4'"):
        deploy.build_variant("dense_int4", floats, [], (3, 8, 8), (1,))
    with pytest.raises(ValueError, match="float model 'gmp90'.*handover key 'gmp'"):
        deploy.build_variant("gmp90_sparse_int8", floats, [], (3, 8, 8), (1,))


@pytest.mark.slow  # quantises and compiles (15 s)
def test_build_variant_int8_is_quantised_compiled_and_warmed_up():
    floats = {"resnet18_kd": _tiny()}
    deployed = deploy.build_variant("resnet18_kd_int8", floats, _calibration(), (3, 8, 8), (2,), calibration_batches=4)
    assert isinstance(deployed, deploy.Deployed)
    reference = deploy.quantize_int8(floats["resnet18_kd"], _calibration(), (3, 8, 8), calibration_batches=4)
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(deployed.model(x), reference(x))  # the int8 model before compiling, as 06 exports it
        assert torch.allclose(deployed(x), reference(x), atol=0.05)
