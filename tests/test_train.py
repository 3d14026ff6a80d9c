import pytest
import torch

from peel_utils import data, models, prune, runtime, train

SOURCE_DICT = {"conv1.weight": 0.85, "conv2.weight": 0.8, "fc1.weight": 0.75,
               "fc2.weight": 0.7, "fc3.weight": 0.8}


def small_loaders(splits, seed=0, batch_size=128):
    return data.make_loaders(splits, batch_size, seed=seed)


def test_evaluate_is_a_fraction_and_matches_testset_dict(seeded, mnist5k):
    model = models.LeNet()
    loader = small_loaders(mnist5k).test
    accuracy = train.evaluate(model, loader, progress=False)
    metrics = train.evaluate_testset(model, loader, progress=False)
    assert set(metrics) == {"test_loss", "test_accuracy", "test_precision", "test_recall", "test_f1-score"}
    assert 0.0 <= accuracy <= 1.0
    assert metrics["test_accuracy"] == pytest.approx(accuracy)
    assert metrics["test_recall"] == pytest.approx(metrics["test_accuracy"])  # weighted recall = accuracy
    assert metrics["test_loss"] == pytest.approx(2.30, abs=0.1)  # random init: about ln(10)


@pytest.mark.slow
def test_training_learns(seeded, mnist5k):
    model = models.LeNet()
    loaders = small_loaders(mnist5k, batch_size=64)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    history, best = train.fit(model, loaders.train, loaders.val, optimizer, 2)
    assert [h["epoch"] for h in history] == [1, 2]
    model.load_state_dict(best)
    assert train.evaluate(model, loaders.test, progress=False) > 0.85


def test_masked_training_keeps_pruned_weights_zero(seeded, mnist5k):
    model = models.LeNet()
    pruner = prune.SparsePruner(model, SOURCE_DICT)
    pruner.prune(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    train.train(model, small_loaders(mnist5k).train, torch.nn.CrossEntropyLoss(), optimizer, pruner)
    for name, param in model.named_parameters():
        if name in pruner.masks:
            assert torch.all(param[~pruner.masks[name]] == 0), name
            assert torch.count_nonzero(param) == pruner.masks[name].sum(), name
    assert round(prune.get_model_sparsity(model), 4) == 0.7387


def run_once(splits):
    runtime.seed_everything(3)
    model = models.LeNet()
    loaders = small_loaders(splits, seed=3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    history, _ = train.fit(model, loaders.train, loaders.val, optimizer, 1)
    return history, train.evaluate_testset(model, loaders.test, progress=False)


def test_same_seed_same_metrics(mnist5k):
    assert run_once(mnist5k) == run_once(mnist5k)


def test_one_cycle_warms_up_then_anneals_per_batch(seeded, mnist5k):
    model = models.LeNet()
    loaders = small_loaders(mnist5k, batch_size=256)
    steps = 2 * len(loaders.train)  # 2 epochs of 14 batches
    optimizer, schedule = train.one_cycle(model.parameters(), 0.01, steps)
    assert isinstance(optimizer, torch.optim.AdamW) and optimizer.param_groups[0]["weight_decay"] == 0.05
    rates = []
    for _ in range(steps):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    peak = max(range(steps), key=rates.__getitem__)
    assert rates[peak] == pytest.approx(0.01, rel=0.01) and 0.2 * steps < peak < 0.4 * steps  # warm-up: 30% of the steps
    assert rates[0] == pytest.approx(0.01 / 25) and rates[-1] < 0.01 / 1000  # OneCycleLR's start and end
    with pytest.raises(ValueError, match="total_steps"):
        train.one_cycle(model.parameters(), 0.01, 0)


def test_fit_steps_the_batch_scheduler_after_every_batch(seeded, mnist5k):
    model = models.LeNet()
    loaders = small_loaders(mnist5k, batch_size=512)
    optimizer, schedule = train.one_cycle(model.parameters(), 0.003, 2 * len(loaders.train))
    history, _ = train.fit(model, loaders.train, loaders.val, optimizer, 2, batch_scheduler=schedule)
    assert schedule.last_epoch == 2 * len(loaders.train) and len(history) == 2
    assert history[-1]["val_accuracy"] > 0.5


def test_fit_keeps_the_best_epoch_from_select_from_on(seeded, mnist5k):
    model = models.LeNet()
    loaders = small_loaders(mnist5k, batch_size=512)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    history, best = train.fit(model, loaders.train, loaders.val, optimizer, 2, select_from=2)
    assert all(torch.equal(best[k], v) for k, v in model.state_dict().items())  # only epoch 2 could be kept
    with pytest.raises(ValueError, match="select_from"):
        train.fit(model, loaders.train, loaders.val, optimizer, 2, select_from=3)
