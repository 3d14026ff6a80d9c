"""The spread between runs: the figures each notebook recorded, one value per seed, and which verdicts flip.

    make run PROFILE=seeds                   # the quick settings once per seed of params/seeds.yaml
    python -m peel_course.spread             # results/seeds/spread.json -> docs/seed_spread.json, and the guide's table

One seed's result is "in this run"; a teacher needs to know which of them the class will see move. The runner writes
results/<profile>/spread.json after a profile with `over_seeds`; this module collects it, copies it into docs/ (where
the instructor guide cites it) and renders the guide's table "what varies between runs" from it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS_FILE = ROOT / "docs" / "seed_spread.json"
# The figures of the guide's table: a recorded key holding one of these words (the rest stay in the file)
KEY_WORDS = ("accuracy", "speedup", "size_ratio", "latency", "target_met", "within", "chosen", "points")


def _machine() -> str:
    """The CPU the figures come from ('model name' of /proc/cpuinfo where there is one) and its core count."""
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} cores"


def collect(results: Path, seeds: list[int]) -> dict:
    """{"seeds": [...], "machine": ..., "notebooks": {notebook: {figure: [value per seed]}},
    "seconds": {notebook: [run time per seed]}} from results/<profile>/seed<N>/summary.json; a figure a seed did
    not record gets None in its place. Each seed's chain starts from an empty hand-over folder, so its run times
    are cold runs."""
    runs = {}
    for seed in seeds:
        path = results / f"seed{seed}" / "summary.json"
        if not path.exists():
            raise SystemExit(f"{path} is missing: run the profile first (make run PROFILE=seeds)")
        runs[seed] = json.loads(path.read_text())["notebooks"]
    notebooks: dict[str, dict[str, list]] = {}
    for seed in seeds:
        for notebook, result in runs[seed].items():
            for key in result.get("figures", {}):
                notebooks.setdefault(notebook, {}).setdefault(key, [])
    for notebook, figures in notebooks.items():
        for key in figures:
            figures[key] = [runs[seed].get(notebook, {}).get("figures", {}).get(key) for seed in seeds]
    seconds = {notebook: [runs[seed].get(notebook, {}).get("seconds") for seed in seeds] for notebook in notebooks}
    return {"seeds": list(seeds), "machine": _machine(), "notebooks": notebooks, "seconds": seconds}


def write(spread: dict, path: Path) -> Path:
    """Write `spread` as JSON to `path` (through a temporary file, so a failed write keeps the old one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(spread, indent=1) + "\n")
    partial.replace(path)
    return path


def _number(value: float) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value != 0 and abs(value) < 1e-3:
        return f"{value:.1e}"
    digits = max(0, 2 - math.floor(math.log10(abs(value)))) if value else 0
    return f"{value:,.{min(digits, 4)}f}"


def rows(spread: dict) -> list[dict]:
    """One row per key figure (a KEY_WORDS key): its values over the seeds; numbers get min, median and max,
    yes/no verdicts say whether they flip between seeds, and a difference in points whether its sign does."""
    table = []
    for notebook, figures in spread["notebooks"].items():
        for key, values in figures.items():
            present = [v for v in values if v is not None]
            if not present or not any(word in key for word in KEY_WORDS):
                continue
            row = {"notebook": notebook[:2], "figure": key, "seeds": len(present)}
            if all(isinstance(v, bool) for v in present):
                row["reading"] = ("flips: " if len(set(present)) > 1 else "the same in every seed: ") + \
                                 ", ".join(_number(v) for v in present)
                row["flips"] = len(set(present)) > 1
            elif all(isinstance(v, (int, float)) and math.isfinite(v) for v in present):
                row["reading"] = (f"{_number(min(present))} / {_number(statistics.median(present))} / "
                                  f"{_number(max(present))}")
                row["flips"] = "points" in key and min(present) < 0 < max(present)  # a difference whose sign moves
                if row["flips"]:
                    row["reading"] += ": the sign differs between seeds"
            else:
                continue
            table.append(row)
    return table


def table(spread: dict) -> str:
    """The guide's markdown table: what varies between runs, generated from `spread`."""
    lines = [f"Seeds {', '.join(map(str, spread['seeds']))} of the quick settings (`params/seeds.yaml`) on "
             f"{spread['machine']}; from `docs/seed_spread.json`. Numbers: min / median / max over the seeds "
             "(accuracies as fractions, times in ms); a yes/no verdict that differs between seeds **flips**, and so does a "
             "difference in points whose sign differs.", "",
             "| notebook | figure | seeds | min / median / max, or the verdict per seed |", "| --- | --- | --- | --- |"]
    flipped = []
    for row in rows(spread):
        reading = f"**{row['reading']}**" if row["flips"] else row["reading"]
        lines.append(f"| {row['notebook']} | `{row['figure']}` | {row['seeds']} | {reading} |")
        flipped += [f"{row['notebook']} `{row['figure']}`"] if row["flips"] else []
    lines += ["", (f"Between these seeds {len(flipped)} reading{'s' if len(flipped) != 1 else ''} flip: "
                   f"{', '.join(flipped)}. A student's run may land on either side: ask for the figure with its "
                   "interval, never for the winner.") if flipped else "No reading flips between these seeds."]
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"


def runtime_table(spread: dict, limit_s: float = 300) -> str:
    """The guide's markdown table of cold run times: per notebook, min / median / max over the seeds, and how many
    seeds stayed within `limit_s` (the 5 minutes a student should wait for a notebook run cold)."""
    lines = [f"Cold runs (nothing cached: each seed's chain starts from an empty hand-over folder) of the quick settings "
             f"on {spread['machine']}, seeds {', '.join(map(str, spread['seeds']))}, one notebook at a time; from "
             "`docs/seed_spread.json`.", "",
             "| notebook | cold run: min / median / max | seeds within 5 minutes |", "| --- | --- | --- |"]
    for notebook, values in spread.get("seconds", {}).items():
        present = [v for v in values if v is not None]
        if not present:
            continue
        spans = " / ".join(_duration(v) for v in (min(present), statistics.median(present), max(present)))
        within = sum(v <= limit_s for v in present)
        reading = f"{within} of {len(present)}" if within == len(present) else \
            f"**{within} of {len(present)}** (the longest {_duration(max(present) - limit_s)} over)"
        lines.append(f"| {notebook} | {spans} | {reading} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=Path("results/seeds/spread.json"),
                        help="the runner's spread.json (default: results/seeds/spread.json)")
    parser.add_argument("--out", type=Path, default=DOCS_FILE)
    args = parser.parse_args(argv)
    try:
        spread = json.loads(args.results.read_text())
    except (OSError, ValueError) as err:
        print(f"error: cannot read {args.results} ({err}); run `make run PROFILE=seeds` first", file=sys.stderr)
        return 2
    print(f"wrote {write(spread, args.out)}; `python -m peel_course.guide` puts its table in the instructor guide")
    return 0


if __name__ == "__main__":
    sys.exit(main())
