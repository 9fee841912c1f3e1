"""Every CUDA kernel compiles for a real GPU (sm_90 PTX), with no float64 in it.

The simulator runs kernels as Python, so it cannot catch what only the CUDA compiler sees:
types that do not unify, shapes that are not compile-time constants, a float64 literal
promoting float32 maths.  Compiling to PTX needs NVVM and NVRTC (``pip install
numba-cuda[cu13]``) but no GPU; without them this test skips and says so.
"""

import os
import subprocess
import sys

import pytest

CHILD = r"""
import re, sys
from numba import cuda, types as t
import numba.cuda.dispatcher as dispatcher


class AnSm90:  # device functions ask "the current device" for its compute capability
    compute_capability = (9, 0)


dispatcher.get_current_device = lambda: AnSm90()

@cuda.jit(device=True)
def twice(x):
    return x + x

def probe(out):
    out[0] = twice(out[0])

try:
    cuda.compile_ptx(probe, (t.float32[::1],), cc=(9, 0))
except Exception as exc:  # no NVVM / NVRTC here: nothing to test with
    print("SKIP", type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
    sys.exit(0)

from steepest.kernels.cuda import activations, dense, loops, losses, optimizers

f32, i64, b1 = t.float32, t.int64, t.boolean
v, m, iv = t.float32[::1], t.float32[:, ::1], t.int64[::1]
signatures = {
    dense._dense_forward_kernel: (m, m, iv, i64, b1, m, v, i64, i64),
    dense._dense_backward_input_kernel: (m, m, m, m, i64, i64),
    dense._dense_params_kernel: (m, v, m, m, iv, i64, b1, f32, b1, i64),
    activations._activation_forward_kernel: (v, v, i64),
    activations._activation_backward_kernel: (v, v, v, i64),
    activations._softmax_forward_kernel: (v, v, i64, i64),
    activations._softmax_backward_kernel: (v, v, v, i64, i64),
    losses._row_losses_kernel: (v, v, v, i64, i64, i64),
    losses._activate_output_kernel: (v, v, v, i64, i64, i64, i64),
    losses._output_delta_kernel: (v, v, v, i64, i64, i64, i64, f32),
    losses._loss_and_delta_kernel: (v, v, v, iv, i64, b1, i64, i64, i64, i64, v, f32),
    activations._step_forward_kernel: (v, v),
    optimizers._sgd_step_kernel: (v, v, f32),
    optimizers._optimizer_kernel: (v, v, v, v, i64, v, i64),
    loops._sgd_epoch_one_block_kernel: (v, iv, v, v, iv, f32, v, v),
}
for kernel, signature in signatures.items():
    name = kernel.py_func.__name__
    ptx, _ = cuda.compile_ptx(kernel.py_func, signature, cc=(9, 0))
    doubles = re.findall(r"\S*\.f64\S*", ptx)
    assert not doubles, (name, doubles[:5])
    print("ok", name)
"""


def test_every_kernel_compiles_to_ptx_without_float64():
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "0"}
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    if out.stdout.startswith("SKIP"):
        pytest.skip(f"cannot compile PTX here (install numba-cuda[cu13] for NVVM): "
                    f"{out.stdout.strip()[5:]}")
    assert out.stdout.count("ok ") == 15, out.stdout
