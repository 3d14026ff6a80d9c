"""The instructor guide's generated parts, so they cannot drift: the list of exercises (from the checks'
catalog), the size of each lab's core path and "Going further" sections (from the notebooks), and what varies
between runs (from docs/seed_spread.json, peel_course.spread).

    python -m peel_course.guide            # rewrite the parts of docs/instructor.md between the markers
    python -m peel_course.guide --check    # CI: exit 1 if a part differs from what would be written
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from peel_course import spread
from peel_utils.checks import catalog
from peel_utils.report import GOING_FURTHER, lab_words

BEGIN = "<!-- BEGIN GENERATED: exercises (python -m peel_course.guide; do not edit by hand) -->"
END = "<!-- END GENERATED: exercises -->"
LABS_BEGIN = "<!-- BEGIN GENERATED: labs (python -m peel_course.guide; do not edit by hand) -->"
LABS_END = "<!-- END GENERATED: labs -->"
SPREAD_BEGIN = "<!-- BEGIN GENERATED: spread (python -m peel_course.guide, from docs/seed_spread.json; do not edit by hand) -->"
SPREAD_END = "<!-- END GENERATED: spread -->"
NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


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


def labs_table(notebooks: Path = NOTEBOOKS) -> str:
    """The markdown table: one row per notebook, its core sections and Going further sections with their
    markdown words (report.lab_words, the figures the run summary records)."""
    lines = ["| notebook | core sections | core words | going further | going further words |",
             "| --- | --- | --- | --- | --- |"]
    for notebook in sorted(notebooks.glob("[0-9][0-9]*_*.ipynb")):
        cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
        headings = [("".join(c["source"]).lstrip().splitlines() or [""])[0] for c in cells if c["cell_type"] == "markdown"]
        sections = [h[3:] for h in headings if h.startswith("## ")]
        optional = [h for h in sections if GOING_FURTHER.match("## " + h)]
        words = lab_words(notebook)
        lines.append(f"| {notebook.stem} | {len(sections) - len(optional)} | {words['core_words']:,} | "
                     f"{'; '.join(h.split(': ', 1)[-1] for h in optional) or 'none'} | {words['going_further_words']:,} |")
    return "\n".join(lines)


def _replace(text: str, begin: str, end: str, body: str) -> str:
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{body}\n{end}{tail}"


def render(text: str, notebooks: Path = NOTEBOOKS, spread_file: Path = spread.DOCS_FILE) -> str:
    """`text` with the part between BEGIN and END replaced by the current exercise table, the part between
    LABS_BEGIN and LABS_END (where the guide has those markers) by the current lab sizes, and the part between
    SPREAD_BEGIN and SPREAD_END by the table of what varies between runs (from `spread_file`)."""
    if BEGIN not in text or END not in text:
        raise ValueError(f"the guide has no '{BEGIN}' ... '{END}' markers")
    text = _replace(text, BEGIN, END, table())
    if LABS_BEGIN in text and LABS_END in text:
        text = _replace(text, LABS_BEGIN, LABS_END, labs_table(notebooks))
    if SPREAD_BEGIN in text and SPREAD_END in text:
        if not spread_file.exists():
            raise ValueError(f"{spread_file} is missing: run `make run PROFILE=seeds` and `python -m peel_course.spread`")
        text = _replace(text, SPREAD_BEGIN, SPREAD_END, spread.table(json.loads(spread_file.read_text())))
    return text


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
            print(f"{args.guide} is out of date with peel_utils/checks/catalog.py or the notebooks; run `make exercises` "
                  "(python -m peel_course.guide) and commit it", file=sys.stderr)
            return 1
        print(f"{args.guide} lists the exercises of peel_utils/checks/catalog.py and the notebooks' lab sizes")
        return 0
    if new != text:
        args.guide.write_text(new, encoding="utf-8")
        print(f"wrote {args.guide}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
