"""Execute the workbook's notebooks in order with papermill, under a parameter profile.

    python -m peel_course.run --profile quick            # every notebook, CPU minutes
    python -m peel_course.run --profile full --only 02 03
    python -m peel_course.run --store                    # maintainers: refresh stored outputs

Writes results/<profile>/: the executed notebooks, the figures they drew (PNG), and
summary.json + summary.md with each notebook's run time and the key figures it recorded (summary.md rounds
them to four significant digits for reading; summary.json keeps them as recorded).
A mistake in the command or the profile (an unknown --only prefix, a YAML error, a parameter a
notebook does not declare) stops it with our error before any notebook runs. Kernels run over
IPC where the platform has it (peel_course.kernel).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import sys
import time
from pathlib import Path

import yaml
from traitlets.config import Config

from peel_course.kernel import kernel_config
from peel_utils.report import RECORD_ENV, readable

TIMEOUT_S = 3600
NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"


def select(notebooks_dir: Path, only: list[str]) -> list[Path]:
    """The notebooks of `notebooks_dir` whose prefix is in `only` (all if it is empty), in order; an
    unknown prefix raises SystemExit listing the notebooks there are."""
    notebooks = sorted(notebooks_dir.glob(NOTEBOOK_GLOB))
    if not notebooks:
        raise SystemExit(f"no notebooks ({NOTEBOOK_GLOB}) in {notebooks_dir}/; run from the repository root "
                         "or pass --notebooks")
    unknown = sorted(set(only) - {p.name[:2] for p in notebooks})
    if unknown:
        raise SystemExit(f"--only {' '.join(unknown)}: no notebook with that prefix in {notebooks_dir}/ "
                         f"(there are: {', '.join(p.name for p in notebooks)})")
    return [p for p in notebooks if not only or p.name[:2] in only]


def _yaml_error(path: Path, err: yaml.YAMLError) -> SystemExit:
    """Our message for yaml's error: the file, the line where yaml stopped, and where what it was reading began."""
    mark, context = getattr(err, "problem_mark", None), getattr(err, "context_mark", None)
    where = f"{path}, line {mark.line + 1}" if mark else str(path)
    problem = getattr(err, "problem", None) or str(err)
    if context and getattr(err, "context", None) and (not mark or context.line != mark.line):
        problem += f", {err.context} at line {context.line + 1}"
    return SystemExit(f"{where}: not valid YAML ({problem}); a profile holds sections such as `all:` and `\"01\":`, "
                      "each with indented `name: value` lines")


def load_profile(params_dir: Path, profile: str) -> dict[str, dict]:
    """The profile's YAML: an 'all' section for every notebook plus one section per prefix ("01").

    A YAML error, a section that is not a mapping of parameters, or a section name that is neither
    'all' nor a two-digit prefix raises SystemExit naming the file and the line.
    """
    path = params_dir / f"{profile}.yaml"
    if not path.exists():
        options = sorted(p.stem for p in params_dir.glob("*.yaml"))
        raise SystemExit(f"no profile {profile!r}: {path} is missing (profiles: {', '.join(options)})")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise SystemExit(f"{path}: not UTF-8 text (byte {err.start}); save it as UTF-8") from None
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return {}
        if not isinstance(root, yaml.MappingNode):
            raise SystemExit(f"{path}, line {root.start_mark.line + 1}: a profile is a mapping of sections "
                             "(`all:`, `\"01\":`, ...), each holding `name: value` lines")
        sections = {}
        for key_node, value_node in root.value:
            name, values = loader.construct_object(key_node, deep=True), loader.construct_object(value_node, deep=True)
            line = key_node.start_mark.line + 1
            if name != "all" and not (isinstance(name, str) and re.fullmatch(r"\d\d", name)):
                raise SystemExit(f"{path}, line {line}: section {name!r} is neither `all` nor a notebook prefix; "
                                 'write prefixes quoted, as "01": (unquoted, YAML reads 01 as the number 1)')
            if name in sections:
                raise SystemExit(f"{path}, line {line}: a second section {name!r}; merge it into the first")
            if values is not None and not isinstance(values, dict):
                raise SystemExit(f"{path}, line {line}: section {name!r} holds {type(values).__name__} {values!r}; "
                                 "it must hold indented `name: value` lines (a mapping of parameters)")
            sections[name] = values or {}
        return sections
    except yaml.YAMLError as err:
        raise _yaml_error(path, err) from None
    finally:
        loader.dispose()


def notebook_parameters(notebook: Path, sections: dict[str, dict]) -> dict:
    """The 'all' section merged with the notebook's own, keeping only what the notebook declares.

    A key in the notebook's own section that its parameters cell lacks is an error (a typo).
    """
    import papermill

    declared = papermill.inspect_notebook(str(notebook))
    own = sections.get(notebook.name[:2], {})
    unknown = sorted(set(own) - set(declared))
    if unknown:
        raise SystemExit(f"{notebook.name}: the profile sets {unknown}, which its parameters cell "
                         f"does not declare (declared: {sorted(declared)})")
    merged = {**sections.get("all", {}), **own}
    return {k: v for k, v in merged.items() if k in declared}


