"""Benchmark: OpenMP's wait policy against the load on the machine, the reason the workbook times with PASSIVE.

Times eager fp32 ResNet50 (`peel_utils.models.resnet50(10)`, input 3x32x32) at 2 threads, batch 1 and 64, in 7
interleaved rounds (`measure.interleaved_timings`), under OMP_WAIT_POLICY=PASSIVE, unset (the runtime's default)
and ACTIVE, on an idle machine and with one busy process beside it (a Python loop: one core's worth of load). Each
configuration runs in a fresh subprocess: the policy is read when torch loads. Prints the median ms and the rounds'
spread of each. Measured on a 2-core AMD EPYC (medians, PASSIVE / unset / ACTIVE): batch 64 idle 161 / 102 / 106 ms,
loaded 176 / 333 / 390 ms; batch 1 idle 27 / 15 / 16 ms, loaded 23 / 48 / 50 ms. Spinning threads win on an idle
machine and collapse under load; PASSIVE holds its figure, so `peel_utils.timing` sets it everywhere.

    .venv/bin/python benchmarks/wait_policy.py
    .venv/bin/python benchmarks/wait_policy.py --rounds 11 --threads 4
"""

from __future__ import annotations

import os
import sys

from peel_utils import timing  # torch-free: the policy must be in the environment before torch loads

if "--child" not in sys.argv[1:]:  # a child keeps the policy its parent gave it
    os.environ.update(timing.environment())

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
from collections.abc import Iterator, Mapping, Sequence  # noqa: E402

import pandas as pd  # noqa: E402

POLICIES = ("PASSIVE", None, "ACTIVE")  # None: OMP_WAIT_POLICY unset
LOADS = ("idle", "loaded")


def child(threads: int, rounds: int, batch_sizes: Sequence[int]) -> None:
    """In the fresh subprocess: time the ResNet50, print {"policy": the policy torch loaded with, "setup": sentence,
    "runs": {batch: [ms, ...]}} as JSON."""
    import torch

    from peel_utils import measure, models

    torch.manual_seed(0)
    runs = measure.interleaved_timings({"resnet50": models.resnet50(10)}, (3, 32, 32), batch_sizes, rounds=rounds,
                                       threads=threads)
    print(json.dumps({"policy": os.environ.get(timing.WAIT_POLICY_ENV), "setup": measure.timing_setup(threads),
                      "runs": {b: runs["resnet50", b] for b in batch_sizes}}))


def environment(policy: str | None) -> dict[str, str]:
    """This process's environment with OMP_WAIT_POLICY set to `policy` (None: removed)."""
    env = {name: value for name, value in os.environ.items() if name != timing.WAIT_POLICY_ENV}
    return env if policy is None else {**env, timing.WAIT_POLICY_ENV: policy}


@contextlib.contextmanager
def load(kind: str) -> Iterator[None]:
    """"loaded": one busy process (an endless Python loop) runs meanwhile; "idle": none."""
    if kind == "idle":
        yield
        return
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        spinner.kill()
        spinner.wait()


def table(results: Mapping[tuple[str | None, str], Mapping[int, Sequence[float]]]) -> pd.DataFrame:
    """One row per (policy, load, batch) of {(policy, load): {batch: [ms per round]}}: `measure.latency_table`'s median
    ms, spread and rounds."""
    from peel_utils import measure

    runs = {((policy or "unset", kind), int(b)): times for (policy, kind), per_batch in results.items()
            for b, times in per_batch.items()}
    rows = measure.latency_table(runs)
    rows.insert(0, "OMP_WAIT_POLICY", [policy for policy, _ in rows.model])
    rows.insert(1, "load", [kind for _, kind in rows.model])
    return rows.drop(columns="model")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds per configuration")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)  # one configuration, in a subprocess
    args = parser.parse_args(argv)
    if args.child:
        child(args.threads, args.rounds, args.batch_sizes)
        return

    command = [sys.executable, __file__, "--child", "--threads", str(args.threads), "--rounds", str(args.rounds),
               "--batch-sizes", *map(str, args.batch_sizes)]
    results, setups = {}, []
    for kind in LOADS:
        for policy in POLICIES:
            with load(kind):
                done = subprocess.run(command, env=environment(policy), capture_output=True, text=True, check=True)
            answer = json.loads(done.stdout.strip().splitlines()[-1])
            if answer["policy"] != policy:
                raise RuntimeError(f"the subprocess timed with OMP_WAIT_POLICY={answer['policy']}, not {policy}")
            results[policy, kind] = answer["runs"]
            setups.append(answer["setup"])
    from peel_utils import measure

    print(setups[0], "Each row below changes OMP_WAIT_POLICY and the load only, in a fresh process.")
    print(measure.readable(table(results)).to_string(index=False))


if __name__ == "__main__":
    main()
