"""peel_utils.entry: an entry round-trips bit-exactly after its coding, and every bad file is refused by an
EntryError naming it; a pickle is never run."""

import json
import pickle
import struct

import pytest
import torch
import torch.nn as nn

from peel_utils import dcfile, entry, models, sharing


def tiny_cnn() -> nn.Sequential:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(4, 8, 3, padding=1, bias=False), nn.GELU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                          nn.Linear(32, 10))
    with torch.no_grad():
        model[1].running_mean.uniform_(-0.5, 0.5)
        model[1].running_var.uniform_(0.5, 2.0)
        model[0].weight[model[0].weight.abs() < 0.1] = 0  # some pruned weights: positions to code
    return model.eval()


def test_round_trip_is_bit_exact_after_the_coding(tmp_path):
    model = tiny_cnn()
    path = entry.write(model, tmp_path / "a.peel", (1, 8, 8), bits=3, value_dtype=torch.float32,
                       class_names=[str(i) for i in range(10)], about={"student": "test"})
    back = entry.load(path)
    assert back.input_shape == (1, 8, 8) and back.num_classes == 10 and back.about == {"student": "test"}
    assert back.parameters == sum(p.numel() for p in model.parameters())
    folded, _ = entry.as_sequential(model)
    folded = dcfile.fold_batchnorm(folded)
    shared = sharing.share_weights(folded, 3, allow_dense=True)
    expected = {**folded.state_dict(), **{name: layer.weight() for name, layer in shared.items()}}
    for name, tensor in back.model.state_dict().items():
        assert torch.equal(tensor, expected[name].to(tensor.dtype)), name
    assert all(len(tensor.unique()) <= 8 for name, tensor in back.model.state_dict().items() if name in shared)
    x = torch.randn(5, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(back.model(x), sharing.apply_shared(folded, shared)(x), atol=1e-5)


def test_plain_fp32_entry_gives_the_same_outputs(tmp_path):
    model = tiny_cnn()
    path = entry.write(model, tmp_path / "b.peel", (1, 8, 8), value_dtype=torch.float32)
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(entry.read(path)(x), model(x), atol=1e-5)


def test_fp16_values_are_exactly_the_fp16_rounding(tmp_path):
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3)).eval()
    back = entry.read(entry.write(model, tmp_path / "c.peel", (1, 3, 4)))
    assert torch.equal(back[1].weight, model[1].weight.detach().half().float())
    assert torch.equal(back[1].bias, model[1].bias.detach().half().float())


def test_lenet_is_described_as_its_layers(tmp_path):
    torch.manual_seed(1)
    lenet = models.LeNet().eval()
    assert [layer["type"] for layer in entry.describe(lenet)] == [
        "Conv2d", "ReLU", "MaxPool2d", "Conv2d", "ReLU", "MaxPool2d", "Flatten", "Linear", "ReLU", "Linear", "ReLU",
        "Linear"]
    shared = sharing.share_weights(lenet, 5, allow_dense=True)  # names of LeNet's own parameters
    back = entry.read(entry.write(lenet, tmp_path / "l.peel", (1, 28, 28), shared=shared))
    assert torch.equal(back[0].weight, shared["conv1.weight"].codebook.half().float()[shared["conv1.weight"].indices.long()]
                       .reshape(6, 1, 5, 5))
    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        reference = sharing.apply_shared(lenet, shared)(x)
        assert torch.allclose(back(x), reference, atol=1e-2)


def test_write_refuses_a_model_outside_the_family(tmp_path):
    with pytest.raises(entry.EntryError, match="ResNet is outside the entry family"):
        entry.write(models.resnet18(10), tmp_path / "r.peel", (3, 32, 32))
    assert not (tmp_path / "r.peel").exists()


@pytest.fixture
def good(tmp_path):
    return entry.write(tiny_cnn(), tmp_path / "good.peel", (1, 8, 8), bits=4)


def rewrite(path, architecture=None, version=entry.VERSION):
    """The entry at `path` with its architecture JSON replaced (the CRC32 recomputed: a well-formed file)."""
    text, payload = dcfile.unframe(path.read_bytes(), entry.MAGIC, entry.VERSION, 2)
    if architecture is not None:
        text = json.dumps(architecture(json.loads(text))).encode()
    out = path.with_name("changed.peel")
    out.write_bytes(dcfile.frame(entry.MAGIC, version, [text, payload]))
    return out


def refused(path, pattern):
    with pytest.raises(entry.EntryError, match=pattern) as info:
        entry.read(path)
    assert str(path) in str(info.value)
    return str(info.value)


