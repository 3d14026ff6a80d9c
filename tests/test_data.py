import re
from pathlib import Path

import numpy as np
import pytest
import torch

from peel_utils import data


def test_mnist5k_split_sizes_and_stratification(mnist5k):
    assert mnist5k.sizes() == {"train": 3500, "val": 500, "test": 1000}
    for split, per_class in ((mnist5k.train, 350), (mnist5k.val, 50), (mnist5k.test, 100)):
        labels = split.tensors[1].numpy()
        assert np.bincount(labels).tolist() == [per_class] * 10


def test_mnist5k_splits_are_disjoint_and_normalised(mnist5k):
    x = torch.cat([s.tensors[0] for s in (mnist5k.train, mnist5k.val, mnist5k.test)]).view(5000, -1)
    assert torch.unique(x, dim=0).shape[0] == 5000 - 0  # no image in two splits (no exact duplicates in mnist5k)
    assert x.mean().item() == pytest.approx(0.0, abs=0.15)  # (pixel/255 - 0.1307) / 0.3081
    assert x.min().item() == pytest.approx(-0.1307 / 0.3081, abs=1e-5)


def test_mnist5k_three_channels_resized():
    splits = data.load_dataset("mnist5k", channels=3, image_size=32)
    image, label = splits.train[0]
    assert image.shape == (3, 32, 32) and splits.in_channels == 3
    assert torch.equal(image[0], image[2])


def test_mnist5k_split_seed_changes_split(mnist5k):
    a = mnist5k.test.tensors[0]  # split_seed=0
    b = data.load_dataset("mnist5k", split_seed=1).test.tensors[0]
    assert not torch.equal(a, b)


def test_loaders_shuffle_is_seeded(mnist5k):
    first = lambda seed: next(iter(data.make_loaders(mnist5k, 32, seed=seed).train))[1]  # noqa: E731
    assert torch.equal(first(0), first(0)) and not torch.equal(first(0), first(1))


def test_unknown_dataset():
    with pytest.raises(ValueError, match="unknown dataset 'fashion'"):
        data.load_dataset("fashion")


@pytest.mark.parametrize("name", ["mnist", "cifar10"])
def test_missing_torchvision_set_names_the_fix(tmp_path, name):
    with pytest.raises(data.DatasetNotAvailableError, match="mnist5k"):
        data.load_dataset(name, tmp_path, download=False)


def test_missing_medmnist_names_the_fix(tmp_path):
    with pytest.raises(data.DatasetNotAvailableError, match="pneumoniamnist.npz"):
        data.load_dataset("medmnist:pneumoniamnist", tmp_path, download=False)


def test_unknown_and_unsupported_medmnist_flags(tmp_path):
    with pytest.raises(ValueError, match="unknown medmnist flag 'lungmnist'"):
        data.load_dataset("medmnist:lungmnist", tmp_path)
    with pytest.raises(ValueError, match="multi-label"):
        data.load_dataset("medmnist:chestmnist", tmp_path)


