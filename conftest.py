"""pytest, for both steps of `make test`: `pytest tests` and `pytest notebooks` (nbval)."""

import os

# Under test, progress bars in a kernel redraw at most every 2 s. Each redraw is a kernel message, and nbval
# reads a cell's messages only once the cell has finished: a long cell's thousands of redraws overflowed ZeroMQ's
# queue, the kernel's final "idle" message was dropped, and nbval failed with "Timeout of 5 seconds exceeded
# waiting for output" (notebook 05 in CI). Kernels inherit this variable; tqdm reads TQDM_* defaults from it.
os.environ.setdefault("TQDM_MININTERVAL", "2")

# Kernels that nbval and the tests start get what the course tools give theirs (peel_course.kernel.KERNEL_ENV): the
# workbook's timing set-up and PEEL_SLIDERS=off, so no widget is opened without a front end.
from peel_course.kernel import KERNEL_ENV  # noqa: E402

for _name, _value in KERNEL_ENV.items():
    os.environ.setdefault(_name, _value)
