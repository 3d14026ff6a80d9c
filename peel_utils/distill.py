"""Knowledge distillation: the losses and the training loop (`train_kd`, `fit_kd`).

`kd_loss` is Hinton's soft-target loss (source 000, step three); `logits_mse_loss` and
`feature_mse_loss` are source 002's logits and intermediate-feature MSE. Each mixes its
distillation term with the cross-entropy on the labels by a weight `alpha`. `load_teacher`
reads notebook 02's or 03's ResNet50 hand-over checkpoint.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader

from .runtime import eval_mode
from .train import Pruner, fit_epochs, run_epoch

LOSSES = ("kl", "mse_logits", "feature_mse")


def _as_float(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _validate_temperature_alpha(temperature: float, alpha: float) -> None:
    if not (math.isfinite(_as_float(temperature)) and _as_float(temperature) > 0):
        raise ValueError(f"temperature must be a finite number > 0, not {temperature!r} "
                         "(T = 1 is the plain softmax; a larger T softens it)")
    if not 0.0 <= _as_float(alpha) <= 1.0:
        raise ValueError(f"alpha must be a number in [0, 1], not {alpha!r} "
                         "(the weight of the distillation term; 0 is cross-entropy only)")


def _validate_logits(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                  targets: torch.Tensor) -> None:
    if student_logits.dim() != 2 or teacher_logits.dim() != 2:
        raise ValueError(f"logits must be (batch, classes); got student {tuple(student_logits.shape)}, "
                         f"teacher {tuple(teacher_logits.shape)}")
    if student_logits.size(1) != teacher_logits.size(1):
        raise ValueError(f"the student has {student_logits.size(1)} classes but the teacher has "
                         f"{teacher_logits.size(1)}; build the student with the teacher's num_classes")
    if student_logits.size(0) != teacher_logits.size(0) or targets.shape != student_logits.shape[:1]:
        raise ValueError(f"batch sizes differ: student {student_logits.size(0)}, teacher "
                         f"{teacher_logits.size(0)}, targets {tuple(targets.shape)}")


def soft_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(softmax(teacher / T) || softmax(student / T)), averaged over the batch (no T^2 factor)."""
    return F.kl_div(F.log_softmax(student_logits / temperature, dim=1),
                    F.log_softmax(teacher_logits.detach() / temperature, dim=1),
                    reduction="batchmean", log_target=True)


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor,
            temperature: float = 4.0, alpha: float = 0.5) -> torch.Tensor:
    """Hinton's distillation loss: alpha * T^2 * KL(soft teacher || soft student) + (1 - alpha) * CE.

    T^2 keeps the soft term's gradients the same size whatever T (they shrink as 1/T^2).
    The teacher's logits are detached: gradients reach the student only. Introduced in notebook 04.
    """
    _validate_temperature_alpha(temperature, alpha)
    _validate_logits(student_logits, teacher_logits, targets)
    kl = soft_kl(student_logits, teacher_logits, temperature)
    return alpha * temperature ** 2 * kl + (1 - alpha) * F.cross_entropy(student_logits, targets)


def logits_mse_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor,
                    alpha: float = 0.5) -> torch.Tensor:
    """Source 002's logits distillation: alpha * MSE(student, teacher logits) + (1 - alpha) * CE.

    The MSE is averaged over batch and classes (the source's squared norm divided by the class
    count), so its size does not grow with the number of classes.
    """
    _validate_temperature_alpha(1.0, alpha)
    _validate_logits(student_logits, teacher_logits, targets)
    mse = F.mse_loss(student_logits, teacher_logits.detach())
    return alpha * mse + (1 - alpha) * F.cross_entropy(student_logits, targets)


