"""The instructor guide's list of exercises, generated from the checks' catalog so it cannot drift.

    python -m peel_course.guide            # rewrite the part of docs/instructor.md between the markers
    python -m peel_course.guide --check    # CI: exit 1 if that part differs from what would be written
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from peel_utils.checks import catalog

BEGIN = "<!-- BEGIN GENERATED: exercises (python -m peel_course.guide; do not edit by hand) -->"
END = "<!-- END GENERATED: exercises -->"


def _references(exercise: catalog.Exercise) -> str:
    if not exercise.references:
        return "none in `peel_utils`"
    return "; ".join(f"`{r.replace(':', '.')}`" + (" (a stub in the hand-out)" if r in exercise.handout_stubs else "")
                     for r in exercise.references)


def table() -> str:
    """The markdown table: one row per exercise, its check cell, what it blocks and the mistakes it names."""
    lines = ["| notebook | exercise | check cell | blocked while it runs | typical mistakes the check names |",
             "| --- | --- | --- | --- | --- |"]
    for e in catalog.EXERCISES:
        mistakes = "; ".join(m.label for m in e.mistakes.values())
        lines.append(f"| {e.notebook} | {e.what} | `{e.call}` | {_references(e)} | {mistakes} |")
    return "\n".join(lines)


def render(text: str) -> str:
    """`text` with the part between BEGIN and END replaced by the current table."""
    if BEGIN not in text or END not in text:
        raise ValueError(f"the guide has no '{BEGIN}' ... '{END}' markers")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{table()}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if the guide is out of date")
    parser.add_argument("--guide", type=Path, default=Path("docs/instructor.md"))
    args = parser.parse_args(argv)
    try:
        text = args.guide.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        print(f"error: cannot read the guide {args.guide} ({reason}); pass the instructor guide with --guide "
              "(docs/instructor.md from the repository root)", file=sys.stderr)
        return 2
    try:
        new = render(text)
    except ValueError as err:
        print(f"error: {args.guide}: {err}", file=sys.stderr)
        return 2
    if args.check:
        if new != text:
            print(f"{args.guide} is out of date with peel_utils/checks/catalog.py; run `make exercises` "
                  "(python -m peel_course.guide) and commit it", file=sys.stderr)
            return 1
        print(f"{args.guide} lists the exercises of peel_utils/checks/catalog.py")
        return 0
    if new != text:
        args.guide.write_text(new, encoding="utf-8")
        print(f"wrote {args.guide}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
