import math

import pandas as pd
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from peel_utils import distill, handover, models, train
from peel_utils.data import DatasetSplits
from peel_utils.prune import GlobalPruner


class Tiny(nn.Module):
    """A small conv net with a named feature layer, as a stand-in for the ResNets."""

    def __init__(self, width: int, num_classes: int = 3):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.ReLU())
        self.fc = nn.Linear(width, num_classes)

    def forward(self, x):
        return self.fc(self.features(x).mean(dim=(2, 3)))


# Hand-made logits: teacher probabilities (3/4, 1/4), student (1/2, 1/2), at T = 1.
STUDENT = torch.tensor([[0.0, 0.0]])
TEACHER = torch.tensor([[math.log(3.0), 0.0]])
TARGET = torch.tensor([0])
KL_T1 = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)  # 0.1308


def kl_at(temperature: float) -> float:
    """KL((p, 1 - p) || (1/2, 1/2)) with p the teacher's soft probability at T."""
    p = 3 ** (1 / temperature) / (3 ** (1 / temperature) + 1)
    return p * math.log(2 * p) + (1 - p) * math.log(2 * (1 - p))


def test_kl_known_value_and_zero_when_equal():
    assert distill.kd_loss(STUDENT, TEACHER, TARGET, temperature=1.0, alpha=1.0).item() == pytest.approx(KL_T1, abs=1e-6)
    logits = torch.randn(5, 4)
    assert distill.kd_loss(logits, logits.clone(), torch.zeros(5, dtype=torch.long), 3.0, 1.0).item() == pytest.approx(0.0, abs=1e-6)


def test_t_squared_scaling():
    for temperature in (2.0, 4.0):
        loss = distill.kd_loss(STUDENT, TEACHER, TARGET, temperature=temperature, alpha=1.0).item()
        assert loss == pytest.approx(temperature ** 2 * kl_at(temperature), abs=1e-6)
        assert distill.soft_kl(STUDENT, TEACHER, temperature).item() == pytest.approx(kl_at(temperature), abs=1e-6)


def test_alpha_mixes_kl_and_cross_entropy():
    student, teacher = torch.randn(8, 5), torch.randn(8, 5)
    targets = torch.randint(0, 5, (8,))
    ce = F.cross_entropy(student, targets).item()
    assert distill.kd_loss(student, teacher, targets, 4.0, 0.0).item() == pytest.approx(ce, rel=1e-6)
    assert distill.kd_loss(STUDENT, TEACHER, TARGET, 1.0, 0.5).item() == pytest.approx(0.5 * KL_T1 + 0.5 * math.log(2), abs=1e-6)


def test_gradients_reach_the_student_only():
    student = STUDENT.clone().requires_grad_()
    teacher = TEACHER.clone().requires_grad_()
    distill.kd_loss(student, teacher, TARGET, 2.0, 0.7).backward()
    assert teacher.grad is None
    assert student.grad is not None and student.grad.abs().sum() > 0
    # d/ds of T^2 * KL at T: T * (softmax(s / T) - softmax(t / T)), here with alpha = 1 and T = 1
    student = STUDENT.clone().requires_grad_()
    distill.kd_loss(student, TEACHER, TARGET, 1.0, 1.0).backward()
    assert torch.allclose(student.grad, torch.tensor([[0.5 - 0.75, 0.5 - 0.25]]), atol=1e-6)


def test_logits_mse_known_value():
    student, teacher = torch.tensor([[1.0, 2.0]]), torch.tensor([[3.0, 2.0]])
    assert distill.logits_mse_loss(student, teacher, TARGET, alpha=1.0).item() == pytest.approx(2.0)
    mixed = distill.logits_mse_loss(student, teacher, TARGET, alpha=0.25).item()
    assert mixed == pytest.approx(0.25 * 2.0 + 0.75 * F.cross_entropy(student, TARGET).item(), rel=1e-6)
    assert distill.logits_mse_loss(teacher, teacher, TARGET, alpha=1.0).item() == 0.0


