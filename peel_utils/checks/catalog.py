"""The exercises: for each, its notebook, its check cell, the workbook's own implementations a
student must not call, and the table of typical mistakes its check names.

One table, read by the checks (their messages), by their tests (one wrong answer per mistake)
and by the instructor guide (generated, see peel_course.guide), so the three cannot drift.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Mistake:
    """A typical wrong answer: a short label (the guide) and what the check says about it."""

    label: str
    message: str


@dataclass(frozen=True)
class Exercise:
    """One exercise. `references` are 'module:qualname' of the workbook's implementations that the
    check makes unavailable while the student's code runs; `handout` says which of them the
    hand-out replaces by a stub (the others are needed by the notebooks' own later work)."""

    notebook: str
    name: str
    what: str
    check: str
    call: str
    references: tuple[str, ...]
    mistakes: dict[str, Mistake] = field(default_factory=dict)
    handout_stubs: tuple[str, ...] = ()

    def mistake(self, key: str) -> str:
        return self.mistakes[key].message


DELEGATION = "your answer calls the workbook's own implementation ({reference}); write it yourself"

M = Mistake
EXERCISES: tuple[Exercise, ...] = (
    Exercise("01", "get_model_sparsity", "body of `get_model_sparsity`", "check_get_model_sparsity",
             "checks.check_get_model_sparsity(get_model_sparsity)",
             ("peel_utils.prune:get_model_sparsity", "peel_utils.measure:count_nonzero_parameters"), {
                 "weights_only": M("counting only the weights (biases are parameters too)",
                                   "it counts only the weight matrices (9 of 18 zero); biases are parameters too, "
                                   "so count every parameter of the model"),
                 "density": M("returning the density", "it returned the fraction of non-zero parameters; "
                                                       "sparsity is the fraction that is exactly zero"),
                 "tiny": M("counting a tiny non-zero as zero",
                           "it counted a tiny non-zero value (1e-12) as zero; count exact zeros only"),
                 "count": M("returning the number of zeros",
                            "it returned the number of zeros; return the fraction of all parameters that are zero"),
                 "tensor": M("returning a tensor instead of a float", "it returned a torch.Tensor; return a plain "
                                                                      "Python float (a one-element tensor's .item() gives one)"),
                 "changes": M("changing the model",
                              "it changed the model's parameters; measuring sparsity must only read them"),
             }),
    Exercise("01", "calc_mask", "body of `calc_mask`", "check_calc_mask", "checks.check_calc_mask(calc_mask)",
             ("peel_utils.prune:calc_mask", "peel_utils.prune:MagnitudeRanking.masks"), {
                 "smallest": M("keeping the smallest magnitudes",
                               "it keeps the smallest-magnitude weights; it should keep the largest |w|"),
                 "signed": M("ranking signed values", "it ranks the signed values, so large negative weights are "
                                                      "pruned; rank by magnitude |w|"),
                 "dtype": M("a float mask (wrong dtype)", "wrong dtype: the mask should be torch.bool (True keeps a "
                                                          "weight, False prunes it)"),
                 "shape": M("a flattened mask (wrong shape)",
                            "wrong shape: the mask must have the input's shape, one entry per weight"),
                 "one_too_few": M("one zero too few (`>=` instead of `>`)",
                                  "one too few; the k-th smallest magnitude itself is pruned (keep what lies "
                                  "strictly above it)"),
                 "one_too_many": M("one zero too many", "one too many; exactly round(numel * sparsity) weights go"),
                 "fraction": M("pruning 1 - sparsity",
                               "it pruned 1 - sparsity of the weights; sparsity is the fraction removed"),
                 "edges": M("crashing or wrong at sparsity 0 or 1",
                            "at sparsity 0 every weight is kept (all True), at sparsity 1 every weight is pruned "
                            "(all False)"),
                 "no_value_error": M("no ValueError outside [0, 1]",
                                     "a sparsity outside [0, 1] should raise ValueError with a message saying so"),
                 "changes": M("changing the input",
                              "it changed the tensor it was given; computing a mask must only read the weights"),
             }),
    Exercise("01", "SparsePruner.prune", "`SparsePruner.prune`", "check_sparse_pruner",
             "checks.check_sparse_pruner(SparsePruner)", ("peel_utils.prune:SparsePruner.prune",), {
                 "copy": M("pruning a copy (not in place)",
                           "it pruned a copy and left the model it was given unchanged; prune must change the given "
                           "model in place (the fine-tuning loop calls it after every step)"),
                 "rebind": M("rebinding a local name (model unchanged)",
                             "the model's weights are unchanged after prune; the masked weights must become zero in "
                             "the model's own parameters (an in-place operation; assigning to a local name changes "
                             "nothing)"),
                 "replace": M("replacing the Parameter objects (an optimizer would lose them)",
                              "it replaced the model's parameter objects; an optimizer built before pruning would "
                              "keep updating the old ones. Change the values of the existing parameters in place"),
                 "fresh": M("computing new masks instead of applying `self.masks`",
                            "it computed a new mask from the model's current weights; prune must apply the masks "
                            "made in __init__ (self.masks), so the zeros stay where they were"),
                 "wrong_mask": M("not multiplying each weight by its own mask",
                                 "multiply each weight by its own mask"),
                 "bias": M("touching biases", "only the weights that have a mask in self.masks are pruned"),
                 "returns": M("returning None", "return the model it was given, so "
                                                "`pruned = pruner.prune(copy.deepcopy(model))` works"),
             }),
    Exercise("01", "train_one_epoch", "masked training step in `train_one_epoch`", "check_masked_training_step",
             "checks.check_masked_training_step(train_one_epoch, device)", ("peel_utils.train:run_epoch",), {
                 "no_step": M("no optimizer step", "the weights did not change in one epoch of 4 batches: no "
                                                   "optimizer step was taken"),
                 "grow_back": M("forgetting to re-apply the masks (or applying them before the step): pruned "
                                "weights grow back",
                                "pruned weights are non-zero after training; re-apply the masks after every "
                                "optimizer step, or the pruned weights grow back"),
                 "accumulate": M("forgetting `zero_grad` (gradients accumulate)", "the gradients accumulate from "
                                 "batch to batch; clear them before each backward pass"),
                 "at_end": M("masks applied only after the last batch",
                             "the masks are applied only after the last batch; the pruned weights must be back at "
                             "zero after every step, while the other weights train"),
                 "other": M("extra steps", "each batch should take one optimizer step on that batch's loss, then "
                                           "re-apply the masks"),
             }),
    Exercise("02", "global_layer_sparsity", "the prediction `global_layer_sparsity`", "check_global_layer_sparsity",
             "checks.check_global_layer_sparsity(global_layer_sparsity)",
             ("peel_utils.prune:MagnitudeRanking.masks", "peel_utils.prune:calc_mask"), {
                 "per_layer": M("one threshold per layer (every layer loses the ratio)",
                                "every layer lost the same fraction, the ratio: that is per-layer pruning, one threshold "
                                "per layer; global pruning ranks all the weights together, so a layer of small weights "
                                "loses more than the ratio and a layer of large ones less"),
                 "signed": M("ranking signed values", "it ranks the signed values, so large negative weights are "
                                                      "zeroed first; rank by magnitude |w|"),
                 "one_too_few": M("one zero too few in all (the k-th smallest magnitude kept)",
                                  "one zero too few in all: exactly round(ratio * total) weights go, the k-th smallest "
                                  "magnitude itself included"),
                 "one_too_many": M("one zero too many in all",
                                   "one zero too many in all: exactly round(ratio * total) weights go"),
                 "share": M("each layer's share of all the zeros",
                            "it returned each layer's share of all the zeros (they add up to 1); return the fraction of "
                            "the layer's own weights that is zeroed"),
                 "fraction": M("zeroing 1 - ratio", "it zeroed 1 - ratio of the weights; the ratio is the fraction "
                                                    "removed"),
                 "density": M("returning the fraction kept", "it returned the fraction of each layer that is kept; "
                                                             "return the fraction zeroed"),
                 "counts": M("returning the number of zeros", "it returned the number of zeros per layer; return the "
                                                              "fraction of the layer's weights"),
                 "edges": M("crashing or wrong at ratio 0", "at ratio 0 no weight is zeroed, so every layer's "
                                                            "sparsity is 0.0 (there is no k-th smallest magnitude)"),
                 "tensor": M("tensors instead of floats", "return plain Python floats (a one-element tensor's .item() "
                                                          "gives one)"),
                 "returns": M("not a dict of the weights' names",
                              "return a dict {weight name: fraction zeroed}, with the names of the dict it was given, "
                              "in its order"),
                 "changes": M("changing the weights",
                              "it changed the weights it was given; predicting must only read them"),
             }),
    Exercise("02", "choose_ratio", "the ratio-choice rule `choose_ratio`", "check_choose_ratio",
             "checks.check_choose_ratio(choose_ratio)",
             ("peel_utils.sweep:choose_ratio", "peel_utils.prune:choose_sparsity_dict"), {
                 "best": M("measuring the drop from the best accuracy instead of ratio 0",
                           "it measures the drop from the best accuracy of the sweep; measure it from the unpruned "
                           "model (the method's ratio-0 row)"),
                 "strict": M("strict `>` at the bound", "a ratio whose accuracy is exactly max_drop points below "
                                                        "the unpruned model's is within the tolerance ('at most': >=)"),
                 "units": M("using max_drop as a fraction (`dense - max_drop`): every ratio passes",
                            "it accepted every ratio: max_drop is in percentage points (5.0 is five points) and the "
                            "table's accuracy is a fraction, so the bound is the ratio-0 accuracy - max_drop / 100"),
                 "first_failure": M("stopping at the first ratio outside the tolerance",
                                    "it stops at the first ratio outside the tolerance; the rule takes the largest "
                                    "ratio within it, even after a dip"),
                 "smallest": M("returning the smallest ratio", "it returned the smallest ratio within the "
                                                              "tolerance; return the largest"),
                 "mixing": M("mixing methods", "it looks at every method's rows; use only the rows of the method "
                                               "asked for"),
                 "accuracy": M("returning an accuracy", "it returned an accuracy; return the ratio"),
                 "not_float": M("returning a Series (not one float)", "it should return one ratio, a float"),
                 "changes": M("changing the table", "it changed the table it was given; choosing must only read it"),
             }, handout_stubs=("peel_utils.sweep:choose_ratio",)),
    Exercise("03", "bitmask_bytes", "sparse storage size `bitmask_bytes`", "check_bitmask_bytes",
             "checks.check_bitmask_bytes(bitmask_bytes)",
             ("peel_utils.storage:save_sparse", "peel_utils.storage:pack_bits"), {
                 "round_down": M("rounding the bitmask down", "it rounds the bitmask down: numel entries need "
                                                              "ceil(numel / 8) whole bytes"),
                 "fractional": M("a fractional byte count", "not a whole number of bytes: a bitmask of numel bits "
                                                            "takes ceil(numel / 8) bytes"),
                 "one_byte": M("a byte per entry instead of a bit",
                               "the bitmask takes one bit per entry, 8 entries per byte"),
                 "always_sparse": M("always storing sparse", "it stores a tensor sparse even where the dense tensor "
                                                             "is smaller; take the smaller of the two"),
                 "integers": M("counting integer tensors as floats", "integer tensors (such as num_batches_tracked) "
                                                                     "count as they are: numel * element_size()"),
                 "fp16_dense": M("the fp16 dense size taken from the fp32 tensor",
                                 "the dense size in fp16 is numel * bytes_per_value, not the fp32 tensor's own size"),
                 "not_int": M("returning a tensor", "return a byte count, a Python int"),
                 "changes": M("changing the state_dict",
                              "it changed the state_dict it was given; counting bytes must only read it"),
             }),
    Exercise("03", "paired_interval", "the paired bootstrap interval `paired_interval`", "check_paired_interval",
             "checks.check_paired_interval(paired_interval)",
             ("peel_utils.compare:paired_bootstrap", "peel_utils.compare:_resampled_means"), {
                 "unpaired": M("resampling A's and B's images independently (unpaired)",
                               "the interval is as wide as if the two models had answered different images: draw one "
                               "set of image indices per resample and use it for both (the comparison is paired, so "
                               "only the images where they disagree move it)"),
                 "no_replacement": M("drawing without replacement",
                                     "the interval has no width: every resample drew each image once, so its mean is "
                                     "the observed difference; draw n images with replacement"),
                 "narrow": M("too narrow an interval (not the 2.5th-97.5th percentiles, or not n images a resample)",
                             "the interval is too narrow: a 95% interval runs from the 2.5th to the 97.5th percentile "
                             "of the resampled differences, each resample drawing as many images as the test set holds"),
                 "fraction": M("a fraction instead of points",
                               "it returned fractions; the difference and its interval are in percentage points "
                               "(x 100)"),
                 "sign": M("B - A instead of A - B", "the sign is flipped: the difference is accuracy of A minus "
                                                    "accuracy of B"),
                 "bool": M("subtracting bool tensors",
                           "torch cannot subtract bool tensors: turn the outcomes into numbers first (1 right, 0 wrong)"),
                 "unseeded": M("a different interval each call (no seed)",
                               "two calls with the same seed gave different intervals: draw from a generator of your "
                               "own seeded with `seed`, so the same call always gives the same interval"),
                 "global_rng": M("changing the global random state",
                                 "it changed the global random state (torch.manual_seed, np.random.seed or draws from "
                                 "them): use a generator of your own, so the notebook's later numbers do not depend on "
                                 "this function"),
                 "returns": M("not returning three numbers", "return (points, low, high), three floats in percentage "
                                                             "points"),
                 "changes": M("changing the outcomes",
                              "it changed the outcomes it was given; an interval must only read them"),
             }),
    Exercise("04", "distillation_loss", "`distillation_loss`", "check_distillation_loss",
             "checks.check_distillation_loss(distillation_loss)",
             ("peel_utils.distill:kd_loss", "peel_utils.distill:soft_kl"), {
                 "no_t2": M("no T² factor", "it does not multiply the soft term by T² (the gradients of a softened "
                                            "KL shrink as 1/T², T² restores them)"),
                 "mean_classes": M("KL averaged over classes (`'mean'` vs `'batchmean'`)",
                                   "it averages the KL over the classes as well ('mean'); average over the batch "
                                   "only (F.kl_div's reduction='batchmean')"),
                 "sum_batch": M("KL summed over the batch", "it sums the KL over the batch; average it over the batch"),
                 "reversed": M("KL the wrong way round", "the KL runs the wrong way: it should be KL(teacher || "
                                                         "student), the teacher's soft probabilities weighing the "
                                                         "log-ratio"),
                 "soft_ce": M("soft cross-entropy instead of KL (not zero for equal logits)",
                              "it uses the cross-entropy with the soft targets, which adds the teacher's entropy; "
                              "the KL subtracts it, so that the term is zero when the student matches the teacher"),
                 "not_zero": M("probabilities passed to `F.kl_div`, or another loss that is not 0 for equal logits",
                               "with alpha = 1 and the student's logits equal to the teacher's, the loss should be 0 "
                               "(a distribution's KL divergence from itself)"),
                 "ce_at_t": M("CE at temperature T", "the cross-entropy on the labels uses the logits divided by T; "
                                                     "use the raw logits (T = 1)"),
                 "swapped": M("alpha on the wrong term", "alpha weighs the wrong term: alpha multiplies the "
                                                         "distillation term, 1 - alpha the cross-entropy"),
                 "teacher_grad": M("teacher not detached", "gradients flow into the teacher's logits; detach them "
                                                           "(the teacher is not trained)"),
                 "per_image": M("a per-image loss", "wrong shape: the loss is one number for the batch (a 0-dim "
                                                    "tensor): average the per-image terms over the batch"),
                 "not_tensor": M("returning a float", "return the loss as a tensor, so that loss.backward() can "
                                                      "train the student"),
                 "changes": M("changing the logits", "it changed the logits it was given; a loss must only read them"),
             }),
    Exercise("05", "finite_difference_hv", "Hessian-vector product by finite differences `finite_difference_hv`",
             "check_finite_difference_hv", "checks.check_finite_difference_hv(finite_difference_hv)", (), {
                 "not_divided": M("Hv not divided by h", "Hv is not divided by the step h: it is h times too "
                                                         "small"),
                 "divided_twice": M("Hv divided by h twice", "it divides by h once too often (by h², not h)"),
                 "sign": M("the gradients subtracted the wrong way round",
                           "its sign is flipped: Hv ≈ (∇L(θ + h v) - ∇L(θ)) / h, the gradient after the step "
                           "minus the one before"),
                 "no_step": M("both gradients taken at θ (the weights never moved)",
                              "it returned zeros: both gradients were taken at the same weights. Move the weights "
                              "themselves to θ + h v, in place (under torch.no_grad(), w.add_(h * v)), before the "
                              "second gradient"),
                 "not_restored": M("weights left at θ + h v",
                                   "the weights are not back where they were: after the second gradient, put "
                                   "every weight back to θ (keep a copy and copy_ it back)"),
                 "not_list": M("not one tensor per weight",
                               "it should return a list with one tensor per weight, each shaped like its weight"),
             }),
    Exercise("05", "hessian_taylor_stats", "Hessian/Taylor statistics in `hessian_taylor_stats`",
             "check_hessian_taylor_stats", "checks.check_hessian_taylor_stats(hessian_taylor_stats, device)", (), {
                 "not_squared": M("θ instead of θ²", "it multiplies by θ, not θ² (the mask Hessian's diagonal is "
                                                     "θ² ⊙ diag(H))"),
                 "no_probe": M("probe v left out", "it leaves out the probe: the estimate of diag(H) is v ⊙ Hv"),
                 "summed": M("summing instead of averaging over batches",
                             "it sums over the batches; average them (divide by their number)"),
                 "last_batch": M("keeping only the last batch",
                                 "it keeps only the last batch's value; add up every batch's contribution"),
                 "sign": M("sign", "its sign is flipped"),
                 "not_dicts": M("not returning two dicts", "it should return two dicts, (first, second), each "
                                                           "mapping a layer to a tensor shaped like its weight"),
             }),
    Exercise("05", "CPDImportance", "group importance `CPDImportance.__call__`", "check_cpd_importance",
             "checks.check_cpd_importance(CPDImportance)", (), {
                 "no_bn": M("leaving out BatchNorm scales", "it leaves out the BatchNorm scales of the group; each "
                                                            "one is a weight whose removal changes the loss"),
                 "no_inputs": M("leaving out the next layers' input weights",
                                "it leaves out the next layers' input weights (those reading the channel); they go "
                                "with it"),
                 "no_abs": M("no absolute value", "the score should be the absolute value |ΔL|: a channel whose "
                                                  "removal lowers the loss is no less important"),
                 "no_memory": M("not dividing by memory", "it is not divided by the memory the channel frees"),
                 "all_memory": M("dividing by every layer's memory",
                                 "it divides by the memory of every layer in the group; only the layers whose "
                                 "outputs lose the channel free activation memory"),
                 "sign": M("wrong sign of the first-order term",
                           "the first-order term has the wrong sign: ΔL ≈ -∂L/∂m + ½ ∂²L/∂m²"),
                 "half": M("missing ½", "the second-order term needs its factor ½"),
             }),
    Exercise("06", "quantize_tensor", "per-tensor quantisation `quantize_tensor` and `dequantize`",
             "check_quantize_tensor", "checks.check_quantize_tensor(quantize_tensor, dequantize)",
             ("peel_utils.storage:quantize_weight",), {
                 "returns": M("not returning (q, scale, zero_point)",
                              "return (q, scale, zero_point): q the integer codes, shaped like w; scale a positive "
                              "number; zero_point a whole number"),
                 "not_integers": M("floats instead of integer codes",
                                   "it returned floating-point codes; q holds integers (round, clamp, then "
                                   ".to(torch.int32) or another integer dtype)"),
                 "no_round": M("truncating instead of rounding",
                               "the codes are truncated toward zero (.int() or .long() on a float cuts off the "
                               "fraction); round to the nearest code first (torch.round)"),
                 "zp_not_rounded": M("zero point not rounded",
                                     "the zero point is not a whole number: round it, zero_point = round(-lo / scale), "
                                     "so that 0.0 falls exactly on a code"),
                 "no_clamp": M("clamp forgotten", "some codes lie outside [qmin, qmax]: a value outside the range "
                                                  "(value_range, as calibrated) must be clamped to the nearest end "
                                                  "(torch.clamp)"),
                 "levels": M("the number of levels off by one",
                             "the scale is off by one level: b bits give 2**b codes, so the range spans 2**b - 1 "
                             "steps (affine), and max|w| spans 2**(b-1) - 1 steps on each side of 0 (symmetric)"),
                 "symmetric_minmax": M("symmetric scale from max or max - min instead of max|w|",
                                       "symmetric mode takes its scale from max|w| (the larger of -lo and hi) over "
                                       "2**(bits-1) - 1 steps, not from the maximum alone nor from max - min"),
                 "symmetric_zero_point": M("a non-zero zero point in symmetric mode",
                                           "in symmetric mode the zero point is 0: the codes are signed, from "
                                           "-2**(bits-1) to 2**(bits-1) - 1"),
                 "zero_not_in_range": M("a range that leaves out 0",
                                        "the range must include 0 (lo = min(w.min(), 0), hi = max(w.max(), 0)) so "
                                        "that 0.0 is a code: after a ReLU every value is >= 0, and a zero (padding, a "
                                        "pruned weight) must stay exactly 0"),
                 "zp_sign": M("zero point of the wrong sign",
                              "the zero point has the wrong sign: it is the code of 0.0, zero_point = "
                              "round(-lo / scale), at least 0 since lo <= 0"),
                 "ignores_range": M("value_range ignored",
                                    "it ignores value_range: when a range is given (calibrated on other data, as "
                                    "PT2E's observers do), the scale and the zero point come from it, not from w"),
                 "dequant_zp": M("dequantising without subtracting the zero point",
                                 "dequantize must subtract the zero point before scaling: w_hat = (q - zero_point) "
                                 "* scale"),
                 "dequant_wrong": M("dequantize otherwise wrong", "dequantize(q, scale, zero_point) should return "
                                                                 "the float tensor (q - zero_point) * scale"),
                 "changes": M("changing the input", "it changed the tensor it was given; quantising must only read it"),
             }),
    Exercise("06", "quantize_per_channel", "per-channel quantisation `quantize_per_channel`",
             "check_quantize_per_channel", "checks.check_quantize_per_channel(quantize_per_channel)",
             ("peel_utils.storage:quantize_weight",), {
                 "returns": M("not returning (q, scale, zero_point)",
                              "return (q, scale, zero_point): q the integer codes shaped like w, scale and "
                              "zero_point one per output channel"),
                 "not_integers": M("floats instead of integer codes", "it returned floating-point codes; q holds "
                                                                      "integers (.to(torch.int32) after rounding)"),
                 "shape": M("scales shaped (C_out,)",
                            "scale and zero_point must keep w's number of dimensions, shaped (C_out, 1, 1, 1) for a "
                            "conv weight (amax(..., keepdim=True)), so that they broadcast against w and dequantize "
                            "works unchanged"),
                 "wrong_axis": M("per-channel along the wrong axis",
                                 "the scales run along the wrong axis: one scale per output channel, dim 0 of the "
                                 "weight (out, in, kh, kw), not one per input channel (dim 1)"),
                 "per_tensor": M("one scale for every channel",
                                 "every channel has the same scale: take each output channel's range on its own (the "
                                 "min and max over every dim but 0)"),
                 "zero_channel": M("dividing by 0 on an all-zero channel",
                                   "an all-zero channel (a pruned filter) has hi - lo = 0, so its scale is 0 and w / "
                                   "scale is NaN: use scale 1 there (torch.where), so its codes are the zero point and "
                                   "dequantise to exactly 0"),
                 "changes": M("changing the input", "it changed the tensor it was given; quantising must only read it"),
             }),
    Exercise("07", "kmeans_share", "k-means weight sharing `kmeans_share`", "check_kmeans_share",
                     "checks.check_kmeans_share(kmeans_share)",
                     ("peel_utils.sharing:kmeans_1d", "peel_utils.sharing:share_weights"), {
                         "zeros": M("zeros clustered (a pruned weight gets a centroid)",
                                    "a weight that was zero is not zero any more: the pruned weights stay zero and "
                                    "outside the clustering"),
                         "zeros_in_kmeans": M("zeros counted in the means",
                                              "the zeros stay zero but they pull the centroids: cluster only the "
                                              "non-zero weights"),
                         "random_init": M("random instead of linear initialisation",
                                          "two runs on the same model give different codebooks: initialise the "
                                          "centroids linearly between the layer's smallest and largest non-zero "
                                          "weight (torch.linspace), as Han et al."),
                         "not_updated": M("centroids never updated",
                                          "the codebook is still the linear initialisation: move each centroid to "
                                          "the mean of its weights and assign again, until the assignments no "
                                          "longer change"),
                         "one_codebook": M("one codebook for the whole model",
                                           "every layer shares one codebook: cluster each layer on its own (its "
                                           "weights have their own range)"),
                         "k_bits": M("bits centroids instead of 2**bits",
                                     "the codebook has `bits` values: b bits index 2**b centroids"),
                         "not_in_place": M("the model left unchanged",
                                           "the model's weights are unchanged: write each shared value back into the "
                                           "weight, in place"),
                         "bias": M("biases shared", "only the weights with more than one dimension are shared; "
                                                    "biases stay as they are"),
                         "returns": M("not returning the codebooks",
                                      "return a dict {parameter name: codebook tensor of 2**bits centroids}"),
                         "emptied": M("a layer emptied by pruning not handled",
                                      "a layer that pruning emptied (every weight zero) has no non-zero weight, so "
                                      "no smallest or largest one to start from and nothing to cluster: leave it as "
                                      "it is, all zero, and give it an empty codebook (values.new_zeros(0)) in the "
                                      "dict returned (a codebook of zeros only is accepted too)"),
                     }),
    Exercise("07", "huffman_code", "Huffman code `huffman_code`", "check_huffman_code",
                     "checks.check_huffman_code(huffman_code)", ("peel_utils.huffman:code_lengths",), {
                         "not_prefix_free": M("a code that is the prefix of another",
                                              "one code is the start of another, so a stream cannot be cut into "
                                              "codes: read each code off the path from the root of the tree"),
                         "not_optimal": M("a prefix-free code longer than Huffman's",
                                          "the code is prefix-free but longer in total than the optimum: always merge "
                                          "the two rarest subtrees"),
                         "single": M("an empty code for a single symbol",
                                     "a lone symbol still needs a code of one bit ('0'), not an empty string"),
                         "missing": M("a symbol without a code", "every symbol with a non-zero count needs a code"),
                         "not_bits": M("codes that are not strings of '0' and '1'",
                                       "return a dict {symbol: code}, each code a non-empty string of '0' and '1'"),
                         "changes": M("changing the counts", "it changed the counts it was given; building a code "
                                                             "must only read them"),
                     }),
    Exercise("08", "tier", "the challenge's tier rule `tier`", "check_tier",
             "checks.check_tier(tier)", ("peel_utils.entry:tier",), {
                 "smallest_first": M("the smallest tier first",
                                     "it returned a lower tier than the entry reaches: try the tiers from the largest "
                                     "down (the hardest first) and return the first one the size ratio reaches"),
                 "accuracy": M("accuracy not held against the teacher's (or points compared with a fraction)",
                               "an entry more than max_drop points below the teacher still got a tier: it needs "
                               "test_accuracy >= teacher_accuracy - max_drop / 100 (max_drop is in points, the "
                               "accuracies are fractions)"),
                 "strict_accuracy": M("an accuracy exactly max_drop below refused (`>` instead of `>=`)",
                                      "an accuracy exactly max_drop points below the teacher's is within (bounds "
                                      "included: >=)"),
                 "strict_ratio": M("a ratio exactly at a tier refused (`>` instead of `>=`)",
                                   "a size ratio exactly at a tier reaches it (bounds included: >=)"),
                 "ratio_direction": M("the size ratio compared the wrong way",
                                      "a larger size ratio is a smaller file: a tier is reached when size_ratio >= "
                                      "the tier, not <="),
                 "ignores_max_drop": M("max_drop ignored", "it ignores max_drop: the accuracy bound is "
                                                           "teacher_accuracy - max_drop / 100, whatever max_drop is"),
                 "ignores_tiers": M("tiers ignored", "it ignores the tiers it is given: use the `tiers` argument, "
                                                     "not the default (500, 200, 50)"),
                 "none": M("no 'none' when no tier is reached",
                           "return the string 'none' when no tier is reached (not None, not '')"),
                 "format": M("a number instead of a string like '500x'",
                             "return the tier as a string, the number followed by x: '500x', '200x', '50x'"),
             }),
)
del M

BY_NAME = {exercise.name: exercise for exercise in EXERCISES}
BY_CHECK = {exercise.check: exercise for exercise in EXERCISES}


def for_notebook(prefix: str) -> list[Exercise]:
    """The exercises of notebook `prefix` ('01'), in the order of their check cells."""
    return [exercise for exercise in EXERCISES if exercise.notebook == prefix]
