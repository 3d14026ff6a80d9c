"""peel_utils.deploy on tiny models: int8 close to fp32, the size formula, bad layers, the model untouched."""

import pandas as pd
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


# --- Reading notebook 06: the choice (accuracies as fractions, printed in percent)

def _routes_table(kd_int8_accuracy: float = 0.975, kd_control: float = 0.955):
    """Notebook 06's table for a dense baseline, the sparse model as fp32 and int8, and the distilled model in int8;
    the sparse int8 file is the smallest form, the distilled int8 model the fastest at batch 64. Accuracies are
    fractions, max_drop 1 point as in the notebook."""
    within = kd_int8_accuracy >= kd_control - 1.0 / 100 - 1e-6  # notebook 06's bound; 1e-6: float tolerance
    table = pd.DataFrame([
        ("dense_fp32", "dense", "eager fp32", 1000, 0.977, float("nan"), None, 1.0, 1.0, "(the baseline)"),
        ("gmp90_sparse_fp32", "unstructured", "eager fp32", 200, 0.978, 0.982, True, 1.0, 1.1, "03's control"),
        ("gmp90_sparse_int8", "unstructured", "int8 + compile", 80, 0.976, 0.982, True, 1.9, 4.1, "03's control"),
        ("resnet18_kd_int8", "KD", "int8 + compile", 120, kd_int8_accuracy, kd_control, within, 4.8, 13.0,
         "04's control"),
    ], columns=["variant", "route", "runs as", "bytes", "test_accuracy", "control_accuracy", "within_control",
                "speedup_b1", "speedup_b64", "control"])
    table["within_control"] = table.within_control.astype("boolean")
    sizes = pd.DataFrame({"variant": ["dense_fp32", "gmp90_sparse_fp32", "gmp90_sparse_int8", "gmp90_sparse_int8",
                                      "resnet18_kd_int8"],
                          "form": ["dense fp32", "bitmask + fp32", "bitmask + int8", "bitmask + int8 + lzma", "int8"],
                          "bytes": [1000, 200, 80, 50, 120]})
    controls = {"unstructured": ("03's control", 0.982), "KD": ("04's control", kd_control, "resnet18_control_fp32")}
    timings = {(name, b): [base / speed] * 3 for name, base, speed in zip(table.variant, [100.0] * 4, table.speedup_b64)
               for b in (1, 64)}
    return table, sizes, controls, timings


def test_what_to_deploy_picks_the_fastest_qualifying_variant_and_names_the_smallest_form():
    table, sizes, controls, timings = _routes_table()
    choice = deploy.what_to_deploy(table, sizes, controls, timings, max_drop=1.0, batch=64, rounds=3)
    lines = choice.reading.splitlines()
    assert lines[0] == "unstructured: 2 of 2 variants within 1 point(s) of 03's control (98.20%)."
    assert lines[1] == "KD: 1 of 1 variants within 1 point(s) of 04's control (95.50%)."
    assert lines[2].startswith("Smallest on disk: gmp90_sparse_int8 as 'bitmask + int8 + lzma', 0.00 MB, 20.0x smaller")
    assert lines[2].endswith("(target 16x: met).")
    assert lines[3].startswith("Fastest at batch 64: resnet18_kd_int8, against eager fp32 dense 13x faster")
    assert "on the median of 3 rounds, 13.0x: met" in lines[3]
    assert "97.50% test accuracy against 95.50% for 04's control" in lines[3]
    assert lines[-1].startswith("No single model wins both: gmp90_sparse_int8 to store")
    assert choice.chosen.variant == "resnet18_kd_int8"
    assert list(choice.qualifying.variant) == ["gmp90_sparse_fp32", "gmp90_sparse_int8", "resnet18_kd_int8"]


def test_what_to_deploy_without_a_qualifying_variant_claims_no_target():
    table, sizes, controls, timings = _routes_table()
    table["within_control"] = pd.array([None, False, False, False], dtype="boolean")
    choice = deploy.what_to_deploy(table, sizes, controls, timings, max_drop=1.0, batch=64, rounds=3)
    assert "0 of 2 variants" in choice.reading and "targets cannot be claimed" in choice.reading
    assert "resnet18_kd_int8 (97.50% against 95.50%)" in choice.reading
    assert choice.chosen.variant == "resnet18_kd_int8"  # 2.0 points above its control: the closest
    assert list(choice.qualifying.variant) == ["resnet18_kd_int8"]


def test_a_variant_exactly_max_drop_points_below_its_control_qualifies_and_prints_in_percent():
    # fractions throughout: 0.9633 is 1 point below 0.9733; a percent (96.33) would print as 9633.00%
    table, sizes, controls, timings = _routes_table(kd_int8_accuracy=0.9633, kd_control=0.9733)
    assert bool(table.within_control.iloc[3])
    choice = deploy.what_to_deploy(table, sizes, controls, timings, max_drop=1.0, batch=64, rounds=3)
    lines = choice.reading.splitlines()
    assert lines[1] == "KD: 1 of 1 variants within 1 point(s) of 04's control (97.33%)."
    assert "at 96.33% test accuracy against 97.33% for 04's control." in lines[3]
    assert choice.chosen.variant == "resnet18_kd_int8" and choice.chosen.test_accuracy == 0.9633
    # just past the bound it no longer qualifies
    table, sizes, controls, timings = _routes_table(kd_int8_accuracy=0.9632, kd_control=0.9733)
    choice = deploy.what_to_deploy(table, sizes, controls, timings, max_drop=1.0, batch=64, rounds=3)
    assert choice.reading.splitlines()[1] == "KD: 0 of 1 variants within 1 point(s) of 04's control (97.33%)."
    assert choice.chosen.variant == "gmp90_sparse_int8"