def test_feature_mse_known_value_and_hooks():
    features = torch.zeros(1, 2, 2, 2)
    assert distill.feature_mse_loss(features + 1, features, STUDENT, TARGET, alpha=1.0).item() == pytest.approx(1.0)
    torch.manual_seed(0)
    student, teacher = Tiny(width=4), Tiny(width=8)
    x, y = torch.randn(6, 1, 5, 5), torch.randint(0, 3, (6,))
    feat = distill.FeatureMSE(student, teacher, x, "features", "features")
    assert tuple(feat.projection.weight.shape) == (8, 4, 1, 1)
    logits = student(x)
    with torch.no_grad():
        teacher(x)
    expected = F.mse_loss(feat.projection(student.features(x)), teacher.features(x))
    assert feat.loss(logits, y, alpha=1.0).item() == pytest.approx(expected.item(), rel=1e-5)
    feat.remove()
    assert not student.features._forward_hooks and not teacher.features._forward_hooks


def test_train_kd_trains_student_not_teacher():
    torch.manual_seed(0)
    student, teacher = Tiny(width=4), Tiny(width=8)
    data = TensorDataset(torch.randn(16, 1, 5, 5), torch.randint(0, 3, (16,)))
    loader = DataLoader(data, batch_size=8)
    for loss in distill.LOSSES:
        teacher_before = {k: v.clone() for k, v in teacher.state_dict().items()}
        student_before = [p.clone() for p in student.parameters()]
        params, feat = list(student.parameters()), None
        if loss == "feature_mse":
            feat = distill.FeatureMSE(student, teacher, data.tensors[0], "features", "features")
            params += list(feat.parameters())
        optimizer = torch.optim.SGD(params, lr=0.1)
        mean_loss = distill.train_kd(student, teacher, loader, optimizer, loss=loss, features=feat)
        assert math.isfinite(mean_loss) and mean_loss > 0
        assert all(torch.equal(v, teacher.state_dict()[k]) for k, v in teacher_before.items())
        assert all(p.grad is None for p in teacher.parameters())
        assert any(not torch.equal(a, b) for a, b in zip(student_before, student.parameters()))
        assert not teacher.training


class Counting(nn.Module):
    """A teacher that counts its forward passes."""

    def __init__(self, teacher: nn.Module):
        super().__init__()
        self.teacher, self.calls = teacher, 0

    def forward(self, x):
        self.calls += 1
        return self.teacher(x)


def test_teacher_logits_run_the_teacher_once_per_batch_and_train_the_same_student():
    torch.manual_seed(0)
    teacher = Counting(Tiny(width=8))
    data = TensorDataset(torch.randn(24, 1, 5, 5), torch.randint(0, 3, (24,)))
    start = Tiny(width=4).state_dict()

    def distilled(cache, order_seed=0):
        student = Tiny(width=4)
        student.load_state_dict(start)
        loader = DataLoader(data, batch_size=8, shuffle=True, generator=torch.Generator().manual_seed(order_seed))
        distill.train_kd(student, teacher, loader, torch.optim.SGD(student.parameters(), lr=0.1), teacher_logits=cache)
        return student

    plain = distilled(None)
    assert teacher.calls == 3  # three batches, the teacher runs on each
    cache = distill.TeacherLogits(teacher)
    first, second = distilled(cache), distilled(cache)
    assert teacher.calls == 6 and len(cache) == 3  # the second student read the three batches back
    for a, b in ((plain, first), (first, second)):  # the very same training as without the cache
        assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    distilled(cache, order_seed=1)  # other batches (another order): computed afresh
    assert teacher.calls > 6 and len(cache) > 3


def test_train_kd_keeps_pruned_weights_zero():
    torch.manual_seed(0)
    student, teacher = Tiny(width=4), Tiny(width=8)
    pruner = GlobalPruner(student, 0.5)
    pruner.prune(student)
    loader = DataLoader(TensorDataset(torch.randn(16, 1, 5, 5), torch.randint(0, 3, (16,))), batch_size=8)
    distill.train_kd(student, teacher, loader, torch.optim.SGD(student.parameters(), lr=0.1), pruner=pruner)
    for name, mask in pruner.masks.items():
        assert torch.all(dict(student.named_parameters())[name][~mask] == 0)


