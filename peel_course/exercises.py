"""Exercise notebooks, generated from the solution notebooks so the two never drift.

    python -m peel_course.exercises            # write exercises/NN_*.ipynb from notebooks/NN_*.ipynb
    python -m peel_course.exercises --check    # CI: exit 1 listing the exercise files that are out of date

In a solution notebook's code cell, the lines a student writes are fenced by two comment lines
at the indentation of the code they hold; optional `### HINT:` lines right after the first one
give the text of the TODO (say what to use and link the PyTorch docs):

    def calc_mask(tensor, sparsity):
        ### BEGIN SOLUTION
        ### HINT: torch.kthvalue gives the k-th smallest value:
        ### HINT: https://pytorch.org/docs/stable/generated/torch.kthvalue.html
        ...solution lines...
        ### END SOLUTION

The exercise copy holds, at the same indentation, instead of the fenced lines:

        # TODO: torch.kthvalue gives the k-th smallest value:
        #       https://pytorch.org/docs/stable/generated/torch.kthvalue.html
        # YOUR CODE STARTS HERE
        raise NotImplementedError("exercise: write your code in calc_mask here, then run the check cell below")
        # YOUR CODE ENDS HERE

Without a HINT line the TODO holds DEFAULT_HINT. Everything else is kept as it is (tags, the
`parameters` cell, cell ids, markdown); outputs, execution counts and widget state are cleared.
The solution notebooks keep their fences (they are comments). The same input always gives
byte-identical files.

The code cell after an exercise is its check cell: exactly the `call` of its exercise in
peel_utils.checks.catalog (`checks.check_<name>(...)`). This module is the one place that
recognises check cells: it tags them in the exercise notebooks it writes, and the hand-out and
the grader read the tags (check_of, stubs_of) instead of parsing source:

    cell.metadata["peel"] = {"check": "<exercise name>"}          # a check cell
    cell.metadata["peel"] = {"stubs": ["<function>", ...]}        # a cell with TODO stubs
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

from peel_utils.checks import catalog

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
HINT = "### HINT:"
DEFAULT_HINT = "write this part (the markdown above says what it does); PyTorch docs: https://pytorch.org/docs/stable/"
NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"
METADATA = "peel"  # the cell metadata key of the tags this module writes

_DEF = re.compile(r"^(\s*)(?:async\s+)?def\s+(\w+)")
_CLASS = re.compile(r"^(\s*)class\s+(\w+)")
_CHECK_CALL = re.compile(r"^\s*checks\.(check_\w+)\(", re.MULTILINE)


@dataclass(frozen=True)
class Stub:
    """One exercise: the cell it sits in and the function whose code the student writes."""

    cell_index: int
    where: str


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _enclosing(lines: list[str], start: int, indent: str) -> str:
    """'Class.method', 'function' or '' for the code at `lines[start]`, indented by `indent`."""
    names, limit = [], len(indent)
    for line in reversed(lines[:start]):
        if not line.strip() or line.lstrip().startswith("#") or len(_indent(line)) >= limit:
            continue
        limit = len(_indent(line))  # a block that holds the fence: def, class, for, with, ...
        match = _DEF.match(line) or _CLASS.match(line)
        if match:
            names.append(match.group(2))
    return ".".join(reversed(names))


def _stub_lines(indent: str, hints: list[str], where: str) -> list[str]:
    hints = hints or [DEFAULT_HINT]
    todo = [f"{indent}# TODO: {hints[0]}"] + [f"{indent}#       {hint}" for hint in hints[1:]]
    message = f"exercise: write your code{f' in {where}' if where else ''} here, then run the check cell below"
    return todo + [f"{indent}# YOUR CODE STARTS HERE",
                   f'{indent}raise NotImplementedError("{message}")',
                   f"{indent}# YOUR CODE ENDS HERE"]


def stub_source(source: str, label: str = "cell") -> tuple[str, list[str]]:
    """Replace each fenced solution in one cell's source by its stub; return it and the stubs' targets.

    A BEGIN without its END (or the reverse, a nested BEGIN, or an END at another indentation)
    raises ValueError naming `label` and the line.
    """
    lines = source.split("\n")
    out: list[str] = []
    targets: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.strip() == END:
            raise ValueError(f"{label}, line {i + 1}: '{END}' without a '{BEGIN}' before it")
        if line.strip() != BEGIN:
            out.append(line)
            i += 1
            continue
        indent, begin_line = _indent(line), i
        i += 1
        hints = []
        while i < len(lines) and lines[i].strip().startswith(HINT):
            hints.append(lines[i].strip()[len(HINT):].strip())
            i += 1
        while i < len(lines) and lines[i].strip() not in (BEGIN, END):
            i += 1
        if i == len(lines) or lines[i].strip() == BEGIN:
            raise ValueError(f"{label}, line {begin_line + 1}: '{BEGIN}' has no '{END}' after it "
                             "(fences cannot nest); close each fence before opening the next")
        if _indent(lines[i]) != indent:
            raise ValueError(f"{label}, line {i + 1}: '{END}' must have the same indentation as its "
                             f"'{BEGIN}' (line {begin_line + 1})")
        where = _enclosing(lines, begin_line, indent)
        out.extend(_stub_lines(indent, [h for h in hints if h], where))
        targets.append(where)
        i += 1
    return "\n".join(out), targets


def checked_exercise(source: str, label: str = "cell") -> catalog.Exercise | None:
    """The exercise whose check a code cell's source calls (`checks.check_<name>(` of the catalog), or None.

    A check cell holds its exercise's call and nothing else (the grader runs that call in its place):
    anything else next to a check call raises ValueError naming `label`.
    """
    called = [catalog.BY_CHECK[name] for name in _CHECK_CALL.findall(source) if name in catalog.BY_CHECK]
    if not called:
        return None
    if len(called) > 1 or source.strip() != called[0].call:
        raise ValueError(f"{label}: a check cell must hold exactly its check call, `{called[0].call}`, and nothing "
                         "else (the grader runs that call in its place); move other code to a cell of its own")
    return called[0]


def _tags(cell: nbformat.NotebookNode) -> dict:
    tags = cell.get("metadata", {}).get(METADATA)
    return tags if isinstance(tags, dict) else {}


def check_of(cell: nbformat.NotebookNode) -> str | None:
    """The exercise name a generated notebook's check cell carries in its metadata; None for any other cell."""
    name = _tags(cell).get("check")
    return name if isinstance(name, str) else None


