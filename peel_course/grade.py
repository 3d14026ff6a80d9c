"""Grade submitted exercise notebooks: run each one, read its check cells, write a table.

    python -m peel_course.grade SUBMISSIONS [--out grades] [--timeout 900] [--data data]

SUBMISSIONS holds one sub-folder per student (the folder's name is the student) with that
student's exercise notebooks anywhere inside, or notebooks directly (the file's stem is the
student). Each notebook is executed with nbclient in a scratch copy, so nothing of the teacher's
changes: its `data_root` points at a scratch data folder whose files link to --data (the
teacher's datasets and hand-over checkpoints, read only: a notebook's writes replace the links).
Check cells are those the exercise generator tagged (peel_course.exercises.check_of). Each gets
back its exercise's original call from the catalog, and the check of an exercise with no tagged
cell (deleted, or its tag removed) is added at the end of the notebook, so an edited or deleted
check cell cannot fake a pass: verdicts are read only from the cells the grader wrote. Execution
goes on after errors, so every exercise is graded; a notebook gets --timeout seconds in all.

grades.csv has one row per student, notebook and exercise: status is passed, failed (the check's
message says why), not attempted (the stub's NotImplementedError) or error (anything else: the
code crashed, the notebook timed out, its kernel died, it is not a valid notebook). A problem of
the notebook as a whole also gets a row whose exercise is "(notebook)". summary.md shows the
same as a table per student.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

from peel_course.exercises import check_of
from peel_course.kernel import kernel_config
from peel_utils.checks import catalog

STATUSES = ("passed", "failed", "not attempted", "error")
NOTEBOOK_ROW = "(notebook)"
_PREFIX = re.compile(r"^(\d\d)_")


@dataclass(frozen=True)
class Row:
    student: str
    notebook: str
    exercise: str
    status: str
    message: str


def submissions(folder: Path) -> list[tuple[str, Path]]:
    """(student, notebook path) for every notebook under `folder`, sorted; checkpoints folders skipped."""
    found = []
    for path in sorted(folder.rglob("*.ipynb")):
        parts = path.relative_to(folder).parts
        if ".ipynb_checkpoints" in parts:
            continue
        found.append((parts[0] if len(parts) > 1 else path.stem, path))
    return found


@dataclass(frozen=True)
class CheckCell:
    """A check cell the grader wrote: its index in the prepared notebook, its exercise, and whether
    it was added at the end because the notebook had no tagged check cell for that exercise."""

    index: int
    exercise: catalog.Exercise
    added: bool


def prepare(nb: nbformat.NotebookNode, data_root: Path, expected: list[catalog.Exercise]) -> list[CheckCell]:
    """Make `nb` ready to grade, in place: the first code cell tagged as the check of a catalog exercise
    is replaced by a new cell holding that exercise's call, the check of each exercise in `expected`
    with no tagged cell is added at the end, and `data_root` is set after the parameters cell.
    Returns the cells the grader wrote, the only ones whose outputs give a verdict."""
    cells, written = [], {}  # exercise name -> (the cell the grader wrote, exercise, added)
    for cell in nb.cells:
        exercise = catalog.BY_NAME.get(check_of(cell)) if cell.cell_type == "code" else None
        if exercise is None or exercise.name in written:
            cells.append(cell)  # the student's cell (a second copy of a check cell is one too)
            continue
        cells.append(nbformat.v4.new_code_cell(exercise.call))
        written[exercise.name] = (cells[-1], exercise, False)
    for exercise in expected:
        if exercise.name not in written:
            cells.append(nbformat.v4.new_code_cell(exercise.call))
            written[exercise.name] = (cells[-1], exercise, True)
    nb.cells = cells
    parameters = next((i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])), -1)
    nb.cells.insert(parameters + 1, nbformat.v4.new_code_cell(f"data_root = {str(data_root)!r}  # set by the grader"))
    index = {id(cell): i for i, cell in enumerate(nb.cells)}
    return [CheckCell(index[id(cell)], exercise, added) for cell, exercise, added in written.values()]


def scratch_data(data: Path, into: Path) -> Path:
    """A data folder in `into` whose entries link to `data`'s; checkpoint files are linked one by
    one, so a notebook that writes a checkpoint replaces a link, never the teacher's file."""
    root = into / "data"
    root.mkdir(parents=True)
    for entry in sorted(data.iterdir()) if data.is_dir() else ():
        if entry.name != "checkpoints":
            (root / entry.name).symlink_to(entry.resolve())
            continue
        for profile in sorted(p for p in entry.iterdir() if p.is_dir()):
            (root / "checkpoints" / profile.name).mkdir(parents=True)
            for file in sorted(profile.iterdir()):
                (root / "checkpoints" / profile.name / file.name).symlink_to(file.resolve())
    return root


def verdict(cell: nbformat.NotebookNode) -> tuple[str, str]:
    """(status, message) from the outputs of an executed check cell."""
    for output in cell.get("outputs", []):
        if output.output_type == "error":
            if output.ename == "NotImplementedError":
                return "not attempted", output.evalue
            if output.ename == "CheckFailed":
                return "failed", output.evalue
            return "error", f"{output.ename}: {output.evalue}"
    text = "".join(o.get("text", "") for o in cell.get("outputs", []) if o.output_type == "stream")
    passed = [line for line in text.splitlines() if line.startswith("✓ passed:")]
    if passed:
        return "passed", passed[-1][len("✓ passed:"):].strip()
    return "error", "the check cell ran but printed no result"


