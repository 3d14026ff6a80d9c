import json
from pathlib import Path

import nbformat
import pytest

from peel_course import run


def make_notebook(path, *sources):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    cells = [nbformat.v4.new_code_cell(s) for s in sources]
    cells[0].metadata["tags"] = ["parameters"]
    nb.cells = cells
    nbformat.write(nb, path)


@pytest.fixture
def workbook(tmp_path):
    notebooks, params = tmp_path / "notebooks", tmp_path / "params"
    notebooks.mkdir()
    params.mkdir()
    make_notebook(notebooks / "01_ok.ipynb", "x = 1\nprofile = 'quick'",
                  "import matplotlib.pyplot as plt\nfrom peel_utils import report\n"
                  "plt.plot([0, x]); plt.show()\nreport.record(double=x * 2, profile=profile)")
    make_notebook(notebooks / "02_fail.ipynb", "y = 0", "print('fine')", "1 / y")
    (params / "quick.yaml").write_text('all:\n  profile: test\n"01":\n  x: 5\n')
    return tmp_path


def test_runs_in_order_records_figures_and_stops_at_failure(workbook, capsys):
    code = run.run_profile("quick", [], workbook / "notebooks", workbook / "params", workbook / "results")
    assert code == 1
    out = workbook / "results" / "quick"
    summary = json.loads((out / "summary.json").read_text())["notebooks"]
    assert summary["01_ok"]["status"] == "ok"
    assert summary["01_ok"]["figures"] == {"double": 10, "profile": "test"}
    assert summary["01_ok"]["parameters"] == {"x": 5, "profile": "test"}
    assert summary["02_fail"]["status"].startswith("failed at cell 2")
    assert "ZeroDivisionError" in summary["02_fail"]["status"]
    assert len(list((out / "figures").glob("01_ok_cell*_0.png"))) == 1
    assert (out / "summary.md").read_text().startswith("# Workbook results, profile `quick`")
    assert "02_fail.ipynb failed at cell 2" in capsys.readouterr().err


def test_only_selects_notebooks(workbook):
    assert run.run_profile("quick", ["01"], workbook / "notebooks", workbook / "params", workbook / "results") == 0


def test_profile_key_the_notebook_lacks_is_an_error(workbook):
    (workbook / "params" / "quick.yaml").write_text('"01":\n  z: 5\n')
    with pytest.raises(SystemExit, match=r"sets \['z'\]"):
        run.run_profile("quick", ["01"], workbook / "notebooks", workbook / "params", workbook / "results")


def test_missing_profile_lists_the_profiles(workbook):
    with pytest.raises(SystemExit, match="profiles: quick"):
        run.load_profile(workbook / "params", "fast")


@pytest.mark.parametrize("profile", ["quick", "full"])
def test_shipped_profiles_set_only_declared_parameters(profile):
    root = Path(__file__).resolve().parents[1]
    sections = run.load_profile(root / "params", profile)
    for notebook in sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        parameters = run.notebook_parameters(notebook, sections)
        assert parameters["profile"] == profile and parameters["seed"] == 0
        if "seeds" in sections.get(notebook.name[:2], {}):
            assert parameters["seeds"] == (1 if profile == "quick" else 3)


def test_clean_notebook_drops_frozen_progress_bars_and_keeps_other_outputs():
    nb = nbformat.v4.new_notebook()
    bar = nbformat.v4.new_output("display_data", data={
        "text/plain": "epochs:   0%|          | 0/2 [00:00<?, ?it/s]",
        "application/vnd.jupyter.widget-view+json": {"model_id": "x", "version_major": 2, "version_minor": 0}})
    slider = nbformat.v4.new_output("display_data", data={
        "text/plain": "interactive(children=(FloatSlider(value=0.8),))",
        "application/vnd.jupyter.widget-view+json": {"model_id": "y", "version_major": 2, "version_minor": 0}})
    text = nbformat.v4.new_output("stream", text="accuracy 97.8%\n")
    cell = nbformat.v4.new_code_cell("train()")
    cell.outputs = [bar, text, slider]
    nb.cells = [cell]
    nb.metadata["widgets"] = {"state": {}}
    run.clean_notebook(nb)
    assert nb.cells[0].outputs == [text, slider] and "widgets" not in nb.metadata