def test_truncated_and_altered_files_are_refused(good):
    blob = good.read_bytes()
    cut = good.with_name("cut.peel")
    cut.write_bytes(blob[:-40])
    refused(cut, "truncated or extended")
    altered = good.with_name("altered.peel")
    altered.write_bytes(blob[:-10] + bytes([blob[-10] ^ 0x01]) + blob[-9:])
    refused(altered, "fails its checksum")
    short = good.with_name("short.peel")
    short.write_bytes(blob[:10])
    refused(short, "not a PEEL challenge entry")


def test_other_versions_and_formats_are_refused(good, tmp_path):
    refused(rewrite(good, version=2), "format version 2; this scorer reads version 1")
    state = tmp_path / "model.pt"
    torch.save(tiny_cnn().state_dict(), state)
    refused(state, "a zip archive, as torch.save writes")
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    refused(text, "not a PEEL challenge entry")
    dc = dcfile.write(tmp_path / "m.dc", dcfile.pack(tiny_cnn(), {}))
    refused(dc, "notebook 07's compressed state_dict")


class Payload:
    """Unpickling this creates the file it names: what a hostile 'entry' could do if it were unpickled."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_a_pickle_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned.txt"
    path = tmp_path / "evil.peel"
    path.write_bytes(pickle.dumps(Payload(marker)))
    message = refused(path, "a Python pickle")
    assert "nothing in it was run" in message
    assert not marker.exists()


@pytest.mark.parametrize("change, pattern", [
    (lambda a: {**a, "layers": a["layers"] + [{"type": "Lambda", "code": "print(1)"}]}, "layer 9 \\('Lambda'\\) is outside"),
    (lambda a: {**a, "layers": [{**a["layers"][0], "padding_mode": "reflect"}] + a["layers"][1:]},
     "arguments outside the family: \\['padding_mode'\\]"),
    (lambda a: {**a, "layers": [{**a["layers"][0], "out_channels": 10 ** 9}] + a["layers"][1:]}, "out-of-range"),
    (lambda a: {**a, "layers": [{**a["layers"][0], "out_channels": 5}] + a["layers"][1:]},
     "layer 1 \\(BatchNorm2d\\) normalises 4 channels, it gets 5"),
    (lambda a: {**a, "layers": [{**a["layers"][0], "bias": False}] + a["layers"][1:]}, "do not fit its architecture"),
    (lambda a: {**a, "input_shape": [1, 1, 1]}, "layer 3 \\(MaxPool2d\\): its output would be empty"),
    (lambda a: {**a, "num_classes": 7}, "not \\(7,\\) logits"),
    (lambda a: {**a, "input_shape": [1, 2048, 2048],
                "layers": [{"type": "Conv2d", "in_channels": 1, "out_channels": 4096, "kernel_size": 1}]},
     "more than 33,554,432 values per image"),
    (lambda a: {**a, "layers": a["layers"][:-1] + [{**a["layers"][-1], "in_features": 31}]}, "takes 31 features, it gets 32"),
    (lambda a: {**a, "input_shape": "big"}, "input_shape must be"),
    (lambda a: [1, 2], "not a JSON object"),
])
def test_architectures_outside_the_family_are_refused(good, change, pattern):
    refused(rewrite(good, change), pattern)


def test_a_huge_declared_length_is_refused_without_reading_it(good):
    blob = bytearray(good.read_bytes())
    struct.pack_into("<I", blob, 8, 2 ** 31)
    good.write_bytes(bytes(blob))
    refused(good, "truncated or extended")


def test_tier_rule():
    assert entry.tier(600, 0.970, 0.977) == "500x"
    assert entry.tier(600, 0.966, 0.977) == "none"
    assert entry.tier(499, 0.977, 0.977) == "200x"
    assert entry.tier(50, 0.967, 0.977) == "50x"
    assert entry.tier(49.9, 0.99, 0.977) == "none"


def test_reference_is_the_dense_resnet50_checkpoint():
    assert entry.reference_bytes(10) == 94_421_503


def test_leaderboard_plot_reads_fractions_in_percent():
    import matplotlib.pyplot as plt
    import pandas as pd

    table = pd.DataFrame([{"student": "ada", "size_ratio": 60.0, "test_accuracy": 0.951, "status": "ok"},
                          {"student": "bob", "size_ratio": None, "test_accuracy": None, "status": "refused"}])
    fig = entry.plot_leaderboard(table, teacher_accuracy=0.97)
    ax = fig.axes[0]
    assert ax.collections[0].get_offsets().tolist() == [[60.0, 0.951]]      # the one scored entry, its fraction
    assert ax.get_lines()[-1].get_ydata()[0] == pytest.approx(0.96)         # the teacher's 97% less 1 point
    assert ax.yaxis.get_major_formatter()(0.95, 0).startswith("95")  # the axis reads percent
    assert ax.yaxis.get_major_formatter()(0.95, 0).endswith("%")
    plt.close(fig)