def test_loss_terms_callback():
    terms = distill.kd_loss_terms(STUDENT, TEACHER, TARGET, temperature=1.0, alpha=0.5)
    assert terms["kl"] == pytest.approx(KL_T1, abs=1e-6)
    assert terms["ce"] == pytest.approx(math.log(2), abs=1e-6)
    assert terms["total"] == pytest.approx(terms["kl_term"] + terms["ce_term"])
    assert terms["total"] == pytest.approx(distill.kd_loss(STUDENT, TEACHER, TARGET, 1.0, 0.5).item(), abs=1e-6)
    assert terms["teacher_top_prob"] == pytest.approx(0.75, abs=1e-6)
    hot = distill.kd_loss_terms(STUDENT, TEACHER, TARGET, temperature=8.0, alpha=0.0)
    assert hot["kl_term"] == 0.0 and hot["teacher_top_prob"] < terms["teacher_top_prob"]


@pytest.mark.parametrize("temperature, alpha", [(0.0, 0.5), (-1.0, 0.5), (float("nan"), 0.5), (float("inf"), 0.5),
                                                (4.0, -0.1), (4.0, 1.5), (4.0, float("nan"))])
def test_bad_temperature_or_alpha(temperature, alpha):
    with pytest.raises(ValueError, match="temperature|alpha"):
        distill.kd_loss(STUDENT, TEACHER, TARGET, temperature, alpha)
    with pytest.raises(ValueError, match="temperature|alpha"):
        distill.kd_loss_terms(STUDENT, TEACHER, TARGET, temperature, alpha)


def test_class_count_mismatch():
    with pytest.raises(ValueError, match="3 classes but the teacher has 2"):
        distill.kd_loss(torch.zeros(1, 3), TEACHER, TARGET)
    with pytest.raises(ValueError, match="classes"):
        distill.logits_mse_loss(torch.zeros(1, 3), TEACHER, TARGET)
    student, teacher = Tiny(width=4, num_classes=5), Tiny(width=8, num_classes=3)
    loader = DataLoader(TensorDataset(torch.randn(4, 1, 5, 5), torch.randint(0, 3, (4,))), batch_size=4)
    with pytest.raises(ValueError, match="5 classes but the teacher has 3"):
        distill.train_kd(student, teacher, loader, torch.optim.SGD(student.parameters(), lr=0.1))


def test_bad_loss_choice():
    student, teacher = Tiny(width=4), Tiny(width=8)
    loader = DataLoader(TensorDataset(torch.randn(4, 1, 5, 5), torch.randint(0, 3, (4,))), batch_size=4)
    optimizer = torch.optim.SGD(student.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="unknown loss"):
        distill.train_kd(student, teacher, loader, optimizer, loss="cosine")
    with pytest.raises(ValueError, match="FeatureMSE"):
        distill.train_kd(student, teacher, loader, optimizer, loss="feature_mse")
    feat = distill.FeatureMSE(student, teacher, torch.randn(1, 1, 5, 5), "features", "features")
    with pytest.raises(ValueError, match="in the optimizer"):
        distill.train_kd(student, teacher, loader, optimizer, loss="feature_mse", features=feat)
    with pytest.raises(ValueError, match="no layer 'layer9'"):
        distill.FeatureMSE(student, teacher, torch.randn(1, 1, 5, 5), "layer9", "features")


def test_fit_kd_history_and_best_state():
    torch.manual_seed(0)
    student, teacher = Tiny(width=4), Tiny(width=8)
    data = TensorDataset(torch.randn(16, 1, 5, 5), torch.randint(0, 3, (16,)))
    loader = DataLoader(data, batch_size=8)
    history, best = distill.fit_kd(student, teacher, loader, loader, torch.optim.SGD(student.parameters(), lr=0.1),
                                   2, temperature=2.0, alpha=0.9)
    assert [h["epoch"] for h in history] == [1, 2]
    assert all(math.isfinite(h["train_loss"]) for h in history)
    assert set(best) == set(student.state_dict())
    student.load_state_dict(best)  # the best epoch's weights score the best validation accuracy of the history
    assert train.evaluate(student, loader, progress=False) == max(h["val_accuracy"] for h in history)


