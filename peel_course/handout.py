"""The hand-out for students: the exercise notebooks and a peel_utils without the answers.

    python -m peel_course.handout [--out handout]    # writes handout/ and handout.zip

handout/ holds exercises/ (the exercise notebooks, with nbgrader metadata on the cells the exercise
generator tagged as stub and check cells: the grade ids of `make nbgrader`'s source notebooks, so a
course that releases and autogrades with nbgrader can grade these too; see peel_course.nbgrader),
peel_utils/ (the package, where each exercise reference that no notebook needs for its own work is a
stub raising NotImplementedError, and the checks' answer_key is replaced by its values stored as
data), data/ (empty: datasets and checkpoints land there), requirements.txt, a pyproject.toml
(`pip install -e .`) and a README for students. No solution notebooks, and nothing of `peel_course`
(the teacher's tools): the rule is "copy `peel_utils/`".

The folder (and its zip) is replaced on the next build only if it holds MARKER, the file a build
writes into the folder it makes: `--out` naming any other existing folder (`.`, a student's work)
is refused, so a build never deletes what it did not create.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import os
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

import nbformat
import torch

from peel_course.nbgrader import nbgrader_metadata
from peel_utils.checks import answer_key, catalog

MARKER = ".peel-handout"  # in every folder build() makes: only such a folder is replaced

STORED_KEY = '''"""The checks' expected values for their fixed inputs, stored as data in answer_key.pt: this
hand-out holds no solution code. Each function returns what the teacher's answer_key returned."""

from __future__ import annotations

from pathlib import Path

import torch

_STORED = torch.load(Path(__file__).with_suffix(".pt"), weights_only=True)


def _stored(name: str):
    def lookup(*args):
        key = f"{{name}}{{args!r}}"
        if key not in _STORED:
            raise LookupError(f"the hand-out stores the answers of {{name}} for {{sorted(_STORED)}} only; "
                              "run this check on the CPU (device='cpu')")
        return _STORED[key]
    return lookup


