"""peel_course.handout: the hand-out holds the exercise notebooks and a peel_utils without the answers,
its checks still pass the solutions and name the mistakes, its notebooks run to their first TODO, and a
build replaces only a folder a previous build made."""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from peel_course import exercises, handout
from peel_utils.checks import catalog

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("handout") / "handout"
    archive = handout.build(ROOT, out)
    return out, archive


def test_the_handout_holds_exercises_package_and_readme_but_no_solutions(built):
    out, archive = built
    assert sorted(p.name for p in out.iterdir()) == [handout.MARKER, "README.md", "data", "exercises", "peel_utils",
                                                     "pyproject.toml", "requirements.txt"]
    assert sorted(p.name for p in (out / "exercises").iterdir()) == sorted(p.name for p in (ROOT / "exercises").glob("*.ipynb"))
    def files(package):
        return {p.relative_to(package).as_posix() for p in package.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    assert files(out / "peel_utils") == files(ROOT / "peel_utils") | {"checks/answer_key.pt"}  # peel_utils, nothing else
    with zipfile.ZipFile(archive) as zf:
        names = set(zf.namelist())
    assert names >= {"handout/exercises/01_lenet_mnist_pruning.ipynb", "handout/peel_utils/checks/answer_key.pt",
                     "handout/README.md", "handout/requirements.txt", f"handout/{handout.MARKER}"}
    assert not any("notebooks/" in name or "peel_course" in name for name in names)


def test_no_solution_code_ships(built):
    out, _ = built
    text = "\n".join(p.read_text(encoding="utf-8") for p in (out / "peel_utils").rglob("*.py"))
    for leak in ("_masked_epoch", "_kl_variants", "_cpd_scores", "kthvalue(15)", "torch.autograd.grad(grad",
                 "rows[\"accuracy\"] >= dense - max_drop / 100"):
        assert leak not in text
    assert "is exercise 'choose_ratio' of notebook 02" in (out / "peel_utils" / "sweep.py").read_text(encoding="utf-8")
    for path in (out / "exercises").glob("*.ipynb"):
        assert "### BEGIN SOLUTION" not in path.read_text(encoding="utf-8")


def test_exercise_and_check_cells_carry_nbgrader_metadata(built):
    out, _ = built
    nb = nbformat.read(out / "exercises" / "01_lenet_mnist_pruning.ipynb", as_version=4)
    original = nbformat.read(ROOT / "exercises" / "01_lenet_mnist_pruning.ipynb", as_version=4)
    assert [c.source for c in nb.cells] == [c.source for c in original.cells]
    graded = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
    solutions = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")]
    assert [c.source for c in graded] == ["checks.check_get_model_sparsity(get_model_sparsity)",
                                          "checks.check_calc_mask(calc_mask)", "checks.check_sparse_pruner(SparsePruner)",
                                          "checks.check_masked_training_step(train_one_epoch, device)"]
    assert [exercises.check_of(c) for c in graded] == [e.name for e in catalog.for_notebook("01")]
    _, stubs = exercises.make_exercise(nbformat.read(ROOT / "notebooks" / "01_lenet_mnist_pruning.ipynb", as_version=4))
    assert [nb.cells.index(c) for c in solutions] == [s.cell_index for s in stubs]  # the cells the generator tagged
    assert all(c.metadata.nbgrader.locked for c in graded) and not any(c.metadata.nbgrader.locked for c in solutions)
    assert graded[0].metadata.nbgrader == {"grade_id": "check-get-model-sparsity", "schema_version": 3, "task": False,
                                           "solution": False, "grade": True, "locked": True, "points": 1}


def test_a_folder_the_handout_did_not_make_is_left_intact(tmp_path, capsys):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.md").write_text("my notes", encoding="utf-8")
    with pytest.raises(SystemExit, match=f"{notes} exists and is not a hand-out this tool made .*choose a new folder"):
        handout.main(["--out", str(notes), "--root", str(ROOT)])
    assert [p.name for p in notes.iterdir()] == ["todo.md"] and (notes / "todo.md").read_text(encoding="utf-8") == "my notes"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes"]  # no zip, no scratch folder left


def test_a_zip_the_handout_did_not_make_is_left_intact(tmp_path):
    (tmp_path / "handout.zip").write_bytes(b"a student's archive")
    with pytest.raises(SystemExit, match="handout.zip exists and is not a hand-out this tool made"):
        handout.build(ROOT, tmp_path / "handout")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["handout.zip"]
    assert (tmp_path / "handout.zip").read_bytes() == b"a student's archive"


def test_a_previous_handout_is_replaced_and_a_failed_build_keeps_it(tmp_path, monkeypatch):
    out = tmp_path / "handout"
    handout.build(ROOT, out)
    (out / "exercises" / "stale.ipynb").write_text("{}", encoding="utf-8")
    assert handout.build(ROOT, out) == tmp_path / "handout.zip"
    assert not (out / "exercises" / "stale.ipynb").exists() and (out / handout.MARKER).is_file()
    (out / "exercises" / "stale.ipynb").write_text("{}", encoding="utf-8")

    def fail(path):
        raise OSError("disk full")
    monkeypatch.setattr(handout, "store_answers", fail)
    with pytest.raises(OSError, match="disk full"):
        handout.build(ROOT, out)
    assert (out / "exercises" / "stale.ipynb").exists()  # the previous hand-out, as it was
    assert sorted(p.name for p in tmp_path.iterdir()) == ["handout", "handout.zip"]  # the scratch folder is gone


SCRIPT = r'''
import json, sys, torch, nbformat
torch.set_num_threads(1)
import peel_utils
from peel_utils import checks, sweep
assert peel_utils.__file__.startswith(sys.argv[1]), peel_utils.__file__
results = {}
for prefix, calls in json.loads(sys.argv[2]).items():
    namespace = {"device": torch.device("cpu")}
    exec("import torch, torch.nn as nn, torch.nn.functional as F, pandas as pd, torch_pruning as tp\n"
         "from tqdm.auto import tqdm\nfrom peel_utils import structured", namespace)
    path = next(__import__("pathlib").Path(sys.argv[3]).glob(prefix + "_*.ipynb"))
    for cell in nbformat.read(path, as_version=4).cells:
        if "### BEGIN SOLUTION" in cell.source:
            exec(cell.source, namespace)
    for check, answer in calls:
        try:
            getattr(checks, check)(eval(answer, namespace, {"sweep": sweep}))
            results[check + ":" + answer] = "passed"
        except Exception as err:
            results[check + ":" + answer] = type(err).__name__ + ": " + str(err)
print(json.dumps(results))
'''


@pytest.mark.slow  # runs every check (small trainings) in a subprocess
def test_the_handouts_checks_pass_the_solutions_from_stored_answers(built):
    out, _ = built
    calls = {"01": [["check_get_model_sparsity", "get_model_sparsity"], ["check_calc_mask", "calc_mask"],
                    ["check_sparse_pruner", "SparsePruner"], ["check_masked_training_step", "train_one_epoch"],
                    ["check_calc_mask", "lambda t, s: calc_mask(t, s).float()"]],
             "02": [["check_choose_ratio", "choose_ratio"], ["check_choose_ratio", "sweep.choose_ratio"]],
             "03": [["check_bitmask_bytes", "bitmask_bytes"]], "04": [["check_distillation_loss", "distillation_loss"]],
             "05": [["check_finite_difference_hv", "finite_difference_hv"],
                    ["check_hessian_taylor_stats", "hessian_taylor_stats"], ["check_cpd_importance", "CPDImportance"]],
             "06": [["check_quantize_per_channel", "quantize_per_channel"]]}
    env = {**os.environ, "PYTHONPATH": str(out), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(out), json.dumps(calls), str(ROOT / "notebooks")],
                          capture_output=True, text=True, env=env, cwd=out, timeout=300)
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout.strip().splitlines()[-1])
    wrong = {"check_calc_mask:lambda t, s: calc_mask(t, s).float()", "check_choose_ratio:sweep.choose_ratio"}
    assert {k: v for k, v in results.items() if k not in wrong} == {k: "passed" for k in results if k not in wrong}
    assert results["check_calc_mask:lambda t, s: calc_mask(t, s).float()"].startswith("CheckFailed: calc_mask: wrong dtype")
    assert results["check_choose_ratio:sweep.choose_ratio"] == (  # a stub in the hand-out, blocked all the same
        "CheckFailed: choose_ratio: your answer calls the workbook's own implementation "
        "(peel_utils.sweep.choose_ratio); write it yourself")