def feature_mse_loss(student_features: torch.Tensor, teacher_features: torch.Tensor,
                     student_logits: torch.Tensor, targets: torch.Tensor, alpha: float = 0.5) -> torch.Tensor:
    """Source 002's feature distillation: alpha * MSE(student features, teacher features) + (1 - alpha) * CE.

    `student_features` must already be projected to the teacher's shape (see FeatureMSE).
    """
    _validate_temperature_alpha(1.0, alpha)
    if student_features.shape != teacher_features.shape:
        raise ValueError(f"feature shapes differ: student {tuple(student_features.shape)} vs teacher "
                         f"{tuple(teacher_features.shape)}; project the student's features first")
    mse = F.mse_loss(student_features, teacher_features.detach())
    return alpha * mse + (1 - alpha) * F.cross_entropy(student_logits, targets)


class FeatureMSE(nn.Module):
    """Captures one intermediate feature map of student and teacher (forward hooks) and projects
    the student's to the teacher's channel count with a learned 1x1 convolution.

    Both layers must give the same spatial size (a ResNet18's and a ResNet50's `layer4` do).
    `sample` is one input batch, used once to read the feature shapes. The projection's
    parameters must be trained with the student's: put `self.parameters()` in the optimizer.
    Call `remove()` to detach the hooks when done.
    """

    def __init__(self, student: nn.Module, teacher: nn.Module, sample: torch.Tensor,
                 student_layer: str = "layer4", teacher_layer: str = "layer4"):
        super().__init__()
        self._features: dict[str, torch.Tensor] = {}
        self._hooks = []
        for role, model, layer in (("student", student, student_layer), ("teacher", teacher, teacher_layer)):
            try:
                module = model.get_submodule(layer)
            except AttributeError as err:
                names = [n for n, _ in model.named_children()]
                raise ValueError(f"the {role} has no layer {layer!r}; its top-level layers are {names}") from err
            self._hooks.append(module.register_forward_hook(self._keep(role)))
        with torch.no_grad():
            for model in (student, teacher):
                with eval_mode(model):
                    model(sample[:1])
        s, t = self._features["student"], self._features["teacher"]  # (1, Cs, H, W), (1, Ct, H, W)
        if s.dim() != 4 or t.dim() != 4 or s.shape[2:] != t.shape[2:]:
            self.remove()
            raise ValueError(f"{student_layer!r} gives {tuple(s.shape)} and {teacher_layer!r} gives "
                             f"{tuple(t.shape)}: need (N, C, H, W) maps of the same H and W")
        self.projection = nn.Conv2d(s.size(1), t.size(1), kernel_size=1, bias=False).to(s.device)

    def _keep(self, role: str):
        def hook(module, inputs, output):
            self._features[role] = output
        return hook

    def loss(self, student_logits: torch.Tensor, targets: torch.Tensor, alpha: float = 0.5) -> torch.Tensor:
        """feature_mse_loss on the features captured by the last forward passes of both models."""
        projected = self.projection(self._features["student"])  # (N, Ct, H, W)
        return feature_mse_loss(projected, self._features["teacher"], student_logits, targets, alpha)

    def remove(self) -> None:
        """Remove the forward hooks from student and teacher."""
        for handle in self._hooks:
            handle.remove()
        self._hooks.clear()


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor, *,
                      loss: str = "kl", temperature: float = 4.0, alpha: float = 0.5,
                      features: FeatureMSE | None = None) -> torch.Tensor:
    """The loss named by `loss` ('kl', 'mse_logits' or 'feature_mse') on one batch."""
    if loss == "kl":
        return kd_loss(student_logits, teacher_logits, targets, temperature, alpha)
    if loss == "mse_logits":
        return logits_mse_loss(student_logits, teacher_logits, targets, alpha)
    if loss == "feature_mse":
        if features is None:
            raise ValueError("loss='feature_mse' needs features=FeatureMSE(student, teacher, sample)")
        _validate_logits(student_logits, teacher_logits, targets)
        return features.loss(student_logits, targets, alpha)
    raise ValueError(f"unknown loss {loss!r}; choose one of {LOSSES}")


