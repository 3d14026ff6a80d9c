"""Every on-disk form of a model beyond the plain checkpoint, and what each costs in bytes.

A dense checkpoint stores every zero (pruning leaves its size unchanged). The bitmask layout stores a
tensor as a bitmask (1 bit per entry: non-zero or not) plus its non-zero values, whenever that is
smaller than the dense tensor. `save_sparse` / `load_sparse` write float state_dicts that way
(notebook 02); `int8_state_dict` / `load_int8_state_dict` store every weight as int8 with one fp32
scale per output channel, in the same layout when sparse (notebook 06). `payload_bytes` and
`compressed_bytes` measure the result.
"""

from __future__ import annotations

import lzma
import zlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn as nn

from .checkpoints import read_state_dict, save_checkpoint

BITS_SUFFIX, VALUES_SUFFIX, SHAPE_SUFFIX = "::bits", "::values", "::shape"
SCALE_SUFFIX, INT8_SUFFIX = "::scale", "::int8"
_PACKED = (BITS_SUFFIX, VALUES_SUFFIX, SHAPE_SUFFIX)
def pack_bits(mask: torch.Tensor) -> torch.Tensor:
    """A bool tensor as uint8 bytes, 8 entries per byte (row-major, first entry in the highest bit, zero-padded):
    (ceil(numel/8),). numpy's packbits, the one bit packer of the workbook (huffman's codes use it too)."""
    return torch.from_numpy(np.packbits(mask.reshape(-1).cpu().numpy().astype(bool)))


def unpack_bits(bits: torch.Tensor, numel: int) -> torch.Tensor:
    """The inverse of pack_bits: the first `numel` bits of `bits` as a flat bool tensor."""
    return torch.from_numpy(np.unpackbits(bits.cpu().numpy().astype(np.uint8), count=numel).astype(bool))


