"""Seeding, device choice and notebook defaults: the one setup line every notebook runs."""

from __future__ import annotations

import random
import zlib

import numpy as np
import torch

FIGURE_DPI = 60
FIGURE_SIZE = (6.0, 3.5)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) so one `seed` fixes every random choice."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


def seed_phase(seed: int, phase: str) -> int:
    """Seed everything for one phase of a notebook (training, pruning, fine-tuning) and return its seed.

    The phase's seed mixes `seed` with the phase's name, so a phase starts from the same random
    state whether or not the phases before it ran or were loaded from a checkpoint: the same seed
    gives the same numbers, whatever is cached. Pass the returned seed to `data.make_loaders`.
    Introduced in notebook 01.
    """
    phase_seed = (int(seed) * 1_000_003 + zlib.crc32(phase.encode())) % 2**31
    seed_everything(phase_seed)
    return phase_seed


def get_device(device: str | torch.device = "auto") -> torch.device:
    """Return the device to use: 'auto' picks cuda, then mps, then cpu.

    Asking for a device that is not there raises a RuntimeError that says what is available,
    instead of failing later inside a forward pass.
    """
    if str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"unknown device {device!r}; use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'") from err
    available = ["cpu"]
    if torch.cuda.is_available():
        available += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if torch.backends.mps.is_available():
        available.append("mps")
    if dev.type == "cuda" and (not torch.cuda.is_available() or (dev.index or 0) >= torch.cuda.device_count()):
        raise RuntimeError(f"device {device!r} was requested but is not available here "
                           f"(available: {', '.join(available)}); set device='auto' or 'cpu'")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise RuntimeError(f"device 'mps' was requested but is not available here "
                           f"(available: {', '.join(available)}); set device='auto' or 'cpu'")
    return dev


def setup(seed: int = 0, device: str = "auto") -> torch.device:
    """Seed everything, set small plot defaults and return the device: a notebook's first line."""
    import matplotlib.pyplot as plt

    seed_everything(seed)
    plt.rcParams.update({"figure.dpi": FIGURE_DPI, "savefig.dpi": FIGURE_DPI,
                         "figure.figsize": FIGURE_SIZE, "axes.grid": True, "grid.alpha": 0.3})
    return get_device(device)
