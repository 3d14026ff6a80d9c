"""The Deep Compression file: a pruned, weight-shared model with its index streams Huffman-coded.

Layout (little-endian): the workbook's file frame (`frame`, shared with the challenge entry), a 16-byte header of
`MAGIC` (6 bytes), the format version (uint16), the payload's length (uint32) and its CRC32 (uint32); then the
payload, one record per state_dict entry, in order:

- name (uint8 length + UTF-8), kind (uint8: 0 raw, 1 shared, 2 constant), ndim (uint8), each dim (uint32);
- raw (biases, BatchNorm, integer counters): dtype code (uint8) and the values;
- constant (a tensor of one repeated value, such as folded BatchNorm statistics): dtype code and the value,
  float32 for floating-point tensors;
- shared: bits (uint8), the codebook (2**bits values, dtype code first), how the positions are coded
  (uint8: 0 bitmask bytes, 1 relative indices, 2 none: every weight is non-zero) and the relative indices'
  span bits (uint8), then two Huffman streams, positions (absent when there are none) and centroid indices.
  A stream is its code table, count (uint16) and (symbol, length) pairs of uint8, then its symbol count and
  bit count (uint32 each) and its bytes.

`pack` chooses, per layer, the smaller position coding (the bitmask's bytes or relative indices with the
best span, tables included) and returns the payload with a table of where the bytes go; `write` adds the
header and writes atomically; `read` checks the header and the checksum before decoding anything, and a
damaged file raises `CompressedFileError` naming it: nothing is half-loaded. `fold_batchnorm` turns each
BatchNorm's four vectors into two that the file stores (scale and shift; the statistics become constants).
Introduced in notebook 07.
"""

from __future__ import annotations

import copy
import struct
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn as nn

from . import huffman, positions
from .checkpoints import atomic_write
from .sharing import SharedLayer

MAGIC = b"PEELDC"
VERSION = 1
DTYPES = {0: torch.float32, 1: torch.float16, 2: torch.bfloat16, 3: torch.int64, 4: torch.int32, 5: torch.uint8}
DTYPE_CODES = {dtype: code for code, dtype in DTYPES.items()}
BITMASK, RELATIVE, DENSE = 0, 1, 2
SPANS = range(1, 9)


class CompressedFileError(ValueError):
    """A compressed model file that cannot be read back whole; the message names the file and the fix."""


class FrameError(ValueError):
    """A blob whose frame does not check out: `kind` is the first failed check ("magic", "version", "length" or
    "checksum"), `found` and `expected` its numbers (the version; the bytes after the header; the CRC32)."""

    def __init__(self, kind: str, found: int = 0, expected: int = 0):
        super().__init__(f"{kind}: found {found}, expected {expected}")
        self.kind, self.found, self.expected = kind, found, expected


def frame(magic: bytes, version: int, parts: Sequence[bytes]) -> bytes:
    """The workbook's one file frame (this file and the challenge entry): `magic`, the format version (uint16),
    each part's length (uint32), the CRC32 of the parts together (uint32), little-endian; then the parts."""
    body = b"".join(parts)
    return struct.pack(f"<{len(magic)}sH{len(parts)}II", magic, version, *map(len, parts), zlib.crc32(body)) + body


def unframe(blob: bytes, magic: bytes, version: int, count: int) -> list[bytes]:
    """The `count` parts of a blob `frame` wrote, after checking, in this order, its magic, its version, that the
    lengths in its header add up to the bytes after it, and its checksum; the first check that fails raises
    FrameError (nothing is decoded before all pass)."""
    header = struct.Struct(f"<{len(magic)}sH{count}II")
    if len(blob) < header.size or blob[:len(magic)] != magic:
        raise FrameError("magic")
    _, found_version, *lengths, crc = header.unpack(blob[:header.size])
    if found_version != version:
        raise FrameError("version", found_version, version)
    body = blob[header.size:]
    if len(body) != sum(lengths):
        raise FrameError("length", len(body), sum(lengths))
    if zlib.crc32(body) != crc:
        raise FrameError("checksum", zlib.crc32(body), crc)
    ends = np.cumsum([0, *lengths]).tolist()
    return [body[start:end] for start, end in zip(ends, ends[1:])]


@dataclass(frozen=True)
class Stream:
    """Symbols Huffman-coded: the code lengths, the coded bytes, and how many symbols and bits."""

    lengths: dict[int, int]
    data: bytes
    count: int
    nbits: int

    @classmethod
    def of(cls, symbols: np.ndarray) -> Stream:
        lengths = huffman.code_lengths(huffman.counts_of(symbols))
        data, nbits = huffman.encode(symbols, lengths)
        return cls(lengths, data, len(symbols), nbits)

    def to_bytes(self) -> bytes:
        table = struct.pack("<H", len(self.lengths)) + b"".join(
            struct.pack("<BB", symbol, length) for symbol, length in sorted(self.lengths.items()))
        return table + struct.pack("<II", self.count, self.nbits) + self.data

    def symbols(self) -> np.ndarray:
        return huffman.decode(self.data, self.nbits, self.count, self.lengths)


