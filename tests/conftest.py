"""Shared fixtures: small real data (mnist5k), seeded random-init models, stand-in hand-over files."""

from pathlib import Path

import numpy as np
import pytest
import torch

from peel_utils import data, handover, models, runtime


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
    handover.save(model, folder, "pruned", STAND_IN.with_extra(prune_method="global", ratio=0.0))
    handover.save(model, folder, "finetuned", STAND_IN.with_extra(prune_method="global", ratio=0.0))
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


@pytest.fixture
def fast_parameters() -> dict[str, str]:
    """Per notebook, parameter overrides (as papermill would inject them) under which a notebook that trains its
    own input before its first exercise does so in seconds."""
    return {"02": "epochs = 1\nimage_size = 16\nratios = [0.0, 0.5]"}


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

    notebooks = Path(__file__).resolve().parents[1] / "notebooks"

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
