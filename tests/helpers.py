"""Test helpers shared by the test modules (imported as ``helpers``; conftest.py imports
it first).

It decides, once and before anything imports numba, what "cuda" means in this run: a real
GPU when the driver reports one, else numba-cuda's simulator (NUMBA_ENABLE_CUDASIM=1, which
must be set before numba.cuda is first imported), so one pytest run covers everything.
This lives outside conftest.py because test modules import from it, and ``conftest`` is not
a unique module name once benchmarks/ is collected in the same run.
"""

import os
import sys
import zlib

import numpy as np
import pytest

from steepest.kernels import _cuda  # numba-free checks only

REAL_GPU = _cuda.real_gpu_present()
if not REAL_GPU and "numba" not in sys.modules:
    os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")
CUDA_UNAVAILABLE = _cuda.unavailable_reason()  # None: device="cuda" runs (GPU or simulator)
CUDA_IS_SIMULATOR = not REAL_GPU and _cuda.simulator_enabled()

# Kernel and training tests on CUDA: the simulator when there is no GPU.
needs_cuda = pytest.mark.skipif(CUDA_UNAVAILABLE is not None,
                                reason=f"CUDA unavailable: {CUDA_UNAVAILABLE}")
# Tests that only mean something on real hardware (speed, the driver's limits).
needs_real_gpu = pytest.mark.skipif(not REAL_GPU, reason="needs a real NVIDIA GPU "
                                    "(none found; CUDA kernels are tested on the simulator)")


def assert_close(actual, expected, rtol=1e-5, atol=1e-6):
    """|actual − expected| ≤ atol + rtol·|expected| elementwise, with the worst offender shown."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    err = np.abs(actual - expected) - (atol + rtol * np.abs(expected))
    worst = np.unravel_index(np.argmax(err), err.shape) if err.size else ()
    assert err.size == 0 or err[worst] <= 0, (
        f"mismatch at {worst}: {actual[worst]!r} vs {expected[worst]!r}")
