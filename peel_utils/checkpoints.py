"""Checkpoints as state_dicts only: written atomically, read with weights_only=True.

Each checkpoint `x.pt` may have a `x.json` beside it with the metadata needed to rebuild the
model (architecture, classes) and the parameters it was trained with, so a notebook can reuse
a checkpoint only when it was made with the same parameters.
"""

from __future__ import annotations

import json
import os
import pickle
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import BinaryIO

import torch
import torch.nn as nn


class CheckpointMismatchError(ValueError):
    """A checkpoint does not fit the model it is loaded into; the message names the mismatch."""


class CheckpointError(ValueError):
    """A checkpoint or its .json record cannot be read or written; the message names the file (or
    the record's key), what is wrong with it and what to do."""


_RECREATE = "re-create it by re-running the notebook that writes it"


def atomic_write(path: str | Path, write: Callable[[BinaryIO], object]) -> None:
    """Write a file through `write(f)` (f: a binary file) so that `path` is either its old self or
    complete: the bytes go to a temporary file beside it, renamed over `path` once written. A crash
    midway leaves no partial file. Introduced in notebook 01 (checkpoints), also used for tables."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; give the usual permissions
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _unwritable(value: object, where: str = "meta") -> tuple[str, object] | None:
    """The first entry of a record that JSON cannot write, as (its path, e.g. meta['epochs'], its
    value); None when every entry is a str, int, float, bool, None, list, tuple or str-keyed dict
    (np.int64 and np.float32 are not: json.dumps refuses them)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{where} key {key!r}", key
            found = _unwritable(item, f"{where}[{key!r}]")
            if found:
                return found
        return None
    if isinstance(value, (list, tuple)):
        return next(filter(None, (_unwritable(item, f"{where}[{i}]") for i, item in enumerate(value))), None)
    # subclasses pass: JSON writes them as their base (np.float64 is a float, an IntEnum an int)
    return None if value is None or isinstance(value, (str, int, float)) else (where, value)


def _record_text(meta: dict) -> bytes:
    """`meta` as the JSON text of a checkpoint's record; CheckpointError naming the first entry
    JSON cannot write (a numpy or torch number, a set, an object) before anything is written."""
    if not isinstance(meta, dict):
        raise CheckpointError(f"meta must be a dict (the checkpoint's record), not {type(meta).__name__}")
    found = _unwritable(meta)
    if found:
        where, value = found
        raise CheckpointError(f"{where} = {value!r} ({type(value).__name__}) cannot be written to the "
                              "checkpoint's .json record; give plain Python values (int(x), float(x) or "
                              "x.item() for a numpy or torch number, a list for a set or an array, str otherwise)")
    return json.dumps(meta, indent=2, sort_keys=True).encode()


