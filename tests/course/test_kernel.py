"""peel_course.kernel: the course tools' kernels run over IPC in a private folder, without ipykernel's TCP warning."""

import os
import stat
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from peel_course.kernel import kernel_config

pytestmark = pytest.mark.skipif(os.name != "posix", reason="IPC transport is for POSIX systems; elsewhere it is TCP")


def test_ipc_in_a_private_folder_removed_afterwards():
    with kernel_config() as config:
        folder = Path(config.KernelManager.ip).parent
        assert config.KernelManager.transport == "ipc" and Path(config.KernelManager.ip).name == "kernel"
        assert folder.is_absolute() and stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert not folder.exists()


@pytest.mark.slow  # starts a kernel
def test_a_kernel_runs_over_ipc_without_the_tcp_warning(tmp_path, capfd):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import json, ipykernel\n"
                                          "print(json.load(open(ipykernel.get_connection_file()))['transport'])")]
    with kernel_config() as config:
        NotebookClient(nb, kernel_name="python3", config=config, resources={"metadata": {"path": str(tmp_path)}}).execute()
        assert os.listdir(Path(config.KernelManager.ip).parent) == []  # its sockets are gone with it
    assert nb.cells[0].outputs[0].text == "ipc\n"
    assert "without encryption" not in capfd.readouterr().err
    assert os.listdir(tmp_path) == []  # nothing where the notebook ran