def train_kd(student: nn.Module, teacher: nn.Module, loader: DataLoader, optimizer: torch.optim.Optimizer, *,
             temperature: float = 4.0, alpha: float = 0.5, loss: str | Callable = "kl",
             features: FeatureMSE | None = None, pruner: Pruner | None = None, amp: bool = False,
             desc: str = "distill") -> float:
    """One epoch of distillation; returns the mean training loss.

    `loss` names one of LOSSES, or is a function `loss(student_logits, teacher_logits, targets,
    temperature, alpha)`, e.g. the distillation loss a student wrote in notebook 04, which then
    trains the model. The teacher runs in eval mode without gradients; only the student (and, for
    'feature_mse', the projection of `features`, which must then be given) is trained. With a pruner,
    its masks are re-applied after every step, as in peel_utils.train.train. amp: CUDA mixed precision.
    """
    if not callable(loss) and loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; choose one of {LOSSES}")
    _validate_temperature_alpha(temperature, alpha)
    if loss == "feature_mse":
        in_optimizer = {id(p) for group in optimizer.param_groups for p in group["params"]}
        if features is None or any(id(p) not in in_optimizer for p in features.parameters()):
            raise ValueError("loss='feature_mse' needs features=FeatureMSE(student, teacher, sample) "
                             "with its parameters in the optimizer")
    teacher.eval()

    def batch_loss(inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            teacher_logits = teacher(inputs)  # (N, classes)
        student_logits = student(inputs)      # (N, classes)
        if callable(loss):
            return loss(student_logits.float(), teacher_logits.float(), targets, temperature, alpha)
        return distillation_loss(student_logits.float(), teacher_logits.float(), targets,
                                 loss=loss, temperature=temperature, alpha=alpha, features=features)

    return run_epoch(student, loader, optimizer, batch_loss, pruner, amp=amp, desc=desc)


def fit_kd(student: nn.Module, teacher: nn.Module, train_loader: DataLoader, val_loader: DataLoader,
           optimizer: torch.optim.Optimizer, num_epochs: int, *,
           scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
           temperatures: Sequence[float] | None = None, **kd_options) -> tuple[list[dict], dict]:
    """peel_utils.train.fit with train_kd as the epoch: `num_epochs` of distillation, validating
    after each; returns the history (epoch, train_loss, val_accuracy) and the best epoch's state_dict.

    kd_options go to train_kd (temperature, alpha, loss, features, pruner, amp). `temperatures`, one
    per epoch, replaces the fixed temperature with a schedule (source 002's dynamic temperature,
    notebook 04). Introduced in notebook 04.
    """
    if temperatures is not None and len(temperatures) != num_epochs:
        raise ValueError(f"temperatures gives {len(temperatures)} values for {num_epochs} epochs; give one per epoch")

    def epoch(number: int) -> float:
        options = kd_options if temperatures is None else {**kd_options, "temperature": temperatures[number - 1]}
        return train_kd(student, teacher, train_loader, optimizer, desc=f"epoch {number}", **options)

    return fit_epochs(student, val_loader, num_epochs, epoch, scheduler)


@torch.no_grad()
def kd_loss_terms(student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor,
                  temperature: float = 4.0, alpha: float = 0.5) -> dict[str, float]:
    """The parts of kd_loss for fixed logits: what notebook 04's T/alpha sliders draw (`sliders.loss_terms_figure`).

    kl: KL at temperature T; kl_term = alpha * T^2 * kl; ce: cross-entropy on the labels;
    ce_term = (1 - alpha) * ce; total = kl_term + ce_term (= kd_loss); teacher_top_prob: the
    teacher's mean largest soft probability at T (how much the softening flattens it).
    """
    _validate_temperature_alpha(temperature, alpha)
    _validate_logits(student_logits, teacher_logits, targets)
    kl = soft_kl(student_logits, teacher_logits, temperature).item()
    ce = F.cross_entropy(student_logits, targets).item()
    kl_term, ce_term = alpha * temperature ** 2 * kl, (1 - alpha) * ce
    top = F.softmax(teacher_logits / temperature, dim=1).max(dim=1).values.mean().item()
    return {"temperature": float(temperature), "alpha": float(alpha), "kl": kl, "kl_term": kl_term,
            "ce": ce, "ce_term": ce_term, "total": kl_term + ce_term, "teacher_top_prob": top}