def save_checkpoint(model: nn.Module | Mapping[str, torch.Tensor], path: str | Path,
                    meta: dict | None = None) -> Path:
    """Save `model`'s state_dict (or a state_dict) to `path` atomically, plus `meta` as JSON
    beside it (`x.json` for `x.pt`), and return `path`.

    The record is serialised first, so a meta entry JSON cannot write raises CheckpointError
    before anything is replaced; a crash midway leaves any earlier checkpoint at `path` intact.
    Introduced in notebook 01.
    """
    path = Path(path)
    if isinstance(model, nn.Module):
        state = model.state_dict()
    elif isinstance(model, Mapping):
        state = model
    else:
        raise TypeError(f"model must be an nn.Module or a state_dict, not {type(model).__name__}")
    odd = [k for k, v in state.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if odd:
        raise CheckpointError(f"the state_dict to save at {path} is not names mapped to tensors: entry {odd[0]!r} "
                              f"({type(odd[0]).__name__} key, {type(state[odd[0]]).__name__} value); a checkpoint "
                              "holds tensors only (put other values in meta)")
    text = None if meta is None else _record_text(meta)
    state = {k: v.detach().cpu() for k, v in state.items()}
    atomic_write(path, lambda f: torch.save(state, f))
    if text is not None:
        atomic_write(path.with_suffix(".json"), lambda f: f.write(text))
    return path


def load_meta(path: str | Path) -> dict:
    """The record saved beside checkpoint `path` ({} when there is none); CheckpointError naming
    the record when it is not a JSON object."""
    meta_path = Path(path).with_suffix(".json")
    if not meta_path.exists():
        return {}
    try:
        record = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:  # ValueError: JSONDecodeError, UnicodeDecodeError
        raise CheckpointError(f"the checkpoint record {meta_path} cannot be read ({err}); "
                              f"{_RECREATE} (it rewrites {Path(path).name} and its record)") from None
    if not isinstance(record, dict):
        raise CheckpointError(f"the checkpoint record {meta_path} holds a JSON {type(record).__name__}, "
                              f"not an object; {_RECREATE} (it rewrites {Path(path).name} and its record)")
    return record


def _unreadable(path: Path, err: Exception) -> str:
    """What is wrong with a file torch.load refused with `err`, in the learner's words."""
    if isinstance(err, pickle.UnpicklingError) and zipfile.is_zipfile(path):
        return ("holds Python objects other than tensors (code that would run on loading), which loading "
                "with weights_only=True refused; re-create it with the notebook that writes it, or save "
                "the model's state_dict with checkpoints.save_checkpoint")
    with open(path, "rb") as f:
        head = f.read(4)
    if head.startswith(b"PK") and not zipfile.is_zipfile(path):
        what = "is truncated (its zip index is missing: an interrupted write, copy or download)"
    elif head.startswith(b"PK"):
        what = "is a zip archive but not a PyTorch checkpoint"
    else:
        what = "is damaged or not a PyTorch checkpoint (it does not start like one)"
    return f"{what}; {_RECREATE}, or copy it again"


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The state_dict saved at `path`, read with torch.load(weights_only=True) onto the CPU.

    A missing file raises FileNotFoundError; a folder, an empty, truncated or damaged file, one
    holding anything but tensors (pickled code is refused, never run) or not a dict of tensors
    raises CheckpointError naming the file, what is wrong and what to do.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}; run the notebook that writes it first")
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder, not a checkpoint file; give the path of a .pt file "
                              "(for example one inside it)")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes: its write was interrupted); {_RECREATE}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except PermissionError:
        raise CheckpointError(f"checkpoint {path} cannot be read (permission denied); make it readable "
                              f"(chmod u+r {path})") from None
    except Exception as err:  # torch's message suggests weights_only=False: never pass it on
        raise CheckpointError(f"checkpoint {path} {_unreadable(path, err)}") from None
    if not isinstance(state, Mapping):
        raise CheckpointError(f"checkpoint {path} holds a {type(state).__name__}, not a state_dict; "
                              "save model.state_dict() (checkpoints.save_checkpoint does)")
    odd = [k for k, v in state.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if odd:
        raise CheckpointError(f"checkpoint {path} is not a state_dict: entry {odd[0]!r} ({type(odd[0]).__name__} "
                              f"key, {type(state[odd[0]]).__name__} value) is not a name mapped to a tensor; "
                              "save model.state_dict() (checkpoints.save_checkpoint does)")
    return dict(state)


def load_checkpoint(model: nn.Module, path: str | Path) -> nn.Module:
    """Load the state_dict at `path` (read_state_dict) into `model` and return the model.

    A checkpoint of another architecture or class count raises CheckpointMismatchError naming the
    missing, unexpected and differently shaped entries; `model` is then left unchanged.
    """
    path = Path(path)
    state = read_state_dict(path)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}"
              for k, v in own.items() if k in state and state[k].shape != v.shape]
    if missing or unexpected or shapes:
        def few(items):
            return ", ".join(items[:4]) + (f" (+{len(items) - 4} more)" if len(items) > 4 else "")
        problems = [f"{label}: {few(items)}" for label, items in
                    (("missing", missing), ("unexpected", unexpected), ("shape mismatch", shapes)) if items]
        raise CheckpointMismatchError(f"checkpoint {path} does not fit {type(model).__name__}; "
                                      + "; ".join(problems))
    model.load_state_dict(state)
    return model
