import json
import os
import re
import time
from pathlib import Path

import nbformat
import pytest

from peel_course import run
from peel_utils.report import RECORD_ENV


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


@pytest.mark.slow  # executes notebooks
def test_runs_in_order_records_figures_and_stops_at_failure(workbook, capfd):
    code = run.run_profile("quick", [], workbook / "notebooks", workbook / "params", workbook / "results")
    assert code == 1
    out = workbook / "results" / "quick"
    summary = json.loads((out / "summary.json").read_text())["notebooks"]
    assert summary["01_ok"]["status"] == "ok"
    # the notebook's own record, and the lab's size the runner adds from its source (no markdown: 0 words)
    assert summary["01_ok"]["figures"] == {"double": 10, "profile": "test", "core_words": 0, "going_further_words": 0}
    assert summary["01_ok"]["parameters"] == {"x": 5, "profile": "test"}
    assert summary["02_fail"]["status"].startswith("failed at cell 2")
    assert "ZeroDivisionError" in summary["02_fail"]["status"]
    assert len(list((out / "figures").glob("01_ok_cell*_0.png"))) == 1
    assert (out / "summary.md").read_text().startswith("# Workbook results, profile `quick`")
    err = capfd.readouterr().err  # the kernels' stderr too (file descriptor 2)
    assert "02_fail.ipynb failed at cell 2" in err
    assert "without encryption" not in err  # the kernels ran over IPC (peel_course.kernel)


@pytest.mark.slow  # executes a notebook
def test_only_selects_notebooks(workbook):
    assert run.run_profile("quick", ["01"], workbook / "notebooks", workbook / "params", workbook / "results") == 0
    assert list(json.loads((workbook / "results" / "quick" / "summary.json").read_text())["notebooks"]) == ["01_ok"]


@pytest.mark.parametrize("argv", [["--only", "01", "99"], ["--store", "--only", "99", "1"]])
def test_an_unknown_only_prefix_stops_before_anything_runs(workbook, argv):
    with pytest.raises(SystemExit) as info:
        run.main([*argv, "--notebooks", str(workbook / "notebooks"), "--params", str(workbook / "params"),
                  "--results", str(workbook / "results")])
    unknown = "1 99" if "--store" in argv else "99"
    assert str(info.value) == (f"--only {unknown}: no notebook with that prefix in {workbook / 'notebooks'}/ "
                               "(there are: 01_ok.ipynb, 02_fail.ipynb)")
    assert not (workbook / "results").exists()


def test_a_profile_key_a_later_notebook_lacks_stops_before_anything_runs(workbook):
    (workbook / "params" / "quick.yaml").write_text('"02":\n  z: 5\n')
    with pytest.raises(SystemExit, match=r"02_fail.ipynb: the profile sets \['z'\]"):
        run.run_profile("quick", [], workbook / "notebooks", workbook / "params", workbook / "results")
    assert not (workbook / "results").exists()


@pytest.mark.parametrize("text, message", [
    ('all:\n  profile: test\n"01":\n  x: [5\n',
     r"quick.yaml, line 5: not valid YAML \(expected ',' or '\]', but got .*, while parsing a flow sequence at line 4\)"),
    ('all:\n  profile: test\n  x 5\n"01":\n',
     r"quick.yaml, line 4: not valid YAML \(could not find expected ':', while scanning a simple key at line 3\)"),
    ('all:\n  profile: test\n"01": 5\n', r"quick.yaml, line 3: section '01' holds int 5; it must hold indented"),
    ('all:\n  profile: test\n"01":\n  - x\n', r"quick.yaml, line 3: section '01' holds list \['x'\]"),
    ('all:\n  profile: test\n01:\n  x: 5\n', r"quick.yaml, line 3: section 1 is neither `all` nor a notebook prefix"),
    ('"01":\n  x: 5\n"01":\n  x: 6\n', r"quick.yaml, line 3: a second section '01'"),
    ("- all\n", r"quick.yaml, line 1: a profile is a mapping of sections"),
])
def test_a_malformed_profile_is_our_error_naming_the_file_and_line(workbook, text, message):
    (workbook / "params" / "quick.yaml").write_text(text)
    with pytest.raises(SystemExit, match=message) as info:
        run.load_profile(workbook / "params", "quick")
    assert str(info.value).startswith(str(workbook / "params" / "quick.yaml"))


def test_an_empty_profile_has_no_sections(workbook):
    (workbook / "params" / "quick.yaml").write_text("# nothing yet\n")
    assert run.load_profile(workbook / "params", "quick") == {}


def test_missing_profile_lists_the_profiles(workbook):
    with pytest.raises(SystemExit, match="profiles: quick"):
        run.load_profile(workbook / "params", "fast")


@pytest.mark.parametrize("profile", ["quick", "full"])
def test_shipped_profiles_set_only_declared_parameters(profile):
    root = Path(__file__).resolve().parents[2]
    sections = run.load_profile(root / "params", profile)
    for notebook in sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        parameters = run.notebook_parameters(notebook, sections)
        assert parameters["profile"] == profile and parameters["seed"] == 0
        if "seeds" in sections.get(notebook.name[:2], {}):
            assert parameters["seeds"] == (3 if profile == "full" or notebook.name[:2] == "01" else 1)  # 01's LeNets: cheap



