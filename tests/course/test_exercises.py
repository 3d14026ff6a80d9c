"""peel_course.exercises: stubs replace the fenced solutions, stub and check cells are tagged, the output
is deterministic and --check catches drift. (Each exercise notebook running up to its first TODO is tested
on the hand-out's copy, in test_handout.py.)"""

from pathlib import Path

import nbformat
import pytest

from peel_course import exercises
from peel_utils.checks import catalog

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"

CELL = '''class SparsePruner:
    def __init__(self, masks):
        self.masks = masks

    def prune(self, model):
        ### BEGIN SOLUTION
        ### HINT: multiply in place (Tensor.mul_):
        ### HINT: https://pytorch.org/docs/stable/generated/torch.Tensor.mul_.html
        for name, param in model.named_parameters():
            param.mul_(self.masks[name])
        return model
        ### END SOLUTION


def double(x):
    ### BEGIN SOLUTION
    return 2 * x
    ### END SOLUTION'''


def test_stub_replaces_each_fence_at_its_indentation():
    source, targets = exercises.stub_source(CELL)
    assert targets == ["SparsePruner.prune", "double"]
    lines = source.split("\n")
    assert lines[:5] == CELL.split("\n")[:5]  # everything outside the fences is kept
    assert lines[5:10] == [
        "        # TODO: multiply in place (Tensor.mul_):",
        "        #       https://pytorch.org/docs/stable/generated/torch.Tensor.mul_.html",
        "        # YOUR CODE STARTS HERE",
        '        raise NotImplementedError("exercise: write your code in SparsePruner.prune here, '
        'then run the check cell below")',
        "        # YOUR CODE ENDS HERE",
    ]
    assert "### " not in source and "param.mul_" not in source and "2 * x" not in source
    assert f"    # TODO: {exercises.DEFAULT_HINT}" in lines  # no HINT line: the default TODO
    namespace = {}
    exec(compile(source, "<stub>", "exec"), namespace)
    with pytest.raises(NotImplementedError, match="in double here"):
        namespace["double"](1)


def test_the_enclosing_function_is_found_through_loops_but_not_from_a_previous_one():
    source = "def f(x):\n    return x\n\nfor i in range(2):\n    ### BEGIN SOLUTION\n    print(i)\n    ### END SOLUTION"
    stubbed, targets = exercises.stub_source(source)
    assert targets == [""]
    assert 'raise NotImplementedError("exercise: write your code here, then run the check cell below")' in stubbed


