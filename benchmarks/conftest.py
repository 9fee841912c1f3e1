"""Fixtures of the CPU benchmarks: the workload data, full or smoke slice.

With ``--benchmark-disable`` (the default in pyproject's addopts, so in every normal test run)
each benchmark runs once as a smoke test on a small slice of MNIST; with
``--benchmark-enable`` it runs for real on the full workload.  See benchmarks/RESULTS.md.
"""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # so test files can import workloads

import workloads  # noqa: E402
from bench_helpers import smoke  # noqa: E402


@pytest.fixture(scope="session")
def data_full():
    return workloads.load_data(smoke=False)


@pytest.fixture(scope="session")
def data_smoke():
    return workloads.load_data(smoke=True)


@pytest.fixture
def data(benchmark, request):
    """The workload data: the full 50,000/10,000 split, or the smoke slice."""
    return request.getfixturevalue("data_smoke" if smoke(benchmark) else "data_full")
