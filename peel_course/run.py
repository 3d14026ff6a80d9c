"""Execute the workbook's notebooks in order with papermill, under a parameter profile.

    python -m peel_course.run --profile quick            # every notebook, CPU minutes
    python -m peel_course.run --profile full --only 02 03
    python -m peel_course.run --store                    # maintainers: refresh stored outputs

Writes results/<profile>/: the executed notebooks, the figures they drew (PNG), and
summary.json + summary.md with each notebook's run time and the key figures it recorded.
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

from peel_utils.report import RECORD_ENV

TIMEOUT_S = 3600


def load_profile(params_dir: Path, profile: str) -> dict[str, dict]:
    """The profile's YAML: an 'all' section for every notebook plus one section per prefix."""
    path = params_dir / f"{profile}.yaml"
    if not path.exists():
        options = sorted(p.stem for p in params_dir.glob("*.yaml"))
        raise SystemExit(f"no profile {profile!r}: {path} is missing (profiles: {', '.join(options)})")
    sections = yaml.safe_load(path.read_text()) or {}
    return {str(k): v or {} for k, v in sections.items()}


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
        lines += [f"- {key}: {value}" for key, value in run["figures"].items()]
        lines.append("")
    (out_dir / "summary.md").write_text("\n".join(lines))


def run_profile(profile: str, only: list[str], notebooks_dir: Path, params_dir: Path, results: Path) -> int:
    import papermill

    sections = load_profile(params_dir, profile)
    notebooks = sorted(p for p in notebooks_dir.glob("[0-9][0-9]_*.ipynb")
                       if not only or p.name[:2] in only)
    if not notebooks:
        raise SystemExit(f"no notebooks in {notebooks_dir} match {only}")
    out_dir = results / profile
    (out_dir / "figures").mkdir(parents=True, exist_ok=True)
    runs: dict[str, dict] = {}
    for i, notebook in enumerate(notebooks, 1):
        params = notebook_parameters(notebook, sections)
        executed = out_dir / notebook.name
        record_file = out_dir / f".{notebook.stem}.record.json"
        record_file.unlink(missing_ok=True)
        os.environ[RECORD_ENV] = str(record_file.resolve())
        print(f"[{i}/{len(notebooks)}] {notebook.name} {params}", flush=True)
        start = time.perf_counter()
        try:
            papermill.execute_notebook(str(notebook), str(executed), parameters=params,
                                       cwd=str(notebooks_dir), kernel_name="python3",
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

    for notebook in sorted(notebooks_dir.glob("[0-9][0-9]_*.ipynb")):
        if only and notebook.name[:2] not in only:
            continue
        print(f"storing {notebook.name}", flush=True)
        start = time.perf_counter()
        nb = nbformat.read(notebook, as_version=4)
        NotebookClient(nb, timeout=TIMEOUT_S, kernel_name="python3",
                       resources={"metadata": {"path": str(notebooks_dir)}}).execute()
        clean_notebook(nb)
        nbformat.write(nb, notebook)
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