def test_fit_kd_temperatures_set_each_epochs_temperature():
    data = TensorDataset(torch.randn(16, 1, 5, 5), torch.randint(0, 3, (16,)))
    loader = DataLoader(data, batch_size=8)
    torch.manual_seed(0)
    teacher = Tiny(width=8)
    states = []
    for options in ({"temperature": 2.0}, {"temperatures": [2.0, 2.0]}, {"temperatures": [8.0, 1.0]}):
        torch.manual_seed(1)
        student = Tiny(width=4)
        distill.fit_kd(student, teacher, loader, loader, torch.optim.SGD(student.parameters(), lr=0.1), 2, alpha=0.9,
                       **options)
        states.append(student.state_dict())
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])  # a constant schedule is the fixed T
    assert not all(torch.equal(states[0][k], states[2][k]) for k in states[0])
    with pytest.raises(ValueError, match="one per epoch"):
        distill.fit_kd(student, teacher, loader, loader, torch.optim.SGD(student.parameters(), lr=0.1), 2,
                       temperatures=[4.0])


def test_train_kd_with_a_loss_function_trains_with_exactly_that_loss():
    data = TensorDataset(torch.randn(16, 1, 5, 5), torch.randint(0, 3, (16,)))
    results = []
    for loss in ("kl", lambda s, t, y, temperature, alpha: distill.kd_loss(s, t, y, temperature, alpha)):
        torch.manual_seed(0)
        student, teacher = Tiny(width=4), Tiny(width=8)
        optimizer = torch.optim.SGD(student.parameters(), lr=0.1)
        mean = distill.train_kd(student, teacher, DataLoader(data, batch_size=8), optimizer, loss=loss,
                                temperature=2.0, alpha=0.7)
        results.append((mean, [p.detach().clone() for p in student.parameters()]))
    assert results[0][0] == pytest.approx(results[1][0])
    assert all(torch.equal(a, b) for a, b in zip(results[0][1], results[1][1]))  # the same training, step by step
    calls = []
    distill.train_kd(Tiny(width=4), Tiny(width=8), DataLoader(data, batch_size=8),
                     torch.optim.SGD(Tiny(width=4).parameters(), lr=0.1),
                     loss=lambda s, t, y, temperature, alpha: calls.append((temperature, alpha)) or s.sum() * 0 + 1.0,
                     temperature=3.0, alpha=0.25)
    assert calls == [(3.0, 0.25), (3.0, 0.25)]  # called once per batch with the run's T and alpha


# --- PairTrainer and table_reading: notebook 04's student, its control, and the reading of its table

def _pair_trainer(epochs=1, **overrides) -> distill.PairTrainer:
    """A PairTrainer on 16 random 3x8x8 images of 3 classes (8 per split beyond train), a ResNet18 teacher."""
    g = torch.Generator().manual_seed(0)

    def split(n):
        return TensorDataset(torch.randn(n, 3, 8, 8, generator=g), torch.randint(0, 3, (n,), generator=g))

    splits = DatasetSplits("fake", split(16), split(8), split(8), num_classes=3, in_channels=3)
    torch.manual_seed(1)
    teacher = models.resnet18(3, small_input=True).eval()
    teacher_meta = handover.Meta("resnet50", 3, True, image_size=8, in_channels=3, dataset="fake").with_extra(ratio=0.5)
    options = dict(seed=0, epochs=epochs, batch_size=8, lr=0.01, temperature=4.0, alpha=0.5)
    return distill.PairTrainer(teacher, teacher_meta, splits, **{**options, **overrides})


