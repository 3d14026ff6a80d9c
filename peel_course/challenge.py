"""Score a class's compression-challenge entries (notebook 08) into a leaderboard.

    python -m peel_course.challenge --submissions DIR --test DATASET [--out DIR] [--teacher-accuracy 0.977]
    make challenge SUBMISSIONS=DIR TEST=imagefolder:/path/to/hidden

DIR holds one folder per student, each with one entry file (`peel_utils.entry.write`). DATASET is one of the
workbook's dataset names, scored on its test split: `mnist5k` (its 1,000 test digits), or `imagefolder:<path>`, a
teacher's hidden set (`<path>/test/<class>/`, with a `train/` the loader also expects). Each entry is read as data
only (nothing in it runs) and scored on the test set loaded in the entry's own input shape. Writes
`leaderboard.csv` (student, file, bytes, size_ratio, parameters, test_accuracy, latency_b1_ms, tier, status,
message) and `leaderboard.png` into DIR, or --out.

The size ratio is the bytes of a dense fp32 ResNet50 checkpoint for the test set's classes (94,421,503 bytes for
ten) over the entry's bytes. The tiers are 500x, 200x and 50x smaller, each with a test accuracy at most one point
below the teacher's. The teacher's accuracy is --teacher-accuracy (a fraction), or else measured here on the same
test set: notebook 02's hand-over teacher in --checkpoints (default data/checkpoints/quick); with neither, the
tiers read 'n/a'. Statuses: ok (scored), missing (an empty folder), refused (two files, not an entry, truncated,
altered, another version, outside the layer family, the wrong classes), with a message naming the file.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from peel_utils import timing


def teacher_accuracy(checkpoints: Path, dataset: str, data_root: Path, max_images: int | None) -> float | None:
    """Notebook 02's teacher (the workbook's own hand-over file) measured on `dataset`'s test split; None when absent."""
    from peel_utils import compare, data, handover

    try:
        teacher, meta = handover.load(checkpoints, "teacher")
    except (FileNotFoundError, ValueError) as err:
        print(f"note: no teacher to measure ({err}); the tiers read 'n/a': pass --teacher-accuracy", file=sys.stderr)
        return None
    splits = data.load_dataset(dataset, data_root, channels=meta.in_channels, image_size=meta.image_size,
                               max_images=max_images)
    return float(compare.correct(teacher, data.make_loaders(splits, 256).test).float().mean())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--submissions", type=Path, required=True, help="one sub-folder per student, one entry each")
    parser.add_argument("--test", required=True, help="the test set: mnist5k or imagefolder:<path> (its test split)")
    parser.add_argument("--out", type=Path, help="where leaderboard.csv and .png go (default: the submissions folder)")
    parser.add_argument("--teacher-accuracy", type=float, help="the teacher's test accuracy, a fraction (0.977)")
    parser.add_argument("--checkpoints", type=Path, default=Path("data/checkpoints/quick"),
                        help="where notebook 02's teacher is, measured when --teacher-accuracy is not given")
    parser.add_argument("--data-root", type=Path, default=Path("data"), help="the datasets' folder")
    parser.add_argument("--max-images", type=int, help="score on a seeded subset of this many test images (a try)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the batch-1 latency (default 1)")
    args = parser.parse_args(argv)
    if not args.submissions.is_dir():
        print(f"error: no submissions folder at {args.submissions}: give a folder with one sub-folder per student",
              file=sys.stderr)
        return 2
    if args.teacher_accuracy is not None and not 0 < args.teacher_accuracy <= 1:
        print(f"error: --teacher-accuracy is a fraction in (0, 1] (0.977), not {args.teacher_accuracy}", file=sys.stderr)
        return 2
    for key, value in timing.environment().items():  # the workbook's timing set-up, before torch loads
        os.environ.setdefault(key, value)
    from peel_utils import data, entry, measure

    try:
        reference = args.teacher_accuracy
        if reference is None:
            reference = teacher_accuracy(args.checkpoints, args.test, args.data_root, args.max_images)
        print(measure.timing_setup(args.threads))
        table = entry.leaderboard(args.submissions, args.test, teacher_accuracy=reference, data_root=args.data_root,
                                  max_images=args.max_images, threads=args.threads)
    except (ValueError, FileNotFoundError, data.DatasetNotAvailableError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    csv_path, png_path = entry.write_leaderboard(table, args.out or args.submissions, reference)
    counts = table["status"].value_counts().to_dict()
    teacher = "n/a" if reference is None else f"{reference:.4f}"
    print(f"{len(table)} students: " + ", ".join(f"{counts.get(s, 0)} {s}" for s in ("ok", "refused", "missing"))
          + f"; teacher's test accuracy {teacher}; wrote {csv_path} and {png_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