def test_imagefolder_reads_train_and_test(tmp_path, mnist5k):
    from PIL import Image

    for split in ("train", "test"):
        for label in ("a", "b"):
            folder = tmp_path / split / label
            folder.mkdir(parents=True)
            for i in range(5):
                pixels = (np.random.default_rng(i).random((12, 12)) * 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")
    splits = data.load_dataset(f"imagefolder:{tmp_path}", image_size=16)
    assert splits.num_classes == 2 and splits.class_names == ["a", "b"]
    assert splits.sizes() == {"train": 9, "val": 1, "test": 10}
    assert splits.train[0][0].shape == (3, 16, 16)


def _image_folder(root, layout, images=2):
    """Real PNG files in root/<split>/<class>/ for each split: [classes] of `layout`."""
    from PIL import Image

    for split, classes in layout.items():
        (root / split).mkdir(parents=True, exist_ok=True)
        for label in classes:
            folder = root / split / label
            folder.mkdir()
            for i in range(images):
                Image.fromarray(np.full((10, 10, 3), 40 * i, dtype=np.uint8)).save(folder / f"{i}.png")
    return f"imagefolder:{root}"


@pytest.mark.parametrize("layout, expected", [
    ({"train": ["cat", "dog"], "test": ["cat", "cow"]},
     r"do not hold the same class folders \(train/ has cat, dog\): test/ has cow \(not in train/\); test/ lacks dog"),
    ({"train": ["cat", "dog"], "val": ["cat"], "test": ["cat", "dog"]},
     r"do not hold the same class folders \(train/ has cat, dog\): val/ lacks dog\."),
    ({"train": ["cat"], "test": ["cat"]}, r"has 1 class \(cat\); a classifier needs at least two class folders"),
    ({"train": [], "test": ["cat", "dog"]}, r"train holds no class folders; imagefolder:.* needs train/ and test/"),
    ({"train": ["cat", "dog"], "test": []}, r"test holds no class folders"),
])
def test_imagefolder_refuses_classes_that_do_not_match(tmp_path, layout, expected):
    with pytest.raises(ValueError, match=expected):
        data.load_dataset(_image_folder(tmp_path, layout))


def test_imagefolder_refuses_an_empty_class_folder(tmp_path):
    name = _image_folder(tmp_path, {"train": ["cat", "dog"], "test": ["cat", "dog"]})
    (tmp_path / "train" / "bird").mkdir()
    with pytest.raises(ValueError, match=r"class folder\(s\) bird of .*train hold no image files"):
        data.load_dataset(name)


def test_an_image_folder_of_grey_and_colour_images_of_any_size_reads_as_lenets_input(tmp_path, write_image_folder):
    """Notebook 01's call on a user's own folder (README "Your own data"): every image 1 x 28 x 28."""
    splits = data.load_dataset(f"imagefolder:{write_image_folder(tmp_path)}", channels=1, image_size=28)
    shapes = {tuple(split[i][0].shape) for split in (splits.train, splits.val, splits.test) for i in range(len(split))}
    assert shapes == {(1, 28, 28)} and splits.num_classes == 3 and splits.in_channels == 1


def test_imagefolder_with_val_keeps_the_labels(tmp_path):
    name = _image_folder(tmp_path, {"train": ["cat", "dog"], "val": ["cat", "dog"], "test": ["cat", "dog"]})
    splits = data.load_dataset(name, channels=1, image_size=28)
    assert splits.sizes() == {"train": 4, "val": 4, "test": 4}
    assert splits.class_names == ["cat", "dog"] and splits.in_channels == 1
    assert [splits.test[i][1] for i in range(4)] == [0, 0, 1, 1]
    assert splits.train[0][0].shape == (1, 28, 28)


@pytest.mark.parametrize("bad", [None, 5, Path("data")])
def test_dataset_must_be_a_name(bad):
    with pytest.raises(ValueError, match=rf"dataset must be a name, one of: mnist5k, .*; not {re.escape(repr(bad))}"):
        data.load_dataset(bad)


def test_imagefolder_needs_a_path():
    with pytest.raises(ValueError, match="imagefolder: needs the folder's path"):
        data.load_dataset("imagefolder:")


def test_imagefolder_missing_subfolders(tmp_path):
    with pytest.raises(data.DatasetNotAvailableError, match="train/ and test/"):
        data.load_dataset(f"imagefolder:{tmp_path}")


def test_bad_options(mnist5k):
    with pytest.raises(ValueError, match="channels"):
        data.load_dataset("mnist5k", channels=2)
    with pytest.raises(ValueError, match="batch_size"):
        data.make_loaders(mnist5k, 0)


def test_random_shift_moves_training_images_by_whole_pixels(mnist5k):
    image, label = mnist5k.train[0]                                   # (1, 28, 28)
    shifted = data.RandomShift(mnist5k.train, 3)
    torch.manual_seed(0)
    moved, moved_label = shifted[0]
    assert moved.shape == image.shape and moved_label == label
    background = float(image[0, 0, 0])
    # the shifted image is the original, padded with background, seen through a window
    padded = torch.nn.functional.pad(image, (3, 3, 3, 3), value=background)
    windows = [padded[:, dy:dy + 28, dx:dx + 28] for dy in range(7) for dx in range(7)]
    assert any(torch.equal(moved, w) for w in windows)
    torch.manual_seed(0)
    assert torch.equal(shifted[0][0], moved)  # seeded: the same shift again
    assert torch.equal(data.RandomShift(mnist5k.train, 0)[0][0], image)
    with pytest.raises(ValueError, match="max_shift"):
        data.RandomShift(mnist5k.train, -1)


def test_loaders_shift_only_the_training_split(mnist5k):
    loaders = data.make_loaders(mnist5k, 8, max_shift=2)
    assert isinstance(loaders.train.dataset, data.RandomShift)
    assert loaders.val.dataset is mnist5k.val and loaders.test.dataset is mnist5k.test


@pytest.mark.slow  # spawned workers start a Python each: about 30 s
def test_medmnist_from_the_official_file_format_with_spawned_workers(tmp_path, write_medmnist):
    counts = write_medmnist(tmp_path)
    splits = data.load_dataset("medmnist:pneumoniamnist", tmp_path, channels=3, image_size=32, download=False)
    assert splits.sizes() == counts and splits.num_classes == 2 and splits.in_channels == 3
    image, label = splits.train[0]
    assert tuple(image.shape) == (3, 32, 32) and isinstance(label, int)
    loader = data.make_loaders(splits, 8, num_workers=2).train  # workers started by spawn, as on macOS and Windows
    images, labels = next(iter(loader))
    assert tuple(images.shape) == (8, 3, 32, 32) and labels.dtype == torch.int64


def test_a_medmnist_file_on_disk_is_used_without_a_download(tmp_path, write_medmnist, monkeypatch):
    write_medmnist(tmp_path)  # not the official bytes: medmnist's checksum would fail and download again
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # any download attempt fails at once
    splits = data.load_dataset("medmnist:pneumoniamnist", tmp_path, image_size=28, download=True)
    assert splits.sizes()["test"] == 624


def test_a_medmnist_file_of_a_larger_size_is_read_at_that_size(tmp_path, write_medmnist):
    """The full profile reads MedMNIST+ at 224 pixels (pneumoniamnist_224.npz); the same path at 64, a smaller file."""
    write_medmnist(tmp_path, size=64)
    splits = data.load_dataset("medmnist:pneumoniamnist", tmp_path, channels=3, image_size=64, download=False)
    assert splits.sizes()["val"] == 524 and splits.num_classes == 2
    assert tuple(splits.train[0][0].shape) == (3, 64, 64)


def test_an_unreadable_medmnist_file_names_it_and_the_fix(tmp_path):
    (tmp_path / "pneumoniamnist.npz").write_bytes(b"half a download")
    with pytest.raises(data.DatasetNotAvailableError, match="is there but could not be read.*delete it"):
        data.load_dataset("medmnist:pneumoniamnist", tmp_path)


@pytest.mark.slow  # three loads of mnist5k: about 10 s
def test_max_images_keeps_a_seeded_subset_of_each_split(mnist5k):
    small = data.load_dataset("mnist5k", max_images=100)
    assert small.sizes() == {"train": 100, "val": 100, "test": 100}
    again = data.load_dataset("mnist5k", max_images=100)
    assert torch.equal(torch.stack([small.test[i][0] for i in range(100)]),
                       torch.stack([again.test[i][0] for i in range(100)]))
    assert small.test.indices == sorted(small.test.indices) and max(small.test.indices) < 1000
    labels = {int(small.train[i][1]) for i in range(100)}
    assert len(labels) == 10  # a random subset, not the first images of a sorted set
    whole = data.load_dataset("mnist5k", max_images=5000)
    assert whole.sizes() == mnist5k.sizes()


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "10"])
def test_max_images_must_be_a_whole_number(bad):
    with pytest.raises(ValueError, match="max_images"):
        data.load_dataset("mnist5k", max_images=bad)


def test_workers_start_by_spawn_on_every_system(mnist5k):
    loaders = data.make_loaders(mnist5k, 8, num_workers=2)
    assert all(loader.multiprocessing_context.get_start_method() == "spawn"
               for loader in (loaders.train, loaders.val, loaders.test))
    assert data.make_loaders(mnist5k, 8).train.multiprocessing_context is None


def test_lenet_shape_leaves_mnist_unchanged(mnist5k):
    """Notebook 01 loads with channels=1, image_size=28 (so an imagefolder set fits LeNet): the same
    tensors as MNIST's own 1 x 28 x 28."""
    from PIL import Image

    lenet_shaped = data.load_dataset("mnist5k", channels=1, image_size=28)
    for split in ("train", "val", "test"):
        assert torch.equal(getattr(lenet_shaped, split).tensors[0], getattr(mnist5k, split).tensors[0])
    own = data._image_transform((data.MNIST_MEAN,), (data.MNIST_STD,), None, 1, None)  # mnist's transform
    fitted = data._image_transform((data.MNIST_MEAN,), (data.MNIST_STD,), 1, 1, 28)
    rng = np.random.default_rng(0)
    for _ in range(20):
        image = Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8), mode="L")
        assert torch.equal(own(image), fitted(image))
