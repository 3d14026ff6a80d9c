"""The workbook's one timing set-up, read before torch loads: the OpenMP wait policy every kernel and benchmark
starts with.

Measured on these 2-core machines (eager fp32 ResNet50 at 32x32, 2 threads, 7 interleaved rounds; medians): with
the default policy, spinning threads collapse when another process holds a core (batch 64: 102 ms idle, 333 ms
loaded; batch 1: 15 ms, 48 ms with rounds spread 1.2x), while PASSIVE waiting is slower on an idle machine but keeps
its figure under load (161 ms and 176 ms; 27 ms and 23 ms). A student's laptop is rarely idle, so every timing here
is taken with PASSIVE; speed-up ratios move under 5% between the two. `benchmarks/wait_policy.py` measures it again.
The launchers (`peel_course.kernel.kernel_environment`, used by `make run`, `make store`, `make lab`, the graders and
the tests; the benchmark scripts) set it; `measure.timing_setup` says in each timing table whether it is in force.
"""

from __future__ import annotations

WAIT_POLICY_ENV = "OMP_WAIT_POLICY"
WAIT_POLICY = "PASSIVE"


def environment() -> dict[str, str]:
    """The environment variables of the timing set-up, to set before torch is imported (a kernel's start)."""
    return {WAIT_POLICY_ENV: WAIT_POLICY}
