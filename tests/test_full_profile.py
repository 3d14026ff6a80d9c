"""The full profile's path, offline, on the CPU: notebooks 02-06 run under params/full.yaml's settings (a
MedMNIST set at 224x224, DataLoader workers, `pretrained=true`, `device: auto`) on a stand-in for the
downloaded pneumoniamnist file, with tiny epochs and a few images so the whole chain takes minutes."""

import json
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


def test_every_notebook_runs_under_the_full_profile(full_run):
    code, summary, _, _ = full_run
    statuses = {name[:2]: result["status"] for name, result in summary["notebooks"].items()}
    assert code == 0 and statuses == dict.fromkeys(["02", "03", "04", "05", "06"], "ok")
    assert all(result["figures"] for result in summary["notebooks"].values())  # each recorded its figures


def test_the_models_are_trained_at_224_pixels_on_the_medmnist_set(full_run):
    _, summary, _, checkpoints = full_run
    meta = handover.read_meta(checkpoints, "teacher")
    assert (meta.image_size, meta.in_channels, meta.num_classes) == (224, 3, 2)
    assert meta.dataset == "medmnist:pneumoniamnist"
    assert handover.read_meta(checkpoints, "structured").image_size == 224
    assert summary["notebooks"]["02_resnet50_pruning_sweep"]["parameters"]["num_workers"] == 1


def test_pretrained_weights_offline_give_the_message_and_the_fallback(full_run):
    _, summary, results, _ = full_run
    assert summary["notebooks"]["02_resnet50_pruning_sweep"]["parameters"]["pretrained"] is True
    executed = (results / "02_resnet50_pruning_sweep.ipynb").read_text()
    assert "Pretrained weights are not available, so the teacher trains from scratch." in executed
    assert "Fix: set pretrained=False to train from scratch" in executed
    assert summary["notebooks"]["02_resnet50_pruning_sweep"]["figures"]["teacher_pretrained"] is False
