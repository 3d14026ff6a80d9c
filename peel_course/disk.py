"""Free disk space before `make install`: a clear error of ours instead of pip's "No space left on device".

Installing PyTorch is most of the workbook's install. On Linux x86_64, PyPI's default torch wheel brings its
CUDA libraries (about 6 GB in the virtual environment, even on a machine without a GPU); elsewhere the install
is under 2 GB. pip that runs out of space half-way leaves a broken environment, so the Makefile asks first.
Standard library only: it runs before anything is installed (`python3 -m peel_course.disk .venv`).
"""

from __future__ import annotations

import platform
import shutil
import sys
from pathlib import Path

GIB = 2**30


def needed_bytes(system: str | None = None, machine: str | None = None) -> int:
    """Bytes the install needs on this platform: 7 GiB where torch's wheel carries CUDA (Linux x86_64), else 2 GiB."""
    system = platform.system() if system is None else system
    machine = platform.machine() if machine is None else machine
    return 7 * GIB if (system, machine) == ("Linux", "x86_64") else 2 * GIB


def check_free_space(venv: str | Path, need: int | None = None) -> int:
    """Return the free bytes where `venv` will be created; raise SystemExit naming the fixes if fewer than `need`."""
    need = needed_bytes() if need is None else need
    target = Path(venv).resolve()
    existing = next(p for p in (target, *target.parents) if p.exists())
    free = shutil.disk_usage(existing).free
    if free < need:
        raise SystemExit(
            f"make install: {free / GIB:.1f} GiB free on the disk of {existing}, and installing PyTorch and the "
            f"workbook needs about {need / GIB:.0f} GiB (on Linux x86_64 PyPI's torch wheel brings CUDA libraries). "
            "Free some space, or create the environment on a larger disk (make install VENV=/path/to/venv), or "
            f"put the CPU-only torch (under 1 GiB) in it first: {sys.executable} -m venv {venv} && "
            f"{Path(venv) / 'bin' / 'pip'} install torch torchvision --index-url https://download.pytorch.org/whl/cpu"
        )
    return free


if __name__ == "__main__":
    check_free_space(sys.argv[1] if len(sys.argv) > 1 else ".venv")
