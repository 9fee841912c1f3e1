"""Loaded first by pytest for tests/ and benchmarks/ alike: decide what "cuda" means in this
run before anything imports numba.cuda — a real GPU when the driver reports one, else
numba-cuda's simulator (NUMBA_ENABLE_CUDASIM must be set before the first import)."""

import os

from steepest.kernels import _cuda  # numba-free checks only

if not _cuda.real_gpu_present():
    os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")
