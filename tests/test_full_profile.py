"""The full profile's path, offline, on the CPU: notebooks 02-06 run under params/full.yaml's settings (a
MedMNIST set at 224x224, DataLoader workers, `pretrained=true`, `device: auto`) on a stand-in for the
downloaded pneumoniamnist file, with tiny epochs and a few images so the whole chain takes minutes."""

import json
import math
import re
from pathlib import Path

import pytest
import yaml

from peel_course import run
from peel_utils import handover
from peel_utils.report import RECORD_ENV

ROOT = Path(__file__).resolve().parents[1]

# What shrinks the run; everything else (dataset, image size, pretrained, device, the losses, the recipes)
# stays as params/full.yaml sets it. Notebook 05 reaches one MAC target (the second takes the same path).
TINY = {
    "all": {"max_images": 8, "num_workers": 0, "pin_memory": False},  # one batch of 8 per split
    "02": {"epochs": 1, "batch_size": 8, "ratios": [0.0, 0.5], "num_workers": 1},  # a spawned worker per loader
    "03": {"finetune_epochs": 1, "seeds": 1, "gmp_epochs": 1, "gmp_every": 1, "recal_batches": 1, "batch_size": 8},
    "04": {"epochs": 1, "seeds": 1, "batch_size": 8, "latency_rounds": 1, "latency_repeats": 1, "latency_batch": 8},
    "05": {"seeds": 1, "speedups": [2], "steps_per_target": 1, "finetune_images": 8, "batch_size": 8,
           "score_batches": 1, "recal_batches": 1, "latency_rounds": 1, "latency_repeats": 1,
           "latency_batch": 8},
    "06": {"batch_size": 8, "calibration_batches": 1, "latency_rounds": 1, "latency_repeats": 1},
}


@pytest.fixture(scope="module")
def full_run(tmp_path_factory, write_medmnist):
    """Notebooks 02-06 executed by `peel_course.run` (as `make run PROFILE=full` does) on the tiny profile."""
    tmp = tmp_path_factory.mktemp("full")
    data_root = tmp / "data"
    data_root.mkdir()
    write_medmnist(data_root, size=224)
    full = run.load_profile(ROOT / "params", "full")
    tiny = {section: {**full.get(section, {}), **TINY.get(section, {})} for section in {*full, *TINY}}
    tiny["all"]["data_root"] = str(data_root)
    (tmp / "params").mkdir()
    (tmp / "params" / "full.yaml").write_text(yaml.safe_dump(tiny))
    with pytest.MonkeyPatch.context() as env:
        for proxy in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
            env.setenv(proxy, "http://127.0.0.1:9")  # offline: any download fails at once
        env.setenv("TORCH_HOME", str(tmp / "torch"))  # no cached ImageNet weights
        env.setenv(RECORD_ENV, "")  # run_profile sets it per notebook; restored afterwards
        code = run.run_profile("full", ["02", "03", "04", "05", "06"], ROOT / "notebooks", tmp / "params",
                               tmp / "results")
    summary = json.loads((tmp / "results" / "full" / "summary.json").read_text())
    return code, summary, tmp / "results" / "full", data_root / "checkpoints" / "full"


@pytest.mark.slow
def test_every_notebook_runs_under_the_full_profile(full_run):
    code, summary, _, _ = full_run
    statuses = {name[:2]: result["status"] for name, result in summary["notebooks"].items()}
    assert code == 0 and statuses == dict.fromkeys(["02", "03", "04", "05", "06"], "ok")
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
    executed = (results / "02_resnet50_pruning_sweep.ipynb").read_text()
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
            for size in re.findall(r"_b(\d+)(?=_|$)", key):
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