def test_loss_probe_is_the_loss_on_a_fixed_image_and_tells_losses_apart():
    probe = distill.loss_probe(distill.kd_loss, 4.0, 0.5)
    expected = distill.kd_loss(torch.tensor([[1.0, -2.0, 0.5]]), torch.tensor([[0.5, 1.0, -1.0]]),
                               torch.tensor([1]), 4.0, 0.5).item()
    assert probe == round(expected, 6) and probe > 0
    assert distill.loss_probe(distill.kd_loss, 4.0, 0.9) != probe  # another alpha, another record
    no_t_squared = lambda s, t, y, T, a: a * distill.soft_kl(s, t, T) + (1 - a) * F.cross_entropy(s, y)  # noqa: E731
    assert distill.loss_probe(no_t_squared, 4.0, 0.5) != probe  # a changed loss changes the record


def test_pair_trainer_record_takes_the_teachers_data_and_the_recipe():
    meta = _pair_trainer().record()
    assert (meta.arch, meta.num_classes, meta.small_input, meta.input_shape, meta.dataset) == ("resnet18", 3, True,
                                                                                               (3, 8, 8), "fake")
    assert meta.extra == {"seed": 0, "epochs": 1, "batch_size": 8, "lr": 0.01}  # not the teacher's ratio


def test_fresh_resnet18_gives_a_pair_the_same_start_and_batches_and_other_pairs_others():
    trainer = _pair_trainer()
    (a, loaders_a), (b, loaders_b), (c, loaders_c) = (trainer.fresh_resnet18(run) for run in (0, 0, 1))
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert not torch.equal(a.conv1.weight, c.conv1.weight)
    first = [next(iter(loaders.train))[1] for loaders in (loaders_a, loaders_b, loaders_c)]  # the labels' order
    assert torch.equal(first[0], first[1]) and not torch.equal(first[0], first[2])


def test_train_or_load_trains_saves_then_reads_back(tmp_path, capsys):
    trainer = _pair_trainer()
    meta = trainer.record().with_extra(loss="cross_entropy")
    model, history = trainer.train_or_load(tmp_path, "control", meta, trainer.cross_entropy_only)
    assert list(history.epoch) == [1] and (tmp_path / "04_resnet18_control.pt").exists()
    assert handover.read_meta(tmp_path, "control").extra["run"] == 0
    calls = []
    again, history_again = trainer.train_or_load(tmp_path, "control", meta, lambda model, loaders: calls.append(model))
    assert calls == [] and "reusing" in capsys.readouterr().out  # the same record: read back, not trained
    assert all(torch.equal(x, y) for x, y in zip(model.state_dict().values(), again.state_dict().values()))
    assert history_again.equals(history)


def test_distil_trains_with_the_given_loss_function_and_removes_feature_hooks():
    trainer = _pair_trainer()
    calls = []

    def counting_loss(student_logits, teacher_logits, targets, temperature, alpha):
        calls.append((temperature, alpha))
        return distill.kd_loss(student_logits, teacher_logits, targets, temperature, alpha)

    model, loaders = trainer.fresh_resnet18(0)
    history, best_state = trainer.distil(model, loaders, counting_loss)
    assert calls == [(4.0, 0.5), (4.0, 0.5)] and len(history) == 1 and set(best_state) == set(model.state_dict())
    assert len(trainer.teacher_logits) == len(loaders.train) == 2  # each batch's logits kept for the next student
    model, loaders = trainer.fresh_resnet18(0)
    trainer.distil(model, loaders, "feature_mse")  # the teacher runs on every batch here: its hook needs the pass
    assert not trainer.teacher.layer4._forward_hooks and not model.layer4._forward_hooks


