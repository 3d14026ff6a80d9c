"""How the course tools start Jupyter kernels: over IPC where the platform has it, so no kernel listens on TCP.

ipykernel 7 warns, for every kernel started over TCP without CurveZMQ keys, "Kernel is running over TCP without
encryption ... susceptible to eavesdropping" (on the kernel's stderr, so once per notebook in `make run`; the workbook
pins ipykernel 6 for now, see requirements.txt, which does not warn, but a user's newer kernel would). Over IPC
the kernel's sockets are Unix domain sockets in a private folder (mode 0700, removed afterwards): nothing listens on
a port, only this user can connect, and ipykernel does not warn. Windows keeps TCP: the kernel listens on the loopback
interface only and every message is HMAC-signed with the connection file's key, so the warning (still printed there)
does not apply to these local runs.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator

from traitlets.config import Config


@contextlib.contextmanager
def kernel_config() -> Iterator[Config]:
    """The traitlets config to give nbclient's NotebookClient (or papermill's execute_notebook) as `config=`:
    IPC transport in a private temporary folder on POSIX, the default (TCP) elsewhere."""
    if os.name != "posix":
        yield Config()
        return
    with tempfile.TemporaryDirectory(prefix="peel-kernel-") as folder:  # absolute: the kernel runs in another cwd
        yield Config({"KernelManager": {"transport": "ipc", "ip": os.path.join(folder, "kernel")}})
