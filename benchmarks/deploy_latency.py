"""Benchmark: CPU speed-up of notebook 06's deployed variants (by default the int8 ones) over eager fp32 dense.

Loads the profile's hand-over checkpoints the variants need (02's dense teacher and, as asked, 03's
gradual-pruned ResNet50, 04's distilled ResNet18 and 05's structured ResNet50), makes each variant with
notebook 06's own recipe and names (`deploy.VARIANTS`, `deploy.build_variant`: int8 is PT2E quantisation
calibrated on validation batches of the dataset they were trained on, then inductor freezing), and times
every variant against eager fp32 dense in interleaved rounds. It
prints each variant's speed-up as the ratio of the medians and as the median (min-max) of the per-round
ratios: in one round the load on the machine hits all variants alike, so the per-round ratios show how
far one notebook run's figure can move. Accuracy is notebook 06's to check. Issue 11's target: the
fastest model within 1 point of the dense same-budget control at least 12x faster at batch 64.

    .venv/bin/python benchmarks/deploy_latency.py                          # quick profile, 2 threads
    .venv/bin/python benchmarks/deploy_latency.py --variants resnet18_kd_int8 --rounds 20
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as notebook 06: spinning threads collapse under load

import argparse  # noqa: E402
import logging  # noqa: E402
import statistics  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

from peel_utils import data, deploy, handover, measure  # noqa: E402

BASELINE = "dense_fp32"
INT8 = sorted(name for name, variant in deploy.VARIANTS.items() if variant.runs_as == "int8 + compile")


def main(argv: list[str] | None = None) -> None:
    warnings.filterwarnings("ignore", message="To copy construct from a tensor")  # inside inductor's int8 lowering
    logging.getLogger("torch.utils._pytree").setLevel(logging.ERROR)  # a deprecation notice torchao's import triggers
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="quick", help="hand-over folder data/checkpoints/<profile>/")
    parser.add_argument("--data-root", default=str(Path(__file__).resolve().parents[1] / "data"))
    parser.add_argument("--variants", nargs="+", choices=sorted(set(deploy.VARIANTS) - {BASELINE}), default=INT8,
                        help="notebook 06's variants to time against dense_fp32 (default: the int8 ones)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--threads", type=int, default=2, help="torch threads (capped at the cores there are)")
    parser.add_argument("--rounds", type=int, default=10, help="interleaved rounds")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per variant, batch size and round")
    args = parser.parse_args(argv)

    checkpoint_dir = Path(args.data_root) / "checkpoints" / args.profile
    names = [BASELINE, *args.variants]
    dense_key = deploy.VARIANTS[BASELINE].model
    try:
        floats = {}
        floats[dense_key], meta = handover.load(checkpoint_dir, deploy.MODELS[dense_key])
        for key in {deploy.VARIANTS[name].model for name in args.variants} - {dense_key}:
            floats[key] = handover.load(checkpoint_dir, deploy.MODELS[key], dataset=meta.dataset)[0]
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(str(err)) from None
    shape = meta.input_shape
    splits = data.load_dataset(meta.dataset, args.data_root, channels=shape[0], image_size=shape[1])
    calibration = data.make_loaders(splits, max(args.batch_sizes), seed=0).val

    threads = measure.latency_threads(args.threads)
    print(deploy.cpu_capability().describe())
    print(f"input {shape}, {threads} threads, {args.rounds} interleaved rounds of {args.repeats} passes")
    variants = {name: deploy.build_variant(name, floats, calibration, shape, args.batch_sizes) for name in names}
    timings = measure.interleaved_timings(variants, shape, args.batch_sizes, rounds=args.rounds,
                                          repeats=args.repeats, threads=threads)
    for b in args.batch_sizes:
        dense_runs = timings[BASELINE, b]
        print(f"batch {b:3d}: {BASELINE} {statistics.median(dense_runs):8.2f} ms")
        for name in args.variants:
            runs = timings[name, b]
            per_round = measure.per_round_speedups(dense_runs, runs)
            print(f"batch {b:3d}: {name:26s} {statistics.median(runs):8.2f} ms  speed-up "
                  f"{statistics.median(dense_runs) / statistics.median(runs):5.2f}x (ratio of medians); per round "
                  f"{statistics.median(per_round):5.2f}x ({min(per_round):.2f}-{max(per_round):.2f})")


if __name__ == "__main__":
    main()
