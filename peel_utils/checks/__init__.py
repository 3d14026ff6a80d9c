"""Instant checks for the workbook's exercises: one function per exercise, run in the cell after it.

A check runs the student's code on small fixed inputs with known answers, then prints one line,
"✓ passed: ...", or raises CheckFailed (an AssertionError) saying in plain words what is wrong.
It never shows solution code: the expected values come from answer_key (data in the hand-out),
the messages from catalog's table of typical mistakes. While the student's code runs, the
workbook's own implementations of that exercise are blocked (guard): an answer that calls them
fails with "your answer calls the workbook's own implementation; write it yourself". A stub's
NotImplementedError passes through unchanged; any other error in the student's code is reported
as CheckFailed, chained to the original so its traceback stays visible. The checks leave the
global random state as they found it. One module per notebook: nb01 ... nb08.
"""

from .core import CheckFailed
from .nb01 import check_calc_mask, check_get_model_sparsity, check_masked_training_step, check_sparse_pruner
from .nb02 import check_choose_ratio, check_global_layer_sparsity
from .nb03 import check_bitmask_bytes, check_paired_interval
from .nb04 import check_distillation_loss
from .nb05 import check_cpd_importance, check_finite_difference_hv, check_hessian_taylor_stats
from .nb06 import check_quantize_per_channel, check_quantize_tensor
from .nb07 import check_huffman_code, check_kmeans_share
from .nb08 import check_tier

__all__ = ["CheckFailed", "check_bitmask_bytes", "check_calc_mask", "check_choose_ratio", "check_cpd_importance",
           "check_distillation_loss", "check_finite_difference_hv", "check_get_model_sparsity",
           "check_global_layer_sparsity", "check_hessian_taylor_stats", "check_huffman_code", "check_kmeans_share",
           "check_masked_training_step", "check_paired_interval", "check_quantize_per_channel", "check_quantize_tensor",
           "check_sparse_pruner", "check_tier"]
