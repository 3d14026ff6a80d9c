"""Knowledge distillation: the losses, the training loop (`train_kd`, `fit_kd`) and the student's control.

`kd_loss` is Hinton's soft-target loss (source 000, step three); `logits_mse_loss` and
`feature_mse_loss` are source 002's logits and intermediate-feature MSE. Each mixes its
distillation term with the cross-entropy on the labels by a weight `alpha`. `PairTrainer` trains
notebook 04's student and its control, two ResNet18 runs that differ only in the loss; `teacher_note` names the
teacher they learn from and `table_reading` says what notebook 04's table of the four models shows, both
generated from the numbers. `TeacherLogits` keeps the
teacher's logits of each batch, so students trained on the same batches pay the teacher's forward pass once.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader

from . import handover, measure
from .data import DatasetSplits, Loaders, make_loaders
from .models import resnet18
from .runtime import eval_mode, seed_phase
from .sweep import METHOD_WORDS, validate_ratio
from .train import Pruner, fit, fit_epochs, run_epoch

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


class TeacherLogits:
    """The teacher's logits of each batch, computed the first time the batch is seen and read back after.

    Several students trained on the same batches in the same order (notebook 04's distillation losses, each from
    pair 0's weights and batches) then pay the teacher's forward pass once: on the CPU it is about half of a
    distillation step. A batch is known by its bytes (shape and a BLAKE2 digest of the input tensor), so a batch
    that differs in any pixel or in its order is computed afresh, and what a student sees never depends on what
    was cached: the logits are those the teacher gives that very batch, in eval mode without gradients. Batches
    on a GPU are not kept: there the teacher's pass costs less than copying the batch back to read its bytes.
    """

    def __init__(self, teacher: nn.Module):
        self.teacher = teacher
        self._logits: dict[tuple, torch.Tensor] = {}

    def __call__(self, inputs: torch.Tensor) -> torch.Tensor:
        self.teacher.eval()
        if inputs.device.type != "cpu":
            with torch.no_grad():
                return self.teacher(inputs)
        key = (tuple(inputs.shape), hashlib.blake2b(inputs.detach().numpy().tobytes(), digest_size=16).digest())
        if key not in self._logits:
            with torch.no_grad():
                self._logits[key] = self.teacher(inputs)
        return self._logits[key]

    def __len__(self) -> int:
        """How many distinct batches the teacher has run on."""
        return len(self._logits)


def train_kd(student: nn.Module, teacher: nn.Module, loader: DataLoader, optimizer: torch.optim.Optimizer, *,
             temperature: float = 4.0, alpha: float = 0.5, loss: str | Callable = "kl",
             features: FeatureMSE | None = None, pruner: Pruner | None = None, amp: bool = False,
             teacher_logits: TeacherLogits | None = None, desc: str = "distill") -> float:
    """One epoch of distillation; returns the mean training loss.

    `loss` names one of LOSSES, or is a function `loss(student_logits, teacher_logits, targets,
    temperature, alpha)`, e.g. the distillation loss a student wrote in notebook 04, which then
    trains the model. The teacher runs in eval mode without gradients; only the student (and, for
    'feature_mse', the projection of `features`, which must then be given) is trained. With a pruner,
    its masks are re-applied after every step, as in peel_utils.train.train. amp: CUDA mixed precision.
    `teacher_logits` (a `TeacherLogits` of `teacher`) reads back the logits of batches the teacher has already
    seen; with `features` the teacher runs on every batch, as its hook needs.
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
            logits = teacher(inputs) if teacher_logits is None or features else teacher_logits(inputs)  # (N, classes)
        student_logits = student(inputs)      # (N, classes)
        if callable(loss):
            return loss(student_logits.float(), logits.float(), targets, temperature, alpha)
        return distillation_loss(student_logits.float(), logits.float(), targets,
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


# ---------------------------------------------------------------------------------------------
# The student and its control (notebook 04)

Fit = Callable[[nn.Module, Loaders], tuple[list[dict], dict]]
"""Trains a model on its loaders; returns (history, best epoch's state_dict), as fit_kd and train.fit do."""


def loss_probe(loss: Callable, temperature: float, alpha: float) -> float:
    """`loss(student_logits, teacher_logits, targets, temperature, alpha)` on one fixed hand-made image, to 6 decimals.

    Notebook 04 writes it into the student's hand-over record: after the loss function changes, the record differs, so
    the student is trained anew instead of one trained with the earlier loss being read back."""
    value = loss(torch.tensor([[1.0, -2.0, 0.5]]), torch.tensor([[0.5, 1.0, -1.0]]), torch.tensor([1]),
                 temperature, alpha)
    return round(float(value), 6)


@dataclass(frozen=True, eq=False)
class PairTrainer:
    """Trains notebook 04's pairs of ResNet18s: a student distilled from `teacher`, and a control on cross-entropy only.

    Both runs of pair `run` start from the same initial weights and see the same batches in the same order
    (`fresh_resnet18`), with the same SGD (momentum 0.9, weight decay 5e-4, cosine decay to 0 over `epochs`); only
    the loss differs, so comparing the two measures what the teacher adds. `teacher_meta` is the teacher's
    hand-over record: the students get its classes, input and dataset. Its students share one `TeacherLogits`
    (`teacher_logits`): a student trained on batches another has seen reads the teacher's logits back, with the
    very values it would have computed. Introduced in notebook 04.
    """

    teacher: nn.Module
    teacher_meta: handover.Meta
    splits: DatasetSplits
    seed: int
    epochs: int
    batch_size: int
    lr: float
    temperature: float
    alpha: float
    device: torch.device | str = "cpu"
    amp: bool = False
    teacher_logits: TeacherLogits = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "teacher_logits", TeacherLogits(self.teacher))  # frozen: set once, here

    def record(self) -> handover.Meta:
        """The hand-over record every ResNet18 of this trainer shares (architecture, data, seed, epochs, batch size,
        lr); the caller adds what tells student and control apart (the loss)."""
        t = self.teacher_meta
        return handover.Meta("resnet18", t.num_classes, t.small_input, image_size=t.image_size,
                             in_channels=t.in_channels, dataset=t.dataset).with_extra(
            seed=self.seed, epochs=self.epochs, batch_size=self.batch_size, lr=self.lr)

    def fresh_resnet18(self, run: int = 0) -> tuple[nn.Module, Loaders]:
        """Pair `run`'s untrained ResNet18 and its loaders: the same initial weights and batch order every call
        (the phase seed `(seed, "resnet18 pair <run>")`)."""
        phase_seed = seed_phase(self.seed, f"resnet18 pair {run}")
        model = resnet18(self.teacher_meta.num_classes, small_input=self.teacher_meta.small_input).to(self.device)
        return model, make_loaders(self.splits, self.batch_size, seed=phase_seed)

    def _optimizer(self, params) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
        optimizer = torch.optim.SGD(params, lr=self.lr, momentum=0.9, weight_decay=5e-4)
        return optimizer, torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.epochs)

    def distil(self, model: nn.Module, loaders: Loaders, loss: str | Callable = "kl",
               temperatures: Sequence[float] | None = None) -> tuple[list[dict], dict]:
        """Train `model` with the teacher: `loss` names one of LOSSES or is a loss function like `kd_loss` (the
        student's own), at temperature `temperatures[epoch - 1]` in each epoch (`temperature` throughout when
        None). 'feature_mse' matches `layer4` of both through a 1x1 projection trained with the student. Returns
        the history and the best validation epoch's state_dict."""
        features = None
        if loss == "feature_mse":  # hooks on layer4 of both, plus a 1x1 projection trained with the student
            features = FeatureMSE(model, self.teacher, next(iter(loaders.val))[0].to(self.device))
        extra = list(features.parameters()) if features else []
        optimizer, scheduler = self._optimizer(list(model.parameters()) + extra)
        try:
            return fit_kd(model, self.teacher, loaders.train, loaders.val, optimizer, self.epochs, scheduler=scheduler,
                          temperature=self.temperature, temperatures=temperatures, alpha=self.alpha, loss=loss,
                          features=features, amp=self.amp, teacher_logits=self.teacher_logits)
        finally:
            if features:
                features.remove()

    def cross_entropy_only(self, model: nn.Module, loaders: Loaders) -> tuple[list[dict], dict]:
        """Train `model` on the labels alone with the student's optimizer and schedule: the control's recipe."""
        optimizer, scheduler = self._optimizer(model.parameters())
        return fit(model, loaders.train, loaders.val, optimizer, self.epochs, scheduler=scheduler, amp=self.amp)

    def train_or_load(self, checkpoint_dir: str | Path, key: str, meta: handover.Meta, fit_run: Fit,
                      run: int = 0) -> tuple[nn.Module, pd.DataFrame]:
        """Pair `run`'s ResNet18 for hand-over file `key` ("student" or "control") and its history: read back when
        the file was made with `meta` (plus the run), else `fit_run(model, loaders)` trains `fresh_resnet18(run)`,
        its best epoch is kept, and model and history are saved (`handover.train_or_load`)."""
        model, loaders = self.fresh_resnet18(run)

        def fit_model() -> list[dict]:
            history, best_state = fit_run(model, loaders)
            model.load_state_dict(best_state)
            return history

        return model, handover.train_or_load(model, checkpoint_dir, key, meta.with_extra(run=run), fit_model, run)


