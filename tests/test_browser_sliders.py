"""The sliders of notebooks 01 and 04 in a real browser: JupyterLab on a copy of the notebook, headless Chromium
driven by playwright, Run All, then the slider moved by keyboard and its figure redrawn.

The headless runs (the runner, nbval, the graders) never open these sliders (peel_utils.sliders.explore draws them
only in a front end), so this is the one test that sees them work: the kernel is started by a Jupyter server, as in
`make lab`, with PEEL_SLIDERS unset, so the notebook's own detection (JPY_SESSION_NAME) has to open them.

It needs the playwright package (the `browser` extra: make test installs it) and a Chromium (Debian's `chromium`,
which .ci/run installs; playwright's own browser downloads are not used). Without them it skips, except under CI
(CI=true), where it fails: a CI without a browser must not pass this test silently.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from peel_course import kernel
from peel_utils import sliders

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]  # --headless: playwright's headless=True
RUN_ALL_TIMEOUT = 900  # s: Run All takes about 30 s for each notebook on 2 cores with the parameters below
SETTLE_TIMEOUT = 120   # s: a slider move's redraws (01: a pruned LeNet evaluated per step)
# Notebook 01 with fewer epochs and one seed: the slider's cell needs only the trained LeNet and the loaders.
FAST_01 = {"epochs": 2, "finetune_epochs": 1, "iterative_epochs": 1, "seeds": 1, "gmp_epochs": 2, "gmp_ramp_epochs": 1}
# Notebook 04 on the stand-in hand-over files (16 x 16 inputs, from the teacher's metadata): a seeded subset and
# one epoch, so the training after the slider takes seconds; the slider's cell does not depend on them.
FAST_04 = {"epochs": 1, "max_images": 128, "latency_rounds": 1, "latency_repeats": 1, "latency_batch": 8}


def chromium_path() -> str | None:
    return next(filter(None, map(shutil.which, CHROMIUM_NAMES)), None)


@pytest.fixture
def browser_tools():
    """playwright's sync API and a Chromium executable; skips without them, fails under CI=true."""
    missing = []
    try:
        from playwright import sync_api
    except ImportError:
        sync_api = None
        missing.append("the playwright package (pip install -e '.[browser]'; make test installs it)")
    chromium = chromium_path()
    if chromium is None:
        missing.append(f"a Chromium on the PATH ({' or '.join(CHROMIUM_NAMES)}; Debian: apt-get install chromium, "
                       "as .ci/run does)")
    if missing:
        message = "the browser test of the sliders needs " + " and ".join(missing)
        if os.environ.get("CI", "").strip().lower() not in ("", "0", "false"):
            pytest.fail(f"{message}; under CI (CI={os.environ['CI']}) this fails instead of skipping")
        pytest.skip(message)
    return sync_api, chromium


def notebook_copy(name: str, folder: Path, parameters: dict | None = None) -> Path:
    """notebooks/<name> copied into folder without its stored outputs (every execution count then comes from this
    run), with an injected-parameters cell after the parameters cell (as papermill writes it) for `parameters`."""
    nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    if parameters:
        at = next(i for i, cell in enumerate(nb.cells) if "parameters" in cell.metadata.get("tags", []))
        source = "# Parameters\n" + "\n".join(f"{name} = {value!r}" for name, value in parameters.items())
        nb.cells.insert(at + 1, nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]}))
    path = folder / name
    nbformat.write(nb, path)
    return path


