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


# ---------------------------------------------------------------- backprop problems
def make_problem(rng, sizes, hidden, output, loss, n=6):
    """float64 (params, sizes, activation codes, loss code, X, Y) with random values."""
    from steepest.kernels import codes

    sizes = np.array(sizes, np.int64)
    acts = np.array([codes.ACTIVATION_CODES[hidden]] * (len(sizes) - 2)
                    + [codes.ACTIVATION_CODES[output]], np.int64)
    n_params = sum(int(sizes[i] * sizes[i + 1] + sizes[i + 1]) for i in range(len(sizes) - 1))
    params = rng.standard_normal(n_params) * 0.7
    X = rng.standard_normal((n, sizes[0]))
    if loss == "cross_entropy":
        Y = np.eye(sizes[-1])[rng.integers(0, sizes[-1], n)]
    else:
        Y = rng.random((n, sizes[-1]))
    return params, sizes, acts, codes.LOSS_CODES[loss], X, Y


def batch_loss(params, sizes, acts, loss, X, Y):
    """The reference's batch-mean loss of the network ``params`` on (X, Y)."""
    from steepest.kernels import reference

    out = np.empty((X.shape[0], sizes[-1]))
    reference.network_forward(out, params, sizes, acts, X)
    return reference.loss_value(out, Y, loss)


def finite_difference_gradient(f, params, h=1e-6):
    """Central differences (f(θ + h·eₖ) − f(θ − h·eₖ)) / 2h for every k, in float64."""
    numeric = np.empty_like(params)
    for k in range(params.size):
        up, down = params.copy(), params.copy()
        up[k] += h
        down[k] -= h
        numeric[k] = (f(up) - f(down)) / (2 * h)
    return numeric


# ---------------------------------------------------------------- float64 in compiled code
_DOUBLE_OPS = r'''
import re
import numba, numpy as np

def double_ops(dispatcher):
    # float64 arithmetic in the compiled functions, leaving out numba's Python wrappers
    # (which box a float32 result into a Python float through a legitimate fpext)
    found = []
    for ir in dispatcher.inspect_llvm().values():
        for body in re.split(r"\ndefine ", ir):
            if "cpython" in body.split("(", 1)[0]:
                continue
            found += re.findall(r"fpext float .* to double|f(?:add|sub|mul|div) (?:fast )?double",
                                body)
    return found

@numba.njit
def promotes(x):
    return x * 0.5  # the bug this check exists for: a float64 literal

promotes(np.float32(1.0))
assert double_ops(promotes), "the checker must see a float64 literal"
'''

_DOUBLE_OPS_END = r'''
for kernel in KERNELS:
    ops = double_ops(kernel)
    assert not ops, (kernel.__name__, ops[:3])
print("ok")
'''


def assert_compiled_without_float64(calls):
    """Run ``calls`` (source that compiles kernels by calling them and names them in a list
    ``KERNELS``) in a child process with caching off, since numba cannot show the IR of
    cached code, and assert no kernel in KERNELS does float64 arithmetic."""
    import subprocess
    import textwrap

    env = {**os.environ, "STEEPEST_NO_CACHE": "1"}
    script = _DOUBLE_OPS + textwrap.dedent(calls) + _DOUBLE_OPS_END
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