def teacher_note(teacher: str, meta: handover.Meta, weight_sparsity: float, val_accuracy: float) -> str:
    """The sentence that names the teacher notebook 04 distils from: `teacher` is its parameter ("pruned": notebook
    03's fine-tuned pruned ResNet50; "dense": notebook 02's unpruned one), `meta` that model's hand-over record (the
    method, ratio and fine-tuning epochs it holds), `weight_sparsity` its measured fraction of zero Conv2d/Linear
    weights and `val_accuracy` its validation accuracy, a fraction as `train.evaluate` returns it. A "pruned" teacher
    at ratio 0 is said to be the unpruned one fine-tuned. Introduced in notebook 04."""
    if teacher not in ("pruned", "dense"):
        raise ValueError(f"teacher must be 'pruned' or 'dense', not {teacher!r}")
    if not 0 <= val_accuracy <= 1:
        raise ValueError(f"val_accuracy must be a fraction in [0, 1], as train.evaluate returns it, not {val_accuracy!r}")
    accuracy = f"validation accuracy {val_accuracy:.2%}"
    if teacher == "dense":
        return (f"The teacher used here is notebook 02's dense ResNet50 as notebook 02 trained it, {accuracy}: unpruned "
                f"(weight sparsity {weight_sparsity:.4f}) and not fine-tuned.")
    ratio, epochs = validate_ratio(meta.extra["ratio"]), meta.extra.get("finetune_epochs")
    during = "" if epochs is None else f" for {epochs} epoch{'' if epochs == 1 else 's'}"
    if ratio == 0:
        return (f"The teacher used here is notebook 03's fine-tuned ResNet50, {accuracy}, but notebook 02 handed it "
                f"over at ratio 0 (weight sparsity {weight_sparsity:.4f}): no weight is pruned, so it is the unpruned "
                f"teacher fine-tuned{during}, not a pruned model.")
    method = meta.extra["prune_method"]
    return (f"The teacher used here is notebook 03's ResNet50, {accuracy}: notebook 02 pruned it by "
            f"{METHOD_WORDS.get(method, method)} at ratio {ratio:g} (weight sparsity {weight_sparsity:.4f}), and "
            f"notebook 03 fine-tuned it{during} with its zeros kept.")


