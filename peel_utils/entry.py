"""The compression challenge's entry: one file, data only, and the rules that score it (notebook 08).

An entry holds a whole model: its architecture described by data and its weights coded as notebook 07 codes them.
Nothing in it is ever run: the architecture is JSON naming layers of a small family (`FAMILY`), the weights are
raw bytes (shared k-means indices Huffman-coded with their positions, `dcfile`'s payload), and `read` builds the
model from that description with this module's own code. No pickle, no `torch.load`, no `eval`.

Layout (little-endian): `dcfile.frame`'s frame with two parts, so a 20-byte header, `MAGIC` (6 bytes), the format
version (uint16), the architecture's length and the payload's length (uint32 each) and the CRC32 of both (uint32);
then the architecture, UTF-8 JSON:

    {"input_shape": [C, H, W], "num_classes": K, "layers": [{"type": "Conv2d", "in_channels": 3, ...}, ...],
     "class_names": [...], "about": {...}}

(the layers run one after the other, an `nn.Sequential`; `about` holds free notes: strings and numbers); then the
weights, `dcfile.pack`'s payload for that Sequential's state_dict (BatchNorm folded into two vectors, each
shared weight a codebook plus Huffman-coded indices and positions, every other tensor fp16 or fp32).

A file that is not an entry (a pickle, a `torch.save` zip, anything else), of another format version, truncated,
altered (the CRC32), or describing a layer outside the family or a model that does not run on its own input
shape raises `EntryError`, naming the file, what is wrong and the fix.

Scoring (`score_folder`, `leaderboard`): an entry's size ratio is the bytes of a dense fp32 ResNet50 checkpoint for
the same number of classes (`reference_bytes`) over the entry's bytes; its tier (`tier`) the largest of `TIERS`
(500x, 200x, 50x smaller) it reaches with a test accuracy at most `MAX_DROP` points below the teacher's.
`peel_course.challenge` is the command line a teacher runs over a class's folders.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
import torch.nn as nn
from tqdm.auto import tqdm

from . import dcfile, sharing
from .checkpoints import atomic_write
from .models import LeNet

MAGIC = b"PEELCE"  # PEEL challenge entry
VERSION = 1
SUFFIX = ".peel"
MAX_BYTES = 128 * 2 ** 20  # larger than any entry can usefully be (a dense fp32 ResNet50 is about 94 MB)
MAX_PARAMETERS = 50_000_000
TIERS = (500, 200, 50)  # times smaller than the dense fp32 ResNet50 checkpoint, the hardest first
MAX_DROP = 1.0  # points of test accuracy below the teacher's that a tier allows
COLUMNS = ["student", "file", "bytes", "size_ratio", "parameters", "test_accuracy", "latency_b1_ms", "tier", "status",
           "message"]
_FIX = "write it again with peel_utils.entry.write (notebook 08)"


class EntryError(ValueError):
    """A file that is not a readable challenge entry; the message names the file, what is wrong and the fix."""


# --- the architecture family ------------------------------------------------------------------------------------

def _int(low: int, high: int) -> Callable[[object], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and low <= v <= high


def _pair(low: int, high: int) -> Callable[[object], bool]:
    one = _int(low, high)
    return lambda v: one(v) or (isinstance(v, list) and len(v) == 2 and all(one(x) for x in v))


def _float(low: float, high: float) -> Callable[[object], bool]:
    return lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and low <= v <= high


_BOOL = lambda v: isinstance(v, bool)  # noqa: E731
_CH = _int(1, 4096)


@dataclass(frozen=True)
class Layer:
    """One layer type of the family: the torch class and, per argument, its check on the JSON value."""

    cls: type[nn.Module]
    arguments: dict[str, Callable[[object], bool]]
    describe: Callable[[nn.Module], dict]


def _tuple(v):
    return list(v) if isinstance(v, tuple) else v


FAMILY: dict[str, Layer] = {
    "Conv2d": Layer(nn.Conv2d, {"in_channels": _CH, "out_channels": _CH, "kernel_size": _pair(1, 15),
                                "stride": _pair(1, 8), "padding": _pair(0, 15), "dilation": _pair(1, 8),
                                "groups": _int(1, 4096), "bias": _BOOL},
                    lambda m: {"in_channels": m.in_channels, "out_channels": m.out_channels,
                               "kernel_size": _tuple(m.kernel_size), "stride": _tuple(m.stride),
                               "padding": _tuple(m.padding), "dilation": _tuple(m.dilation), "groups": m.groups,
                               "bias": m.bias is not None}),
    "BatchNorm2d": Layer(nn.BatchNorm2d, {"num_features": _CH, "eps": _float(0, 1)},
                         lambda m: {"num_features": m.num_features, "eps": m.eps}),
    "Linear": Layer(nn.Linear, {"in_features": _int(1, 1_000_000), "out_features": _int(1, 100_000), "bias": _BOOL},
                    lambda m: {"in_features": m.in_features, "out_features": m.out_features, "bias": m.bias is not None}),
    "MaxPool2d": Layer(nn.MaxPool2d, {"kernel_size": _pair(1, 15), "stride": _pair(1, 15), "padding": _pair(0, 7)},
                       lambda m: {"kernel_size": _tuple(m.kernel_size), "stride": _tuple(m.stride),
                                  "padding": _tuple(m.padding)}),
    "AvgPool2d": Layer(nn.AvgPool2d, {"kernel_size": _pair(1, 15), "stride": _pair(1, 15), "padding": _pair(0, 7)},
                       lambda m: {"kernel_size": _tuple(m.kernel_size), "stride": _tuple(m.stride),
                                  "padding": _tuple(m.padding)}),
    "AdaptiveAvgPool2d": Layer(nn.AdaptiveAvgPool2d, {"output_size": _pair(1, 64)},
                               lambda m: {"output_size": _tuple(m.output_size)}),
    "Flatten": Layer(nn.Flatten, {"start_dim": _int(1, 1), "end_dim": _int(-1, -1)},
                     lambda m: {"start_dim": m.start_dim, "end_dim": m.end_dim}),
    "Dropout": Layer(nn.Dropout, {"p": _float(0, 1)}, lambda m: {"p": m.p}),
    "Identity": Layer(nn.Identity, {}, lambda m: {}),
    "ReLU": Layer(nn.ReLU, {}, lambda m: {}),
    "ReLU6": Layer(nn.ReLU6, {}, lambda m: {}),
    "LeakyReLU": Layer(nn.LeakyReLU, {"negative_slope": _float(0, 1)}, lambda m: {"negative_slope": m.negative_slope}),
    "GELU": Layer(nn.GELU, {}, lambda m: {}),
    "SiLU": Layer(nn.SiLU, {}, lambda m: {}),
    "Hardswish": Layer(nn.Hardswish, {}, lambda m: {}),
    "Sigmoid": Layer(nn.Sigmoid, {}, lambda m: {}),
    "Tanh": Layer(nn.Tanh, {}, lambda m: {}),
}
_BY_CLASS = {layer.cls: name for name, layer in FAMILY.items()}
FAMILY_WORDS = ", ".join(FAMILY)


def _layers_of(model: nn.Module) -> list[nn.Module]:
    """The model as a list of family layers run in order: an nn.Sequential (nested ones flattened) or a LeNet."""
    if type(model) is LeNet:
        return [model.conv1, nn.ReLU(), model.maxpool, model.conv2, nn.ReLU(), model.maxpool, nn.Flatten(),
                model.fc1, nn.ReLU(), model.fc2, nn.ReLU(), model.fc3]
    if type(model) is nn.Sequential:
        return [layer for child in model for layer in _layers_of(child)]
    if type(model) in _BY_CLASS:
        if isinstance(model, nn.Conv2d) and model.padding_mode != "zeros":
            raise EntryError(f"a Conv2d with padding_mode={model.padding_mode!r} is outside the entry family "
                             "(zero padding only)")
        if isinstance(model, nn.BatchNorm2d) and not (model.affine and model.track_running_stats):
            raise EntryError("a BatchNorm2d without affine parameters or running statistics is outside the entry family")
        return [model]
    raise EntryError(f"a {type(model).__name__} is outside the entry family: an entry is an nn.Sequential of "
                     f"{FAMILY_WORDS} (or a peel_utils.models.LeNet); rebuild the model from those layers")


def as_sequential(model: nn.Module) -> tuple[nn.Sequential, dict[str, str]]:
    """`model` as the nn.Sequential an entry stores (a copy), and each original parameter name's new name."""
    layers = _layers_of(model)
    index = {}
    for i, layer in enumerate(layers):
        index.setdefault(id(layer), i)
    names = {}
    for prefix, module in model.named_modules():
        if id(module) in index and type(module) is not nn.Sequential:
            for name, _ in module.named_parameters(recurse=False):
                names[f"{prefix}.{name}" if prefix else name] = f"{index[id(module)]}.{name}"
    return nn.Sequential(*[copy.deepcopy(layer) for layer in layers]).eval(), names


