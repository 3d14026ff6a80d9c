import random

import numpy as np
import pytest
import torch

from peel_utils import runtime


def test_seed_everything_repeats_every_generator():
    def draw():
        runtime.seed_everything(7)
        return random.random(), np.random.rand(), torch.rand(1).item()
    assert draw() == draw()


def test_device_auto_prefers_cuda_then_mps_then_cpu(monkeypatch):
    assert runtime.get_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert runtime.get_device("auto") == torch.device("cpu")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert runtime.get_device("auto") == torch.device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert runtime.get_device("auto") == torch.device("cuda")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_absent_cuda_is_a_clear_error():
    with pytest.raises(RuntimeError, match="not available here"):
        runtime.get_device("cuda")


def test_unknown_device():
    with pytest.raises(ValueError, match="unknown device 'gpu0'"):
        runtime.get_device("gpu0")


def test_setup_sets_small_figures():
    import matplotlib.pyplot as plt

    assert runtime.setup(0, "cpu") == torch.device("cpu")
    assert plt.rcParams["figure.dpi"] == runtime.FIGURE_DPI


def test_seed_phase_depends_on_seed_and_phase_only():
    def draw(seed, phase):
        torch.rand(5)  # whatever ran before
        phase_seed = runtime.seed_phase(seed, phase)
        return phase_seed, torch.rand(1).item()
    first = draw(0, "fine-tune")
    torch.rand(100)
    assert draw(0, "fine-tune") == first
    assert draw(0, "teacher")[0] != first[0] and draw(1, "fine-tune")[0] != first[0]
    assert 0 <= first[0] < 2**31


def test_eval_mode_restores_the_mode_even_after_an_error():
    model = torch.nn.Sequential(torch.nn.Dropout(0.5)).train()
    with runtime.eval_mode(model):
        assert not model.training
    assert model.training
    with pytest.raises(RuntimeError), runtime.eval_mode(model):
        raise RuntimeError("inside")
    assert model.training
    model.eval()
    with runtime.eval_mode(model):
        pass
    assert not model.training
