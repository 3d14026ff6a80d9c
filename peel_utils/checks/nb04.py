"""Check of notebook 04 (distillation): Hinton's distillation_loss."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from . import answer_key, catalog, fixtures
from .core import call, exercise_check, fail, passed


@exercise_check("distillation_loss")
def check_distillation_loss(distillation_loss: Callable) -> None:
    """`distillation_loss(student_logits, teacher_logits, targets, temperature, alpha)` on hand-made
    logits (4 images, 3 classes): 0 for equal logits at alpha = 1, the plain cross-entropy at
    alpha = 0, the known values for several T and alpha, one number per batch, and gradients to
    the student only."""
    __tracebackhide__ = True
    name = "distillation_loss"
    mistake = catalog.BY_NAME[name].mistake
    values = answer_key.distillation_values()
    student, teacher, targets = fixtures.STUDENT.clone(), fixtures.TEACHER.clone(), fixtures.TARGETS.clone()

    def loss(s, t, temperature, alpha):
        __tracebackhide__ = True
        what = f"distillation_loss(student, teacher, targets, temperature={temperature}, alpha={alpha})"
        out = call(name, what, distillation_loss, s, t, targets, temperature, alpha)
        if not isinstance(out, torch.Tensor):
            fail(name, f"{what} returned {type(out).__name__}; {mistake('not_tensor')}")
        if out.dim() != 0:
            fail(name, f"{mistake('per_image')} ({what} returned shape {tuple(out.shape)})")
        return float(out)

    def near(a: float, b: float) -> bool:
        return math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-6)

    got = loss(student, student.clone(), 4.0, 1.0)
    if abs(got) > 1e-5:
        known = [mistake(key) for key, value in values["equal"].items()
                 if key != "right" and abs(value) > 1e-5 and near(got, value)]
        known += [mistake("swapped")] if near(got, values["ce"]) else []
        fail(name, f"{mistake('not_zero')}, got {got:.4f}" + "".join(f": {w}" for w in known))
    if not torch.equal(student, fixtures.STUDENT) or not torch.equal(teacher, fixtures.TEACHER):
        fail(name, mistake("changes"))
    got = loss(student, teacher, 4.0, 0.0)
    if not near(got, values["ce"]):
        if near(got, values["ce_soft"]):
            why = mistake("ce_at_t")
        elif near(got, values["by_t"]["4.0"]["right"]):
            why = mistake("swapped")
        else:
            why = "at alpha = 0 only the cross-entropy on the labels is left"
        fail(name, f"with alpha = 0 the loss should be the plain cross-entropy, {values['ce']:.4f}, got {got:.4f}: {why}")
    for temperature in fixtures.TEMPERATURES:
        got = loss(student, teacher, temperature, 1.0)
        variants = dict(values["by_t"][str(temperature)])
        expected = variants.pop("right")
        if not near(got, expected):
            for key, value in variants.items():
                if near(got, value):
                    fail(name, f"at T = {temperature}, alpha = 1: expected {expected:.4f}, got {got:.4f}: "
                               f"{mistake(key)}")
            fail(name, f"at T = {temperature}, alpha = 1 the loss should be T² times the batch-mean "
                       f"KL(teacher || student) of the softened distributions, {expected:.4f}, got {got:.4f}")
    for (temperature, alpha), expected in zip(fixtures.MIXES, values["mixes"]):
        got = loss(student, teacher, temperature, alpha)
        if not near(got, expected):
            fail(name, f"at T = {temperature}, alpha = {alpha}: expected alpha * T² * KL + (1 - alpha) * CE "
                       f"= {expected:.4f}, got {got:.4f}")
    s, t = student.clone().requires_grad_(), teacher.clone().requires_grad_()
    out = call(name, "distillation_loss(...)", distillation_loss, s, t, targets, 4.0, 0.5)
    call(name, "loss.backward()", out.backward)
    if t.grad is not None and bool(t.grad.abs().gt(0).any()):
        fail(name, mistake("teacher_grad"))
    if s.grad is None or not bool(s.grad.abs().gt(0).any()):
        fail(name, "no gradient reaches the student's logits; build the loss from them with torch operations")
    passed("distillation_loss is 0 for equal logits, the plain cross-entropy at alpha = 0, scales the "
           "batch-mean KL by T² and trains the student only")