def describe(model: nn.Module) -> list[dict]:
    """The layers of `model` as data: one dict per layer, its type and its arguments (JSON-ready)."""
    return [{"type": _BY_CLASS[type(layer)], **FAMILY[_BY_CLASS[type(layer)]].describe(layer)}
            for layer in _layers_of(model)]


def build(layers: Sequence[object], where: str = "the architecture") -> nn.Sequential:
    """The nn.Sequential that `layers` (from `describe`) describe, randomly initialised; an unknown layer type,
    argument or value is an EntryError naming it (`where` names the file)."""
    if not isinstance(layers, list) or not layers or len(layers) > 1000:
        raise EntryError(f"{where}: 'layers' must be a list of 1 to 1000 layers")
    built, parameters = [], 0
    for i, spec in enumerate(layers):
        if not isinstance(spec, dict) or spec.get("type") not in FAMILY:
            kind = spec.get("type") if isinstance(spec, dict) else spec
            raise EntryError(f"{where}: layer {i} ({kind!r}) is outside the entry family; the family is {FAMILY_WORDS}")
        layer = FAMILY[spec["type"]]
        arguments = {k: v for k, v in spec.items() if k != "type"}
        unknown = sorted(set(arguments) - set(layer.arguments))
        if unknown:
            raise EntryError(f"{where}: layer {i} ({spec['type']}) has arguments outside the family: {unknown}")
        bad = [k for k, v in arguments.items() if not layer.arguments[k](v)]
        if bad:
            raise EntryError(f"{where}: layer {i} ({spec['type']}) has out-of-range values for {bad}")
        if spec["type"] == "Conv2d" and (arguments["in_channels"] % arguments.get("groups", 1)
                                         or arguments["out_channels"] % arguments.get("groups", 1)):
            raise EntryError(f"{where}: layer {i} (Conv2d): groups must divide in_channels and out_channels")
        if spec["type"] == "Conv2d":
            k = arguments.get("kernel_size", 1)
            size = k * k if isinstance(k, int) else k[0] * k[1]
            parameters += arguments["out_channels"] * arguments["in_channels"] // arguments.get("groups", 1) * size
        elif spec["type"] == "Linear":
            parameters += arguments["in_features"] * arguments["out_features"]
        if parameters > MAX_PARAMETERS:
            raise EntryError(f"{where}: more than {MAX_PARAMETERS:,} parameters, more than any entry may hold")
        built.append(layer.cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in arguments.items()}))
    return nn.Sequential(*built).eval()


