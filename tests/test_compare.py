"""peel_utils.compare: the paired bootstrap interval and the sentences generated from it."""

import numpy as np
import pytest
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

from peel_utils import compare


def outcomes(correct: int, total: int = 1000) -> torch.Tensor:
    return torch.arange(total) < correct


def test_identical_models_give_zero_and_are_not_distinguishable():
    a = outcomes(900)
    d = compare.paired_bootstrap(a, a.clone(), names=("A", "B"))
    assert (d.points, d.low, d.high) == (0.0, 0.0, 0.0)
    assert not d.distinguishable
    assert "not distinguishable" in compare.verdict(d)


def test_a_large_paired_gain_is_distinguishable_and_named():
    a, b = outcomes(950), outcomes(900)  # A right on every image B gets right, and 50 more
    d = compare.paired_bootstrap(a, b, names=("pruned", "control"))
    assert d.points == pytest.approx(5.0)
    assert 3.0 < d.low < 5.0 < d.high < 7.0  # 50 discordant images: SE about 0.69 points
    assert d.distinguishable and (d.seeds, d.images) == (1, 1000)
    sentence = compare.verdict(d)
    assert sentence.startswith("pruned is 5.0 points above control")
    assert sentence.endswith("in this run, pruned is more accurate than control.")  # one seed: not a finding


def test_several_seeds_drop_in_this_run_and_a_tiny_difference_reads_level():
    a = torch.stack([outcomes(950), outcomes(951)])
    b = torch.stack([outcomes(900), outcomes(901)])
    sentence = compare.verdict(compare.paired_bootstrap(a, b, names=("A", "B")))
    assert "in this run" not in sentence and sentence.endswith("over 2 seeds, A is more accurate than B.")
    level = compare.Difference("A", "B", 0.04, -0.5, 0.6, 1, 1000)  # rounds to 0.0 points
    assert compare.verdict(level).startswith("A is level with B (") and "+0.0" not in compare.verdict(level)
    assert "not distinguishable from noise (in this run, the interval covers 0)" in compare.verdict(level)


def test_a_small_difference_among_many_discordant_images_is_noise():
    rng = np.random.default_rng(0)
    a = torch.tensor(rng.random(1000) < 0.9)
    b = torch.tensor(rng.random(1000) < 0.9)  # independent errors: about 180 discordant images
    d = compare.paired_bootstrap(a, b)
    assert d.low < 0 < d.high and not d.distinguishable


def test_several_seeds_widen_the_interval_with_the_seed_noise():
    # per seed, A - B is +4, -2 and +1 points: the mean is 1 point, but the seeds disagree
    a = torch.stack([outcomes(940), outcomes(900), outcomes(910)])
    b = torch.stack([outcomes(900), outcomes(920), outcomes(900)])
    d = compare.paired_bootstrap(a, b)
    assert d.points == pytest.approx(1.0) and d.seeds == 3
    one_seed = compare.paired_bootstrap(a[:1], b[:1])
    assert d.low < 0 < d.high  # the seeds' spread covers zero ...
    assert one_seed.distinguishable  # ... although seed 0 alone looks clear


def test_same_seed_same_interval_and_bad_input():
    a, b = outcomes(930), outcomes(910)
    assert compare.paired_bootstrap(a, b, seed=3) == compare.paired_bootstrap(a, b, seed=3)
    with pytest.raises(ValueError, match="same seeds and images"):
        compare.paired_bootstrap(a, b[:10])
    with pytest.raises(ValueError, match="level"):
        compare.paired_bootstrap(a, b, level=95)


def test_correct_and_comparison_table():
    inputs = torch.eye(4)
    loader = DataLoader(TensorDataset(inputs, torch.tensor([0, 1, 2, 0])), batch_size=3)
    identity = nn.Linear(4, 4, bias=False)
    with torch.no_grad():
        identity.weight.copy_(torch.eye(4))
    assert compare.correct(identity, loader).tolist() == [True, True, True, False]
    table = compare.comparison_table({"x": outcomes(950), "y": outcomes(900)}, [("x", "y")])
    assert table.loc[0, ["A accuracy", "B accuracy", "A - B (points)"]].tolist() == pytest.approx([0.95, 0.90, 5.0])
    assert bool(table.loc[0, "distinguishable"]) and table.loc[0, "verdict"].startswith("x is 5.0 points above y")


def loop_bootstrap(a: np.ndarray, b: np.ndarray, resamples: int, seed: int) -> tuple[float, float]:
    """The interval as paired_bootstrap computed it before it was vectorised: one resample at a time."""
    seeds, images = a.shape
    rng = np.random.default_rng(seed)
    diff = a - b
    estimates = np.empty(resamples)
    for i in range(resamples):
        rows = rng.integers(0, seeds, seeds) if seeds > 1 else np.zeros(1, dtype=int)
        cols = rng.integers(0, images, images)
        estimates[i] = diff[np.ix_(rows, cols)].mean()
    tail = (1 - compare.LEVEL) / 2 * 100  # as paired_bootstrap writes it (2.5000000000000022, not 2.5)
    low, high = np.percentile(estimates, [tail, 100 - tail]) * 100
    return float(low), float(high)


@pytest.mark.parametrize(("seeds", "images", "seed"), [(1, 1000, 0), (1, 997, 5), (3, 401, 0), (2, 250, 7)])
def test_vectorised_resamples_give_exactly_the_loops_interval(seeds, images, seed, monkeypatch):
    monkeypatch.setattr(compare, "_CHUNK_ENTRIES", 50_000)  # several chunks: the stream must carry across them
    rng = np.random.default_rng(100 + seeds)
    a = (rng.random((seeds, images)) < 0.8).astype(float)
    b = (rng.random((seeds, images)) < 0.75).astype(float)
    d = compare.paired_bootstrap(a if seeds > 1 else a[0], b if seeds > 1 else b[0], resamples=600, seed=seed)
    assert (d.low, d.high) == loop_bootstrap(a, b, 600, seed)


def test_one_seed_interval_matches_scipy_percentile_bootstrap():
    from scipy import stats

    rng = np.random.default_rng(1)
    a = rng.random(800) < 0.85
    b = rng.random(800) < 0.8
    d = compare.paired_bootstrap(a, b, resamples=4000, seed=0)
    diff = a.astype(float) - b.astype(float)  # paired: resample the per-image differences
    ci = stats.bootstrap((diff,), np.mean, n_resamples=4000, method="percentile", confidence_level=0.95,
                         random_state=np.random.default_rng(0)).confidence_interval
    assert d.low == pytest.approx(ci.low * 100, abs=0.3)
    assert d.high == pytest.approx(ci.high * 100, abs=0.3)


def test_resamples_must_be_positive():
    with pytest.raises(ValueError, match="resamples must be at least 1, not 0"):
        compare.paired_bootstrap(outcomes(900), outcomes(890), resamples=0)
