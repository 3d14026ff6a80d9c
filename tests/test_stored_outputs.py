"""The stored notebooks read as a lab: numbers a person can read, a core path before "Going further",
and statistics taught before the first verdict that uses them (issue 22)."""

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]*_*.ipynb"))
FLOAT = re.compile(r"(?<![\w.])[-+]?(\d+)\.(\d+)(?![\w.])")


def too_precise(text: str, digits: int = 4) -> list[str]:
    """The printed floats of `text` with more than `digits` significant digits (trailing zeros of the
    fraction do not count; a number with more whole digits than that may show them, but no decimals)."""
    found = []
    for match in FLOAT.finditer(text):
        whole, fraction = match.group(1), match.group(2).rstrip("0")
        significant = len((whole + fraction).lstrip("0"))
        if significant > max(digits, len(whole.lstrip("0"))):
            found.append(match.group(0))
    return found


def test_too_precise_reads_floats_as_a_person_would():
    assert too_precise("0.984000027179718 and 0.9530, 95.30%, -1.5000, 92208.0, 188.34, 2.14.1") == \
        ["0.984000027179718", "188.34"]


def cells(notebook: Path) -> list[dict]:
    return json.loads(notebook.read_text(encoding="utf-8"))["cells"]


def output_texts(cell: dict) -> list[str]:
    texts = []
    for output in cell.get("outputs", []):
        if "text" in output:
            texts.append("".join(output["text"]))
        for kind in ("text/plain", "text/markdown"):
            if kind in output.get("data", {}):
                texts.append("".join(output["data"][kind]))
    return texts


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name[:2])
def test_stored_outputs_print_at_most_four_significant_digits(notebook):
    bad = {index: found for index, cell in enumerate(cells(notebook))
           for found in [[f for text in output_texts(cell) for f in too_precise(text)]] if found}
    assert not bad, f"{notebook.name}: cells print floats with more than 4 significant digits: {bad}"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name[:2])
def test_every_notebook_has_a_core_path_then_going_further(notebook):
    headings = [("".join(c["source"]).lstrip().splitlines() or [""])[0] for c in cells(notebook)
                if c["cell_type"] == "markdown"]
    sections = [h for h in headings if h.startswith("## ")]
    optional = [i for i, h in enumerate(sections) if h.startswith("## Going further")]
    assert optional, f"{notebook.name} has no '## Going further' section"
    assert optional[0] >= 3, f"{notebook.name}: the core path should come first ({sections[:optional[0]]})"


def test_notebook_01_teaches_the_interval_before_its_first_verdict():
    notebook = next(p for p in NOTEBOOKS if p.name.startswith("01_"))
    sources = ["".join(c["source"]) for c in cells(notebook)]
    kinds = [c["cell_type"] for c in cells(notebook)]
    teach = next(i for i, s in enumerate(sources) if s.startswith("## Step 9: how sure is a difference?"))
    first_verdict = next(i for i, s in enumerate(sources) if kinds[i] == "code" and ".verdict" in s)
    assert teach < first_verdict
    assert any("np.percentile" in s or "quantile" in s for s in sources[teach:first_verdict]), \
        "Step 9 should compute the interval by hand before the package does"
