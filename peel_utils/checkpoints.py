"""Checkpoints as state_dicts only: written atomically, read with weights_only=True.

Each checkpoint `x.pt` may have a `x.json` beside it with the metadata needed to rebuild the
model (architecture, classes) and the parameters it was trained with, so a notebook can reuse
a checkpoint only when it was made with the same parameters.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import torch
import torch.nn as nn


class CheckpointMismatchError(ValueError):
    """A checkpoint does not fit the model it is loaded into; the message names the mismatch."""


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


def save_checkpoint(model: nn.Module | dict, path: str | Path, meta: dict | None = None) -> Path:
    """Save `model`'s state_dict (or a state_dict) to `path` atomically, plus `meta` as JSON.

    A crash midway leaves any earlier checkpoint at `path` intact. Introduced in notebook 01.
    """
    path = Path(path)
    state = model.state_dict() if isinstance(model, nn.Module) else model
    state = {k: v.detach().cpu() for k, v in state.items()}
    atomic_write(path, lambda f: torch.save(state, f))
    if meta is not None:
        text = json.dumps(meta, indent=2, sort_keys=True).encode()
        atomic_write(path.with_suffix(".json"), lambda f: f.write(text))
    return path


def load_meta(path: str | Path) -> dict:
    """The metadata saved beside checkpoint `path` ({} when there is none)."""
    meta_path = Path(path).with_suffix(".json")
    return json.loads(meta_path.read_text()) if meta_path.exists() else {}


def load_checkpoint(model: nn.Module, path: str | Path) -> nn.Module:
    """Load the state_dict at `path` into `model` (weights_only=True) and return the model.

    A checkpoint of another architecture or class count raises CheckpointMismatchError naming the
    missing, unexpected and differently shaped entries; `model` is then left unchanged.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)
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