def extract_figures(executed: Path, out_dir: Path) -> list[Path]:
    """Save every PNG an executed notebook displayed as <notebook>_cell<N>_<k>.png."""
    nb = json.loads(executed.read_text())
    saved = []
    for index, cell in enumerate(nb["cells"]):
        pngs = [o["data"]["image/png"] for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
        for k, png in enumerate(pngs):
            path = out_dir / f"{executed.stem}_cell{index:02d}_{k}.png"
            path.write_bytes(base64.b64decode(png))
            saved.append(path)
    return saved


def write_summary(out_dir: Path, profile: str, runs: dict[str, dict]) -> None:
    (out_dir / "summary.json").write_text(json.dumps({"profile": profile, "notebooks": runs}, indent=2))
    lines = [f"# Workbook results, profile `{profile}`", ""]
    for name, run in runs.items():
        lines += [f"## {name}", "", f"- status: {run['status']}, {run['seconds']:.0f} s"]
        lines += [f"- {key}: {value}" for key, value in readable(run["figures"]).items()]  # 4 significant digits
        lines.append("")
    (out_dir / "summary.md").write_text("\n".join(lines))


def run_profile(profile: str, only: list[str], notebooks_dir: Path, params_dir: Path, results: Path) -> int:
    """Execute the selected notebooks in order under the profile; stop at the first that fails (returns 1)."""
    notebooks = select(notebooks_dir, only)
    sections = load_profile(params_dir, profile)
    parameters = {notebook: notebook_parameters(notebook, sections) for notebook in notebooks}  # all checked first
    with kernel_config() as config:
        return _run(profile, parameters, notebooks_dir, results / profile, config)


def _run(profile: str, parameters: dict[Path, dict], notebooks_dir: Path, out_dir: Path, config: Config) -> int:
    import papermill

    notebooks = list(parameters)
    (out_dir / "figures").mkdir(parents=True, exist_ok=True)
    runs: dict[str, dict] = {}
    for i, notebook in enumerate(notebooks, 1):
        params = parameters[notebook]
        executed = out_dir / notebook.name
        record_file = out_dir / f".{notebook.stem}.record.json"
        record_file.unlink(missing_ok=True)
        os.environ[RECORD_ENV] = str(record_file.resolve())
        print(f"[{i}/{len(notebooks)}] {notebook.name} {params}", flush=True)
        start = time.perf_counter()
        try:
            papermill.execute_notebook(str(notebook), str(executed), parameters=params,
                                       cwd=str(notebooks_dir), kernel_name="python3", config=config,
                                       progress_bar=True, execution_timeout=TIMEOUT_S)
            status = "ok"
        except papermill.PapermillExecutionError as err:
            status = f"failed at cell {err.cell_index} (In [{err.exec_count}]): {err.ename}: {err.evalue}"
        figures = json.loads(record_file.read_text()) if record_file.exists() else {}
        record_file.unlink(missing_ok=True)
        runs[notebook.stem] = {"status": status, "seconds": time.perf_counter() - start,
                               "parameters": params, "figures": figures}
        extract_figures(executed, out_dir / "figures")
        write_summary(out_dir, profile, runs)
        if status != "ok":
            print(f"\n{notebook.name} {status}\nThe executed notebook, with the error, is {executed}",
                  file=sys.stderr)
            return 1
    print(f"\nAll {len(notebooks)} notebooks ran with profile '{profile}'.\n"
          f"  executed notebooks: {out_dir}/\n  figures:            {out_dir / 'figures'}/\n"
          f"  summary:            {out_dir / 'summary.md'} (and summary.json)")
    return 0


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
PROGRESS_BAR = re.compile(r"\d+%\|.*\|.*it/s\]")


def is_progress_bar(output) -> bool:
    """True for a tqdm.auto progress bar's output: a widget whose text is a frozen bar ("  0%|...")."""
    data = output.get("data", {})
    return WIDGET_VIEW in data and bool(PROGRESS_BAR.search(str(data.get("text/plain", ""))))


def clean_notebook(nb) -> None:
    """Drop what changes on every run without meaning: widget state, timings, kernel versions, and
    progress bars, whose stored form (without widget state) is a bar frozen at 0% that never happened."""
    nb.metadata.pop("widgets", None)
    nb.metadata.get("language_info", {}).pop("version", None)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if not is_progress_bar(o)]


def store(only: list[str], notebooks_dir: Path) -> int:
    """Re-execute the source notebooks in place with their default (quick) parameters."""
    import nbformat
    from nbclient import NotebookClient

    for notebook in select(notebooks_dir, only):
        print(f"storing {notebook.name}", flush=True)
        start = time.perf_counter()
        nb = nbformat.read(notebook, as_version=4)
        with kernel_config() as config:
            NotebookClient(nb, timeout=TIMEOUT_S, kernel_name="python3", config=config,
                           resources={"metadata": {"path": str(notebooks_dir)}}).execute()
        clean_notebook(nb)
        partial = notebook.with_name(f".{notebook.name}.partial")
        nbformat.write(nb, partial)
        partial.replace(notebook)  # atomic: an interrupted write leaves the stored notebook as it was
        print(f"stored {notebook.name} in {time.perf_counter() - start:.0f} s", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="quick", help="params/<profile>.yaml (default: quick)")
    parser.add_argument("--only", nargs="*", default=[], help="notebook prefixes, e.g. 01 03")
    parser.add_argument("--notebooks", type=Path, default=Path("notebooks"))
    parser.add_argument("--params", type=Path, default=Path("params"))
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--store", action="store_true",
                        help="re-execute notebooks/ in place with their defaults (refresh stored outputs)")
    args = parser.parse_args(argv)
    if args.store:
        return store(args.only, args.notebooks)
    return run_profile(args.profile, args.only, args.notebooks, args.params, args.results)


if __name__ == "__main__":
    sys.exit(main())