@pytest.mark.parametrize("source, message", [
    ("x = 1\n### BEGIN SOLUTION\nx = 2", "has no '### END SOLUTION' after it"),
    ("x = 1\n### END SOLUTION", "without a '### BEGIN SOLUTION' before it"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\nx = 2\n### END SOLUTION", "cannot nest"),
    ("def f():\n    ### BEGIN SOLUTION\n    return 1\n### END SOLUTION", "same indentation"),
])
def test_bad_fences_raise_value_error_naming_the_cell_and_line(source, message):
    with pytest.raises(ValueError, match=message) as info:
        exercises.stub_source(source, "01_x.ipynb, cell 4")
    assert str(info.value).startswith("01_x.ipynb, cell 4, line ")


def solution_notebook() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata.update({"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                        "widgets": {"application/vnd.jupyter.widget-state+json": {"state": {}}}})
    params = nbformat.v4.new_code_cell("seed = 0  # seed", id="params", execution_count=1,
                                       metadata={"tags": ["parameters"], "execution": {"iopub.status.busy": "t"}})
    exercise = nbformat.v4.new_code_cell(CELL, id="exercise", execution_count=2,
                                         outputs=[nbformat.v4.new_output("stream", name="stdout", text="hello\n")])
    check = nbformat.v4.new_code_cell("print(double(2))", id="check", execution_count=3,
                                      outputs=[nbformat.v4.new_output("stream", name="stdout", text="4\n")])
    nb.cells = [nbformat.v4.new_markdown_cell("# Title\n### BEGIN SOLUTION in markdown stays", id="title"),
                params, exercise, check]
    return nb


def test_make_exercise_clears_outputs_and_keeps_the_rest():
    solution = solution_notebook()
    original = nbformat.writes(solution)
    nb, stubs = exercises.make_exercise(solution, "x.ipynb")
    assert nbformat.writes(solution) == original  # the solution object is left alone
    assert stubs == [exercises.Stub(2, "SparsePruner.prune"), exercises.Stub(2, "double")]
    assert "widgets" not in nb.metadata and nb.metadata.kernelspec.name == "python3"
    assert [c.id for c in nb.cells] == ["title", "params", "exercise", "check"]
    assert nb.cells[0].source == solution.cells[0].source  # markdown untouched
    assert nb.cells[1].metadata == {"tags": ["parameters"]}
    assert nb.cells[2].metadata == {"peel": {"stubs": ["SparsePruner.prune", "double"]}}
    for cell in nb.cells[1:]:
        assert cell.outputs == [] and cell.execution_count is None
    assert nb.cells[3].source == "print(double(2))" and nb.cells[3].metadata == {}  # no catalog check: not tagged
    nbformat.validate(nb)


def test_a_catalog_check_call_is_tagged_with_its_exercise_and_stale_tags_are_dropped():
    solution = solution_notebook()
    solution.cells[3].source = "checks.check_calc_mask(calc_mask)\n"
    solution.cells[1].metadata["peel"] = {"check": "calc_mask"}  # a stale tag in the solution: not copied
    nb, _ = exercises.make_exercise(solution, "01_x.ipynb")
    assert [exercises.check_of(c) for c in nb.cells] == [None, None, None, "calc_mask"]
    assert [exercises.stubs_of(c) for c in nb.cells] == [[], [], ["SparsePruner.prune", "double"], []]
    assert nb.cells[1].metadata == {"tags": ["parameters"]}


@pytest.mark.parametrize("source", ["checks.check_calc_mask(calc_mask)\nprint('done')",
                                    "checks.check_calc_mask(calc_mask)\nchecks.check_sparse_pruner(SparsePruner)",
                                    "checks.check_calc_mask(my_mask)"])
def test_a_check_cell_holding_more_than_its_call_is_an_error(source):
    solution = solution_notebook()
    solution.cells[3].source = source
    with pytest.raises(ValueError, match=r"01_x.ipynb, cell 3: a check cell must hold exactly its check call, "
                                         r"`checks.check_calc_mask\(calc_mask\)`"):
        exercises.make_exercise(solution, "01_x.ipynb")


@pytest.mark.parametrize("metadata", [{}, {"peel": "calc_mask"}, {"peel": {"check": 3, "stubs": "f"}}])
def test_cells_without_a_well_formed_tag_have_none(metadata):
    cell = nbformat.v4.new_code_cell("checks.check_calc_mask(calc_mask)", metadata=metadata)
    assert exercises.check_of(cell) is None and exercises.stubs_of(cell) == []


def test_generation_is_deterministic_and_check_detects_drift(tmp_path, capsys):
    solutions, out = tmp_path / "notebooks", tmp_path / "exercises"
    solutions.mkdir()
    nbformat.write(solution_notebook(), solutions / "01_demo.ipynb")
    nbformat.write(solution_notebook(), solutions / "02_demo.ipynb")
    args = ["--notebooks", str(solutions), "--exercises", str(out)]
    assert exercises.main(["--check", *args]) == 1  # nothing generated yet
    assert "01_demo.ipynb (missing)" in capsys.readouterr().err

    assert exercises.main(args) == 0
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    assert sorted(first) == ["01_demo.ipynb", "02_demo.ipynb"]
    assert exercises.main(args) == 0
    assert {p.name: p.read_bytes() for p in out.iterdir()} == first  # byte-identical
    assert exercises.main(["--check", *args]) == 0

    edited = solution_notebook()
    edited.cells[2].source = edited.cells[2].source.replace("2 * x", "3 * x")
    nbformat.write(edited, solutions / "02_demo.ipynb")
    capsys.readouterr()
    assert exercises.main(["--check", *args]) == 0  # the change is inside a fence: same exercise
    edited.cells[3].source = "print(double(3))"
    nbformat.write(edited, solutions / "02_demo.ipynb")
    (out / "03_old.ipynb").write_text("{}")
    assert exercises.main(["--check", *args]) == 1
    err = capsys.readouterr().err
    assert "02_demo.ipynb (differs from its solution notebook)" in err and "01_demo" not in err
    assert "03_old.ipynb (no solution notebook of that name)" in err
    assert (out / "02_demo.ipynb").read_bytes() == first["02_demo.ipynb"]  # --check writes nothing

    assert exercises.main(args) == 0
    assert not (out / "03_old.ipynb").exists()
    assert exercises.main(["--check", *args]) == 0


def test_a_bad_fence_stops_generation_before_anything_is_written(tmp_path, capsys):
    solutions, out = tmp_path / "notebooks", tmp_path / "exercises"
    solutions.mkdir()
    nb = solution_notebook()
    nb.cells[3].source = "### END SOLUTION"
    nbformat.write(solution_notebook(), solutions / "01_ok.ipynb")
    nbformat.write(nb, solutions / "02_bad.ipynb")
    assert exercises.main(["--notebooks", str(solutions), "--exercises", str(out)]) == 2
    assert "02_bad.ipynb, cell 3, line 1" in capsys.readouterr().err
    assert not out.exists()


def test_no_solution_notebooks_is_a_clear_error(tmp_path, capsys):
    assert exercises.main(["--notebooks", str(tmp_path), "--exercises", str(tmp_path / "e")]) == 2
    assert "no solution notebooks" in capsys.readouterr().err


def test_committed_exercises_match_the_solution_notebooks():
    assert exercises.main(["--check", "--notebooks", str(NOTEBOOKS), "--exercises", str(ROOT / "exercises")]) == 0


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob(exercises.NOTEBOOK_GLOB)), ids=lambda p: p.name[:2])
def test_each_catalog_exercise_has_one_tagged_check_cell_and_each_stub_cell_is_followed_by_one(path):
    nb, stubs = exercises.make_exercise(nbformat.read(path, as_version=4), path.name)
    tagged = [exercises.check_of(c) for c in nb.cells if exercises.check_of(c)]
    assert tagged == [e.name for e in catalog.for_notebook(path.name[:2])]  # in the catalog's order
    for cell_index in sorted({s.cell_index for s in stubs}):
        assert exercises.stubs_of(nb.cells[cell_index]) == [s.where for s in stubs if s.cell_index == cell_index]
        following = [c for c in nb.cells[cell_index + 1:] if c.cell_type == "code"][:1]
        assert following and exercises.check_of(following[0]), \
            f"{path.name}: cell {cell_index} holds an exercise; the next code cell should be its check"
