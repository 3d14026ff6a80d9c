"""nbgrader for real: a course directory whose source notebooks nbgrader 0.9 generates, releases and autogrades.

    python -m peel_course.nbgrader [--out nbgrader] [--data data] [--only 01 02]    # make nbgrader

writes, for every solution notebook notebooks/NN_*.ipynb:

    nbgrader/nbgrader_config.py                   the course's settings (nbgrader reads it from this folder)
    nbgrader/source/NN_name/NN_name.ipynb         one assignment per notebook, named as the notebook
    nbgrader/data -> <the workbook's data/>       a link: datasets and the hand-over checkpoints (make run's)

A source notebook is its solution notebook with nbgrader's cell metadata (schema 3) and the fences nbgrader
reads: each `### BEGIN SOLUTION` / `### END SOLUTION` region stays (nbgrader replaces the fenced lines
only, so a function's signature stays in the student's copy), its `### HINT:` lines are moved above it
as `# TODO:` comments (nbgrader would drop them with the solution), and its cell is a solution cell; each
check cell (peel_course.exercises tags them) is a locked grade cell worth POINTS point(s); the other cells
carry no nbgrader metadata (students may change the parameters and explore). The cells also keep the
exercise generator's `peel` tags, so a released notebook can be graded by `make grade` as well.
Outputs, execution counts and widget state are cleared, cell ids kept: a cell's id is its `grade_id`,
as in the hand-out's exercise notebooks (peel_course.handout), so those too can be autograded.

nbgrader scores a grade cell 0 when its outputs hold an error or anything written to stderr, and full
points otherwise: the checks print one line to stdout and raise CheckFailed on a wrong answer.

In nbgrader_config.py: the stub nbgrader writes in place of a solution (the workbook's wording),
a per-cell time limit for training cells (Execute.timeout; nbgrader's default is 30 s), and LinkData
before nbgrader's autograde steps: the notebooks read `../data` relative to their folder, which for
autograded/<student>/<assignment>/ is autograded/<student>/data; LinkData makes it a scratch folder whose
files link to the course's data/ (peel_course.grade.scratch_data: a notebook's writes replace links,
never the teacher's files), fresh for each student and notebook.
"""

from __future__ import annotations

import argparse
import copy
import os
import shutil
import sys
from pathlib import Path

import nbformat
from nbconvert.preprocessors import Preprocessor
from traitlets import Bool, Unicode

from peel_course import exercises
from peel_course.kernel import KERNEL_ENV

POINTS = 1  # nbgrader points per check cell
COURSE_ID = "peel"
CELL_TIMEOUT = 900  # seconds per cell under nbgrader's autograde (notebook 01's longest quick cell takes about 10)
STUB = ('# YOUR CODE STARTS HERE\n'
        'raise NotImplementedError("exercise: write your code here, then run the check cell below")\n'
        '# YOUR CODE ENDS HERE')
DATA_MARKER = ".peel-nbgrader-data"  # in each data folder LinkData makes: only such a folder is replaced
CONFIG = '''"""nbgrader's settings for this course directory (written by python -m peel_course.nbgrader; run nbgrader here).

    nbgrader generate_assignment 01_lenet_mnist_pruning      # source/ -> release/ (the student's version)
    nbgrader autograde 01_lenet_mnist_pruning                # submitted/<student>/<assignment>/ -> autograded/, gradebook.db
"""

import os
import sys

from nbgrader.converters.autograde import Autograde

c = get_config()  # noqa: F821 (nbgrader defines it)
root = os.path.dirname(os.path.abspath(__file__))
# nbgrader runs `alembic` (its gradebook's migrations) from the PATH: the one installed beside it, venv activated or not
os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
c.CourseDirectory.root = root
c.CourseDirectory.course_id = {course_id!r}
# The kernels autograde starts inherit the course tools' environment: the timing set-up, and no widgets without a
# front end (a widget cell can stall a headless executor for good)
os.environ.update({kernel_env!r})

# The stub that replaces each `### BEGIN SOLUTION` ... `### END SOLUTION` region in the release
c.ClearSolutions.code_stub = {{"python": {stub!r}}}

# Seconds per cell when autograde executes a notebook (nbgrader's default, 30, is shorter than a training cell)
c.Execute.timeout = {timeout}

# The notebooks read ../data: for autograded/<student>/<assignment>/ a fresh folder of links to the course's data/
c.LinkData.data = os.path.join(root, "data")
c.Autograde.autograde_preprocessors = ["peel_course.nbgrader.LinkData", *Autograde.class_traits()["autograde_preprocessors"].default()]
'''


def grade_id(cell: nbformat.NotebookNode, index: int) -> str:
    """The cell's nbgrader grade_id: its cell id (the hand-out uses the same), or cell-<index> without one."""
    return cell.get("id") or f"cell-{index}"


def nbgrader_metadata(cell: nbformat.NotebookNode, index: int) -> dict | None:
    """nbgrader's metadata (schema 3) for a cell the exercise generator tagged: a solution cell for one with
    stubs, a locked grade cell worth POINTS for a check cell; None for any other cell."""
    base = {"grade_id": grade_id(cell, index), "schema_version": 3, "task": False}
    if exercises.stubs_of(cell):
        return {**base, "solution": True, "grade": False, "locked": False}
    if exercises.check_of(cell):
        return {**base, "solution": False, "grade": True, "locked": True, "points": POINTS}
    return None