def test_the_quick_profile_writes_out_the_notebooks_defaults():
    """params/quick.yaml is the notebooks' own defaults written out: a value there that differs from the parameters
    cell would make `make run` and a student's Run All disagree."""
    import papermill

    root = Path(__file__).resolve().parents[2]
    sections = run.load_profile(root / "params", "quick")
    drift = []
    for notebook in sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        defaults = {name: spec["default"] for name, spec in papermill.inspect_notebook(str(notebook)).items()}
        for name, value in run.notebook_parameters(notebook, sections).items():
            default = defaults[name].split("#")[0].strip()
            if repr(value) != default and str(value) != default.strip("\"'"):
                drift.append(f"{notebook.name}: {name} is {value!r} in params/quick.yaml, {default} in the notebook")
    assert drift == []

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


@pytest.mark.slow  # executes notebooks
def test_a_cell_past_the_cell_timeout_fails_the_run_naming_it(workbook):
    # papermill inserts its injected-parameters cell at 1, so the sleeping cell is cell 2 of the executed notebook
    make_notebook(workbook / "notebooks" / "01_ok.ipynb", "x = 1", "import time\ntime.sleep(3600)", "print('never')")
    start = time.monotonic()
    code = run.main(["--cell-timeout", "20", "--notebooks", str(workbook / "notebooks"), "--params",
                     str(workbook / "params"), "--results", str(workbook / "results")])
    assert code == 1 and time.monotonic() - start < 60
    status = json.loads((workbook / "results" / "quick" / "summary.json").read_text())["notebooks"]["01_ok"]["status"]
    assert status.startswith("failed at cell 2 (In [3]): it ran past the 20 s limit per cell (--cell-timeout")


@pytest.mark.slow  # executes a notebook
def test_kernels_get_the_timing_set_up_and_no_sliders_and_the_record_variable_is_restored(workbook, monkeypatch):
    monkeypatch.setenv(RECORD_ENV, "mine")
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    make_notebook(workbook / "notebooks" / "01_ok.ipynb", "x = 1", "import os\nfrom peel_utils import report\n"
                  "report.record(policy=os.environ['OMP_WAIT_POLICY'], sliders=os.environ['PEEL_SLIDERS'])")
    assert run.run_profile("quick", ["01"], workbook / "notebooks", workbook / "params", workbook / "results") == 0
    figures = json.loads((workbook / "results" / "quick" / "summary.json").read_text())["notebooks"]["01_ok"]["figures"]
    assert figures == {"policy": "PASSIVE", "sliders": "off", "core_words": 0, "going_further_words": 0}
    assert os.environ[RECORD_ENV] == "mine" and "OMP_WAIT_POLICY" not in os.environ


@pytest.mark.parametrize("value", ["0", "-5", "ten", "nan", "inf"])
def test_a_cell_timeout_that_is_not_a_positive_number_stops_before_any_kernel(workbook, value, capsys, monkeypatch):
    monkeypatch.setattr(run, "run_profile", lambda *args: pytest.fail("a notebook ran"))
    with pytest.raises(SystemExit):
        run.main(["--cell-timeout", value, "--notebooks", str(workbook / "notebooks")])
    assert f"argument --cell-timeout: {value!r} is not a number of seconds above 0" in capsys.readouterr().err


def test_each_profile_has_a_cell_timeout_of_minutes():
    assert run.CELL_TIMEOUT_S == {"quick": 600, "full": 1800} and run.DEFAULT_CELL_TIMEOUT_S == 600


@pytest.mark.slow  # executes notebooks
def test_over_seeds_runs_the_chain_once_per_seed_and_writes_the_spread(workbook):
    (workbook / "params" / "seeds.yaml").write_text("base: quick\nover_seeds: [3, 4]\n")
    make_notebook(workbook / "notebooks" / "01_ok.ipynb", "seed = 0\nprofile = 'quick'\nx = 1",
                  "from peel_utils import report\nreport.record(test_accuracy=seed / 10, profile=profile)")
    assert run.run_profile("seeds", ["01"], workbook / "notebooks", workbook / "params", workbook / "results") == 0
    spread = json.loads((workbook / "results" / "seeds" / "spread.json").read_text())
    assert spread["seeds"] == [3, 4]
    assert spread["notebooks"]["01_ok"] == {"test_accuracy": [0.3, 0.4], "profile": ["seeds-seed3", "seeds-seed4"],
                                            "core_words": [0, 0], "going_further_words": [0, 0]}


def test_a_base_profile_gives_its_settings_and_the_profile_adds_to_them(workbook):
    (workbook / "params" / "more.yaml").write_text('base: quick\nover_seeds: [0, 2]\n"01":\n  y: 2\n')
    assert run.load_profile(workbook / "params", "more") == {"all": {"profile": "test"}, "01": {"x": 5, "y": 2},
                                                            "over_seeds": [0, 2]}


@pytest.mark.parametrize("text, message", [
    ("over_seeds: [0, 0]\n", "`over_seeds:` holds [0, 0]; give a list of distinct seeds"),
    ("over_seeds: 3\n", "`over_seeds:` holds 3; give a list"),
    ("base: bad\n", "`base:` holds 'bad'; name another profile"),
])
def test_a_bad_over_seeds_or_base_is_our_error(workbook, text, message):
    (workbook / "params" / "bad.yaml").write_text(text)
    with pytest.raises(SystemExit, match=re.escape(message)):
        run.load_profile(workbook / "params", "bad")


def test_the_seeds_profile_is_the_quick_profile_over_three_seeds():
    root = Path(__file__).resolve().parents[2] / "params"
    seeds, quick = run.load_profile(root, "seeds"), run.load_profile(root, "quick")
    assert len(seeds.pop("over_seeds")) >= 3 and seeds == quick