{assignments}
'''
README = """# PEEL exercises: pruning and knowledge distillation

Your exercise notebooks are in `exercises/`. In each, the parts you write are TODO stubs; the cell
after each is its check: it runs your code on small inputs with known answers and prints
`✓ passed: ...` or says what is wrong. Write the code yourself: an answer that calls the
workbook's own implementation fails its check.

```bash
python3 -m venv .venv && .venv/bin/pip install -r requirements.txt -e .
.venv/bin/jupyter lab --notebook-dir=exercises
```

Run the notebooks in order (01 to 07): each hands its models to the next through
`data/checkpoints/<profile>/`. Hand in your `exercises/*.ipynb` as your teacher asks.
"""
PYPROJECT = """[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "peel-utils"
version = "0.1.0"
requires-python = ">=3.10,<3.14"

[tool.setuptools.packages.find]
include = ["peel_utils*"]

[tool.setuptools.package-data]
"peel_utils.checks" = ["answer_key.pt"]
"""


def stub_function(source: str, qualname: str, message: str) -> str:
    """`source` with the body of function `qualname` ('f' or 'Class.method') replaced, after its
    docstring, by `raise NotImplementedError(message)`."""
    scope: list[ast.stmt] = ast.parse(source).body
    node = None
    for part in qualname.split("."):
        node = next((n for n in scope if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name == part), None)
        if node is None:
            raise ValueError(f"no {qualname} in the source")
        scope = node.body
    body = node.body
    keep = 1 if ast.get_docstring(node) is not None and len(body) > 1 else 0
    lines = source.splitlines(keepends=True)
    indent = " " * body[0].col_offset
    stub = f"{indent}raise NotImplementedError({message!r})\n"
    return "".join(lines[: body[keep].lineno - 1] + [stub] + lines[node.end_lineno:])


def stubbed_modules(package: Path) -> dict[Path, str]:
    """Module path -> its hand-out source, for every module holding a reference the hand-out stubs."""
    sources: dict[Path, str] = {}
    for exercise in catalog.EXERCISES:
        for reference in exercise.handout_stubs:
            module, _, qualname = reference.partition(":")
            path = package / (module.split(".", 1)[1].replace(".", "/") + ".py")
            message = (f"{reference.replace(':', '.')} is exercise '{exercise.name}' of notebook {exercise.notebook}; "
                       "the hand-out leaves it to you: write it in the notebook")
            sources[path] = stub_function(sources.get(path) or path.read_text(encoding="utf-8"), qualname, message)
    return sources


def store_answers(path: Path) -> str:
    """Save every answer_key value (for each of its cases) to `path`; return the stored module's source."""
    values = {f"{name}{args!r}": fn(*args) for name, (fn, cases) in answer_key.KEYS.items() for args in cases}
    torch.save(values, path)
    return STORED_KEY.format(assignments="\n".join(f"{name} = _stored({name!r})" for name in answer_key.KEYS))


def with_nbgrader(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """nbgrader metadata on the exercise cells (solution) and their check cells (graded, locked,
    peel_course.nbgrader.POINTS each), as the exercise generator tagged them: the metadata and grade ids
    of `make nbgrader`'s source notebooks, so nbgrader's autograde grades a hand-out notebook too once
    the assignment was generated from that source. (These notebooks are no nbgrader source: that is
    `make nbgrader`'s, whose solution fences nbgrader replaces by a stub.)"""
    for index, cell in enumerate(nb.cells):
        metadata = nbgrader_metadata(cell, index) if cell.cell_type == "code" else None
        if metadata:
            cell.metadata["nbgrader"] = metadata
    return nb


def _not_ours(out: Path) -> Path | None:
    """The first of `out` and `out`.zip that exists but was not made by a previous build (the folder holds
    MARKER, the zip `<name>/MARKER`), or None when both are absent or ours."""
    if os.path.lexists(out) and (out.is_symlink() or not out.is_dir() or not (out / MARKER).is_file()):
        return out
    archive = out.parent / f"{out.name}.zip"
    if not os.path.lexists(archive):
        return None
    with contextlib.suppress(OSError, zipfile.BadZipFile), zipfile.ZipFile(archive) as zf:
        if f"{out.name}/{MARKER}" in zf.namelist():
            return None
    return archive


def _write(root: Path, out: Path) -> None:
    """Write the hand-out's files into the new folder `out`."""
    out.mkdir()
    (out / MARKER).write_text("made by python -m peel_course.handout: the next build replaces this folder\n",
                              encoding="utf-8")
    package = out / "peel_utils"
    shutil.copytree(root / "peel_utils", package, ignore=shutil.ignore_patterns("__pycache__"))
    for path, source in stubbed_modules(root / "peel_utils").items():
        (package / path.relative_to(root / "peel_utils")).write_text(source, encoding="utf-8")
    key = package / "checks" / "answer_key.py"
    key.write_text(store_answers(key.with_suffix(".pt")), encoding="utf-8")
    (out / "exercises").mkdir()
    for path in sorted((root / "exercises").glob("[0-9][0-9]_*.ipynb")):
        nbformat.write(with_nbgrader(nbformat.read(path, as_version=4)), out / "exercises" / path.name)
    (out / "data").mkdir()
    (out / "data" / ".gitignore").write_text("*\n!.gitignore\n", encoding="utf-8")
    shutil.copy2(root / "requirements.txt", out / "requirements.txt")
    (out / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
    (out / "README.md").write_text(README, encoding="utf-8")


def build(root: Path, out: Path) -> Path:
    """Write the hand-out of the repository at `root` into the folder `out` and `out`.zip; return the zip.

    Both are made in a scratch folder next to `out` and moved into place at the end, so a failed build
    leaves a previous hand-out as it was. An existing `out` or `out`.zip that a previous build did not
    make (no MARKER in it) is refused with SystemExit before anything is written.
    """
    out = out.absolute()
    theirs = _not_ours(out)
    if theirs:
        raise SystemExit(f"handout: {theirs} exists and is not a hand-out this tool made (no {MARKER} in it), so it is "
                         "left as it is and nothing was written; choose a new folder with --out, or move that one away")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out.name}-", dir=out.parent) as tmp:
        _write(root, Path(tmp) / out.name)
        archive = shutil.make_archive(str(Path(tmp) / out.name), "zip", root_dir=tmp, base_dir=out.name)
        if out.exists():
            shutil.rmtree(out)
        (Path(tmp) / out.name).rename(out)
        return Path(shutil.move(archive, out.parent / f"{out.name}.zip"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("handout"),
                        help="the hand-out folder: a new one, or one a previous build made (replaced)")
    parser.add_argument("--root", type=Path, default=Path("."), help="the repository root")
    args = parser.parse_args(argv)
    archive = build(args.root, args.out)
    print(f"wrote {args.out}/ and {archive}: give students the zip")
    return 0


if __name__ == "__main__":
    sys.exit(main())