def _packs_smaller(tensor: torch.Tensor) -> bool:
    """Whether the bitmask (numel/8 bytes, the index overhead) plus the non-zero values take fewer
    bytes than the dense tensor."""
    element = tensor.element_size()
    return -(-tensor.numel() // 8) + int(tensor.count_nonzero()) * element < tensor.numel() * element


def _pack(name: str, tensor: torch.Tensor) -> dict[str, torch.Tensor]:
    """`tensor` in the bitmask layout: the entries `name::bits`, `name::values`, `name::shape`."""
    mask = tensor != 0
    return {name + BITS_SUFFIX: pack_bits(mask),
            name + VALUES_SUFFIX: tensor[mask],                         # (nonzero,) row-major order
            name + SHAPE_SUFFIX: torch.tensor(tensor.shape, dtype=torch.int64)}


def _unpack(stored: Mapping[str, torch.Tensor], name: str) -> torch.Tensor:
    """The dense tensor `name` back from its bitmask-layout entries in `stored`."""
    shape = torch.Size(stored[name + SHAPE_SUFFIX].tolist())
    values = stored[name + VALUES_SUFFIX]
    mask = unpack_bits(stored[name + BITS_SUFFIX], shape.numel())
    return values.new_zeros(shape.numel()).masked_scatter_(mask, values).view(shape)


def _state_dict(model_or_state_dict: nn.Module | Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    state = (model_or_state_dict.state_dict() if isinstance(model_or_state_dict, nn.Module)
             else dict(model_or_state_dict))
    attached = sorted(k for k in state if k.endswith(("_orig", "_mask")))
    if attached:
        raise ValueError(f"the state_dict still holds torch.nn.utils.prune's reparametrisation "
                         f"({', '.join(attached[:3])}{', ...' if len(attached) > 3 else ''}); "
                         "call prune.remove(module, 'weight') on each pruned module first "
                         "(peel_utils.sweep.make_permanent(model) does it for the whole model)")
    return {k: v.detach().cpu() for k, v in state.items()}


def save_sparse(model_or_state_dict: nn.Module | Mapping[str, torch.Tensor], path: str | Path,
                half: bool = False) -> Path:
    """Write a state_dict to `path` in bitmask + non-zero-values form, atomically; return the path.

    Each floating-point tensor is stored sparse when its bitmask (numel/8 bytes, the index
    overhead) plus its non-zero values take fewer bytes than the dense tensor, dense otherwise.
    half stores every floating-point value in fp16 (loads back as fp16). A state_dict with
    prune's weight_orig/weight_mask still attached raises ValueError. Introduced in notebook 02.
    """
    out: dict[str, torch.Tensor] = {}
    for name, tensor in _state_dict(model_or_state_dict).items():
        if name.endswith(_PACKED):
            raise ValueError(f"state_dict key {name!r} ends with a suffix save_sparse reserves")
        if half and tensor.is_floating_point():
            tensor = tensor.half()
        if tensor.is_floating_point() and tensor.dim() > 0 and _packs_smaller(tensor):
            out.update(_pack(name, tensor))
        else:
            out[name] = tensor
    return save_checkpoint(out, path)


def load_sparse(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a save_sparse file back into a dense state_dict (checkpoints.read_state_dict: weights_only=True,
    CheckpointError naming the file when it is damaged or holds anything but tensors)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no sparse checkpoint at {path}")
    stored = read_state_dict(path)
    state: dict[str, torch.Tensor] = {}
    for key, tensor in stored.items():
        if key.endswith(BITS_SUFFIX):
            state[key[: -len(BITS_SUFFIX)]] = _unpack(stored, key[: -len(BITS_SUFFIX)])
        elif not key.endswith(_PACKED):
            state[key] = tensor
    return state


def quantize_weight(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric int8 per output channel: (int8 values (same shape), fp32 scales (out,)).

    scale = max |w| of the channel / 127 (1 for an all-zero channel), q = round(w / scale): the
    symmetric per-channel scheme of X86InductorQuantizer's weights (whose observer divides by 127.5
    and keeps every scale above 2**-12; notebook 06, Step 4); zeros stay exactly zero.
    """
    flat = weight.detach().float().reshape(weight.shape[0], -1)         # (out, in * k * k)
    scale = flat.abs().amax(dim=1) / 127
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))       # (out,)
    q = torch.round(flat / scale[:, None]).clamp(-127, 127).to(torch.int8)
    return q.reshape(weight.shape), scale


def int8_state_dict(model_or_state_dict: nn.Module | Mapping[str, torch.Tensor],
                    sparse: bool = True) -> dict[str, torch.Tensor]:
    """A state_dict to store: every conv / linear weight (2+ dims) as int8 plus its per-channel scales.

    sparse=True stores an int8 weight in the bitmask layout (as save_sparse does) whenever that is
    smaller than the dense int8 tensor. Everything else (biases, BatchNorm) stays fp32: under 1% of
    a ResNet's parameters. `load_int8_state_dict` turns it back into a float state_dict. As for
    save_sparse, prune's weight_orig/weight_mask still attached raise ValueError. Introduced in notebook 06.
    """
    out: dict[str, torch.Tensor] = {}
    for name, tensor in _state_dict(model_or_state_dict).items():
        if not (tensor.is_floating_point() and tensor.dim() >= 2):
            out[name] = tensor
            continue
        q, scale = quantize_weight(tensor)
        out[name + SCALE_SUFFIX] = scale
        if sparse and _packs_smaller(q):
            out.update(_pack(name, q))
        else:
            out[name + INT8_SUFFIX] = q
    return out


def load_int8_state_dict(stored: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The float state_dict back from `int8_state_dict`'s output (weights = int8 values * scales)."""
    state: dict[str, torch.Tensor] = {}
    for key, tensor in stored.items():
        if key.endswith(SCALE_SUFFIX):
            name = key[: -len(SCALE_SUFFIX)]
            q = stored[name + INT8_SUFFIX] if name + INT8_SUFFIX in stored else _unpack(stored, name)
            state[name] = q.float() * tensor.view(-1, *[1] * (q.dim() - 1))
        elif not key.endswith((INT8_SUFFIX, *_PACKED)):
            state[key] = tensor
    return state


def payload_bytes(state: Mapping[str, torch.Tensor]) -> int:
    """Bytes of the tensors' data alone (numel * element size, summed): a file adds a few KB of
    zip headers and key names on top (measure files for the honest figure)."""
    return sum(t.numel() * t.element_size() for t in state.values())


def compressed_bytes(path: str | Path, method: str = "lzma") -> int:
    """Bytes of the file at `path` after a general-purpose compressor ('lzma' preset 6 or 'zlib' level 9).

    Compressors find what the format leaves: repeated int8 values, the bitmask's runs of zeros.
    """
    if method not in ("lzma", "zlib"):
        raise ValueError(f"unknown compressor {method!r}; use 'lzma' or 'zlib'")
    data = Path(path).read_bytes()
    return len(lzma.compress(data, preset=6) if method == "lzma" else zlib.compress(data, 9))


def compression_rate(original_bytes: int, compressed_bytes: int) -> float:
    """Source 000's compression rate: (original - compressed) / original."""
    if original_bytes <= 0:
        raise ValueError(f"original_bytes must be positive, not {original_bytes}")
    return (original_bytes - compressed_bytes) / original_bytes


def storage_table(sizes: Mapping[str, int | str | Path], original: str | None = None) -> pd.DataFrame:
    """One row per stored form: bytes on disk and compression rate against `original`.

    sizes maps a label to a byte count or a file path (its size is read); original names the
    reference row (default: the first).
    """
    if not sizes:
        raise ValueError("sizes is empty; give at least the original checkpoint")
    counts = {label: value if isinstance(value, int) else Path(value).stat().st_size
              for label, value in sizes.items()}
    original = next(iter(counts)) if original is None else original
    if original not in counts:
        raise ValueError(f"original {original!r} is not one of {list(counts)}")
    return pd.DataFrame([{"form": label, "bytes": count, "MB": round(count / 1e6, 2),
                          "compression_rate": round(compression_rate(counts[original], count), 4)}
                         for label, count in counts.items()])
