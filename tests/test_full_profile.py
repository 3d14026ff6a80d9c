"""The full profile's path, offline, on the CPU: notebooks 01-07 under params/full.yaml's settings (torchvision's MNIST
for notebook 01; 224 x 224 inputs, a spawned DataLoader worker, `pretrained: true`, `device: auto` for 02-07) with tiny
epochs and a few images, once per session (tests/conftest.py's `tiny_chain`; 02-07 read an image folder there, whose
own-data path tests/test_own_data.py checks). The MedMNIST reader the full profile names is tested on its own file
format in tests/test_data.py."""

import json
import math
import re
from pathlib import Path

import pytest

from peel_utils import handover


def printed(executed: Path) -> str:
    """Everything an executed notebook's cells printed or displayed as text (streams, text/plain, text/markdown,
    errors), one output after another: what a reader saw, without the source."""
    texts = []
    for cell in json.loads(executed.read_text())["cells"]:
        for output in cell.get("outputs", []):
            texts.append("".join(output.get("text", "")))
            texts += ["".join(output.get("data", {}).get(kind, "")) for kind in ("text/plain", "text/markdown")]
            texts.append(output.get("evalue", ""))
    return "\n".join(text for text in texts if text)


@pytest.mark.slow
def test_every_notebook_runs_under_the_full_profile(tiny_chain):
    statuses = {name[:2]: result["status"] for name, result in tiny_chain.summary["notebooks"].items()}
    assert statuses == dict.fromkeys(tiny_chain.notebooks, "ok") and tiny_chain.code == 0
    assert all(result["figures"] for result in tiny_chain.summary["notebooks"].values())  # each recorded its figures


@pytest.mark.slow
def test_the_models_are_trained_at_224_pixels_with_a_spawned_worker(tiny_chain):
    meta = handover.read_meta(tiny_chain.checkpoints, "teacher")
    assert (meta.image_size, meta.in_channels, meta.num_classes, meta.dataset) == (224, 3, 3, tiny_chain.dataset)
    assert handover.read_meta(tiny_chain.checkpoints, "structured").image_size == 224
    parameters = tiny_chain.summary["notebooks"]["02_resnet50_pruning_sweep"]["parameters"]
    assert (parameters["image_size"], parameters["num_workers"], parameters["device"]) == (224, 1, "auto")


@pytest.mark.slow
def test_pretrained_weights_offline_give_the_message_and_the_fallback(tiny_chain):
    summary, results = tiny_chain.summary, tiny_chain.results
    assert summary["notebooks"]["02_resnet50_pruning_sweep"]["parameters"]["pretrained"] is True
    executed = printed(results / "02_resnet50_pruning_sweep.ipynb")
    assert "Pretrained weights are not available, so the teacher trains from scratch." in executed
    assert "Fix: set pretrained=False to train from scratch" in executed
    assert summary["notebooks"]["02_resnet50_pruning_sweep"]["figures"]["teacher_pretrained"] is False


def figure_problems(summary: dict) -> list[str]:
    """What is wrong with the recorded figures of a summary.json: an accuracy outside [0, 1] (a percentage
    recorded as a fraction's key), or a key naming a batch size `_b<N>` that is neither 1 nor the batch the
    notebook was given (`latency_batch` where it has one, else `batch_size`)."""
    problems = []
    for notebook, result in summary["notebooks"].items():
        parameters = result.get("parameters", {})
        batch = parameters.get("latency_batch", parameters.get("batch_size"))
        for key, value in result.get("figures", {}).items():
            if key.endswith("accuracy") and not (isinstance(value, (int, float)) and 0 <= value <= 1):
                problems.append(f"{notebook}: {key} = {value} is not a fraction in [0, 1]")
            for size in re.findall(r"(?<!_shared)_b(\d+)(?=_|$)", key):  # 07's `_shared_b3_` is a width in bits
                if int(size) not in (1, batch):
                    problems.append(f"{notebook}: {key} names batch {size}, but the notebook was given {batch}")
    return problems


def test_figure_problems_finds_percentages_and_batch_sizes_the_notebook_was_not_given():
    summary = {"notebooks": {
        "04_x": {"parameters": {"latency_batch": 8, "batch_size": 32},
                 "figures": {"student_test_accuracy": 97.5, "student_latency_speedup_b64": 2.0,
                             "control_test_accuracy": 0.95, "speedup_b1": 1.5, "student_latency_speedup_b8": 2.0}},
        "06_x": {"parameters": {"batch_size": 8},
                 "figures": {"dense_latency_b8_ms": 1.0, "dense_latency_b64_ms": 2.0, "best_test_accuracy": math.nan,
                             "chosen_speedup_b8_1thread": 1.0}}}}
    assert figure_problems(summary) == [
        "04_x: student_test_accuracy = 97.5 is not a fraction in [0, 1]",
        "04_x: student_latency_speedup_b64 names batch 64, but the notebook was given 8",
        "06_x: dense_latency_b64_ms names batch 64, but the notebook was given 8",
        "06_x: best_test_accuracy = nan is not a fraction in [0, 1]",
    ]


@pytest.mark.slow
def test_recorded_accuracies_are_fractions_and_batch_keys_match_the_parameters(tiny_chain):
    assert figure_problems(tiny_chain.summary) == []


@pytest.mark.slow
def test_notebook_01_trains_lenet_on_torchvisions_mnist_files(tiny_chain):
    meta = handover.read_meta(tiny_chain.checkpoints, "lenet")
    assert (meta.dataset, meta.input_shape, meta.num_classes) == ("mnist", (1, 28, 28), 10)
    assert tiny_chain.summary["notebooks"]["01_lenet_mnist_pruning"]["parameters"]["dataset"] == "mnist"


@pytest.mark.slow
def test_notebook_07_reads_each_models_data_from_its_record(tiny_chain):
    executed = printed(tiny_chain.results / "07_deep_compression.ipynb")
    assert "LeNet's data: mnist, 1 x 28 x 28 (notebook 01's record)" in executed
    assert f"ResNet50's data: {tiny_chain.dataset}, 3 x 224 x 224 (notebook 03's record)" in executed
