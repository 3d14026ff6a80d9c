"""Notebook 04's check: distillation_loss passes on the solution and names each mistake of the table."""


import pytest
import torch.nn.functional as F
from check_helpers import fails_with, mistake, solution, stub

from peel_utils import checks

# --- distillation loss (notebook 04) ---------------------------------------------------------

def kl_rows(s, t, temperature):
    log_s, log_t = F.log_softmax(s / temperature, dim=1), F.log_softmax(t.detach() / temperature, dim=1)
    return (log_t.exp() * (log_t - log_s)).sum(dim=1)


def mix(kl, s, targets, alpha, temperature=1.0):
    return alpha * kl + (1 - alpha) * F.cross_entropy(s / temperature, targets)


def no_t_squared(s, t, targets, temperature, alpha):
    return mix(kl_rows(s, t, temperature).mean(), s, targets, alpha)


def mean_over_classes(s, t, targets, temperature, alpha):
    kl = F.kl_div(F.log_softmax(s / temperature, dim=1), F.softmax(t.detach() / temperature, dim=1),
                  reduction="mean")
    return mix(temperature ** 2 * kl, s, targets, alpha)


def summed_over_batch(s, t, targets, temperature, alpha):
    return mix(temperature ** 2 * kl_rows(s, t, temperature).sum(), s, targets, alpha)


def reversed_kl(s, t, targets, temperature, alpha):
    return mix(temperature ** 2 * kl_rows(t.detach(), s, temperature).mean(), s, targets, alpha)


def soft_cross_entropy(s, t, targets, temperature, alpha):
    soft = -(F.softmax(t.detach() / temperature, dim=1) * F.log_softmax(s / temperature, dim=1)).sum(dim=1)
    return mix(temperature ** 2 * soft.mean(), s, targets, alpha)


def probabilities_into_kl_div(s, t, targets, temperature, alpha):
    kl = F.kl_div(F.softmax(s / temperature, dim=1), F.softmax(t.detach() / temperature, dim=1),
                  reduction="batchmean")
    return mix(temperature ** 2 * kl, s, targets, alpha)


def ce_at_temperature(s, t, targets, temperature, alpha):
    return mix(temperature ** 2 * kl_rows(s, t, temperature).mean(), s, targets, alpha, temperature)


def alpha_swapped(s, t, targets, temperature, alpha):
    return mix(temperature ** 2 * kl_rows(s, t, temperature).mean(), s, targets, 1 - alpha)


def teacher_not_detached(s, t, targets, temperature, alpha):
    log_s, log_t = F.log_softmax(s / temperature, dim=1), F.log_softmax(t / temperature, dim=1)
    kl = (log_t.exp() * (log_t - log_s)).sum(dim=1).mean()
    return mix(temperature ** 2 * kl, s, targets, alpha)


def per_image(s, t, targets, temperature, alpha):
    rows = temperature ** 2 * kl_rows(s, t, temperature)
    return alpha * rows + (1 - alpha) * F.cross_entropy(s, targets, reduction="none")


def test_distillation_loss_passes_on_solution(nb04, capsys):
    checks.check_distillation_loss(nb04["distillation_loss"])
    assert capsys.readouterr().out.count("✓ passed: distillation_loss") == 1


@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides")
def as_float(s, t, targets, temperature, alpha):
    return float(solution("04", "distillation_loss")(s, t, targets, temperature, alpha))


def clamps_the_logits(s, t, targets, temperature, alpha):
    loss = solution("04", "distillation_loss")(s, t, targets, temperature, alpha)
    s.data.clamp_(min=-0.9)
    return loss


@pytest.mark.parametrize("wrong, key", [
    (no_t_squared, "no_t2"),
    (mean_over_classes, "mean_classes"),
    (summed_over_batch, "sum_batch"),
    (reversed_kl, "reversed"),
    (soft_cross_entropy, "soft_ce"),
    (probabilities_into_kl_div, "not_zero"),
    (ce_at_temperature, "ce_at_t"),
    (alpha_swapped, "swapped"),
    (teacher_not_detached, "teacher_grad"),
    (per_image, "per_image"),
    (as_float, "not_tensor"),
    (clamps_the_logits, "changes"),
])
def test_distillation_loss_catches(wrong, key):
    with fails_with(mistake("distillation_loss", key)):
        checks.check_distillation_loss(wrong)


def test_distillation_loss_names_the_shape_it_got():
    with fails_with(r"returned shape \(4,\)"):
        checks.check_distillation_loss(per_image)


def test_distillation_stub_raises_its_own_error():
    with pytest.raises(NotImplementedError):
        checks.check_distillation_loss(stub)