def stubs_of(cell: nbformat.NotebookNode) -> list[str]:
    """The functions whose code a student writes in this cell (its metadata); [] for any other cell."""
    stubs = _tags(cell).get("stubs")
    return [s for s in stubs if isinstance(s, str)] if isinstance(stubs, list) else []


def make_exercise(solution: nbformat.NotebookNode, label: str = "notebook") -> tuple[nbformat.NotebookNode, list[Stub]]:
    """The exercise version of a solution notebook (a new object, its stub and check cells tagged) and its stubs."""
    nb = copy.deepcopy(solution)
    nb.metadata.pop("widgets", None)
    nb.metadata.pop("papermill", None)
    stubs: list[Stub] = []
    for index, cell in enumerate(nb.cells):
        cell.metadata.pop("execution", None)
        cell.metadata.pop(METADATA, None)
        if cell.cell_type != "code":
            continue
        cell.outputs = []
        cell.execution_count = None
        exercise = checked_exercise(cell.source, f"{label}, cell {index}")
        cell.source, targets = stub_source(cell.source, f"{label}, cell {index}")
        stubs += [Stub(index, where) for where in targets]
        if exercise:
            cell.metadata[METADATA] = {"check": exercise.name}
        elif targets:
            cell.metadata[METADATA] = {"stubs": targets}
    return nb, stubs


def render(nb: nbformat.NotebookNode) -> str:
    """The notebook's file text, as nbformat writes it (sorted keys), ending with a newline."""
    text = nbformat.writes(nb)
    return text if text.endswith("\n") else text + "\n"


def generate(notebooks_dir: Path) -> dict[str, str]:
    """File name -> exercise notebook text, for every notebooks_dir/NN_*.ipynb (nothing written)."""
    sources = sorted(notebooks_dir.glob(NOTEBOOK_GLOB))
    if not sources:
        raise FileNotFoundError(f"no solution notebooks ({NOTEBOOK_GLOB}) in {notebooks_dir}; "
                                "run from the repository root or pass --notebooks")
    return {path.name: render(make_exercise(nbformat.read(path, as_version=4), path.name)[0])
            for path in sources}


def differences(expected: dict[str, str], exercises_dir: Path) -> list[str]:
    """What differs between the generated texts and exercises_dir: 'NAME (why)' per file."""
    problems = []
    for name, text in expected.items():
        path = exercises_dir / name
        if not path.exists():
            problems.append(f"{name} (missing)")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{name} (differs from its solution notebook)")
    stale = sorted(p.name for p in exercises_dir.glob(NOTEBOOK_GLOB) if p.name not in expected)
    return problems + [f"{name} (no solution notebook of that name)" for name in stale]


def write(expected: dict[str, str], exercises_dir: Path) -> None:
    """Write the generated notebooks and remove exercise notebooks whose solution is gone."""
    exercises_dir.mkdir(parents=True, exist_ok=True)
    for name, text in expected.items():
        path = exercises_dir / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    for path in sorted(exercises_dir.glob(NOTEBOOK_GLOB)):
        if path.name not in expected:
            path.unlink()
            print(f"removed {path} (its solution notebook is gone)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if exercises/ differs from what would be generated")
    parser.add_argument("--notebooks", type=Path, default=Path("notebooks"), help="solution notebooks (input)")
    parser.add_argument("--exercises", type=Path, default=Path("exercises"), help="exercise notebooks (output)")
    args = parser.parse_args(argv)
    try:
        expected = generate(args.notebooks)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.check:
        problems = differences(expected, args.exercises)
        if problems:
            print(f"{args.exercises}/ is out of date with {args.notebooks}/:\n  " + "\n  ".join(problems)
                  + "\nRegenerate it with `make exercises` (python -m peel_course.exercises) and commit it.",
                  file=sys.stderr)
            return 1
        print(f"{args.exercises}/ matches {args.notebooks}/ ({len(expected)} notebooks)")
        return 0
    write(expected, args.exercises)
    print(f"{len(expected)} exercise notebooks in {args.exercises}/ are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
