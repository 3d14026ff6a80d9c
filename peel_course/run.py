"""Execute the workbook's notebooks in order with papermill, under a parameter profile.

    python -m peel_course.run --profile quick            # every notebook, CPU minutes
    python -m peel_course.run --profile full --only 02 03
    python -m peel_course.run --store                    # maintainers: refresh stored outputs
    python -m peel_course.run --cell-timeout 120         # a cell that runs longer fails the run, named

Writes results/<profile>/: the executed notebooks, the figures they drew (PNG), and
summary.json + summary.md with each notebook's run time and the key figures it recorded (summary.md rounds
them to four significant digits for reading; summary.json keeps them as recorded).
A mistake in the command or the profile (an unknown --only prefix, a YAML error, a parameter a
notebook does not declare) stops it with our error before any notebook runs. Kernels run over
IPC where the platform has it, with the workbook's timing set-up and no widgets (peel_course.kernel).
A cell that runs longer than --cell-timeout seconds (a profile's default: `CELL_TIMEOUT_S`) fails the run, naming
the notebook, the cell and how long it ran: no run waits for ever.
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

from peel_course import guide
from peel_course.kernel import environment, kernel_config
from peel_utils.report import RECORD_ENV, readable, record

CELL_TIMEOUT_S = {"quick": 600, "full": 1800}  # the longest quick cell takes ~3 min cold on 2 cores (02's teacher)
DEFAULT_CELL_TIMEOUT_S = 600  # any other profile (seeds, a user's own): the quick profile's
OVER_SEEDS = "over_seeds"  # a profile key: run the chain once per seed (params/seeds.yaml)
BASE = "base"  # a profile key: start from another profile's settings
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
    """The profile's YAML: an 'all' section for every notebook plus one section per prefix ("01"), and optionally
    `over_seeds: [0, 1, 2]` (the whole chain runs once per seed: see run_profile) and `base: <profile>` (start from
    that profile's sections, each updated by this one's).

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
            if name == BASE:
                if not isinstance(values, str) or values == path.stem:
                    raise SystemExit(f"{path}, line {line}: `{BASE}:` holds {values!r}; name another profile whose "
                                     "settings this one starts from, e.g. `base: quick`")
                sections[name] = values
                continue
            if name == OVER_SEEDS:
                if not (isinstance(values, list) and values and all(type(v) is int and v >= 0 for v in values)
                        and len(set(values)) == len(values)):
                    raise SystemExit(f"{path}, line {line}: `{OVER_SEEDS}:` holds {values!r}; give a list of distinct "
                                     "seeds, whole numbers from 0, e.g. [0, 1, 2]")
                sections[name] = values
                continue
            if name != "all" and not (isinstance(name, str) and re.fullmatch(r"\d\d", name)):
                raise SystemExit(f"{path}, line {line}: section {name!r} is neither `all` nor a notebook prefix; "
                                 'write prefixes quoted, as "01": (unquoted, YAML reads 01 as the number 1)')
            if name in sections:
                raise SystemExit(f"{path}, line {line}: a second section {name!r}; merge it into the first")
            if values is not None and not isinstance(values, dict):
                raise SystemExit(f"{path}, line {line}: section {name!r} holds {type(values).__name__} {values!r}; "
                                 "it must hold indented `name: value` lines (a mapping of parameters)")
            sections[name] = values or {}
        if BASE in sections:  # the base's sections, each updated by this profile's own
            base = load_profile(params_dir, sections.pop(BASE))
            sections = {**base, **{name: ({**base.get(name, {}), **values} if isinstance(values, dict) else values)
                                   for name, values in sections.items()}}
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


def cell_timeout(text: str) -> float:
    """--cell-timeout's value: a number of seconds above 0 (argparse type); anything else is our error, naming it."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not seconds > 0 or seconds == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds above 0; give the longest a cell "
                                         "may run, e.g. --cell-timeout 600")
    return seconds


def timed_out_cell(executed: Path) -> str:
    """Which cell of papermill's output notebook was running when the run stopped: the last cell it started."""
    cells = json.loads(executed.read_text())["cells"] if executed.exists() else []
    started = [(cell["metadata"].get("papermill", {}).get("start_time") or "", index, cell.get("execution_count"))
               for index, cell in enumerate(cells) if cell["cell_type"] == "code"]
    started = [entry for entry in started if entry[0]]
    if not started:
        return "a cell"
    _, index, count = max(started)
    return f"cell {index}" + (f" (In [{count}])" if count else "")