def test_teacher_note_names_the_teacher_04_distils_from():
    record = handover.Meta("resnet50", 10, False, 32, 3, "mnist5k")
    pruned = record.with_extra(prune_method="global", ratio=0.3, finetune_epochs=2)
    assert distill.teacher_note("pruned", pruned, 0.3, 0.98) == (
        "The teacher used here is notebook 03's ResNet50, validation accuracy 98.00%: notebook 02 pruned it by global "
        "magnitude pruning (one threshold over every Conv2d and Linear weight) at ratio 0.3 (weight sparsity 0.3000), "
        "and notebook 03 fine-tuned it for 2 epochs with its zeros kept.")
    assert distill.teacher_note("dense", record, 0.0, 0.976) == (
        "The teacher used here is notebook 02's dense ResNet50 as notebook 02 trained it, validation accuracy 97.60%: "
        "unpruned (weight sparsity 0.0000) and not fine-tuned.")
    assert distill.teacher_note("pruned", pruned.with_extra(ratio=0.0, finetune_epochs=1), 0.0, 0.5) == (
        "The teacher used here is notebook 03's fine-tuned ResNet50, validation accuracy 50.00%, but notebook 02 "
        "handed it over at ratio 0 (weight sparsity 0.0000): no weight is pruned, so it is the unpruned teacher "
        "fine-tuned for 1 epoch, not a pruned model.")
    per_layer = record.with_extra(prune_method="per-layer", ratio=0.55)  # a record without finetune_epochs
    assert distill.teacher_note("pruned", per_layer, 0.55, 1.0).endswith(
        "per-layer magnitude pruning (every Conv2d and Linear layer loses the same fraction) at ratio 0.55 (weight "
        "sparsity 0.5500), and notebook 03 fine-tuned it with its zeros kept.")
    with pytest.raises(ValueError, match="teacher must be 'pruned' or 'dense', not 'student'"):
        distill.teacher_note("student", record, 0.0, 0.9)
    with pytest.raises(ValueError, match=r"val_accuracy must be a fraction in \[0, 1\].*not 98.0"):
        distill.teacher_note("dense", record, 0.0, 98.0)  # percent, not a fraction


def _reading_inputs(teacher_low: float, teacher_high: float):
    names = ["ResNet50 original (02)", "ResNet50 pruned + fine-tuned (03)", "ResNet18 distilled (04)",
             "ResNet18 control (04)"]
    table = pd.DataFrame({"checkpoint_kb": [92000.0, 92000.0, 43700.0, 43700.0],
                          "sparse_kb": [92000.0, 30000.0, 43700.0, 43700.0],
                          "compression": [0.0, 0.0, 0.525, 0.525], "compression_sparse": [0.0, 0.674, 0.525, 0.525],
                          "macs": [1.0e9, 1.0e9, 0.5e9, 0.5e9], "test_accuracy": [0.98, 0.97, 0.96, 0.95]},
                         index=names)
    kd = pd.DataFrame([{"verdict": "A is 1.0 points above B.", "high": 2.0, "distinguishable": True},
                       {"verdict": "T against C.", "high": teacher_high, "distinguishable": teacher_low > 0 or teacher_high < 0}])
    timings = {(name, b): [t] * 3 for name, t in zip(names, (40.0, 40.0, 10.0, 10.0)) for b in (1, 64)}
    return table, kd, timings


def test_table_reading_is_generated_from_the_table():
    table, kd, timings = _reading_inputs(0.5, 1.5)
    text = distill.table_reading(table, kd, timings, threads=2, batch=64, epochs=1, test_images=1000)
    lines = text.splitlines()
    assert len(lines) == 5 and all(line.startswith("- **") for line in lines)
    assert "stores 43,700 KB against the original ResNet50's 92,000 KB: a compression rate of 52.5%" in lines[0]
    assert "in sparse form 30,000 KB (67.4%)" in lines[0]
    assert "needs 50% of the ResNet50's MACs" in lines[1] and "at batch 1 4.0x faster" in lines[1]
    assert "measurement noise on this machine: no measurable difference" in lines[1]
    assert "On the 1,000 test images: original ResNet50 98.0%" in lines[2] and "control ResNet18 95.0%" in lines[2]
    assert lines[3].endswith("after 1 epoch: A is 1.0 points above B.")
    assert "T against C. The teacher is more accurate than the control student" in lines[4]


@pytest.mark.parametrize("low, high, words", [(-2.0, -0.5, "is **less** accurate"), (-0.5, 0.5, "**not distinguishable**")])
def test_table_reading_says_what_a_teacher_no_better_than_the_control_means(low, high, words):
    table, kd, timings = _reading_inputs(low, high)
    assert words in distill.table_reading(table, kd, timings, threads=2, batch=64, epochs=2, test_images=10)