def _teacher_note(teacher_vs_control: pd.Series) -> str:
    if teacher_vs_control["high"] < 0:
        return ("The teacher is **less** accurate than the control student trained without it, so its soft targets "
                "also carry its mistakes. Why: the teacher is a pruned ResNet50 fine-tuned briefly, and a ResNet18 "
                "trained from scratch already reaches it on this easy task at this size; a teacher weaker than the "
                "student's own training can only help through the shape of its wrong-class probabilities, not "
                "through its accuracy.")
    if teacher_vs_control["distinguishable"]:
        return "The teacher is more accurate than the control student, so there is something to distil."
    return ("The teacher and the control student are **not distinguishable** in accuracy: the teacher has little "
            "accuracy to hand on; whatever distillation adds must come from its soft targets' shape.")


def table_reading(table: pd.DataFrame, kd: pd.DataFrame, timings: dict, *, threads: int, batch: int, epochs: int,
                  test_images: int) -> str:
    """Notebook 04's reading of its table, as markdown bullets generated from the numbers (smaller, faster?,
    accuracy, what distillation added, the teacher against the control), so text and table cannot disagree.

    `table` has one row per model, in the order original ResNet50, pruned ResNet50, distilled ResNet18, control
    ResNet18, with checkpoint_kb, sparse_kb, compression, compression_sparse, macs and test_accuracy (a fraction);
    `kd` holds compare.comparison_table's rows student against control, then teacher against control; `timings`
    are measure.interleaved_timings' rounds of the same models at batch 1 and `batch`, on `threads` threads.
    """
    original, pruned_name, student_name, control_name = table.index[:4]
    orig, pruned, student, control = (table.loc[name] for name in table.index[:4])
    gain, teacher_vs_control = kd.iloc[0], kd.iloc[1]

    def faster(model: str, baseline: str, at: int) -> str:
        return measure.speedup_words(timings, model, baseline, at)

    lines = [
        f"- **Smaller.** The distilled ResNet18 stores {student['checkpoint_kb']:,.0f} KB against the original "
        f"ResNet50's {orig['checkpoint_kb']:,.0f} KB: a compression rate of {student['compression']:.1%} "
        f"(source 000: 52.5%). The pruned ResNet50's dense file is {pruned['checkpoint_kb']:,.0f} KB "
        f"({pruned['compression']:.1%}); in sparse form {pruned['sparse_kb']:,.0f} KB ({pruned['compression_sparse']:.1%}).",
        f"- **Faster?** The ResNet18 needs {student['macs'] / orig['macs']:.0%} of the ResNet50's MACs per image. "
        f"Measured on this CPU ({threads} threads), the distilled ResNet18 against the original ResNet50: at batch 1 "
        f"{faster(student_name, original, 1)}; at batch {batch} {faster(student_name, original, batch)}. The pruned "
        f"ResNet50 against the original at batch {batch}, where the same dense computation predicts no difference: "
        f"{faster(pruned_name, original, batch)}. The two ResNet18s are the same network, so what parts them is the "
        f"measurement noise on this machine: {faster(student_name, control_name, batch)}.",
        f"- **Accuracy.** On the {test_images:,} test images: original ResNet50 {orig['test_accuracy']:.1%}, pruned "
        f"and fine-tuned {pruned['test_accuracy']:.1%}, distilled ResNet18 {student['test_accuracy']:.1%}, "
        f"control ResNet18 {control['test_accuracy']:.1%}.",
        f"- **What distillation added**, after {epochs} epoch{'s' if epochs != 1 else ''}: {gain.verdict}",
        f"- **The teacher against the control.** {teacher_vs_control.verdict} {_teacher_note(teacher_vs_control)}",
    ]
    return "\n".join(lines)
