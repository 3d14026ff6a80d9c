"""The own-data path end to end (README, "Your own data"): notebooks 02-07 of the session's tiny chain (tests/conftest.py's
`tiny_chain`, the full profile's settings) read an image folder made there (grey and colour PNGs of unequal sizes, a
class folder per class under train/ and test/, no val/), each in the shape its model needs; notebook 01 reads
MNIST's files there, so 07 takes LeNet's data and ResNet50's from two records. 01's own reading of an image folder,
in LeNet's 1 x 28 x 28, is tested in tests/test_data.py."""

import pytest
from PIL import Image
from test_full_profile import printed

from peel_utils import data, handover


def test_write_image_folder_makes_grey_and_colour_images_of_unequal_sizes(tmp_path, write_image_folder):
    root = write_image_folder(tmp_path / "mine")
    images = []
    for path in sorted(root.rglob("*.png")):
        with Image.open(path) as image:
            images.append((image.mode, image.size))
    assert len(images) == (10 + 4) * 3
    assert {mode for mode, _ in images} == {"L", "RGB"}
    assert len({size for _, size in images}) > 10
    assert sorted(p.name for p in root.iterdir()) == ["test", "train"]
    splits = data.load_dataset(f"imagefolder:{root}", image_size=16)
    assert splits.sizes() == {"train": 27, "val": 3, "test": 12} and splits.class_names == ["cat", "dog", "fox"]


@pytest.mark.slow
def test_every_notebook_runs_on_an_image_folder(tiny_chain):
    statuses = {name[:2]: result["status"] for name, result in tiny_chain.summary["notebooks"].items()}
    assert statuses == dict.fromkeys(tiny_chain.notebooks, "ok") and tiny_chain.code == 0
    assert {result["parameters"]["dataset"] for name, result in tiny_chain.summary["notebooks"].items()
            if name[:2] != "01"} == {tiny_chain.dataset}


@pytest.mark.slow
def test_the_models_are_trained_on_the_folder_in_their_own_shapes(tiny_chain):
    for key in ("teacher", "pruned", "finetuned", "gmp", "student", "structured"):
        meta = handover.read_meta(tiny_chain.checkpoints, key)
        assert (meta.dataset, meta.input_shape, meta.num_classes) == (tiny_chain.dataset, (3, 224, 224), 3), key


@pytest.mark.slow
def test_notebook_02_says_three_validation_images_cannot_resolve_its_bound(tiny_chain):
    assert tiny_chain.summary["notebooks"]["02_resnet50_pruning_sweep"]["figures"]["val_images_per_point"] == 0.03
    executed = printed(tiny_chain.results / "02_resnet50_pruning_sweep.ipynb")
    assert "On 3 validation images, 1 point is 0.03 images (one image is 33 points), so the bound of 2 points " \
           "allows 0 images more wrong than the unpruned model. That is fewer than 5 images: this validation set is " \
           "too small to resolve a 2-point bound" in executed
    assert "the parameter ratio=0.0 overrides the rule" in executed
    assert "at ratio 0 neither method prunes a weight: both models are the teacher" in executed


@pytest.mark.slow
def test_notebook_03_says_its_pruned_model_has_no_pruned_weight_instead_of_comparing(tiny_chain):
    made = handover.read_meta(tiny_chain.checkpoints, "pruned").extra
    assert (made["ratio"], made["chosen_by"], made["max_drop"]) == (0.0, "ratio parameter", 2.0)
    assert tiny_chain.summary["notebooks"]["03_resnet50_finetune"]["figures"]["pruned_ratio"] == 0.0
    executed = printed(tiny_chain.results / "03_resnet50_finetune.ipynb")
    assert 'The "pruned" model notebook 02 handed over has ratio 0 (weight sparsity 0.0000): no weight was pruned' \
        in executed
    assert "pruned + fine-tuned has no pruned weight (notebook 02 kept ratio 0): it is the teacher fine-tuned " \
           "exactly as dense + same fine-tuning" in executed
    assert "This notebook fine-tunes notebook 02's \"pruned\" ResNet50 at ratio 0, which prunes no weight, set by " \
           "notebook 02's `ratio` parameter instead of its rule" in executed  # which model, and why
    assert "pruned + fine-tuned is " not in executed  # no verdict comparing the two
