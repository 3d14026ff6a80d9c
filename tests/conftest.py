"""Shared fixtures: small real data (mnist5k), seeded random-init models, stand-in hand-over files and downloads, and
the session's one tiny run of the notebook chain (`tiny_chain`), which every test of an executed chain reads."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from peel_utils import data, handover, models, runtime

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def mnist5k():
    return data.load_dataset("mnist5k")


@pytest.fixture
def seeded():
    runtime.seed_everything(0)
    yield
    torch.set_grad_enabled(True)


# Hand-over files for running a notebook up to its first exercise without the notebooks before it: untrained
# stand-ins of the right shape (ResNet50, 10 classes, 16x16 input). Accuracy means nothing with them.
STAND_IN = handover.Meta("resnet50", 10, small_input=False, image_size=16, in_channels=3, dataset="mnist5k")


@pytest.fixture(scope="session")
def handover_files(tmp_path_factory) -> Path:
    """A quick-profile hand-over folder with stand-ins for notebook 02's teacher and pruned model and notebook 03's
    fine-tuned model, the files notebooks 03-05 read first."""
    folder = tmp_path_factory.mktemp("handover") / "checkpoints" / "quick"
    runtime.seed_everything(0)
    model = models.resnet50(STAND_IN.num_classes)
    handover.save(model, folder, "teacher", STAND_IN)
    made = STAND_IN.with_extra(prune_method="global", ratio=0.0, max_drop=2.0, chosen_by="ratio parameter")
    handover.save(model, folder, "pruned", made)
    handover.save(model, folder, "finetuned", made)
    return folder


@pytest.fixture
def link_handover_files(handover_files):
    """A function: link_handover_files(data_root) gives data_root/checkpoints/quick/ links to the stand-ins, so
    a notebook reads them but its own writes (atomic: a temporary file, then a rename) replace the links, not the
    files. Returns data_root."""
    def link(data_root: Path) -> Path:
        scratch = data_root / "checkpoints" / "quick"
        scratch.mkdir(parents=True)
        for file in handover_files.iterdir():
            (scratch / file.name).symlink_to(file)
        return data_root
    return link


@pytest.fixture(scope="session")
def tiny_01() -> dict:
    """Notebook 01's settings in params/tiny.yaml (a few epochs: every phase in seconds), as the runner gives them."""
    from peel_course import run

    return run.load_profile(ROOT / "params", "tiny")["01"]


@pytest.fixture
def fast_parameters(tiny_01) -> dict[str, str]:
    """Per notebook, parameter overrides (as papermill would inject them) under which a notebook that trains its
    own input before its first exercise does so in seconds; 01's are params/tiny.yaml's."""
    return {"01": "\n".join(f"{name} = {value!r}" for name, value in tiny_01.items()),
            "02": "epochs = 1\nimage_size = 16\nratios = [0.0, 0.5]"}


@pytest.fixture(scope="session")
def write_medmnist():
    """A function: write_medmnist(root, size=28) writes a stand-in for the downloaded pneumoniamnist file in
    MedMNIST's own .npz format, with the official sample counts (the medmnist package asserts them) and random
    bytes, made at test time and never shipped. Returns the counts per split."""
    import medmnist

    def write(root: Path, size: int = 28) -> dict[str, int]:
        rng = np.random.default_rng(0)
        counts = medmnist.INFO["pneumoniamnist"]["n_samples"]
        arrays = {}
        for split, n in counts.items():
            arrays[f"{split}_images"] = rng.integers(0, 256, (n, size, size), dtype=np.uint8)
            arrays[f"{split}_labels"] = rng.integers(0, 2, (n, 1), dtype=np.uint8)
        np.savez(root / f"pneumoniamnist{'' if size == 28 else f'_{size}'}.npz", **arrays)
        return counts
    return write


