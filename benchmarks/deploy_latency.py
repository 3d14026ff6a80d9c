"""Benchmark: CPU speed-up of notebook 06's int8 variants over the eager fp32 dense ResNet50.

Loads a profile's hand-over checkpoints (02's dense teacher and, as asked, 03's gradual-pruned ResNet50,
04's distilled ResNet18 and 05's structured ResNet50), quantises each compressed model to int8 with
PT2E as notebook 06 does (calibrated on validation batches of the dataset they were trained on), compiles
it with inductor freezing, and times every variant against eager fp32 dense in interleaved rounds. It
prints each variant's speed-up as the ratio of the medians and as the median (min-max) of the per-round
ratios: in one round the load on the machine hits all variants alike, so the per-round ratios show how
far one notebook run's figure can move. Accuracy is notebook 06's to check. Issue 11's target: the
fastest model within 1 point of the dense same-budget control at least 12x faster at batch 64.

    .venv/bin/python benchmarks/deploy_latency.py                          # quick profile, 2 threads
    .venv/bin/python benchmarks/deploy_latency.py --variants resnet18_kd --rounds 20
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as notebook 06: spinning threads collapse under load

import argparse  # noqa: E402
import logging  # noqa: E402
import statistics  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from peel_utils import data, deploy, handover, measure  # noqa: E402

VARIANTS = {"gmp90": "gmp", "resnet18_kd": "student", "structured": "structured"}  # notebook 06's names -> file


def main(argv: list[str] | None = None) -> None:
    warnings.filterwarnings("ignore", message="To copy construct from a tensor")  # inside inductor's int8 lowering
    logging.getLogger("torch.utils._pytree").setLevel(logging.ERROR)  # a deprecation notice torchao's import triggers
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="quick", help="hand-over folder data/checkpoints/<profile>/")
    parser.add_argument("--data-root", default=str(Path(__file__).resolve().parents[1] / "data"))
    parser.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=sorted(VARIANTS),
                        help="compressed models to quantise and time (each as <name>_int8)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--threads", type=int, default=2, help="torch threads (capped at the cores there are)")
    parser.add_argument("--rounds", type=int, default=10, help="interleaved rounds")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per variant, batch size and round")
    args = parser.parse_args(argv)

    checkpoint_dir = Path(args.data_root) / "checkpoints" / args.profile
    try:
        dense, meta = handover.load(checkpoint_dir, "teacher")
        floats = {key: handover.load(checkpoint_dir, VARIANTS[key], dataset=meta.dataset)[0] for key in args.variants}
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(str(err)) from None
    shape = meta.input_shape
    splits = data.load_dataset(meta.dataset, args.data_root, channels=shape[0], image_size=shape[1])
    calibration = data.make_loaders(splits, max(args.batch_sizes), seed=0).val

    threads = measure.latency_threads(args.threads)
    print(deploy.cpu_capability().describe())
    print(f"input {shape}, {threads} threads, {args.rounds} interleaved rounds of {args.repeats} passes")
    variants = {"dense_fp32": dense}
    for key, model in floats.items():
        variants[f"{key}_int8"] = deploy.compile_frozen(deploy.quantize_int8(model, calibration, shape))
        with torch.no_grad():
            for b in args.batch_sizes:  # compile for each batch size before the clock starts
                variants[f"{key}_int8"](torch.zeros(b, *shape))
    timings = measure.interleaved_timings(variants, shape, args.batch_sizes, rounds=args.rounds,
                                          repeats=args.repeats, threads=threads)
    for b in args.batch_sizes:
        dense_runs = timings["dense_fp32", b]
        print(f"batch {b:3d}: dense_fp32 {statistics.median(dense_runs):8.2f} ms")
        for name in list(variants)[1:]:
            runs = timings[name, b]
            per_round = measure.per_round_speedups(dense_runs, runs)
            print(f"batch {b:3d}: {name:17s} {statistics.median(runs):8.2f} ms  speed-up "
                  f"{statistics.median(dense_runs) / statistics.median(runs):5.2f}x (ratio of medians); per round "
                  f"{statistics.median(per_round):5.2f}x ({min(per_round):.2f}-{max(per_round):.2f})")


if __name__ == "__main__":
    main()