def lab_environment(home: Path) -> dict[str, str]:
    """The kernel's environment as the course tools set it (peel_course.kernel.KERNEL_ENV), but with PEEL_SLIDERS
    unset, so the notebook's sliders open because a Jupyter server started the kernel; Jupyter's own state in `home`."""
    env = {**os.environ, **kernel.KERNEL_ENV}
    env.pop(sliders.SLIDERS_ENV, None)
    env.setdefault("TQDM_MININTERVAL", "2")
    for variable, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"), ("JUPYTER_RUNTIME_DIR", "runtime"),
                          ("JUPYTERLAB_SETTINGS_DIR", "settings"), ("JUPYTERLAB_WORKSPACES_DIR", "workspaces")):
        env[variable] = str(home / sub)
    # Every cell in the page at once (no windowing), so the slider's cell is there wherever the page is scrolled;
    # no question about Jupyter's news over the page.
    for plugin, settings in (("notebook-extension/tracker", '{"windowingMode": "none"}'),
                             ("apputils-extension/notification", '{"fetchNews": "false"}')):
        path = home / "settings" / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(settings)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def jupyter_lab(root: Path, home: Path) -> Iterator[str]:
    """JupyterLab serving `root` on 127.0.0.1 with a token, no browser of its own; yields its URL (token included)
    once it answers, stops it afterwards. `window.jupyterapp` is exposed to the page (as JupyterLab's own UI tests
    do), so the test runs commands and reads the kernel's state instead of guessing from the DOM."""
    port, token = free_port(), secrets.token_hex(16)
    log_path = home / "jupyterlab.log"
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
               "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
               "--ServerApp.allow_root=True", "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--LabApp.extension_manager=readonly"]
    env = lab_environment(home)
    with open(log_path, "wb") as log:
        server = subprocess.Popen(command, env=env, cwd=root, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None:
                pytest.fail(f"JupyterLab exited with {server.returncode}:\n{log_path.read_text()[-4000:]}")
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer on {url} in 120 s:\n{log_path.read_text()[-4000:]}")
                time.sleep(0.5)
        yield f"{url}/lab/tree/notebooks/{{}}?token={token}"
    finally:
        server.terminate()  # the server shuts its kernels down on SIGTERM
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@contextlib.contextmanager
def chromium_page(sync_api, chromium: str) -> Iterator:
    """A page of a headless Chromium with a fresh profile."""
    with sync_api.sync_playwright() as playwright, tempfile.TemporaryDirectory(prefix="peel-chromium-") as profile:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=chromium, headless=True, args=CHROMIUM_ARGS, viewport={"width": 1400, "height": 1000})
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


# The notebook's panel in JupyterLab, by file name (JavaScript, the body of functions taking `name`).
FIND_PANEL = """
    const app = window.jupyterapp;
    const panel = app && Array.from(app.shell.widgets('main')).find(w => w.context && w.context.path.endsWith(name));
"""

RUN_STATE = """name => {""" + FIND_PANEL + """
    if (window.peelRunAllError) return {error: `Run All Cells: ${window.peelRunAllError}`};
    if (!panel || !panel.content.model) return {ready: false, status: 'no notebook panel yet'};
    const session = panel.sessionContext.session;
    const kernelStatus = session && session.kernel ? session.kernel.status : 'no kernel';
    const cells = panel.content.widgets.filter(c => c.model.type === 'code' && c.model.sharedModel.getSource().trim());
    for (const [i, cell] of cells.entries()) {
        for (const output of cell.model.outputs.toJSON()) {
            if (output.output_type === 'error') {
                return {error: `code cell ${i + 1} of ${cells.length}: ${output.ename}: ${output.evalue}\\n`
                               + output.traceback.join('\\n').replace(/\\x1b\\[[0-9;]*m/g, '')};
            }
        }
    }
    const counts = cells.map(c => c.model.executionCount);
    const running = cells.filter(c => c.model.executionState === 'running').length;
    return {ready: kernelStatus === 'idle', kernel: kernelStatus, cells: cells.length, running,
            done: counts.filter(n => n !== null).length, counts};
}"""

RUN_ALL = """async name => {""" + FIND_PANEL + """
    await panel.context.ready;
    await panel.sessionContext.ready;
    app.shell.activateById(panel.id);
    // Not awaited: the command resolves only when every cell has run; RUN_STATE follows the run instead.
    app.commands.execute('notebook:run-all-cells').catch(e => { window.peelRunAllError = String(e); });
}"""

KERNEL_STATUS = """name => {""" + FIND_PANEL + """
    const session = panel.sessionContext.session;
    return session && session.kernel ? session.kernel.status : 'no kernel';
}"""


def run_all(page, name: str) -> None:
    """Run All Cells in the open notebook `name`; returns once the kernel is idle and every code cell has run in
    order (1, 2, ...). A cell's error fails the test at once, with its traceback."""
    deadline = time.monotonic() + 180
    while not (state := page.evaluate(RUN_STATE, name)).get("ready"):
        assert time.monotonic() < deadline, f"{name}: the notebook and its kernel were not ready in 180 s: {state}"
        time.sleep(0.5)
    page.evaluate(RUN_ALL, name)
    start = time.monotonic()
    while True:
        state = page.evaluate(RUN_STATE, name)
        if "error" in state:
            pytest.fail(f"{name} failed under Run All in JupyterLab, {state['error']}")
        if state["ready"] and not state["running"] and state["done"] == state["cells"]:
            break
        assert time.monotonic() - start < RUN_ALL_TIMEOUT, f"{name}: Run All not finished in {RUN_ALL_TIMEOUT} s: {state}"
        time.sleep(1)
    assert state["counts"] == list(range(1, state["cells"] + 1)), f"{name}: cells ran out of order: {state['counts']}"


