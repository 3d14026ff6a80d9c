"""peel_course.grade on tiny notebooks (no training), tagged as the exercise generator tags them: a solved
one, typical mistakes, an untouched one, edited, untagged, duplicated and forged check cells, invalid JSON,
a hanging cell and a kernel crash each give the right rows."""

import csv
import os

import nbformat
import pytest

from peel_course import exercises, grade
from peel_utils.checks import catalog

SPARSITY = {
    "solved": "def get_model_sparsity(model):\n"
              "    params = list(model.parameters())\n"
              "    return 1 - sum(int(p.count_nonzero()) for p in params) / sum(p.numel() for p in params)",
    "density": "def get_model_sparsity(model):\n"
               "    params = list(model.parameters())\n"
               "    return sum(int(p.count_nonzero()) for p in params) / sum(p.numel() for p in params)",
    "stub": "def get_model_sparsity(model):\n"
            "    raise NotImplementedError('exercise: write your code in get_model_sparsity here')",
    "delegates": "from peel_utils.prune import get_model_sparsity",
}
MASK_STUB = "def calc_mask(tensor, sparsity):\n    raise NotImplementedError('exercise: write your code in calc_mask here')"


def notebook(sparsity: str, *, between: str = ""):
    """A notebook 01 with two of its exercises, as the exercise generator writes it (check cells tagged)."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    cells = [nbformat.v4.new_code_cell('data_root = "../data"', metadata={"tags": ["parameters"]}),
             nbformat.v4.new_code_cell("from pathlib import Path\nfrom peel_utils import checks\n"
                                       "assert Path(data_root).name == 'data' and Path(data_root).is_dir()"),
             nbformat.v4.new_code_cell(SPARSITY[sparsity]),
             nbformat.v4.new_code_cell("checks.check_get_model_sparsity(get_model_sparsity)")]
    cells += [nbformat.v4.new_code_cell(between)] if between else []
    cells += [nbformat.v4.new_code_cell(MASK_STUB), nbformat.v4.new_code_cell("checks.check_calc_mask(calc_mask)")]
    nb.cells = cells
    return exercises.make_exercise(nb, "01_lenet_mnist_pruning.ipynb")[0]


def fake_pass(exercise: str, tag: str | None = None):
    """A cell printing what a passed check prints, tagged as the check of `tag` if given."""
    return nbformat.v4.new_code_cell(f'print("✓ passed: {exercise}")', metadata={"peel": {"check": tag}} if tag else {})


def tampered_bob():
    nb = notebook("density")
    assert exercises.check_of(nb.cells[-1]) == "calc_mask"
    nb.cells[-1].source = fake_pass("calc_mask").source  # the check call edited, its tag kept
    return nb


def tampered_carol():
    nb = notebook("stub")
    nb.cells[-1] = fake_pass("calc_mask")  # the check cell replaced by an untagged one
    nb.cells += [fake_pass("SparsePruner.prune", tag="SparsePruner.prune"),  # a forged tag
                 fake_pass("get_model_sparsity", tag="get_model_sparsity")]  # a second copy of a tagged cell
    return nb


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("grade")
    subs, data = root / "submissions", root / "teacher_data"
    (data / "checkpoints" / "quick").mkdir(parents=True)
    (data / "checkpoints" / "quick" / "02_resnet50_teacher.pt").write_bytes(b"teacher's")
    students = {"alice": notebook("solved"), "bob": tampered_bob(), "carol": tampered_carol(),
                "dave": notebook("solved", between="import time\ntime.sleep(600)"),
                "erin": notebook("solved", between="import os\nos._exit(1)"), "fred": notebook("delegates")}
    for student, nb in students.items():
        (subs / student / "exercises").mkdir(parents=True)
        nbformat.write(nb, subs / student / "exercises" / "01_lenet_mnist_pruning.ipynb")
    (subs / "gina").mkdir()
    (subs / "gina" / "01_lenet_mnist_pruning.ipynb").write_text('{"cells": [', encoding="utf-8")
    before = {p: p.read_bytes() for p in subs.rglob("*.ipynb")}
    out = root / "grades"
    backend = os.environ.get("MPLBACKEND")
    assert grade.main([str(subs), "--out", str(out), "--timeout", "20", "--data", str(data)]) == 0
    assert os.environ.get("MPLBACKEND") == backend  # the caller's environment is left as it was
    with (out / "grades.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return {"rows": rows, "out": out, "subs": subs, "before": before, "data": data}


def status(graded, student, exercise):
    found = [r for r in graded["rows"] if r["student"] == student and r["exercise"] == exercise]
    assert len(found) == 1, (student, exercise, graded["rows"])
    return found[0]["status"], found[0]["message"]


@pytest.mark.slow  # runs the submissions in kernels (about a minute)
def test_csv_columns_and_one_row_per_exercise(graded):
    assert list(graded["rows"][0]) == ["student", "notebook", "exercise", "status", "message"]
    for student in ("alice", "bob", "carol", "fred", "gina"):
        exercises = sorted(r["exercise"] for r in graded["rows"] if r["student"] == student and r["exercise"] != "(notebook)")
        assert exercises == sorted(["get_model_sparsity", "calc_mask", "SparsePruner.prune", "train_one_epoch"])


@pytest.mark.slow  # runs the submissions in kernels (about a minute)
def test_solved_mistaken_untouched_and_delegating_answers(graded):
    assert status(graded, "alice", "get_model_sparsity")[0] == "passed"
    assert status(graded, "alice", "calc_mask") == ("not attempted", "exercise: write your code in calc_mask here")
    state, message = status(graded, "bob", "get_model_sparsity")
    assert state == "failed" and "fraction of non-zero parameters" in message
    state, message = status(graded, "fred", "get_model_sparsity")
    assert state == "failed" and "calls the workbook's own implementation" in message
    state, message = status(graded, "alice", "SparsePruner.prune")  # checked at the end, though its cell is missing
    assert state == "error" and message.startswith("NameError: name 'SparsePruner' is not defined")
    assert message.endswith("(its check cell was missing: checked at the end of the notebook)")


@pytest.mark.slow  # runs the submissions in kernels (about a minute)
def test_edited_untagged_duplicated_and_forged_check_cells_cannot_fake_a_pass(graded):
    missing = " (its check cell was missing: checked at the end of the notebook)"
    assert status(graded, "bob", "calc_mask") == ("not attempted", "exercise: write your code in calc_mask here")
    assert status(graded, "carol", "calc_mask") == ("not attempted", "exercise: write your code in calc_mask here" + missing)
    assert status(graded, "carol", "get_model_sparsity") == (  # its second tagged copy is the student's cell
        "not attempted", "exercise: write your code in get_model_sparsity here")
    state, message = status(graded, "carol", "SparsePruner.prune")  # the forged cell ran the real check
    assert state == "error" and message == "NameError: name 'SparsePruner' is not defined"


@pytest.mark.slow  # runs the submissions in kernels (about a minute)
def test_hang_crash_and_invalid_json_get_rows_and_grading_goes_on(graded):
    assert status(graded, "dave", "get_model_sparsity")[0] == "passed"  # checked before the hang
    assert status(graded, "dave", "(notebook)")[1].startswith("timed out after 20 s")
    assert status(graded, "dave", "calc_mask") == ("error", "not reached: the notebook timed out after 20 s "
                                                            "(the grader's limit per notebook)")
    assert status(graded, "erin", "get_model_sparsity")[0] == "passed"
    assert "kernel died" in status(graded, "erin", "(notebook)")[1]
    assert status(graded, "erin", "calc_mask")[0] == "error"
    state, message = status(graded, "gina", "(notebook)")
    assert state == "error" and message.startswith("not a valid notebook")
    assert status(graded, "gina", "calc_mask")[0] == "error"


@pytest.mark.slow  # runs the submissions in kernels (about a minute)
def test_nothing_of_the_teachers_changes(graded):
    assert {p: p.read_bytes() for p in graded["subs"].rglob("*.ipynb")} == graded["before"]
    assert sorted(p.name for p in graded["subs"].rglob("*") if p.is_file()) == ["01_lenet_mnist_pruning.ipynb"] * 7
    assert (graded["data"] / "checkpoints" / "quick" / "02_resnet50_teacher.pt").read_bytes() == b"teacher's"


@pytest.mark.slow  # runs the submissions in kernels (about a minute)
def test_summary_shows_each_student(graded):
    text = (graded["out"] / "summary.md").read_text(encoding="utf-8")
    assert "| alice | ✓ | – | ! | ! | 1/4 |" in text
    assert "| bob | ✗ | – | ! | ! | 0/4 |" in text
    assert "- dave, `01_lenet_mnist_pruning.ipynb`: timed out" in text


def test_prepare_restores_tagged_checks_adds_missing_ones_and_sets_data_root(tmp_path):
    nb = tampered_carol()
    checks = grade.prepare(nb, tmp_path, catalog.for_notebook("01"))
    assert [(c.index, c.exercise.name, c.added) for c in checks] == [
        (4, "get_model_sparsity", False), (7, "SparsePruner.prune", False), (9, "calc_mask", True),
        (10, "train_one_epoch", True)]
    assert [nb.cells[c.index].source for c in checks] == [c.exercise.call for c in checks]
    assert nb.cells[1].source == f"data_root = {str(tmp_path)!r}  # set by the grader"
    assert nb.cells[6].source == nb.cells[8].source.replace("get_model_sparsity", "calc_mask") == \
        'print("✓ passed: calc_mask")'  # the student's cells stay, graded by nothing
    assert len(nb.cells) == 11


def test_a_notebook_at_the_top_is_named_by_its_stem(tmp_path):
    nbformat.write(notebook("solved"), tmp_path / "01_alice.ipynb")
    assert grade.submissions(tmp_path) == [("01_alice", tmp_path / "01_alice.ipynb")]