def run_profile(profile: str, only: list[str], notebooks_dir: Path, params_dir: Path, results: Path,
                cell_timeout_s: float | None = None) -> int:
    """Execute the selected notebooks in order under the profile; stop at the first that fails (returns 1).
    A cell may run `cell_timeout_s` seconds (None: the profile's default, CELL_TIMEOUT_S). A profile with
    `over_seeds` runs the chain once per seed into results/<profile>/seed<N>/ and writes their spread.json."""
    notebooks = select(notebooks_dir, only)
    sections = load_profile(params_dir, profile)
    seeds = sections.pop(OVER_SEEDS, None)
    timeout = cell_timeout_s or CELL_TIMEOUT_S.get(profile, DEFAULT_CELL_TIMEOUT_S)
    if seeds is None:
        chains = {"": (profile, sections)}
    else:  # each seed its own chain: its own hand-over folder (checkpoints/<profile>-seed<N>/) and results/<profile>/seed<N>/
        chains = {f"seed{seed}": (f"{profile}-seed{seed}",
                                  {**sections, "all": {**sections.get("all", {}), "seed": seed, "profile": f"{profile}-seed{seed}"}})
                  for seed in seeds}
    parameters = {name: {notebook: notebook_parameters(notebook, chain_sections) for notebook in notebooks}
                  for name, (_, chain_sections) in chains.items()}  # all checked before any kernel starts
    with kernel_config() as config, environment({RECORD_ENV: ""}):  # restored afterwards
        for name, (chain_profile, _) in chains.items():
            if seeds is not None:
                print(f"\n== {profile}: {name} ({len(chains)} seeds) ==", flush=True)
            code = _run(chain_profile, parameters[name], notebooks_dir, results / profile / name, config, timeout)
            if code:
                return code
    if seeds is not None:
        from peel_course import spread

        path = spread.write(spread.collect(results / profile, seeds), results / profile / "spread.json")
        print(f"spread between seeds {seeds}: {path} (python -m peel_course.spread copies it to docs/)")
    return 0


def _run(profile: str, parameters: dict[Path, dict], notebooks_dir: Path, out_dir: Path, config: Config,
         timeout: float) -> int:
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
                                       progress_bar=True, execution_timeout=timeout)
            status = "ok"
        except papermill.PapermillExecutionError as err:
            status = f"failed at cell {err.cell_index} (In [{err.exec_count}]): {err.ename}: {err.evalue}"
        except TimeoutError:  # nbclient's CellTimeoutError: the cell ran past the limit (or its reply never came)
            status = (f"failed at {timed_out_cell(executed)}: it ran past the {timeout:g} s limit per cell "
                      "(--cell-timeout; make run CELL_TIMEOUT=...) and was stopped")
        if status == "ok":
            record(**guide.structure(notebook))  # the lab's size and where its lessons sit, from the source notebook
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


def store(only: list[str], notebooks_dir: Path, timeout: float = CELL_TIMEOUT_S["quick"]) -> int:
    """Re-execute the source notebooks in place with their default (quick) parameters, `timeout` s at most a cell."""
    import nbformat
    from nbclient import NotebookClient

    for notebook in select(notebooks_dir, only):
        print(f"storing {notebook.name}", flush=True)
        start = time.perf_counter()
        nb = nbformat.read(notebook, as_version=4)
        with kernel_config() as config:
            NotebookClient(nb, timeout=timeout, kernel_name="python3", config=config,
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
    parser.add_argument("--cell-timeout", type=cell_timeout, default=None, metavar="SECONDS",
                        help=f"the longest a cell may run before the run fails (default: {CELL_TIMEOUT_S} by "
                             f"profile, {DEFAULT_CELL_TIMEOUT_S} for others)")
    args = parser.parse_args(argv)
    if args.store:
        return store(args.only, args.notebooks, args.cell_timeout or CELL_TIMEOUT_S["quick"])
    return run_profile(args.profile, args.only, args.notebooks, args.params, args.results, args.cell_timeout)


if __name__ == "__main__":
    sys.exit(main())
