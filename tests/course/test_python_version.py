"""peel_course.python_version: make install's preflight names the fix under an unsupported Python, and the
range it checks is the one pyproject.toml and the hand-out declare."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from peel_course import handout, python_version

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("version, ok", [((3, 9, 18), False), ((3, 10, 0), True), ((3, 13, 9), True), ((3, 14, 0), False),
                                         ((2, 7, 18), False)])
def test_supported_is_the_declared_range(version, ok):
    assert python_version.supported(version) is ok


def test_an_unsupported_python_is_our_error_naming_the_fix(tmp_path):
    with pytest.raises(SystemExit) as info:
        python_version.check((3, 9, 18), "/usr/bin/python3", venv=str(tmp_path / "absent"))
    assert str(info.value) == (
        "make install: /usr/bin/python3 is Python 3.9.18, and the workbook needs Python 3.10 to 3.13 (PyTorch and the "
        "workbook's code support no other). Run make install PYTHON=<a Python 3.10 to 3.13>, for example "
        "PYTHON=python3.11 (pyenv, python.org or your package manager install one)")
    with pytest.raises(SystemExit, match=rf"; {tmp_path} was made with this Python: remove it first \(rm -rf {tmp_path}\)$"):
        python_version.check((3, 14, 0), "/usr/bin/python3", venv=str(tmp_path))
    assert python_version.check((3, 12, 1), "/usr/bin/python3", venv=str(tmp_path)) is None


def test_this_python_passes_from_the_command_line():
    done = subprocess.run([sys.executable, "-m", "peel_course.python_version"], cwd=ROOT, capture_output=True, text=True)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_pyproject_and_the_handout_declare_the_same_range():
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    oldest, newest = python_version.OLDEST, python_version.NEWEST
    requires = f'requires-python = ">={oldest[0]}.{oldest[1]},<{newest[0]}.{newest[1] + 1}"'
    assert re.search(rf"^{re.escape(requires)}", text, re.MULTILINE)
    assert re.findall(r'"Programming Language :: Python :: (3\.\d+)"', text) == [
        f"3.{minor}" for minor in range(oldest[1], newest[1] + 1)]
    assert requires in handout.PYPROJECT


OLD = sorted(Path("/root/.pyenv/versions").glob("3.[6-9].*/bin/python"))


@pytest.mark.skipif(not OLD, reason="no Python older than 3.10 installed under pyenv")
def test_an_older_python_reaches_the_message():  # the module must not fail on its own syntax there
    done = subprocess.run([str(OLD[0]), "-m", "peel_course.python_version"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith(f"make install: {OLD[0]} is Python 3.") and "needs Python 3.10 to 3.13" in done.stderr