def coded_bytes(symbols: np.ndarray) -> int:
    """Bytes of `symbols` as a Stream (table included), without encoding them."""
    counts = huffman.counts_of(symbols)
    return 2 + 2 * len(counts) + 8 + -(-huffman.total_bits(counts, huffman.code_lengths(counts)) // 8)


def position_options(mask: torch.Tensor) -> dict[str, int]:
    """Bytes of each way to code `mask`'s positions: 'bitmask' and 'relative <span> bits' for each span."""
    options = {"bitmask": coded_bytes(positions.bitmask_symbols(mask))}
    for span in SPANS:
        options[f"relative {span} bits"] = coded_bytes(positions.relative_symbols(mask, span))
    return options


def _values(tensor: torch.Tensor, dtype: torch.dtype) -> bytes:
    return struct.pack("<B", DTYPE_CODES[dtype]) + tensor.detach().cpu().to(dtype).reshape(-1).contiguous().view(torch.uint8) \
        .numpy().tobytes()


def _shared_record(layer: SharedLayer, value_dtype: torch.dtype) -> tuple[bytes, dict]:
    values, codebook = Stream.of(layer.indices.numpy().astype(np.int64)), _values(layer.codebook, value_dtype)
    row = {"index_bytes": len(values.to_bytes()), "codebook_bytes": len(codebook)}
    if bool(layer.mask.all()):  # a dense layer: no positions to store
        record = struct.pack("<B", layer.bits) + codebook + struct.pack("<BB", DENSE, 0) + values.to_bytes()
        return record, {"positions": "none (dense)", "position_bytes": 0, **row}
    options = position_options(layer.mask)
    best = min(options, key=options.get)
    if best == "bitmask":
        kind, span, symbols = BITMASK, 0, positions.bitmask_symbols(layer.mask)
    else:
        kind, span = RELATIVE, int(best.split()[1])
        symbols = positions.relative_symbols(layer.mask, span)
    where = Stream.of(symbols)
    record = struct.pack("<B", layer.bits) + codebook + struct.pack("<BB", kind, span) + where.to_bytes() \
        + values.to_bytes()
    return record, {"positions": best, "position_bytes": len(where.to_bytes()), **row,
                    "bitmask_coded_bytes": options["bitmask"],
                    "relative_coded_bytes": min(v for k, v in options.items() if k != "bitmask")}


@dataclass(frozen=True)
class Packed:
    """A model's payload and, per state_dict entry, where its bytes go (`table`)."""

    payload: bytes
    table: pd.DataFrame

    @property
    def file_bytes(self) -> int:
        return len(frame(MAGIC, VERSION, [self.payload]))  # the payload and its 16-byte header


def pack(model: nn.Module | Mapping[str, torch.Tensor], shared: Mapping[str, SharedLayer],
         value_dtype: torch.dtype = torch.float16) -> Packed:
    """The payload of the file for `model`'s state_dict, with the weights in `shared` stored shared.

    Raw floating-point tensors and the codebooks are stored in `value_dtype` (float16 or float32; the
    model read back then holds those values), integer tensors as they are."""
    if value_dtype not in (torch.float16, torch.float32):
        raise ValueError(f"value_dtype must be torch.float16 or torch.float32, not {value_dtype}")
    state = model.state_dict() if isinstance(model, nn.Module) else dict(model)
    unknown = sorted(set(shared) - set(state))
    if unknown:
        raise ValueError(f"shared layers {unknown[:3]} are not in the model's state_dict")
    parts, rows = [struct.pack("<I", len(state))], []
    for name, tensor in state.items():
        encoded, constant = name.encode(), False
        head = struct.pack("<B", len(encoded)) + encoded
        if name in shared:
            if tuple(shared[name].mask.shape) != tuple(tensor.shape):
                raise ValueError(f"{name}: shared layer of shape {tuple(shared[name].mask.shape)}, "
                                 f"weight of shape {tuple(tensor.shape)}")
            body, row = _shared_record(shared[name], value_dtype)
            head += struct.pack("<BB", 1, tensor.dim())
        else:
            dtype = value_dtype if tensor.is_floating_point() else tensor.dtype
            if dtype not in DTYPE_CODES:
                raise ValueError(f"{name}: cannot store dtype {tensor.dtype}")
            flat = tensor.detach().reshape(-1)
            constant = flat.numel() > 1 and bool((flat == flat[0]).all())
            if constant:
                body = _values(flat[:1], torch.float32 if tensor.is_floating_point() else dtype)
            else:
                body = _values(tensor, dtype)
            row = {}
            head += struct.pack("<BB", 2 if constant else 0, tensor.dim())
        head += struct.pack(f"<{tensor.dim()}I", *tensor.shape)
        parts.append(head + body)
        kind = "shared" if name in shared else "constant" if constant else "raw"
        rows.append({"name": name, "kind": kind, "numel": tensor.numel(),
                     "bytes": len(head) + len(body), **row})
    return Packed(b"".join(parts), pd.DataFrame(rows))


@torch.no_grad()
def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of `model` whose BatchNorm layers (in eval mode) hold their statistics in their scale and shift:
    weight' = weight / sqrt(var + eps), bias' = bias - mean * weight', mean 0 and var 1 - eps. The copy computes
    the same function; its statistics are constants, which `pack` stores as one value each."""
    folded = copy.deepcopy(model)
    for module in folded.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.track_running_stats and module.affine:
            scale = module.weight / torch.sqrt(module.running_var + module.eps)
            module.bias.copy_(module.bias - module.running_mean * scale)
            module.weight.copy_(scale)
            module.running_mean.zero_()
            module.running_var.fill_(1 - module.eps)
    return folded


def write(path: str | Path, packed: Packed) -> Path:
    """Write `packed` framed (magic, version, length, CRC32: `frame`), atomically; returns the path."""
    path = Path(path)
    atomic_write(path, lambda f: f.write(frame(MAGIC, VERSION, [packed.payload])))
    return path


class _Reader:
    """Reads the payload field by field; running past its end is an error (a field is missing)."""

    def __init__(self, payload: bytes):
        self.payload, self.at = payload, 0

    def take(self, size: int) -> bytes:
        if self.at + size > len(self.payload):
            raise ValueError(f"a field runs past the payload's end (byte {self.at} + {size})")
        chunk = self.payload[self.at:self.at + size]
        self.at += size
        return chunk

    def unpack(self, fmt: str) -> tuple:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))

    def tensor(self, shape: tuple[int, ...]) -> torch.Tensor:
        dtype = DTYPES[self.unpack("<B")[0]]
        numel = int(np.prod(shape)) if shape else 1
        raw = bytearray(self.take(numel * torch.empty(0, dtype=dtype).element_size()))
        values = torch.frombuffer(raw, dtype=dtype) if raw else torch.zeros(0, dtype=dtype)
        return (values.float() if values.is_floating_point() else values).reshape(shape)

    def stream(self) -> Stream:
        (n,) = self.unpack("<H")
        lengths = dict(struct.unpack("<BB", self.take(2)) for _ in range(n))
        count, nbits = self.unpack("<II")
        return Stream(lengths, self.take(-(-nbits // 8)), count, nbits)


def decode(payload: bytes) -> dict[str, torch.Tensor]:
    """The state_dict a payload of `pack` holds (no frame); a malformed payload raises ValueError, KeyError,
    struct.error or RuntimeError, which `read` and the challenge entry turn into their own errors."""
    reader, state = _Reader(payload), {}
    (entries,) = reader.unpack("<I")
    for _ in range(entries):
        (size,) = reader.unpack("<B")
        name = reader.take(size).decode()
        kind, ndim = reader.unpack("<BB")
        shape = reader.unpack(f"<{ndim}I")
        if kind == 0:
            state[name] = reader.tensor(shape)
            continue
        if kind == 2:
            state[name] = reader.tensor((1,)).expand(shape).clone()
            continue
        (bits,) = reader.unpack("<B")
        codebook = reader.tensor((2 ** bits,))
        how, span = reader.unpack("<BB")
        if how == DENSE:
            mask = torch.ones(shape, dtype=torch.bool)
        elif how in (BITMASK, RELATIVE):
            symbols = reader.stream().symbols()
            mask = positions.mask_from_bitmask(symbols, shape) if how == BITMASK else \
                positions.mask_from_relative(symbols, span, shape)
        else:
            raise ValueError(f"{name}: unknown position coding {how}")
        values = reader.stream()
        indices = torch.from_numpy(values.symbols())
        if len(indices) != int(mask.sum()):
            raise ValueError(f"{name}: {len(indices)} indices for {int(mask.sum())} non-zeros")
        state[name] = SharedLayer(mask, codebook, indices.to(torch.uint8), bits).weight()
    if reader.at != len(payload):
        raise ValueError(f"{len(payload) - reader.at} bytes are left after the last entry")
    return state


def read(path: str | Path) -> dict[str, torch.Tensor]:
    """The state_dict stored in the file at `path` (floating-point tensors as float32).

    Header, length and checksum are checked before anything is decoded; a file that fails any check or
    does not decode raises CompressedFileError naming the file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no compressed model file at {path}")
    again = "write it again with peel_utils.dcfile.write"
    try:
        (payload,) = unframe(path.read_bytes(), MAGIC, VERSION, 1)
    except FrameError as err:
        raise CompressedFileError({
            "magic": f"{path} is not a compressed model file (it does not start with {MAGIC!r})",
            "version": f"{path} has format version {err.found}; this reader reads version {VERSION}: {again} from "
                       "this version's model",
            "length": f"{path} is truncated or extended: its header says {err.expected} payload bytes, the file holds "
                      f"{err.found}; {again}",
            "checksum": f"{path} fails its checksum (CRC32 {err.found:08x}, header says {err.expected:08x}): the file "
                        f"was altered or damaged; {again}"}[err.kind]) from None
    try:
        return decode(payload)
    except (ValueError, KeyError, struct.error, RuntimeError, UnicodeDecodeError) as err:
        raise CompressedFileError(f"{path} passes its checksum but does not decode ({err}); {again}") from None