@pytest.fixture(scope="session")
def write_mnist_raw():
    """A function: write_mnist_raw(root, train=6000, test=500) writes a stand-in for torchvision's MNIST download in its
    own raw format: the four uncompressed idx-ubyte files under root/MNIST/raw/ that `torchvision.datasets.MNIST`
    checks for and reads (magic numbers 2051 for images, 2049 for labels; sizes big-endian), 28x28 random bytes
    as images and random digits as labels, made at test time and never shipped. `data.load_dataset("mnist")` carves
    5,000 validation images from train, so train needs more than 5,000. Returns the counts per split."""
    def idx(path: Path, magic: int, array: np.ndarray) -> None:
        header = np.array([magic, *array.shape], dtype=">u4").tobytes()
        path.write_bytes(header + array.astype(np.uint8).tobytes())

    def write(root: Path, train: int = 6000, test: int = 500) -> dict[str, int]:
        raw = Path(root) / "MNIST" / "raw"
        raw.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(0)
        for prefix, n in (("train", train), ("t10k", test)):
            idx(raw / f"{prefix}-images-idx3-ubyte", 2051, rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
            idx(raw / f"{prefix}-labels-idx1-ubyte", 2049, rng.integers(0, 10, n, dtype=np.uint8))
        return {"train": train, "test": test}
    return write


@pytest.fixture(scope="session")
def run_chain():
    """A function: run_chain(folder, profile, sections, only) writes `sections` ({"all": {...}, "02": {...}}) as
    folder/params/<profile>.yaml and executes the notebooks `only` (["01", "02", ...]) through `peel_course.run`
    (as `make run` does) into folder/results/<profile>/, offline: every download fails at once (proxies point at
    a closed port) and TORCH_HOME is empty (no cached ImageNet weights). Returns (exit code, summary.json as a
    dict, the results folder)."""
    import json

    import yaml

    from peel_course import run
    from peel_utils.report import RECORD_ENV

    notebooks = ROOT / "notebooks"

    def chain(folder: Path, profile: str, sections: dict[str, dict], only: list[str]) -> tuple[int, dict, Path]:
        (folder / "params").mkdir(parents=True, exist_ok=True)
        (folder / "params" / f"{profile}.yaml").write_text(yaml.safe_dump(sections))
        with pytest.MonkeyPatch.context() as env:
            for proxy in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
                env.setenv(proxy, "http://127.0.0.1:9")  # offline: any download fails at once
            env.setenv("TORCH_HOME", str(folder / "torch"))  # no cached ImageNet weights
            env.setenv(RECORD_ENV, "")  # run_profile sets it per notebook; restored afterwards
            code = run.run_profile(profile, only, notebooks, folder / "params", folder / "results")
        results = folder / "results" / profile
        summary = json.loads((results / "summary.json").read_text()) if (results / "summary.json").exists() else {}
        return code, summary, results
    return chain


@pytest.fixture(scope="session")
def write_image_folder():
    """A function: write_image_folder(root, counts={"train": 10, "test": 4}, classes=("cat", "dog", "fox"), seed=0)
    writes root/train/<class>/ and root/test/<class>/ PNGs (a user's own image set, README "Your own data"): random
    pixels, every other image grey (mode L), the rest colour (RGB), each of its own size between 12 and 47 pixels
    a side; no val/ (load_dataset holds 10% of train out). Returns root."""
    from PIL import Image

    def write(root: Path, counts: dict[str, int] | None = None, classes: tuple[str, ...] = ("cat", "dog", "fox"),
              seed: int = 0) -> Path:
        rng = np.random.default_rng(seed)
        for split, count in (counts or {"train": 10, "test": 4}).items():
            for label in classes:
                folder = root / split / label
                folder.mkdir(parents=True)
                for i in range(count):
                    height, width = (int(v) for v in rng.integers(12, 48, 2))
                    grey = i % 2 == 0
                    pixels = rng.integers(0, 256, (height, width) if grey else (height, width, 3), dtype=np.uint8)
                    Image.fromarray(pixels).save(folder / f"{label}_{i}.png")
        return root
    return write


# The chain's notebooks, and what shrinks its run; everything else (image size, pretrained, device, workers, the
# losses, the recipes) stays as params/full.yaml sets it. Notebook 05 reaches one MAC target (the second takes the
# same path).
CHAIN = ["01", "02", "03", "04", "05", "06", "07"]
TINY = {
    "all": {"max_images": 8, "num_workers": 0, "pin_memory": False},  # at most one batch of 8 per split (02-07)
    "01": {"epochs": 1, "finetune_epochs": 1, "iterative_steps": 2, "iterative_epochs": 1, "seeds": 1,
           "gmp_epochs": 1, "gmp_ramp_epochs": 1},
    "02": {"epochs": 1, "batch_size": 8, "ratios": [0.0, 0.5], "num_workers": 1},  # a spawned worker per loader
    "03": {"finetune_epochs": 1, "seeds": 1, "gmp_epochs": 1, "gmp_every": 1, "recal_batches": 1, "batch_size": 8},
    "04": {"epochs": 1, "seeds": 1, "batch_size": 8, "latency_rounds": 1, "latency_repeats": 1, "latency_batch": 8},
    "05": {"seeds": 1, "speedups": [2], "steps_per_target": 1, "finetune_images": 8, "batch_size": 8,
           "score_batches": 1, "recal_batches": 1, "latency_rounds": 1, "latency_repeats": 1,
           "latency_batch": 8},
    "06": {"batch_size": 8, "calibration_batches": 1, "latency_rounds": 1, "latency_repeats": 1,
           "large_input": None},  # Going further 1's compiles at 224 px: nbval's quick run takes that path
    "07": {"batch_size": 8, "lenet_epochs": 1, "lenet_ramp_epochs": 1, "lenet_centroid_epochs": 1,
           "lenet_sweep_bits": [2, 3], "resnet50_sweep_bits": [2, 3], "resnet50_centroid_steps": 1,
           "latency_rounds": 1, "latency_repeats": 1, "latency_batch": 8},
}


@dataclass(frozen=True)
class Chain:
    """One run of the tiny chain: the notebooks' prefixes, the runner's exit code, summary.json, its results folder
    (the executed notebooks), the data root (checkpoints/full/ holds the hand-overs), the profile's sections, and the
    image folder's dataset name."""
    notebooks: list[str]
    code: int
    summary: dict
    results: Path
    data_root: Path
    sections: dict
    dataset: str

    @property
    def checkpoints(self) -> Path:
        return self.data_root / "checkpoints" / "full"


@pytest.fixture(scope="session")
def tiny_chain(tmp_path_factory, write_mnist_raw, write_image_folder, run_chain) -> Chain:
    """Notebooks 01-07 executed once per test session by `peel_course.run` (as `make run PROFILE=full` does), offline,
    under params/full.yaml's settings (224 x 224 inputs, `pretrained: true`, a spawned DataLoader worker, `device:
    auto`) with TINY's epochs and sizes: 01 on a stand-in for torchvision's MNIST files (full.yaml's `dataset: mnist`),
    02-07 on an image folder of grey and colour PNGs of unequal sizes with no val/ (README "Your own data"), so 07
    reads two data sets. Notebook 02 hands over ratio 0 (its `ratio` parameter), as its rule does on a validation set
    too small to resolve the bound: 03-07 run the path of a "pruned" model with no pruned weight (nbval's quick run
    takes the pruned path). tests/test_full_profile.py, tests/test_own_data.py and tests/test_determinism.py read it."""
    from peel_course import run

    tmp = tmp_path_factory.mktemp("chain")
    dataset = f"imagefolder:{write_image_folder(tmp / 'my_images')}"
    data_root = tmp / "data"
    write_mnist_raw(data_root)
    base = run.load_profile(ROOT / "params", "full")
    sections = {name: {**base.get(name, {}), **TINY.get(name, {})} for name in {*base, *TINY}}
    sections["all"].update(data_root=str(data_root), dataset=dataset)
    sections["02"]["ratio"] = 0.0
    code, summary, results = run_chain(tmp, "full", sections, CHAIN)
    return Chain(CHAIN, code, summary, results, data_root, sections, dataset)
