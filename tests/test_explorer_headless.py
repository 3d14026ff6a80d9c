"""Notebook 01's explorer cells (the curve and the slider) run headless 20 times in a row without a stall: without a
front end `sliders.explore` opens no widget, so an executor has no widget message to wait for (the stall of
nbclient#312 / papermill#723 that once held `make run` for good).

The 20 runs share 4 kernels, 5 runs each (20 kernels took 3 minutes): the stall is a wait on a cell's widget
messages, so every run of the cells tests it again, the first in a fresh kernel (where the front end is detected) and
the others in a kernel that has run them before; a cell has 60 s.
"""

import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from peel_course.kernel import kernel_config

ROOT = Path(__file__).resolve().parents[1]
KERNELS, RUNS_PER_KERNEL = 4, 5
# What the explorer cells read from the notebook above them: a LeNet, validation batches, sweep and pandas. An
# untrained LeNet on 256 real validation digits: the figures mean nothing, the cells run as in the notebook.
SETUP = """\
import pandas as pd
import torch
from peel_utils import data, models, runtime, sweep
runtime.seed_everything(0)
model = models.LeNet()
loaders = data.make_loaders(data.load_dataset("mnist5k", max_images=256), 256)
"""


def explorer_cells() -> list[str]:
    """The sources of 01's cells that define and open the slider (found by what they call, not by position)."""
    cells = json.loads((ROOT / "notebooks" / "01_lenet_mnist_pruning.ipynb").read_text())["cells"]
    sources = ["".join(cell["source"]) for cell in cells if cell["cell_type"] == "code"]
    found = [s for s in sources if "def show_global_sparsity" in s or "sliders.explore(" in s]
    assert len(found) == 2, "01 should have one cell drawing the slider's figure and one opening the slider"
    return found


def test_the_explorer_cell_opens_no_widget_itself():
    _, opener = explorer_cells()
    assert "interact(" not in opener and "ipywidgets" not in opener  # the decision is sliders.explore's


@pytest.mark.slow  # 4 kernels
def test_the_explorer_cells_run_headless_20_times_without_a_stall(tmp_path):
    curve, opener = explorer_cells()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in (SETUP, *[curve, opener] * RUNS_PER_KERNEL)]
    runs = 0
    for _ in range(KERNELS):
        run = nbformat.reads(nbformat.writes(nb), as_version=4)  # a fresh copy each time
        with kernel_config() as config:  # a cell that waits past 60 s fails the test (CellTimeoutError)
            NotebookClient(run, timeout=60, kernel_name="python3", config=config,
                           resources={"metadata": {"path": str(tmp_path)}}).execute()
        assert "widgets" not in run.metadata  # no widget was made, so none was stored
        for drawn, opened in zip(run.cells[1::2], run.cells[2::2], strict=True):
            printed = "".join(output.get("text", "") for output in opened.outputs)
            assert printed.startswith("No front end to draw sliders (a headless run)")
            assert any("image/png" in output.get("data", {}) for output in drawn.outputs)  # the default figure
            runs += 1
    assert runs == KERNELS * RUNS_PER_KERNEL == 20
