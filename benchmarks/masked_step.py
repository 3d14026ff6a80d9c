"""Benchmark: a ResNet50 fine-tuning step with a pruner's masks re-applied, against the same step without.

Notebook 03 keeps the pruned zeros at zero by multiplying every weight by its mask after each optimizer
step (`ZeroMaskPruner.prune`). This prints the median step time both ways, with the steps' spread ((slowest -
fastest) / median), and the overhead in percent (target: at most 15%), at two significant digits. Steps alternate
between the two variants so that load from other processes hits both alike. A training step (forward, backward,
optimizer) is not what `measure.interleaved_timings` times (forward passes in eval mode, without gradients), so the
steps are timed here with a wall clock, interleaved step by step in the same way, under the workbook's wait
policy (`peel_utils.timing`, printed by `measure.timing_setup`). Real MNIST digits (mnist5k) are the input.

    .venv/bin/python benchmarks/masked_step.py                      # CPU, quick-profile shapes
    .venv/bin/python benchmarks/masked_step.py --device cuda --amp --batch-size 128 --image-size 224
"""

from __future__ import annotations

import os

from peel_utils import timing  # torch-free: the policy must be in the environment before torch loads

os.environ.update(timing.environment())

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

from peel_utils import data, measure, models, runtime, sweep, train  # noqa: E402
from peel_utils.prune import ZeroMaskPruner  # noqa: E402


def timed(device: torch.device, fn) -> float:
    """Seconds `fn()` takes, synchronising CUDA around it."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--ratio", type=float, default=0.55, help="global pruning ratio of the model")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per variant")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--amp", action="store_true", help="CUDA mixed precision and channels_last")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args(argv)

    device = runtime.setup(0, args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    amp = args.amp and device.type == "cuda"
    splits = data.load_dataset("mnist5k", channels=3, image_size=args.image_size)
    loader = data.make_loaders(splits, args.batch_size).train
    batch = [next(iter(loader))]  # one batch, (N, 3, H, W) and (N,): train.train moves it to the device

    model = sweep.pruned_copy(models.resnet50(splits.num_classes), args.ratio, "global")
    model = model.to(device, memory_format=torch.channels_last if amp else torch.preserve_format)
    pruner = ZeroMaskPruner(model)
    pruner.masks = {name: mask.to(device) for name, mask in pruner.masks.items()}
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    loss_fn = nn.CrossEntropyLoss()

    def step(masked: bool) -> None:  # one step of peel_utils.train.train, the loop notebook 03 uses
        train.train(model, batch, loss_fn, optimizer, pruner if masked else None, amp=amp)

    for _ in range(args.warmup):
        step(True)
        step(False)
    plain, masked, prune_only = [], [], []
    for _ in range(args.steps):
        plain.append(timed(device, lambda: step(False)))
        masked.append(timed(device, lambda: step(True)))
        prune_only.append(timed(device, lambda: pruner.prune(model)))
    plain_ms, masked_ms = statistics.median(plain) * 1e3, statistics.median(masked) * 1e3
    prune_ms = statistics.median(prune_only) * 1e3
    print(measure.timing_setup(torch.get_num_threads()) if device.type == "cpu" else f"device {device}")
    print(f"batch {args.batch_size}, {args.image_size}x{args.image_size}, amp {amp}, ratio {args.ratio}, "
          f"{args.steps} steps each, alternating; medians, with the steps' spread")

    def ms(value: float, runs: list[float]) -> str:
        return f"{measure.two_digits(value)} ms (spread {measure.spread(runs):.0%})"

    print(f"step without masks:  {ms(plain_ms, plain)}")
    print(f"step with masks:     {ms(masked_ms, masked)}")
    ratios = measure.per_round_speedups(masked, plain)  # step by step: masked time / plain time
    overhead = [100 * (r - 1) for r in (statistics.median(ratios), min(ratios), max(ratios))]
    print(f"overhead:            {measure.two_digits(overhead[0])}% (target <= 15%; the median of the per-step ratios, "
          f"steps from {measure.two_digits(overhead[1])}% to {measure.two_digits(overhead[2])}%)")
    print(f"mask re-apply alone: {ms(prune_ms, prune_only)} = {measure.two_digits(100 * prune_ms / plain_ms)}% of a plain step")


if __name__ == "__main__":
    main()
