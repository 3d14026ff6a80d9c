"""Benchmark: CPU speed-up of notebook 06's deployed variants (by default the int8 ones) over eager fp32 dense.

Loads the profile's hand-over checkpoints the variants need (02's dense teacher and, as asked, 03's
gradual-pruned ResNet50, 04's distilled ResNet18 and 05's structured ResNet50), makes each variant with
notebook 06's own recipe and names (`deploy.VARIANTS`, `deploy.build_variant`: int8 is PT2E quantisation
calibrated on validation batches of the dataset they were trained on, then inductor freezing), and times
every variant against eager fp32 dense in interleaved rounds (`measure.interleaved_timings`), under the
workbook's timing set-up (`peel_utils.timing`, printed by `measure.timing_setup`). It prints
`measure.latency_table` (median ms, the rounds' spread, the speed-up as the median of the per-round ratios
with its lowest and highest round: in one round the load on the machine hits all variants alike) and a
sentence per variant and batch size (`measure.speedup_words`). Accuracy is notebook 06's to check. Issue 11's target: the
fastest model within 1 point of the dense same-budget control at least 12x faster at batch 64.

    .venv/bin/python benchmarks/deploy_latency.py                          # quick profile, 2 threads
    .venv/bin/python benchmarks/deploy_latency.py --variants resnet18_kd_int8 --rounds 20
"""

from __future__ import annotations

import os

from peel_utils import timing  # torch-free: the policy must be in the environment before torch loads

os.environ.update(timing.environment())

import argparse  # noqa: E402
import logging  # noqa: E402
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
    print(measure.timing_setup(threads))
    print(f"input {shape}, {args.rounds} interleaved rounds of {args.repeats} passes")
    variants = {name: deploy.build_variant(name, floats, calibration, shape, args.batch_sizes) for name in names}
    timings = measure.interleaved_timings(variants, shape, args.batch_sizes, rounds=args.rounds,
                                          repeats=args.repeats, threads=threads)
    print(measure.readable(measure.latency_table(timings, baseline=BASELINE)).to_string(index=False))
    for b in args.batch_sizes:
        for name in args.variants:
            print(f"batch {b}: {name} against {BASELINE}: {measure.speedup_words(timings, name, BASELINE, b)}")


if __name__ == "__main__":
    main()
