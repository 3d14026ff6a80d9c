"""Shared fixtures: small real data (mnist5k) and seeded random-init models."""

import pytest
import torch

from peel_utils import data, runtime


@pytest.fixture(scope="session")
def mnist5k():
    return data.load_dataset("mnist5k")


@pytest.fixture
def seeded():
    runtime.seed_everything(0)
    yield
    torch.set_grad_enabled(True)
