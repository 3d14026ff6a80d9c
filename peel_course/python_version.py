"""The Pythons the workbook supports, checked before `make install` creates the virtual environment.

PyTorch, torchao and the workbook's code need Python 3.10 to 3.13 (pyproject.toml's requires-python, which
tests/course/test_python_version.py keeps equal to OLDEST and NEWEST). Under any other Python, pip fails half-way
with a resolver message, or the code fails at an import; this stops `make install` at once and names the fix.
It runs under whatever `python3` is, before anything is installed, so it is standard library only and its syntax
is Python 2.7's (no f-strings, type comments instead of annotations): every interpreter reaches its message.

    python3 -m peel_course.python_version [VENV]    # exit 1, saying what to do, if this Python is not supported
"""

from __future__ import print_function

import os
import sys

OLDEST = (3, 10)
NEWEST = (3, 13)


def supported(version=None):
    # type: (tuple | None) -> bool
    """True if `version` (major, minor[, ...]; default: this Python's) is between OLDEST and NEWEST."""
    major_minor = tuple(sys.version_info[:2] if version is None else version[:2])
    return OLDEST <= major_minor <= NEWEST


def check(version=None, executable=None, venv=None):
    # type: (tuple | None, str | None, str | None) -> None
    """Raise SystemExit naming the fix if `version` (default: this Python's) is not supported. `venv` is the
    virtual environment `make install` would use: if it exists, it was made by this Python and must go."""
    version = tuple(sys.version_info[:3] if version is None else version)
    executable = sys.executable if executable is None else executable
    if supported(version):
        return
    span = "Python %d.%d to %d.%d" % (OLDEST + NEWEST)
    message = ("make install: %s is Python %s, and the workbook needs %s (PyTorch and the workbook's code "
               "support no other). Run make install PYTHON=<a %s>, for example PYTHON=python3.11 "
               "(pyenv, python.org or your package manager install one)"
               % (executable, ".".join(str(part) for part in version), span, span))
    if venv and os.path.isdir(venv):
        message += "; %s was made with this Python: remove it first (rm -rf %s)" % (venv, venv)
    raise SystemExit(message)


if __name__ == "__main__":
    check(venv=sys.argv[1] if len(sys.argv) > 1 else None)
