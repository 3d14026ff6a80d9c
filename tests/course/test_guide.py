"""peel_course.guide: the instructor guide's exercise table comes from the checks' catalog."""

import json
from pathlib import Path

import pytest

from peel_course import guide
from peel_utils.checks import catalog

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "instructor.md"


def test_the_table_has_a_row_per_exercise_with_its_mistakes():
    rows = guide.table().splitlines()[2:]
    assert len(rows) == len(catalog.EXERCISES)
    calc_mask = next(r for r in rows if "`checks.check_calc_mask(calc_mask)`" in r)
    assert "`peel_utils.prune.calc_mask`" in calc_mask and "ranking signed values" in calc_mask
    assert "(a stub in the hand-out)" in next(r for r in rows if "choose_ratio" in r)


def test_render_replaces_only_between_the_markers_and_check_finds_drift(tmp_path, capsys):
    path = tmp_path / "guide.md"
    path.write_text(f"intro\n{guide.BEGIN}\nold table\n{guide.END}\noutro\n", encoding="utf-8")
    assert guide.main(["--check", "--guide", str(path)]) == 1
    assert guide.main(["--guide", str(path)]) == 0
    text = path.read_text(encoding="utf-8")
    assert text.startswith("intro\n") and text.endswith("\noutro\n") and "old table" not in text
    assert guide.main(["--check", "--guide", str(path)]) == 0


def test_a_guide_without_markers_is_an_error(tmp_path):
    path = tmp_path / "guide.md"
    path.write_text("no markers\n", encoding="utf-8")
    with pytest.raises(ValueError, match="markers"):
        guide.render(path.read_text(encoding="utf-8"))


def test_the_committed_guide_and_readme_are_up_to_date():
    assert guide.main(["--check", "--guide", str(GUIDE), "--readme", str(GUIDE.parents[1] / "README.md")]) == 0


def test_a_missing_guide_is_our_error(tmp_path, capsys):
    assert guide.main(["--check", "--guide", str(tmp_path / "missing.md")]) == 2
    assert capsys.readouterr().err == (f"error: cannot read the guide {tmp_path / 'missing.md'} (No such file or directory); "
                                       "pass the instructor guide with --guide (docs/instructor.md from the repository root)\n")


def test_the_labs_table_counts_core_and_going_further_words(tmp_path):
    cells = [{"cell_type": "markdown", "source": "# 01 · T\n\nintro words"},
             {"cell_type": "markdown", "source": "## Step 1: x\n\nfive words in this one"},
             {"cell_type": "markdown", "source": "## Going further 1: extras\n\nmore"}]
    (tmp_path / "01_t.ipynb").write_text(json.dumps({"cells": cells}), encoding="utf-8")
    rows = guide.labs_table(tmp_path).splitlines()
    assert rows[2] == "| 01_t | 1 | 15 | extras | 6 |"
    text = guide.render(f"{guide.BEGIN}\n{guide.END}\n{guide.LABS_BEGIN}\nold\n{guide.LABS_END}\n", tmp_path)
    assert "| 01_t | 1 | 15 | extras | 6 |" in text and "\nold" not in text


def test_the_readme_lists_every_exercise_and_says_where_an_answer_can_be_read(tmp_path, capsys):
    listed = guide.exercise_list()
    assert listed.startswith(f"{len(catalog.EXERCISES)} exercises:")
    assert listed.count("\n- ") == len(catalog.EXERCISES)
    assert "- 02: the ratio-choice rule `choose_ratio`; its answer can be read in the hand-out's " \
           "`peel_utils.prune.choose_sparsity_dict`" in listed  # sweep.choose_ratio is a stub there, not listed
    assert "peel_utils.sweep.choose_ratio" not in listed
    guide_file, readme = tmp_path / "guide.md", tmp_path / "README.md"
    guide_file.write_text(f"{guide.BEGIN}\n{guide.END}\n", encoding="utf-8")
    guide.main(["--guide", str(guide_file), "--readme", str(tmp_path / "none.md")])
    readme.write_text(f"intro\n{guide.README_BEGIN}\nold\n{guide.README_END}\noutro\n", encoding="utf-8")
    assert guide.main(["--check", "--guide", str(guide_file), "--readme", str(readme)]) == 1
    assert "exercise list is out of date" in capsys.readouterr().err
    assert guide.main(["--guide", str(guide_file), "--readme", str(readme)]) == 0
    assert readme.read_text(encoding="utf-8") == f"intro\n{guide.README_BEGIN}\n{listed}\n{guide.README_END}\noutro\n"
    assert guide.main(["--check", "--guide", str(guide_file), "--readme", str(readme)]) == 0


def write_notebook(path, cells):
    path.write_text(json.dumps({"cells": [{"cell_type": kind, "source": text} for kind, text in cells]}))
    return path


def test_lab_words_splits_core_and_going_further(tmp_path):
    notebook = write_notebook(tmp_path / "01_x.ipynb", [
        ("markdown", "# Title\n\nfour words here"),                 # core: 5 words
        ("code", "print('not counted at all')"),
        ("markdown", "## Going further 1: more\n\ntext"),          # optional: 6
        ("markdown", "### a sub-section\ncounted as optional"),   # optional: 6
        ("markdown", "## Key figures"),                            # core again: 3
    ])
    assert guide.lab_words(notebook) == {"core_words": 8, "going_further_words": 12}
    assert guide.structure(notebook) == {"core_words": 8, "going_further_words": 12}  # no lesson cells in it


def test_first_cell_finds_a_lesson_by_pattern(tmp_path):
    notebook = write_notebook(tmp_path / "n.ipynb", [("markdown", "# T `compare.verdict`"), ("code", "x = 1\nd.verdict[0]"),
                                                      ("markdown", "## Step 9: how sure")])
    assert guide.first_cell(notebook, r"\.verdict\b") == 0
    assert guide.first_cell(notebook, r"\.verdict\b", cell_type="code") == 1
    assert guide.first_cell(notebook, r"^## Step 9") == 2
    assert guide.first_cell(notebook, "nowhere") is None


def test_structure_finds_where_01_teaches_the_interval_before_its_first_verdict():
    structure = guide.structure(GUIDE.parents[1] / "notebooks" / "01_lenet_mnist_pruning.ipynb")
    assert structure["stats_section_cell"] < structure["first_verdict_cell"]
    assert structure["core_words"] > 0 and structure["going_further_words"] > 0



def test_no_core_code_cell_outside_an_exercise_is_longer_than_30_lines(tmp_path):
    long_cell = "\n".join(f"x{i} = {i}" for i in range(31))
    notebook = write_notebook(tmp_path / "n.ipynb", [("code", long_cell), ("code", f"### BEGIN SOLUTION\n{long_cell}"),
                                                      ("markdown", "## Going further 1: x"), ("code", long_cell)])
    assert guide.long_core_cells(notebook) == [(0, 31)]
    for notebook in sorted((GUIDE.parents[1] / "notebooks").glob("0*.ipynb")):
        assert guide.long_core_cells(notebook) == [], notebook.name
