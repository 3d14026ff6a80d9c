"""How the course tools start Jupyter kernels: over IPC where the platform has it, so no kernel listens on TCP.

ipykernel 7 warns, for every kernel started over TCP without CurveZMQ keys, "Kernel is running over TCP without
encryption ... susceptible to eavesdropping" (on the kernel's stderr, so once per notebook in `make run`; the workbook
pins ipykernel 6 for now, see requirements.txt, which does not warn, but a user's newer kernel would). Over IPC
the kernel's sockets are Unix domain sockets in a private folder (mode 0700, removed afterwards): nothing listens on
a port, only this user can connect, and ipykernel does not warn. Windows keeps TCP: the kernel listens on the loopback
interface only and every message is HMAC-signed with the connection file's key, so the warning (still printed there)
does not apply to these local runs.

Every kernel they start inherits `KERNEL_ENV`: the workbook's timing set-up (peel_utils.timing: the OpenMP wait
policy, read when torch loads) and PEEL_SLIDERS=off, so a headless run draws the sliders' default figures and opens
no widget (executors can wait for good on widget messages: nbclient#312, papermill#723).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator

from traitlets.config import Config

from peel_utils import timing
from peel_utils.sliders import SLIDERS_ENV

KERNEL_ENV = {**timing.environment(), SLIDERS_ENV: "off"}


@contextlib.contextmanager
def environment(variables: dict[str, str]) -> Iterator[None]:
    """Set `variables` in os.environ (inherited by kernels started meanwhile); restore what was there afterwards."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def kernel_config() -> Iterator[Config]:
    """The traitlets config to give nbclient's NotebookClient (or papermill's execute_notebook) as `config=`:
    IPC transport in a private temporary folder on POSIX, the default (TCP) elsewhere; meanwhile os.environ holds
    KERNEL_ENV for the kernels started."""
    with environment(KERNEL_ENV):
        if os.name != "posix":
            yield Config()
            return
        with tempfile.TemporaryDirectory(prefix="peel-kernel-") as folder:  # absolute: the kernel runs in another cwd
            yield Config({"KernelManager": {"transport": "ipc", "ip": os.path.join(folder, "kernel")}})
