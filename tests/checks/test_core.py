"""The checks' common ground: CheckFailed, and a wrong answer in the tests for every mistake of the catalog."""


import pytest
import test_nb01
import test_nb02
import test_nb03
import test_nb04
import test_nb05
import test_nb06
import test_nb07
import test_nb08

from peel_utils import checks
from peel_utils.checks import catalog


def test_check_failed_is_an_assertion_error():
    assert issubclass(checks.CheckFailed, AssertionError)


# --- every mistake of the table is tested -------------------------------------------------------

CATCH_TESTS = {  # imported as modules, so pytest does not collect their tests here a second time
    "get_model_sparsity": test_nb01.test_get_model_sparsity_catches, "calc_mask": test_nb01.test_calc_mask_catches,
    "SparsePruner.prune": test_nb01.test_sparse_pruner_catches,
    "train_one_epoch": test_nb01.test_masked_training_step_catches,
    "global_layer_sparsity": test_nb02.test_global_layer_sparsity_catches,
    "choose_ratio": test_nb02.test_choose_ratio_catches, "bitmask_bytes": test_nb03.test_bitmask_bytes_catches,
    "paired_interval": test_nb03.test_paired_interval_catches,
    "distillation_loss": test_nb04.test_distillation_loss_catches,
    "finite_difference_hv": test_nb05.test_finite_difference_hv_catches,
    "hessian_taylor_stats": test_nb05.test_hessian_taylor_stats_catches,
    "CPDImportance": test_nb05.test_cpd_importance_catches,
    "quantize_tensor": (test_nb06.test_quantize_tensor_names_each_mistake, test_nb06.test_dequantize_names_each_mistake),
    "quantize_per_channel": test_nb06.test_quantize_per_channel_names_each_mistake,
    "kmeans_share": test_nb07.test_kmeans_share_names_each_mistake,
    "huffman_code": test_nb07.test_huffman_code_names_each_mistake, "tier": test_nb08.test_catches}


@pytest.mark.parametrize("exercise", catalog.EXERCISES, ids=lambda e: e.name)
def test_each_mistake_of_the_table_has_a_wrong_answer_that_triggers_it(exercise):
    tests = CATCH_TESTS[exercise.name]
    tests = tests if isinstance(tests, tuple) else (tests,)  # an exercise of two functions: a test for each
    cases = [case for test in tests for mark in test.pytestmark if mark.name == "parametrize" for case in mark.args[1]]
    assert {case[-1] for case in cases} == set(exercise.mistakes)


def test_importing_the_checks_leaves_torch_pruning_unloaded():
    """Every notebook imports the checks; only notebook 05's CPDImportance check loads torch-pruning."""
    import subprocess
    import sys

    code = "import sys, peel_utils.checks; print('torch_pruning' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"