@pytest.mark.slow
@pytest.mark.parametrize("prefix", ["01", "02", "03", "04", "05"])
def test_a_handout_notebook_runs_to_its_first_todo_from_a_fresh_copy(prefix, built, tmp_path, monkeypatch,
                                                                     link_handover_files, fast_parameters):
    out, archive = built
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(tmp_path)  # a fresh copy, as a student unpacks it
    copy = tmp_path / "handout"
    link_handover_files(copy / "data")  # stand-ins for what the notebooks before it hand over (conftest)
    monkeypatch.setenv("PYTHONPATH", str(copy))  # the kernel imports the hand-out's peel_utils
    monkeypatch.setenv("MPLBACKEND", "agg")
    path = next((copy / "exercises").glob(f"{prefix}_*.ipynb"))
    nb = nbformat.read(path, as_version=4)
    parameters = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    nb.cells.insert(parameters + 1, nbformat.v4.new_code_cell(fast_parameters.get(prefix, "")))  # as papermill would
    nb.cells.insert(0, nbformat.v4.new_code_cell(
        f"import peel_utils\nassert peel_utils.__file__.startswith({str(copy)!r}), peel_utils.__file__"))
    client = NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    with pytest.raises(CellExecutionError) as info:
        client.execute()
    assert info.value.ename == "NotImplementedError" and "exercise: write your code in" in info.value.evalue
    _, stubs = exercises.make_exercise(nbformat.read(ROOT / "notebooks" / path.name, as_version=4))
    assert f"write your code in {stubs[0].where} here" in info.value.evalue
    failed = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"
              and any(o.output_type == "error" for o in c.outputs)]
    ran = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.execution_count]
    assert len(failed) == 1 and failed[0] == ran[-1] > stubs[0].cell_index + 2  # nothing failed before it
    assert exercises.check_of(nb.cells[failed[0]]) == catalog.for_notebook(prefix)[0].name  # its check ran the stub
