"""peel_course.spread: the figures of several seeds side by side, and the guide's table of what varies."""

import json

import pytest

from peel_course import guide, spread


@pytest.fixture
def seed_results(tmp_path):
    figures = {0: {"test_accuracy": 0.95, "target_met": True, "dense_fp32_latency_b64_ms": 160.0, "core_words": 900,
                   "gain_points": 0.4},
               1: {"test_accuracy": 0.97, "target_met": False, "dense_fp32_latency_b64_ms": 150.0, "core_words": 900,
                   "gain_points": -0.2},
               2: {"test_accuracy": 0.96, "target_met": True, "core_words": 900, "gain_points": 1.0}}
    for seed, recorded in figures.items():
        (tmp_path / f"seed{seed}").mkdir()
        (tmp_path / f"seed{seed}" / "summary.json").write_text(json.dumps(
            {"profile": f"seeds-seed{seed}", "notebooks": {"07_x": {"status": "ok", "seconds": 250.0 + 30 * seed,
                                                                     "figures": recorded}}}))
    return tmp_path


def test_collect_gives_one_value_per_seed_and_none_where_a_seed_did_not_record(seed_results):
    collected = spread.collect(seed_results, [0, 1, 2])
    assert collected["seeds"] == [0, 1, 2]
    assert collected["notebooks"]["07_x"] == {"test_accuracy": [0.95, 0.97, 0.96], "target_met": [True, False, True],
                                              "dense_fp32_latency_b64_ms": [160.0, 150.0, None],
                                              "core_words": [900, 900, 900], "gain_points": [0.4, -0.2, 1.0]}
    assert collected["seconds"] == {"07_x": [250.0, 280.0, 310.0]}


def test_the_table_gives_min_median_max_and_marks_a_verdict_that_flips(seed_results):
    text = spread.table(spread.collect(seed_results, [0, 1, 2]))
    assert "| 07 | `test_accuracy` | 3 | 0.950 / 0.960 / 0.970 |" in text
    assert "| 07 | `target_met` | 3 | **flips: yes, no, yes** |" in text
    assert "| 07 | `dense_fp32_latency_b64_ms` | 2 | 150 / 155 / 160 |" in text
    assert "core_words" not in text  # not a key figure
    assert "| 07 | `gain_points` | 3 | **-0.200 / 0.400 / 1.00: the sign differs between seeds** |" in text
    assert "Between these seeds 2 readings flip: 07 `target_met`, 07 `gain_points`." in text
    assert "docs/seed_spread.json" in text


def test_a_missing_seed_names_the_file_and_the_fix(seed_results):
    with pytest.raises(SystemExit, match=r"seed5/summary.json is missing: run the profile first \(make run PROFILE=seeds\)"):
        spread.collect(seed_results, [0, 5])


def test_write_replaces_the_file_whole(seed_results, tmp_path):
    path = spread.write(spread.collect(seed_results, [0, 1]), tmp_path / "docs" / "seed_spread.json")
    assert json.loads(path.read_text())["seeds"] == [0, 1] and not list(path.parent.glob(".*partial"))


def test_the_guide_renders_the_table_from_the_file(seed_results, tmp_path):
    path = spread.write(spread.collect(seed_results, [0, 1, 2]), tmp_path / "seed_spread.json")
    text = f"{guide.BEGIN}\n{guide.END}\n{guide.SPREAD_BEGIN}\nold\n{guide.SPREAD_END}\n"
    rendered = guide.render(text, spread_file=path)
    assert "**flips: yes, no, yes**" in rendered and "\nold\n" not in rendered
    with pytest.raises(ValueError, match="is missing: run `make run PROFILE=seeds`"):
        guide.render(text, spread_file=tmp_path / "none.json")


def test_the_runtime_table_gives_min_median_max_and_says_how_far_over_five_minutes(seed_results):
    text = spread.runtime_table(spread.collect(seed_results, [0, 1, 2]))
    assert "| 07_x | 4 min 10 s / 4 min 40 s / 5 min 10 s | **2 of 3** (the longest 10 s over) |" in text
    assert "| 07_x | 4 min 10 s / 4 min 25 s / 4 min 40 s | 2 of 2 |" in spread.runtime_table(spread.collect(seed_results, [0, 1]))
    assert "Cold runs" in text and "docs/seed_spread.json" in text


def test_the_guide_renders_the_runtime_table_from_the_file(seed_results, tmp_path):
    path = spread.write(spread.collect(seed_results, [0, 1]), tmp_path / "seed_spread.json")
    text = f"{guide.BEGIN}\n{guide.END}\n{guide.RUNTIME_BEGIN}\nold\n{guide.RUNTIME_END}\n"
    rendered = guide.render(text, spread_file=path)
    assert "| 07_x | 4 min 10 s / 4 min 25 s / 4 min 40 s | 2 of 2 |" in rendered and "\nold\n" not in rendered