def slider_parts(page, label: str):
    """The ipywidgets slider whose description is `label`, its handle, its readout and the figure in its cell."""
    from playwright.sync_api import expect

    slider = page.locator(".widget-slider").filter(
        has=page.locator(".widget-label", has_text=re.compile(rf"^\s*{re.escape(label)}\s*$")))
    expect(slider, f"one slider labelled {label!r}").to_have_count(1, timeout=30_000)
    cell = page.locator(".jp-Cell").filter(has=slider)
    figure = cell.locator(".jp-OutputArea-output img")
    expect(figure, f"one figure under the {label!r} slider").to_have_count(1, timeout=60_000)
    return slider.locator(".noUi-handle"), slider.locator(".widget-readout"), figure


def move(page, name: str, handle, readout, figure, key: str, presses: int, expect_readout: str, before: str) -> str:
    """Presses `key` on the slider's handle `presses` times, then waits until the readout shows `expect_readout`,
    the kernel is idle and the figure, no longer `before`, has stayed the same for 1.5 s: the last redraw.
    Returns the figure's src (a data URI of the PNG)."""
    handle.scroll_into_view_if_needed()
    handle.focus()
    for _ in range(presses):
        handle.press(key)
        time.sleep(0.2)
    deadline, last, steady_since = time.monotonic() + SETTLE_TIMEOUT, None, None
    while True:
        src, value, status = figure.get_attribute("src"), readout.text_content().strip(), page.evaluate(KERNEL_STATUS, name)
        if src != last or status != "idle":
            last, steady_since = src, time.monotonic()
        elif value == expect_readout and src != before and time.monotonic() - steady_since > 1.5:
            return src
        assert time.monotonic() < deadline, (f"{name}: after {presses} x {key} the slider reads {value!r} (expected "
                                             f"{expect_readout!r}), the kernel is {status}, the figure "
                                             f"{'unchanged' if src == before else 'changed'}")
        time.sleep(0.25)


def check_slider(sync_api, chromium: str, root: Path, name: str, label: str, start: str, presses: int, moved: str):
    """Notebook `name` under JupyterLab in Chromium: Run All, then the `label` slider (reading `start`) moved
    `presses` steps right (reading `moved`) redraws its figure, and moved back redraws the first figure again."""
    home = root / "jupyter-home"
    with jupyter_lab(root, home) as url, chromium_page(sync_api, chromium) as page:
        try:
            page.goto(url.format(name))
            run_all(page, name)
            handle, readout, figure = slider_parts(page, label)
            assert readout.text_content().strip() == start
            first = figure.get_attribute("src")
            assert first and first.startswith("data:image/png"), f"{name}: the figure under the slider: {first!r:.80}"
            after = move(page, name, handle, readout, figure, "ArrowRight", presses, moved, before=first)
            assert after != first
            back = move(page, name, handle, readout, figure, "ArrowLeft", presses, start, before=after)
            assert back == first, f"{name}: the {label} slider moved back to {start} did not draw its first figure again"
        except BaseException:
            with contextlib.suppress(Exception):  # the failure itself is what the test reports
                page.screenshot(path=home / "failure.png", full_page=True)
            print(f"the page at the failure: {home / 'failure.png'}; JupyterLab's log: {home / 'jupyterlab.log'}")
            raise


def test_notebook_01_sparsity_slider_redraws_its_figure(browser_tools, tmp_path):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "data").mkdir()  # data_root "../data": mnist5k is embedded; the checkpoints are written there
    name = notebook_copy("01_lenet_mnist_pruning.ipynb", tmp_path / "notebooks", FAST_01).name
    check_slider(*browser_tools, tmp_path, name, "sparsity", "0.80", 5, "0.85")


def test_notebook_04_temperature_slider_redraws_its_figure(browser_tools, tmp_path, link_handover_files):
    (tmp_path / "notebooks").mkdir()
    link_handover_files(tmp_path / "data")  # stand-ins for the teacher, pruned and fine-tuned ResNet50 of 02 and 03
    name = notebook_copy("04_resnet18_distillation.ipynb", tmp_path / "notebooks", FAST_04).name
    check_slider(*browser_tools, tmp_path, name, "temperature", "4.00", 4, "6.00")
