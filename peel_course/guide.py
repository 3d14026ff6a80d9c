"""The instructor guide's generated parts, so they cannot drift: the list of exercises (from the checks'
catalog), the size of each lab's core path and "Going further" sections (from the notebooks), and what varies
between runs and how long each notebook takes cold (from docs/seed_spread.json, peel_course.spread).

    python -m peel_course.guide            # rewrite the parts of docs/instructor.md between the markers
    python -m peel_course.guide --check    # CI: exit 1 if a part differs from what would be written
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from peel_course import spread
from peel_utils.checks import catalog

BEGIN = "<!-- BEGIN GENERATED: exercises (python -m peel_course.guide; do not edit by hand) -->"
END = "<!-- END GENERATED: exercises -->"
LABS_BEGIN = "<!-- BEGIN GENERATED: labs (python -m peel_course.guide; do not edit by hand) -->"
LABS_END = "<!-- END GENERATED: labs -->"
SPREAD_BEGIN = "<!-- BEGIN GENERATED: spread (python -m peel_course.guide, from docs/seed_spread.json; do not edit by hand) -->"
SPREAD_END = "<!-- END GENERATED: spread -->"
RUNTIME_BEGIN = "<!-- BEGIN GENERATED: run times (python -m peel_course.guide, from docs/seed_spread.json; do not edit by hand) -->"
RUNTIME_END = "<!-- END GENERATED: run times -->"
README_BEGIN = "<!-- BEGIN GENERATED: exercise list (python -m peel_course.guide; do not edit by hand) -->"
README_END = "<!-- END GENERATED: exercise list -->"
NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


GOING_FURTHER = re.compile(r"^##\s+Going further\b")
# Where notebook 01 teaches the interval, and where any notebook first prints a verdict: the lesson must come first
STATS_SECTION = r"^## Step 9: how sure is a difference\?"
FIRST_VERDICT = r"\.verdict\b"


def _cells(notebook: Path) -> list[dict]:
    return json.loads(Path(notebook).read_text(encoding="utf-8"))["cells"]


def lab_words(notebook: Path) -> dict[str, int]:
    """Markdown words on the notebook's core path and in its "Going further" sections.

    A markdown cell whose first line is a `## ` heading opens a section; the sections headed
    `## Going further ...` (and their `###` sub-sections) are optional, every other one is core.
    Words are whitespace-separated tokens of the markdown source. Returns
    {"core_words": ..., "going_further_words": ...}, the lab's size as this guide reports it.
    """
    counts = {"core_words": 0, "going_further_words": 0}
    optional = False
    for cell in _cells(notebook):
        if cell["cell_type"] != "markdown":
            continue
        text = "".join(cell["source"])
        first = text.lstrip().splitlines()[0] if text.strip() else ""
        if first.startswith("## "):
            optional = bool(GOING_FURTHER.match(first))
        counts["going_further_words" if optional else "core_words"] += len(text.split())
    return counts


def first_cell(notebook: Path, pattern: str, cell_type: str | None = None) -> int | None:
    """Index of the first cell of `notebook` (of `cell_type`, "code" or "markdown", when given) whose source
    matches the regular expression `pattern` (multi-line: ^ is any line's start); None when none does."""
    regex = re.compile(pattern, re.MULTILINE)
    for index, cell in enumerate(_cells(notebook)):
        if cell_type in (None, cell["cell_type"]) and regex.search("".join(cell["source"])):
            return index
    return None


def long_core_cells(notebook: Path, limit: int = 30) -> list[tuple[int, int]]:
    """(cell index, non-blank lines) of each code cell on the notebook's core path longer than `limit` lines that
    is not an exercise (a cell holding a `### BEGIN SOLUTION` fence): plumbing that belongs in `peel_utils`."""
    found, optional = [], False
    for index, cell in enumerate(_cells(notebook)):
        text = "".join(cell["source"])
        if cell["cell_type"] == "markdown" and text.lstrip().startswith("## "):
            optional = bool(GOING_FURTHER.match(text.lstrip()))
        lines = sum(1 for line in text.splitlines() if line.strip())
        if cell["cell_type"] == "code" and not optional and lines > limit and "### BEGIN SOLUTION" not in text:
            found.append((index, lines))
    return found


def structure(notebook: Path) -> dict[str, int]:
    """The figures the runner records for every notebook from its source, not its run: the lab's size
    (`lab_words`) and, where the notebook has them, the cell that teaches the interval (`stats_section_cell`) and
    the first cell that prints a verdict (`first_verdict_cell`), so the summary shows the lesson comes first."""
    found = {"stats_section_cell": first_cell(notebook, STATS_SECTION),
             "first_verdict_cell": first_cell(notebook, FIRST_VERDICT, cell_type="code")}
    return {**lab_words(notebook), **{key: index for key, index in found.items() if index is not None}}


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


def _readable(exercise: catalog.Exercise) -> list[str]:
    """The workbook implementations of `exercise` that the hand-out keeps (later notebooks call them), as `module.name`."""
    return [f"`{r.replace(':', '.')}`" for r in exercise.references if r not in exercise.handout_stubs]


def exercise_list() -> str:
    """The README's list: every exercise of the catalog, by notebook, and where the hand-out's `peel_utils` still
    holds a workbook implementation a student could read (the check blocks calling it, not reading it)."""
    lines = []
    for e in catalog.EXERCISES:
        readable = _readable(e)
        where = (f"its answer can be read in the hand-out's {', '.join(readable)} (the notebooks call it for their own work, so it stays)"
                 if readable else "no answer in the hand-out's `peel_utils`")
        lines.append(f"- {e.notebook}: {e.what}; {where}")
    return f"{len(catalog.EXERCISES)} exercises:\n\n" + "\n".join(lines)


def labs_table(notebooks: Path = NOTEBOOKS) -> str:
    """The markdown table: one row per notebook, its core sections and Going further sections with their
    markdown words (`lab_words`, the figures the runner records)."""
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
    LABS_BEGIN and LABS_END (where the guide has those markers) by the current lab sizes, and the parts between
    SPREAD_BEGIN and SPREAD_END, RUNTIME_BEGIN and RUNTIME_END by the tables of what varies between runs and of
    the cold run times (from `spread_file`)."""
    if BEGIN not in text or END not in text:
        raise ValueError(f"the guide has no '{BEGIN}' ... '{END}' markers")
    text = _replace(text, BEGIN, END, table())
    if LABS_BEGIN in text and LABS_END in text:
        text = _replace(text, LABS_BEGIN, LABS_END, labs_table(notebooks))
    for begin, end, render_part in ((SPREAD_BEGIN, SPREAD_END, spread.table),
                                    (RUNTIME_BEGIN, RUNTIME_END, spread.runtime_table)):
        if begin in text and end in text:
            if not spread_file.exists():
                raise ValueError(f"{spread_file} is missing: run `make run PROFILE=seeds` and `python -m peel_course.spread`")
            text = _replace(text, begin, end, render_part(json.loads(spread_file.read_text())))
    return text


def _readme(path: Path, check: bool) -> int:
    """Rewrite (or with `check`, compare) the exercise list between README_BEGIN and README_END of `path`; 0 when in
    step, written, or `path` has no markers or does not exist; 1 when `check` finds it out of date."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return 0
    if README_BEGIN not in text or README_END not in text:
        return 0
    new = _replace(text, README_BEGIN, README_END, exercise_list())
    if new == text:
        return 0
    if check:
        print(f"{path}'s exercise list is out of date with peel_utils/checks/catalog.py; run `make exercises` "
              "(python -m peel_course.guide) and commit it", file=sys.stderr)
        return 1
    path.write_text(new, encoding="utf-8")
    print(f"wrote {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if the guide is out of date")
    parser.add_argument("--guide", type=Path, default=None, help="default: docs/instructor.md")
    parser.add_argument("--readme", type=Path, default=None,
                        help="the README whose exercise list is generated too (default: README.md when --guide is not "
                             "given; skipped when it has no markers)")
    args = parser.parse_args(argv)
    if args.guide is None:
        args.guide, args.readme = Path("docs/instructor.md"), args.readme or Path("README.md")
    readme_status = _readme(args.readme, args.check) if args.readme else 0
    if readme_status:
        return readme_status
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
