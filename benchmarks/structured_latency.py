"""Benchmark: CPU latency of notebook 05's exported structured-pruned ResNet50 against the dense one.

Loads the two hand-over checkpoints of a profile (`02_resnet50_teacher.pt`, the dense model, and
`05_resnet50_structured.pt`, rebuilt from its channel counts), then prints their MACs and parameters, and at
each thread count the timing set-up (`measure.timing_setup`) and `measure.latency_table` of their forward passes at
each batch size, with the speed-up of the pruned model over the dense one (the median of the per-round ratios, and
a sentence from `measure.speedup_words`). The models are timed in interleaved rounds, so that load from other
processes hits both alike, under the workbook's wait policy (`peel_utils.timing`). Issue 5's target: a speed-up of
at least 2x at batch 64 on a 2-core CPU.

    .venv/bin/python benchmarks/structured_latency.py                    # quick profile, 1 and all threads
    .venv/bin/python benchmarks/structured_latency.py --profile full --rounds 10
"""

from __future__ import annotations

import os

from peel_utils import timing  # torch-free: the policy must be in the environment before torch loads

os.environ.update(timing.environment())

import argparse  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from peel_utils import handover, measure  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="quick", help="hand-over folder data/checkpoints/<profile>/")
    parser.add_argument("--data-root", default=str(Path(__file__).resolve().parents[1] / "data"))
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--threads", type=int, nargs="+", default=None,
                        help="torch CPU thread counts to time (default: 1 and torch's default)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per setting")
    parser.add_argument("--repeats", type=int, default=5, help="timed passes per model and round")
    args = parser.parse_args(argv)

    checkpoint_dir = Path(args.data_root) / "checkpoints" / args.profile
    try:
        dense, meta = handover.load(checkpoint_dir, "teacher")
        pruned, pruned_meta = handover.load(checkpoint_dir, "structured", dataset=meta.dataset)
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(str(err)) from None
    shape = meta.input_shape
    models = {"dense": dense, "pruned": pruned}

    dense_macs, pruned_macs = (measure.count_macs(m, shape) for m in models.values())
    print(f"input {shape}; exported variant: {pruned_meta.extra['variant']} at {pruned_meta.extra['mac_target']}x "
          f"fewer MACs (target)")
    print(f"MACs   dense {dense_macs / 1e6:8.1f}M  pruned {pruned_macs / 1e6:8.1f}M  ({dense_macs / pruned_macs:.2f}x)")
    params = [sum(p.numel() for p in m.parameters()) for m in models.values()]
    print(f"params dense {params[0] / 1e6:8.2f}M  pruned {params[1] / 1e6:8.2f}M  ({params[0] / params[1]:.2f}x)")

    for threads in args.threads or sorted({1, torch.get_num_threads()}):
        print(measure.timing_setup(threads))
        timed = measure.interleaved_timings(models, shape, args.batch_sizes, args.rounds, args.repeats,
                                            threads=threads, warmup=2)
        print(measure.readable(measure.latency_table(timed, baseline="dense")).to_string(index=False))
        for batch_size in args.batch_sizes:
            print(f"threads {threads} batch {batch_size}: pruned against dense: "
                  f"{measure.speedup_words(timed, 'pruned', 'dense', batch_size)}")


if __name__ == "__main__":
    main()
