"""Sparse storage: what unstructured pruning buys on disk once the zeros are not written.

A dense checkpoint stores every zero (pruning leaves its size unchanged). `save_sparse` stores each
weight as a bitmask (1 bit per entry: non-zero or not) plus its non-zero values, whenever that is
smaller than the dense tensor; `load_sparse` rebuilds the dense state_dict.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import torch
import torch.nn as nn

from .checkpoints import save_checkpoint

BITS_SUFFIX, VALUES_SUFFIX, SHAPE_SUFFIX = "::bits", "::values", "::shape"
_BIT_WEIGHTS = torch.tensor([128, 64, 32, 16, 8, 4, 2, 1], dtype=torch.uint8)


def pack_bits(mask: torch.Tensor) -> torch.Tensor:
    """A bool tensor as uint8 bytes, 8 entries per byte (row-major, zero-padded): (ceil(numel/8),)."""
    flat = mask.reshape(-1).to(torch.uint8)
    flat = torch.cat([flat, flat.new_zeros(-flat.numel() % 8)])
    return (flat.view(-1, 8) * _BIT_WEIGHTS).sum(dim=1, dtype=torch.uint8)


def unpack_bits(bits: torch.Tensor, numel: int) -> torch.Tensor:
    """The inverse of pack_bits: the first `numel` bits of `bits` as a flat bool tensor."""
    return (bits.unsqueeze(1) & _BIT_WEIGHTS).ne(0).reshape(-1)[:numel]


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
        if any(name.endswith(s) for s in (BITS_SUFFIX, VALUES_SUFFIX, SHAPE_SUFFIX)):
            raise ValueError(f"state_dict key {name!r} ends with a suffix save_sparse reserves")
        if half and tensor.is_floating_point():
            tensor = tensor.half()
        element = tensor.element_size()
        nonzero = int(tensor.count_nonzero())
        sparse_bytes = -(-tensor.numel() // 8) + nonzero * element
        if tensor.is_floating_point() and tensor.dim() > 0 and sparse_bytes < tensor.numel() * element:
            mask = tensor != 0
            out[name + BITS_SUFFIX] = pack_bits(mask)
            out[name + VALUES_SUFFIX] = tensor[mask]  # (nonzero,) row-major order
            out[name + SHAPE_SUFFIX] = torch.tensor(tensor.shape, dtype=torch.int64)
        else:
            out[name] = tensor
    return save_checkpoint(out, path)


def load_sparse(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a save_sparse file (torch.load weights_only=True) back into a dense state_dict."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no sparse checkpoint at {path}")
    stored = torch.load(path, map_location="cpu", weights_only=True)
    state: dict[str, torch.Tensor] = {}
    for key, tensor in stored.items():
        if key.endswith(BITS_SUFFIX):
            name = key[: -len(BITS_SUFFIX)]
            shape = torch.Size(stored[name + SHAPE_SUFFIX].tolist())
            values = stored[name + VALUES_SUFFIX]
            mask = unpack_bits(tensor, shape.numel())
            state[name] = values.new_zeros(shape.numel()).masked_scatter_(mask, values).view(shape)
        elif not key.endswith((VALUES_SUFFIX, SHAPE_SUFFIX)):
            state[key] = tensor
    return state


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
