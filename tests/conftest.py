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
