"""The full profile's path, offline, on the CPU: notebooks 01-07 run under params/full.yaml's settings (torchvision's
MNIST for notebook 01; a MedMNIST set at 224x224, DataLoader workers, `pretrained=true`, `device: auto` for 02-07) on
stand-ins for the downloaded files in their official formats, with tiny epochs and a few images so the whole chain
takes minutes."""

import json
import math
import re
from pathlib import Path

import pytest

from peel_course import run
from peel_utils import handover

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ["01", "02", "03", "04", "05", "06", "07"]

# What shrinks the run; everything else (dataset, image size, pretrained, device, the losses, the recipes)
# stays as params/full.yaml sets it. Notebook 05 reaches one MAC target (the second takes the same path).
# tests/test_own_data.py runs the same settings on an image folder.
TINY = {
    "all": {"max_images": 8, "num_workers": 0, "pin_memory": False},  # one batch of 8 per split (02-07)
    "01": {"epochs": 1, "finetune_epochs": 1, "iterative_steps": 2, "iterative_epochs": 1, "seeds": 1,
           "gmp_epochs": 1, "gmp_ramp_epochs": 1},
    "02": {"epochs": 1, "batch_size": 8, "ratios": [0.0, 0.5], "num_workers": 1},  # a spawned worker per loader
    "03": {"finetune_epochs": 1, "seeds": 1, "gmp_epochs": 1, "gmp_every": 1, "recal_batches": 1, "batch_size": 8},
    "04": {"epochs": 1, "seeds": 1, "batch_size": 8, "latency_rounds": 1, "latency_repeats": 1, "latency_batch": 8},
    "05": {"seeds": 1, "speedups": [2], "steps_per_target": 1, "finetune_images": 8, "batch_size": 8,
           "score_batches": 1, "recal_batches": 1, "latency_rounds": 1, "latency_repeats": 1,
           "latency_batch": 8},
    "06": {"batch_size": 8, "calibration_batches": 1, "latency_rounds": 1, "latency_repeats": 1},
    "07": {"batch_size": 8, "lenet_epochs": 1, "lenet_ramp_epochs": 1, "lenet_centroid_epochs": 1,
           "lenet_sweep_bits": [2, 3], "resnet50_sweep_bits": [2, 3], "resnet50_centroid_steps": 1,
           "latency_rounds": 1, "latency_repeats": 1, "latency_batch": 8},
}


def tiny_sections(base: dict[str, dict], **everywhere) -> dict[str, dict]:
    """`base` (a profile's sections, as `run.load_profile` reads them) with TINY's settings over it and `everywhere`
    (e.g. data_root, dataset) set in its `all` section."""
    sections = {name: {**base.get(name, {}), **TINY.get(name, {})} for name in {*base, *TINY}}
    sections["all"].update(everywhere)
    return sections


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


@pytest.fixture(scope="module")
def full_run(tmp_path_factory, write_medmnist, write_mnist_raw, run_chain):
    """Notebooks 01-07 executed by `peel_course.run` (as `make run PROFILE=full` does) on the tiny profile."""
    tmp = tmp_path_factory.mktemp("full")
    data_root = tmp / "data"
    data_root.mkdir()
    write_medmnist(data_root, size=224)
    write_mnist_raw(data_root)
    sections = tiny_sections(run.load_profile(ROOT / "params", "full"), data_root=str(data_root))
    code, summary, results = run_chain(tmp, "full", sections, NOTEBOOKS)
    return code, summary, results, data_root / "checkpoints" / "full"


@pytest.mark.slow
def test_every_notebook_runs_under_the_full_profile(full_run):
    code, summary, _, _ = full_run
    statuses = {name[:2]: result["status"] for name, result in summary["notebooks"].items()}
    assert statuses == dict.fromkeys(NOTEBOOKS, "ok") and code == 0
    assert all(result["figures"] for result in summary["notebooks"].values())  # each recorded its figures


@pytest.mark.slow
def test_the_models_are_trained_at_224_pixels_on_the_medmnist_set(full_run):
    _, summary, _, checkpoints = full_run
    meta = handover.read_meta(checkpoints, "teacher")
    assert (meta.image_size, meta.in_channels, meta.num_classes) == (224, 3, 2)
    assert meta.dataset == "medmnist:pneumoniamnist"
    assert handover.read_meta(checkpoints, "structured").image_size == 224
    assert summary["notebooks"]["02_resnet50_pruning_sweep"]["parameters"]["num_workers"] == 1


@pytest.mark.slow
def test_pretrained_weights_offline_give_the_message_and_the_fallback(full_run):
    _, summary, results, _ = full_run
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
def test_recorded_accuracies_are_fractions_and_batch_keys_match_the_parameters(full_run):
    _, summary, _, _ = full_run
    assert figure_problems(summary) == []


@pytest.mark.slow
def test_notebook_01_trains_lenet_on_torchvisions_mnist_files(full_run):
    _, summary, _, checkpoints = full_run
    meta = handover.read_meta(checkpoints, "lenet")
    assert (meta.dataset, meta.input_shape, meta.num_classes) == ("mnist", (1, 28, 28), 10)
    assert summary["notebooks"]["01_lenet_mnist_pruning"]["parameters"]["dataset"] == "mnist"


@pytest.mark.slow
def test_notebook_02_says_eight_validation_images_cannot_resolve_its_bound_and_03_follows_its_ratio(full_run):
    _, summary, results, checkpoints = full_run
    assert summary["notebooks"]["02_resnet50_pruning_sweep"]["figures"]["val_images_per_point"] == 0.08
    executed = printed(results / "02_resnet50_pruning_sweep.ipynb")
    assert "On 8 validation images, 1 point is 0.08 images (one image is 12 points), so the bound of 2 points " \
           "allows 0 images more wrong than the unpruned model." in executed
    assert "this validation set is too small to resolve a 2-point bound" in executed
    ratio = handover.read_meta(checkpoints, "pruned").extra["ratio"]
    said = "handed over has ratio 0" in printed(results / "03_resnet50_finetune.ipynb")
    assert said == (ratio == 0)  # notebook 03 says its "pruned" model has no pruned weight exactly at ratio 0


@pytest.mark.slow
def test_notebook_07_reads_each_models_data_from_its_record(full_run):
    _, _, results, _ = full_run
    executed = printed(results / "07_deep_compression.ipynb")
    assert "LeNet's data: mnist, 1 x 28 x 28 (notebook 01's record)" in executed
    assert "ResNet50's data: medmnist:pneumoniamnist, 3 x 224 x 224 (notebook 03's record)" in executed