MAX_ACTIVATION = 2 ** 25  # values in one layer's output for one image (128 MiB in fp32): no entry needs more


def _pair_of(value) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (value[0], value[1])


def _shapes(layers: list[dict], input_shape: Sequence[int], where: str) -> tuple[int, ...]:
    """Each layer's output shape for one image of `input_shape`, worked out from the description alone (nothing is
    allocated); a layer that does not fit its input, or an output larger than MAX_ACTIVATION, is an EntryError.
    Returns the last layer's output shape."""
    shape = tuple(input_shape)
    for i, spec in enumerate(layers):
        kind, what = spec["type"], f"{where}: layer {i} ({spec['type']})"
        if kind in ("Conv2d", "BatchNorm2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d") and len(shape) != 3:
            raise EntryError(f"{what} needs (channels, height, width) inputs, it gets {shape}")
        if kind == "Conv2d":
            if shape[0] != spec["in_channels"]:
                raise EntryError(f"{what} takes {spec['in_channels']} channels, it gets {shape[0]}")
            k, s, p, d = (_pair_of(spec.get(key, default)) for key, default in
                          (("kernel_size", 1), ("stride", 1), ("padding", 0), ("dilation", 1)))
            shape = (spec["out_channels"], *((shape[j + 1] + 2 * p[j] - d[j] * (k[j] - 1) - 1) // s[j] + 1 for j in (0, 1)))
        elif kind == "BatchNorm2d" and shape[0] != spec["num_features"]:
            raise EntryError(f"{what} normalises {spec['num_features']} channels, it gets {shape[0]}")
        elif kind in ("MaxPool2d", "AvgPool2d"):
            k, p = _pair_of(spec.get("kernel_size", 1)), _pair_of(spec.get("padding", 0))
            s = _pair_of(spec.get("stride") or spec.get("kernel_size", 1))
            if any(2 * p[j] > k[j] for j in (0, 1)):
                raise EntryError(f"{what}: padding must be at most half the kernel size")
            shape = (shape[0], *((shape[j + 1] + 2 * p[j] - k[j]) // s[j] + 1 for j in (0, 1)))
        elif kind == "AdaptiveAvgPool2d":
            shape = (shape[0], *_pair_of(spec["output_size"]))
        elif kind == "Flatten":
            shape = (math.prod(shape),)
        elif kind == "Linear":
            if shape[-1] != spec["in_features"]:
                raise EntryError(f"{what} takes {spec['in_features']} features, it gets {shape[-1]} (input {shape})")
            shape = (*shape[:-1], spec["out_features"])
        if min(shape) < 1:
            raise EntryError(f"{what}: its output would be empty ({shape}): the input is too small for it")
        if math.prod(shape) > MAX_ACTIVATION:
            raise EntryError(f"{what}: its output {shape} holds more than {MAX_ACTIVATION:,} values per image, more "
                             "than any entry may")
    return shape


# --- writing and reading ------------------------------------------------------------------------------------------

def write(model: nn.Module, path: str | Path, input_shape: Sequence[int], *,
          shared: Mapping[str, sharing.SharedLayer] | None = None, bits: int | None = None,
          value_dtype: torch.dtype = torch.float16, class_names: Sequence[str] | None = None,
          about: Mapping[str, str | int | float] | None = None) -> Path:
    """Write `model` as an entry at `path` (atomically); returns the path.

    `model` is an nn.Sequential of the family (`FAMILY`) or a LeNet, taking inputs of `input_shape` (C, H, W).
    Its weights (parameters of more than one dimension) are stored shared: as `shared` gives them (names of
    `model`'s parameters, e.g. from `sharing.share_weights` and `sharing.finetune_centroids`), else shared by
    k-means at `bits` (1-8; zeros kept as positions); with neither, every tensor is stored in `value_dtype`
    (float16 or float32), as are the codebooks, biases and BatchNorm (folded)."""
    sequential, names = as_sequential(model)
    sequential = sequential.cpu()
    shape = [int(v) for v in input_shape]
    if len(shape) != 3 or not all(v >= 1 for v in shape):
        raise ValueError(f"input_shape must be (channels, height, width), not {tuple(input_shape)}")
    with torch.no_grad():
        try:
            out = sequential(torch.zeros(1, *shape))
        except RuntimeError as err:
            raise ValueError(f"the model does not run on inputs of shape {tuple(shape)}: {err}") from None
    if out.dim() != 2:
        raise ValueError(f"the model's output has shape {tuple(out.shape)}; an entry returns (batch, classes) logits")
    folded = dcfile.fold_batchnorm(sequential)
    if shared is not None:
        unknown = sorted(set(shared) - set(names))
        if unknown:
            raise ValueError(f"shared layers {unknown[:3]} are not parameters of the model")
        stored = {names[name]: layer for name, layer in shared.items()}
    elif bits is not None:
        stored = sharing.share_weights(folded, bits, allow_dense=True)
    else:
        stored = {}
    payload = dcfile.pack(folded, stored, value_dtype).payload
    architecture = {"input_shape": shape, "num_classes": int(out.shape[1]), "layers": describe(model),
                    "class_names": [str(c) for c in class_names or []], "about": dict(about or {})}
    text = json.dumps(architecture, separators=(",", ":")).encode()
    path = Path(path)
    atomic_write(path, lambda f: f.write(dcfile.frame(MAGIC, VERSION, [text, payload])))
    return path


@dataclass(frozen=True)
class Entry:
    """An entry read back: the model (eval mode, on the CPU), its input shape (C, H, W), classes and notes."""

    model: nn.Sequential
    input_shape: tuple[int, int, int]
    num_classes: int
    class_names: list[str]
    about: dict

    @property
    def parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())


def _what_it_is(blob: bytes) -> str:
    if blob[:1] == b"\x80" or blob[:2] in (b"(d", b"(l", b"(i", b"cc"):
        return "a Python pickle (nothing in it was run: an entry is data only)"
    if blob[:4] == b"PK\x03\x04":
        return "a zip archive, as torch.save writes (nothing in it was run: an entry is data only)"
    if blob[:len(dcfile.MAGIC)] == dcfile.MAGIC:
        return "notebook 07's compressed state_dict, which has no architecture"
    if not blob:
        return "empty"
    return f"not a PEEL challenge entry (it does not start with {MAGIC!r})"


def load(path: str | Path) -> Entry:
    """The entry at `path` read back: the header, lengths and CRC32 are checked first, then the architecture is
    built from its JSON by this module (only family layers, checked values) and the weights decoded into it.
    Any failure is an EntryError naming the file; nothing in the file is executed."""
    path = Path(path)
    if not path.is_file():
        raise EntryError(f"{path}: no such file; give the path of an entry written by peel_utils.entry.write")
    if path.stat().st_size > MAX_BYTES:
        raise EntryError(f"{path} holds {path.stat().st_size:,} bytes, more than an entry may ({MAX_BYTES:,}); {_FIX}")
    blob = path.read_bytes()
    try:
        text, payload = dcfile.unframe(blob, MAGIC, VERSION, 2)
    except dcfile.FrameError as err:
        raise EntryError({
            "magic": f"{path} is {_what_it_is(blob)}; {_FIX}",
            "version": f"{path} has entry format version {err.found}; this scorer reads version {VERSION}: {_FIX} "
                       "from this version of the workbook",
            "length": f"{path} is truncated or extended: its header says {err.expected:,} bytes after the header, the "
                      f"file holds {err.found:,}; {_FIX}",
            "checksum": f"{path} fails its checksum (CRC32 {err.found:08x}, header says {err.expected:08x}): the file "
                        f"was altered or damaged; {_FIX}"}[err.kind]) from None
    try:
        architecture = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise EntryError(f"{path}: its architecture is not valid JSON ({err}); {_FIX}") from None
    if not isinstance(architecture, dict):
        raise EntryError(f"{path}: its architecture is not a JSON object; {_FIX}")
    shape, classes = architecture.get("input_shape"), architecture.get("num_classes")
    if not (isinstance(shape, list) and len(shape) == 3 and _int(1, 16)(shape[0])
            and all(_int(1, 2048)(v) for v in shape[1:])):
        raise EntryError(f"{path}: input_shape must be [channels, height, width], at most 16 channels and 2048 pixels "
                         f"a side, not {shape!r}; {_FIX}")
    if not _int(2, 100_000)(classes):
        raise EntryError(f"{path}: num_classes must be a whole number of at least 2, not {classes!r}; {_FIX}")
    model = build(architecture.get("layers"), str(path))
    if _shapes(architecture["layers"], shape, str(path)) != (classes,):
        raise EntryError(f"{path}: the model returns shape {_shapes(architecture['layers'], shape, str(path))} per "
                         f"image, not ({classes},) logits; {_FIX}")
    try:
        state = dcfile.decode(payload)
    except (ValueError, KeyError, struct.error, RuntimeError, UnicodeDecodeError, OverflowError) as err:
        raise EntryError(f"{path} passes its checksum but its weights do not decode ({err}); {_FIX}") from None
    expected = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    got = {name: tuple(t.shape) for name, t in state.items()}
    if expected != got:
        wrong = sorted(set(expected.items()) ^ set(got.items()))[:3]
        raise EntryError(f"{path}: its weights do not fit its architecture (first differences: {wrong}); {_FIX}")
    model.load_state_dict({name: t.to(model.state_dict()[name].dtype) for name, t in state.items()})
    try:
        with torch.no_grad():
            out = model(torch.zeros(1, *shape))
    except RuntimeError as err:
        raise EntryError(f"{path}: the model it describes does not run on its input shape {tuple(shape)} "
                         f"({str(err).splitlines()[0]}); {_FIX}") from None
    if tuple(out.shape) != (1, classes):
        raise EntryError(f"{path}: the model returns shape {tuple(out.shape)}, not (1, {classes}) logits; {_FIX}")
    names = architecture.get("class_names") or []
    about = architecture.get("about") or {}
    return Entry(model, tuple(shape), classes, [str(n) for n in names] if isinstance(names, list) else [],
                 about if isinstance(about, dict) else {})


def read(path: str | Path) -> nn.Module:
    """The model stored in the entry at `path`, built from its description (an nn.Sequential in eval mode)."""
    return load(path).model


# --- scoring ----------------------------------------------------------------------------------------------------

@functools.cache
def reference_bytes(num_classes: int) -> int:
    """Bytes of a dense fp32 ResNet50 checkpoint with `num_classes` outputs (`measure.checkpoint_bytes`): the size
    every entry is held against (94,421,503 bytes for 10 classes, about 94.4 MB)."""
    from .measure import checkpoint_bytes
    from .models import resnet50

    return checkpoint_bytes(resnet50(num_classes))


def tier(size_ratio: float, test_accuracy: float, teacher_accuracy: float, tiers: Sequence[int] = TIERS,
         max_drop: float = MAX_DROP) -> str:
    """The tier an entry reaches: the largest of `tiers` (times smaller than dense fp32 ResNet50) that `size_ratio`
    reaches, as '500x', provided `test_accuracy` is at most `max_drop` points below `teacher_accuracy` (both
    fractions, bounds included); 'none' otherwise. Introduced in notebook 08 (its exercise)."""
    if test_accuracy < teacher_accuracy - max_drop / 100 - 1e-9:
        return "none"
    for times in sorted(tiers, reverse=True):
        if size_ratio >= times:
            return f"{times}x"
    return "none"


def _row(student: str, **values) -> dict:
    return {**dict.fromkeys(COLUMNS), "student": student, **values}


def _files_of(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def leaderboard(submissions: str | Path, dataset: str, *, teacher_accuracy: float | None, data_root: str | Path = "data",
                max_images: int | None = None, split_seed: int = 0, threads: int = 1, rounds: int = 3,
                repeats: int = 5) -> pd.DataFrame:
    """Score every student of `submissions` (one subfolder each, holding one entry) on `dataset`'s test split.

    One row per student (`COLUMNS`): `ok` with the entry's bytes, size ratio, parameters, test accuracy (a
    fraction), batch-1 latency (ms, the median of `measure.interleaved_timings`' rounds at `threads` threads) and
    tier; `missing` for an empty folder; `refused` for two files, a file that is not an entry (a pickle, another
    format, truncated, altered, outside the family) or one that does not fit the test set, with the message
    naming the file and what is wrong. One bad entry never stops the others; nothing in an entry is executed.
    The test set is loaded in each entry's own input shape (`data.load_dataset`, channels and image size from
    the entry's header). Rows are sorted: scored first, by tier, then fewer bytes, higher accuracy, lower latency.
    `teacher_accuracy` None leaves the tiers 'n/a'."""
    from . import compare, data, measure

    submissions = Path(submissions)
    if not submissions.is_dir():
        raise FileNotFoundError(f"no submissions folder at {submissions}: give a folder with one subfolder per student")
    rows, models, test_sets = [], {}, {}
    for folder in tqdm(sorted(p for p in submissions.iterdir() if p.is_dir() and not p.name.startswith(".")),
                       desc="entries"):
        files = _files_of(folder)
        if not files:
            rows.append(_row(folder.name, status="missing", message=f"{folder} is empty: no entry submitted"))
            continue
        if len(files) > 1:
            rows.append(_row(folder.name, file=", ".join(p.name for p in files), status="refused",
                             message=f"{folder} holds {len(files)} files ({', '.join(p.name for p in files)}): an "
                                     "entry is one file; keep only the entry"))
            continue
        path = files[0]
        base = {"file": path.name}
        if path.is_symlink() or not path.is_file():
            rows.append(_row(folder.name, **base, status="refused",
                             message=f"{path} is not a regular file (a link or a folder); submit the entry file itself"))
            continue
        try:
            entry = load(path)
            channels, height, width = entry.input_shape
            if channels not in (1, 3) or height != width or height < 8:
                raise EntryError(f"{path}: input shape {entry.input_shape}: the test set is loaded with 1 or 3 "
                                 "channels and square images of at least 8 pixels; write the entry for such inputs")
            if (channels, height) not in test_sets:
                splits = data.load_dataset(dataset, data_root, channels=channels, image_size=height,
                                           max_images=max_images, split_seed=split_seed)
                test_sets[channels, height] = (splits, data.make_loaders(splits, 256).test)
            splits, loader = test_sets[channels, height]
            if entry.num_classes != splits.num_classes:
                raise EntryError(f"{path}: the entry has {entry.num_classes} classes, the test set "
                                 f"{splits.num_classes}; write it for the challenge's classes")
        except EntryError as err:
            rows.append(_row(folder.name, **base, status="refused", message=str(err)))
            continue
        size = path.stat().st_size
        accuracy = float(compare.correct(entry.model, loader).float().mean())
        ratio = reference_bytes(splits.num_classes) / size
        rows.append(_row(folder.name, **base, bytes=size, size_ratio=ratio, parameters=entry.parameters,
                         test_accuracy=accuracy, status="ok", message="",
                         tier="n/a" if teacher_accuracy is None else tier(ratio, accuracy, teacher_accuracy)))
        models.setdefault(entry.input_shape, {})[folder.name] = entry.model
    latency = {}
    for shape, group in models.items():
        runs = measure.interleaved_timings(group, shape, (1,), rounds=rounds, repeats=repeats, threads=threads)
        latency.update(measure.latency_table(runs).set_index("model")["latency_ms"].to_dict())
    table = pd.DataFrame(rows, columns=COLUMNS)
    table["latency_b1_ms"] = table["student"].map(latency)
    table[["bytes", "parameters"]] = table[["bytes", "parameters"]].astype("Int64")  # whole numbers, blank when unscored
    rank = {f"{t}x": i for i, t in enumerate(sorted(TIERS, reverse=True))}
    table["_status"] = (table["status"] != "ok").astype(int)
    table["_tier"] = table["tier"].map(rank).fillna(len(rank))
    table["_accuracy"] = -table["test_accuracy"].astype(float)
    table = table.sort_values(["_status", "_tier", "bytes", "_accuracy", "latency_b1_ms", "student"], na_position="last")
    return table.drop(columns=["_status", "_tier", "_accuracy"]).reset_index(drop=True)


def plot_leaderboard(table: pd.DataFrame, teacher_accuracy: float | None, tiers: Sequence[int] = TIERS,
                     max_drop: float = MAX_DROP):
    """The scored entries of `leaderboard`'s table: size ratio (log) against test accuracy (a fraction, read in
    percent), one labelled point per student, the tiers' ratios as vertical lines and the teacher's accuracy less
    `max_drop` points as a horizontal one. Returns the figure."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import PercentFormatter

    scored = table[table["status"] == "ok"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for _, row in scored.iterrows():
        ax.scatter(row.size_ratio, row.test_accuracy, color="tab:blue")
        ax.annotate(str(row.student), (row.size_ratio, row.test_accuracy), xytext=(4, 4),
                    textcoords="offset points", fontsize=8)
    for times in tiers:
        ax.axvline(times, color="grey", linestyle=":", linewidth=1)
        ax.annotate(f"{times}x tier", (times, 0.98), xycoords=("data", "axes fraction"), rotation=90, fontsize=7,
                    xytext=(2, 0), textcoords="offset points", va="top")
    accuracies = [float(a) for a in scored["test_accuracy"]]
    if teacher_accuracy is not None:
        ax.axhline(teacher_accuracy - max_drop / 100, color="tab:red", linestyle="--", linewidth=1,
                   label=f"teacher's accuracy - {max_drop:g} point")
        ax.legend(loc="lower right", fontsize=8)
        accuracies += [teacher_accuracy - max_drop / 100]
    if accuracies:
        ax.set_ylim(min(accuracies) - 0.015, min(1.005, max(accuracies) + 0.015))
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1))
    ratios = list(scored["size_ratio"].astype(float)) + list(tiers)
    ax.set_xscale("log")
    ax.set_xlim(min(ratios) / 2, max(ratios) * 2)
    ax.set(xlabel="size ratio: dense fp32 ResNet50 bytes / entry bytes (x, log scale)", ylabel="test accuracy",
           title=f"Compression challenge: {len(scored)} scored entr{'y' if len(scored) == 1 else 'ies'}")
    fig.tight_layout()
    return fig


def write_leaderboard(table: pd.DataFrame, out: str | Path, teacher_accuracy: float | None) -> tuple[Path, Path]:
    """Write `leaderboard.csv` (exactly `COLUMNS`) and `leaderboard.png` into `out`, atomically; their paths."""
    import matplotlib.pyplot as plt

    out = Path(out)
    csv_path, png_path = out / "leaderboard.csv", out / "leaderboard.png"
    atomic_write(csv_path, lambda f: f.write(table[COLUMNS].to_csv(index=False).encode()))
    fig = plot_leaderboard(table, teacher_accuracy)
    atomic_write(png_path, lambda f: fig.savefig(f, format="png", dpi=120))
    plt.close(fig)
    return csv_path, png_path
