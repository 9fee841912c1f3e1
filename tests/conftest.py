"""Fixtures and collection rules; the shared helpers live in helpers.py."""

import zlib

import numpy as np
import pytest
from helpers import REAL_GPU  # noqa: F401  (importing helpers switches on the simulator)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "gpu" in item.keywords and not REAL_GPU:
            item.add_marker(pytest.mark.skip(reason="marked gpu: needs a real NVIDIA GPU"))


@pytest.fixture
def rng(request):
    # a fresh, distinct seed per test, reproducible from the test's name
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))
