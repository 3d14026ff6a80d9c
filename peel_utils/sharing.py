"""Weight sharing (Deep Compression's second stage): each pruned layer's non-zero weights take one of
2**bits values, its codebook, found by k-means; the zeros stay zero and outside the clustering.

A shared layer is then stored as its codebook plus one small index per non-zero weight (and the
positions of the non-zeros), instead of a 32-bit float per weight. Han et al. (ICLR 2016) initialise
the centroids linearly between the layer's smallest and largest weight (large weights, rare but
important, keep centroids of their own) and fine-tune the centroids afterwards: each centroid's
gradient is the sum of the gradients of the weights that share it.

k-means here is written in torch, not scikit-learn's `KMeans`: the data is one-dimensional, so the
nearest centroid is found by binary search among the sorted centroids (`torch.bucketize`) in
O(n log k), exactly, with no random restarts (`KMeans` would run k-means++ restarts in 1-D, slower
and seeded). Introduced in notebook 07.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from .prune import validate_max_drop

MAX_ITERATIONS = 100
_TOLERANCE = 1e-6  # float32 accuracies: a width exactly max_drop points below still counts as within


@dataclass(frozen=True)
class SharedLayer:
    """One weight tensor after sharing: where its non-zeros are, its codebook and each non-zero's index.

    `mask` (bool, the weight's shape) marks the non-zeros; `indices` (uint8, one per non-zero, in
    row-major order) point into `codebook` (float32, 2**bits values)."""

    mask: torch.Tensor
    codebook: torch.Tensor
    indices: torch.Tensor
    bits: int

    def weight(self) -> torch.Tensor:
        """The shared weight: codebook[index] at each non-zero, zero elsewhere."""
        weight = torch.zeros(self.mask.shape, dtype=self.codebook.dtype)
        weight[self.mask] = self.codebook[self.indices.long()]
        return weight


def check_bits(bits: object) -> int:
    """`bits` as an int in 1..8 (a codebook of 2 to 256 values, an index fits one byte), else ValueError."""
    if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 8:
        raise ValueError(f"bits must be an integer from 1 to 8 (a codebook of 2**bits values), not {bits!r}")
    return bits


def kmeans_1d(values: torch.Tensor, bits: int, max_iterations: int = MAX_ITERATIONS
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """k-means of a flat tensor into 2**bits centroids: (codebook (2**bits,) float32, sorted; index of
    each value (uint8)).

    Linear initialisation between min and max; each round assigns every value to its nearest centroid
    (a value exactly half-way goes to the lower one) and moves each centroid to the mean of its values
    (a centroid with no values stays where it is), until the assignments no longer change. In one
    dimension each cluster is a run of the sorted values, so a round costs a binary search per centroid
    and prefix sums, not a pass over the values.

    No values (a layer that pruning emptied) leave nothing to share: no index, and a codebook of 2**bits zeros
    that no weight points at (a shared layer's file record holds 2**bits values whatever it holds)."""
    check_bits(bits)
    values = values.detach().reshape(-1).float().cpu()
    k = 2 ** bits
    if values.numel() == 0:
        return torch.zeros(k), torch.zeros(0, dtype=torch.uint8)
    ordered = values.sort().values
    prefix = torch.cat([torch.zeros(1, dtype=torch.float64), ordered.double().cumsum(0)])  # sums of runs
    codebook = torch.linspace(float(ordered[0]), float(ordered[-1]), k)
    ends = None
    for _ in range(max_iterations):
        codebook = codebook.sort().values
        new = torch.searchsorted(ordered, (codebook[1:] + codebook[:-1]) / 2, right=True)  # values <= each midpoint
        new = torch.cat([new, torch.tensor([ordered.numel()])])                                 # run j ends at new[j]
        if ends is not None and torch.equal(new, ends):
            break
        ends = new
        starts = torch.cat([torch.zeros(1, dtype=torch.long), ends[:-1]])
        counts = ends - starts
        sums = prefix[ends] - prefix[starts]
        codebook = torch.where(counts > 0, (sums / counts.clamp(min=1)).float(), codebook)
    indices = torch.bucketize(values, (codebook[1:] + codebook[:-1]) / 2)  # nearest; a tie goes lower
    return codebook, indices.to(torch.uint8)


def shareable(model: nn.Module) -> dict[str, nn.Parameter]:
    """The weights that sharing replaces: every parameter with more than one dimension (conv, linear)."""
    return {name: param for name, param in model.named_parameters() if param.dim() > 1}


def share_weights(model: nn.Module, bits: int | Mapping[str, int], *, allow_dense: bool = False
                  ) -> dict[str, SharedLayer]:
    """k-means of each weight tensor's non-zeros, one codebook per layer: {parameter name: SharedLayer}.

    `bits` is one width for every layer or a width per parameter name. The model is only read (apply the
    result with `apply_shared`). A layer that pruning emptied gets no index (`kmeans_1d`) and stays zero. A model
    whose weights have no zero (nothing pruned) is a ValueError:
    sharing here is the stage after pruning; `allow_dense=True` shares such a model's weights all the same."""
    weights = shareable(model)
    widths = {name: bits[name] if isinstance(bits, Mapping) else bits for name in weights}
    for name, width in widths.items():
        try:
            check_bits(width)
        except ValueError as err:
            raise ValueError(f"{name}: {err}") from None
    if not weights or (not allow_dense and not any(bool((param == 0).any()) for param in weights.values())):
        raise ValueError(f"the model has no pruned layer (no weight of its {len(weights)} weight tensors is zero): "
                         "prune it first (peel_utils.prune.GlobalPruner), or pass allow_dense=True to share "
                         "every weight of a dense model")
    shared = {}
    for name, param in weights.items():
        mask = param.detach().cpu() != 0
        codebook, indices = kmeans_1d(param.detach().cpu()[mask], widths[name])  # an emptied layer: no index
        shared[name] = SharedLayer(mask, codebook, indices, widths[name])
    return shared


@torch.no_grad()
def apply_shared(model: nn.Module, shared: Mapping[str, SharedLayer]) -> nn.Module:
    """Write each shared weight into `model` in place (the parameters keep their identity); returns it."""
    for name, layer in shared.items():
        param = model.get_parameter(name)
        param.copy_(layer.weight().to(param.device, param.dtype))
    return model


def finetune_centroids(model: nn.Module, shared: Mapping[str, SharedLayer], batches: Iterable, *,
                       lr: float = 1e-4, steps: int | None = None) -> tuple[dict[str, SharedLayer], list[float]]:
    """Fine-tune the codebooks on `batches` ((inputs, targets) pairs) with Adam, masks and indices kept.

    The gradient of a centroid is the sum of the gradients of the weights that share it (Han et al.);
    every other parameter and the BatchNorm statistics stay as they are (the model runs in eval mode).
    At most `steps` batches. Returns the new shared layers (the model holds them too) and each step's
    loss."""
    device = next(model.parameters()).device
    names = list(shared)
    params = [model.get_parameter(name) for name in names]
    flat_masks = [shared[name].mask.reshape(-1).to(device) for name in names]
    indices = [shared[name].indices.long().to(device) for name in names]
    codebooks = [nn.Parameter(shared[name].codebook.clone().to(device)) for name in names]
    optimizer = torch.optim.Adam(codebooks, lr=lr)
    was_training = model.training
    model.eval()
    losses = []
    try:
        for step, (inputs, targets) in enumerate(tqdm(batches, desc="centroids", leave=False)):
            if steps is not None and step >= steps:
                break
            with torch.no_grad():
                for param, mask, index, codebook in zip(params, flat_masks, indices, codebooks):
                    param.view(-1)[mask] = codebook[index]
            loss = F.cross_entropy(model(inputs.to(device)), targets.to(device))
            grads = torch.autograd.grad(loss, params)
            for grad, mask, index, codebook in zip(grads, flat_masks, indices, codebooks):
                codebook.grad = torch.zeros_like(codebook).index_add_(0, index, grad.reshape(-1)[mask])
            optimizer.step()
            losses.append(float(loss.detach()))
    finally:
        model.train(was_training)
    tuned = {name: SharedLayer(shared[name].mask, codebook.detach().cpu().clone(), shared[name].indices,
                               shared[name].bits) for name, codebook in zip(names, codebooks)}
    apply_shared(model, tuned)
    return tuned, losses


def choose_bits(table: pd.DataFrame, reference: float, max_drop: float) -> int:
    """The codebook width to store: the smallest `bits` of `table` whose `val_accuracy` is at most `max_drop`
    points below `reference`, the unshared model's validation accuracy (both fractions); when no width comes that
    close, the width with the best validation accuracy (the smallest of equals).

    `table` is a bits sweep measured on the validation split (columns `bits`, `val_accuracy`): the width is chosen
    there, never on test, as `sweep.choose_ratio` chooses the pruning ratio. `max_drop` is in percentage points
    (1.0: one point). Introduced in notebook 07."""
    max_drop = validate_max_drop(max_drop)
    if table.empty:
        raise ValueError("the bits sweep is empty: measure at least one width")
    widths = table.sort_values("bits")
    close = widths[widths["val_accuracy"] >= reference - max_drop / 100 - _TOLERANCE]
    if len(close):
        return check_bits(int(close["bits"].iloc[0]))
    return check_bits(int(widths.loc[widths["val_accuracy"].idxmax(), "bits"]))


def bits_reading(table: pd.DataFrame, reference: float, max_drop: float, val_images: int, name: str = "the model") -> str:
    """The sentence that says which width `choose_bits` takes and why, generated from the sweep: the width and its
    validation accuracy, the reference it is held against, what one point is in validation images, and the next
    narrower width's accuracy (what one bit less would have cost). Introduced in notebook 07."""
    bits = choose_bits(table, reference, max_drop)
    val = table.set_index("bits")["val_accuracy"].sort_index()
    bound = f"{max_drop:g} point{'' if max_drop == 1 else 's'}"

    def gap(accuracy: float) -> str:
        points = round((reference - accuracy) * 100, 1)
        return "level with it" if points == 0 else f"{abs(points):.1f} points {'below' if points > 0 else 'above'}"

    unit = {b: f"{b} bit{'' if b == 1 else 's'}" for b in val.index}
    per_point = val_images / 100
    scale = f"1 point = {per_point:g} validation image{'' if per_point == 1 else 's'}"
    if val[bits] >= reference - max_drop / 100 - _TOLERANCE:
        text = (f"{name}: {unit[bits]}, the smallest width whose validation accuracy ({val[bits]:.3f}, {gap(val[bits])}) "
                f"is within {bound} of the unshared model's ({reference:.3f}; {scale})")
    else:
        text = (f"{name}: no width is within {bound} of the unshared model's validation accuracy ({reference:.3f}; "
                f"{scale}), so {unit[bits]}, the best on validation ({val[bits]:.3f}, {gap(val[bits])})")
    narrower = val[val.index < bits]
    if len(narrower):
        text += f"; {unit[narrower.index[-1]]}: {narrower.iloc[-1]:.3f}, {gap(narrower.iloc[-1])}"
    return text + "."