def grade_notebook(student: str, path: Path, data: Path, timeout: float, kernel: str = "python3") -> list[Row]:
    """Rows for one submitted notebook (see the module docstring)."""
    name = path.name
    prefix = _PREFIX.match(name)
    expected = catalog.for_notebook(prefix.group(1)) if prefix else []

    def rows_for(exercises, status: str, message: str) -> list[Row]:
        return [Row(student, name, e.name, status, message) for e in exercises]

    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as err:  # not JSON, not a notebook: say so and go on
        message = f"not a valid notebook: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        return [Row(student, name, NOTEBOOK_ROW, "error", message)] + rows_for(expected, "error", message)
    with tempfile.TemporaryDirectory(prefix="peel-grade-") as tmp:
        workdir = Path(tmp) / "exercises"
        workdir.mkdir()
        shutil.copy2(path, workdir / name)  # a scratch copy: the notebook writes next to itself, not there
        check_cells = prepare(nb, scratch_data(data, Path(tmp)), expected)
        deadline = time.monotonic() + timeout
        problem = ""
        try:
            with kernel_config() as config:
                NotebookClient(nb, kernel_name=kernel, allow_errors=True, startup_timeout=120, config=config,
                               timeout_func=lambda cell: max(1, int(deadline - time.monotonic())),
                               resources={"metadata": {"path": str(workdir)}}).execute()
        except CellTimeoutError:
            problem = f"timed out after {timeout:g} s (the grader's limit per notebook)"
        except DeadKernelError:
            problem = "the kernel died (a crash, or the notebook ran out of memory)"
        except Exception as err:
            problem = f"could not be executed: {type(err).__name__}: {err}"
    rows = [Row(student, name, NOTEBOOK_ROW, "error", problem)] if problem else []
    for check in check_cells:
        cell = nb.cells[check.index]
        if cell.get("execution_count") is None and not cell.get("outputs"):
            status, message = "error", f"not reached: the notebook {problem}" if problem else "not reached"
        else:
            status, message = verdict(cell)
        if check.added:
            message = f"{message} (its check cell was missing: checked at the end of the notebook)"
        rows.append(Row(student, name, check.exercise.name, status, message))
    return rows


def write_csv(rows: list[Row], path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(Row.__dataclass_fields__))
        writer.writeheader()
        writer.writerows(asdict(row) for row in rows)


def summary(rows: list[Row]) -> str:
    """Markdown: per student, the status of each exercise (✓ passed, ✗ failed, – not attempted,
    ! error), then the count of passes per exercise and the notebook problems."""
    marks = {"passed": "✓", "failed": "✗", "not attempted": "–", "error": "!"}
    exercises = [e.name for e in catalog.EXERCISES if any(r.exercise == e.name for r in rows)]
    students = sorted({r.student for r in rows})
    lines = ["# Grades", "", "✓ passed, ✗ failed, – not attempted, ! error, blank: no notebook (details in grades.csv)",
             "", "| student | " + " | ".join(f"`{e}`" for e in exercises) + " | passed |",
             "| --- |" + " --- |" * (len(exercises) + 1)]
    for student in students:
        status = {r.exercise: r.status for r in rows if r.student == student}
        cells = [marks.get(status.get(e, ""), "") for e in exercises]
        lines.append(f"| {student} | " + " | ".join(cells) + f" | {cells.count('✓')}/{len(exercises)} |")
    passes = [sum(r.exercise == e and r.status == "passed" for r in rows) for e in exercises]
    lines.append("| **passed** | " + " | ".join(str(n) for n in passes) + " | |")
    problems = [r for r in rows if r.exercise == NOTEBOOK_ROW]
    if problems:
        lines += ["", "## Notebooks that could not be run to the end", ""]
        lines += [f"- {r.student}, `{r.notebook}`: {r.message}" for r in problems]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("submissions", type=Path, help="one sub-folder per student, or notebooks")
    parser.add_argument("--out", type=Path, default=Path("grades"), help="where grades.csv and summary.md go")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per notebook, all cells together")
    parser.add_argument("--data", type=Path, default=Path("data"),
                        help="the teacher's data folder (datasets, checkpoints/<profile>/), read only")
    args = parser.parse_args(argv)
    found = submissions(args.submissions)
    if not found:
        print(f"error: no notebooks under {args.submissions}", file=sys.stderr)
        return 2
    backend = os.environ.get("MPLBACKEND")
    os.environ["MPLBACKEND"] = backend or "agg"  # the kernels inherit it: no figure windows
    rows: list[Row] = []
    try:
        for number, (student, path) in enumerate(found, 1):
            print(f"[{number}/{len(found)}] {student}: {path.name}", flush=True)
            rows += grade_notebook(student, path, args.data, args.timeout)
    finally:  # leave the caller's environment as it was (later kernels of the caller want inline figures)
        if backend is None:
            del os.environ["MPLBACKEND"]
    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(rows, args.out / "grades.csv")
    (args.out / "summary.md").write_text(summary(rows), encoding="utf-8")
    counts = {s: sum(r.status == s for r in rows if r.exercise != NOTEBOOK_ROW) for s in STATUSES}
    print(f"{len(found)} notebooks graded: " + ", ".join(f"{n} {s}" for s, n in counts.items())
          + f"; wrote {args.out / 'grades.csv'} and {args.out / 'summary.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
