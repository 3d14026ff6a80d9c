"""Fixtures of the checks' tests: each solution notebook's exercised functions, executed once per module."""

import pytest
from check_helpers import notebook_namespace


@pytest.fixture(scope="module")
def nb01():
    return notebook_namespace("01")


@pytest.fixture(scope="module")
def nb02():
    return notebook_namespace("02")


@pytest.fixture(scope="module")
def nb03():
    return notebook_namespace("03")


@pytest.fixture(scope="module")
def nb04():
    return notebook_namespace("04")


@pytest.fixture(scope="module")
def nb05():
    return notebook_namespace("05")
