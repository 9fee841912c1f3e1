"""Shared fixtures: seeded random data and a tolerance that grows with the value's size."""

import zlib

import numpy as np
import pytest


@pytest.fixture
def rng(request):
    # a fresh, distinct seed per test, reproducible from the test's name
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


def assert_close(actual, expected, rtol=1e-5, atol=1e-6):
    """|actual − expected| ≤ atol + rtol·|expected| elementwise, with the worst offender shown."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    err = np.abs(actual - expected) - (atol + rtol * np.abs(expected))
    worst = np.unravel_index(np.argmax(err), err.shape) if err.size else ()
    assert err.size == 0 or err[worst] <= 0, (
        f"mismatch at {worst}: {actual[worst]!r} vs {expected[worst]!r}")