def hints_above(source: str) -> str:
    """`source` with the `### HINT:` lines of each fence moved above its `### BEGIN SOLUTION` line as
    `# TODO:` comments (DEFAULT_HINT where a fence has none), the TODO text of the exercise notebooks."""
    lines, out, i = source.split("\n"), [], 0
    while i < len(lines):
        line = lines[i]
        if line.strip() != exercises.BEGIN:
            out.append(line)
            i += 1
            continue
        indent = line[: len(line) - len(line.lstrip())]
        hints = []
        i += 1
        while i < len(lines) and lines[i].strip().startswith(exercises.HINT):
            hint = lines[i].strip()[len(exercises.HINT):].strip()
            hints += [hint] if hint else []
            i += 1
        hints = hints or [exercises.DEFAULT_HINT]
        out += [f"{indent}# TODO: {hints[0]}"] + [f"{indent}#       {hint}" for hint in hints[1:]] + [line]
    return "\n".join(out)


def source_notebook(solution: nbformat.NotebookNode, label: str = "notebook") -> nbformat.NotebookNode:
    """The nbgrader source version of a solution notebook (a new object; see the module docstring).
    Malformed fences raise ValueError naming `label`, as in the exercise generator."""
    tagged, _ = exercises.make_exercise(solution, label)  # validates the fences; tags stub and check cells
    nb = copy.deepcopy(solution)
    nb.metadata.pop("widgets", None)
    nb.metadata.pop("papermill", None)
    for index, (cell, tags) in enumerate(zip(nb.cells, tagged.cells)):
        cell.metadata.pop("execution", None)
        cell.metadata.pop(exercises.METADATA, None)
        if exercises.METADATA in tags.metadata:
            cell.metadata[exercises.METADATA] = copy.deepcopy(tags.metadata[exercises.METADATA])
        metadata = nbgrader_metadata(cell, index)
        if metadata:
            cell.metadata["nbgrader"] = metadata
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
            cell.source = hints_above(cell.source)
    return nb


class LinkData(Preprocessor):
    """nbgrader autograde step (set in nbgrader_config.py): before a notebook runs in
    autograded/<student>/<assignment>/, make autograded/<student>/data a scratch folder whose files link to
    `data` (the course's data/, read only), replacing the one a previous run made (it holds DATA_MARKER).
    A data folder that this step did not make is left as it is."""

    data = Unicode("", help="the course's data folder: datasets and checkpoints/<profile>/").tag(config=True)
    enabled = Bool(True).tag(config=True)

    def preprocess(self, nb, resources):
        from peel_course.grade import scratch_data

        student = Path(resources["metadata"]["path"]).resolve().parent
        target = student / "data"
        if os.path.lexists(target) and not (target / DATA_MARKER).is_file():
            self.log.warning("%s was not made by peel_course.nbgrader.LinkData: left as it is", target)
            return nb, resources
        if target.exists():
            shutil.rmtree(target)
        scratch_data(Path(self.data), student)
        (target / DATA_MARKER).write_text("made by peel_course.nbgrader.LinkData: replaced on the next autograde\n",
                                          encoding="utf-8")
        self.log.info("%s: links to %s", target, self.data)
        return nb, resources


def build(root: Path, out: Path, data: Path | None = None, only: list[str] | None = None) -> list[str]:
    """Write the course directory `out` (see the module docstring) for the solution notebooks of the
    repository at `root` (those whose number is in `only`, if given); return the assignment names.
    An existing source notebook is replaced; nothing else in `out` (release/, submitted/, the gradebook)
    is touched. `data` (default root/data) is linked as out/data unless out/data exists."""
    paths = sorted((root / "notebooks").glob(exercises.NOTEBOOK_GLOB))
    if only:
        paths = [p for p in paths if p.name[:2] in only]
    if not paths:
        raise FileNotFoundError(f"no solution notebooks ({exercises.NOTEBOOK_GLOB}) in {root / 'notebooks'}"
                                + (f" numbered {' '.join(only)}" if only else ""))
    notebooks = {path.stem: source_notebook(nbformat.read(path, as_version=4), path.name) for path in paths}
    out.mkdir(parents=True, exist_ok=True)
    (out / "nbgrader_config.py").write_text(CONFIG.format(course_id=COURSE_ID, stub=STUB, timeout=CELL_TIMEOUT, kernel_env=KERNEL_ENV),
                                            encoding="utf-8")
    for name, nb in notebooks.items():
        folder = out / "source" / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.ipynb").write_text(exercises.render(nb), encoding="utf-8")
    data = (data or root / "data").absolute()
    if not os.path.lexists(out / "data"):
        data.mkdir(parents=True, exist_ok=True)
        (out / "data").symlink_to(data, target_is_directory=True)
    return list(notebooks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("nbgrader"), help="the course directory (made if absent)")
    parser.add_argument("--root", type=Path, default=Path("."), help="the repository root")
    parser.add_argument("--data", type=Path, default=None,
                        help="the data folder autograde links to (default: the repository's data/)")
    parser.add_argument("--only", nargs="+", metavar="NN", help="only these notebooks, by number")
    args = parser.parse_args(argv)
    try:
        names = build(args.root, args.out, args.data, args.only)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}/nbgrader_config.py and {len(names)} source notebooks in {args.out}/source/; then, in "
          f"{args.out}/: nbgrader generate_assignment {names[0]}, release it, and after collecting, "
          f"nbgrader autograde {names[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
