"""Every CUDA kernel compiles for real GPUs (sm_80 and sm_90 PTX) with the argument types
training passes, with no float64 and no local memory (register spills, stack) in it.

The simulator runs kernels as Python, so it cannot catch what only the CUDA compiler sees:
types that do not unify, shapes that are not compile-time constants, a float64 literal
promoting float32 maths, a local array or a spill to the per-thread stack.  The static shared
arrays each kernel declares (TILE 16 in the compiled code) are checked against 48 KB too.
Compiling to PTX needs NVVM and NVRTC (``pip install numba-cuda[cu13]``) but no GPU.
Without them this test skips and says so, unless STEEPEST_REQUIRE_PTX=1 (set by CI,
.ci/run): then it fails, so CI can never pass without having compiled every kernel.

The kernel list is checked against the modules: a new ``@cuda.jit`` kernel without a
signature here fails the test.  Signatures follow the launchers: float32 C-contiguous arrays
(1-D flat buffers, 2-D layer views and workspaces), int64 codes, sizes and row arrays,
float32 scalars (the launchers wrap them in ``np.float32``) and booleans.
"""

import os
import subprocess
import sys

import pytest

COMPUTE_CAPABILITIES = ((8, 0), (9, 0))

# Kernels allowed to use local memory, each with the reason (none today: a new entry needs
# the kernel's name and why its ``.local`` use is intended, never a blanket exemption).
LOCAL_MEMORY_EXPECTED = {}

CHILD = r"""
import inspect, json, re, sys
from numba import cuda, types as t
import numba.cuda.dispatcher as dispatcher

CCS = COMPUTE_CAPABILITIES_HERE
LOCAL_OK = LOCAL_OK_HERE


class Device:  # device functions ask "the current device" for its compute capability
    compute_capability = CCS[-1]


dispatcher.get_current_device = lambda: Device()

@cuda.jit(device=True)
def twice(x):
    return x + x

def probe(out):
    out[0] = twice(out[0])

try:
    cuda.compile_ptx(probe, (t.float32[::1],), cc=CCS[-1])
except Exception as exc:  # no NVVM / NVRTC here: nothing to test with
    print("SKIP", type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
    sys.exit(0)

from steepest.kernels.cuda import activations, dense, loops, losses, network, optimizers

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
    optimizers._l2_penalty_kernel: (v, v, iv, f32, v),
    loops._sgd_epoch_one_block_kernel: (v, iv, v, v, iv, f32, v, v),
    loops._sweep_one_block_kernel: (m, iv, v, v, iv, v, iv, m, v),
}

# every kernel (not device function) defined in the CUDA modules has a signature above
defined = set()
for module in (activations, dense, loops, losses, network, optimizers):
    for name, obj in vars(module).items():
        py_func = getattr(obj, "py_func", None)
        if (py_func is not None and py_func.__module__ == module.__name__
                and not getattr(obj, "targetoptions", {}).get("device", False)):
            defined.add(f"{module.__name__}.{py_func.__name__}")
listed = {f"{k.py_func.__module__}.{k.py_func.__name__}" for k in signatures}
assert defined == listed, ("kernels without a PTX signature", sorted(defined - listed),
                           "listed but not found", sorted(listed - defined))

problems = []
for cc in CCS:
    Device.compute_capability = cc
    for kernel, signature in signatures.items():
        name = kernel.py_func.__name__
        ptx, _ = cuda.compile_ptx(kernel.py_func, signature, cc=cc)
        doubles = sorted(set(re.findall(r"\S*\.f64\S*", ptx)))
        local = sorted(set(re.findall(r"\S*\.local\S*|__local_depot\S*", ptx)))
        static_shared = sum(int(n) for n in re.findall(r"\.shared\s+\.align\s+\d+\s+\.b8\s+"
                                                        r"\S+?\[(\d+)\]", ptx))
        if static_shared > 48 * 1024:
            problems.append(f"{name} sm_{cc[0]}{cc[1]}: {static_shared} bytes of static "
                            "shared memory, over the 48 KB a launch gets without opt-in")
        if doubles:
            problems.append(f"{name} sm_{cc[0]}{cc[1]}: float64 in PTX: {doubles[:5]}")
        if local and name not in LOCAL_OK:
            problems.append(f"{name} sm_{cc[0]}{cc[1]}: local memory in PTX: {local[:5]}")
        if not local and name in LOCAL_OK:
            problems.append(f"{name} sm_{cc[0]}{cc[1]}: expected local memory is gone; "
                            "drop it from LOCAL_MEMORY_EXPECTED")
        print("ok" if not (doubles or local) else "local", f"sm_{cc[0]}{cc[1]}", name,
              f"static shared {static_shared} B")
assert not problems, "\n".join(problems)
print("KERNELS", len(signatures))
"""


def _run_child(child):
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "0"}
    return subprocess.run([sys.executable, "-c", child], capture_output=True, text=True,
                          env=env)


def _skip_or_fail(out):
    """Skip (or, with STEEPEST_REQUIRE_PTX=1, fail) when the child could not compile."""
    if out.stdout.startswith("SKIP"):
        reason = f"cannot compile PTX here: {out.stdout.strip()[5:]}"
        if os.environ.get("STEEPEST_REQUIRE_PTX") == "1":
            pytest.fail(f"STEEPEST_REQUIRE_PTX=1 but {reason} "
                        "(install numba-cuda[cu13] for NVVM and NVRTC)")
        pytest.skip(f"{reason} (install numba-cuda[cu13] for NVVM)")


def test_every_kernel_compiles_to_ptx_without_float64_or_local_memory():
    child = (CHILD.replace("COMPUTE_CAPABILITIES_HERE", repr(COMPUTE_CAPABILITIES))
             .replace("LOCAL_OK_HERE", repr(set(LOCAL_MEMORY_EXPECTED) or set())))
    out = _run_child(child)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    _skip_or_fail(out)
    # the static-shared reading works, and the compiled tiles are the GPU's 16 × 16
    assert "_dense_forward_kernel static shared 2112 B" in out.stdout, out.stdout
    n_kernels = int(out.stdout.rsplit("KERNELS", 1)[1])
    assert n_kernels == 17, out.stdout
    assert out.stdout.count("\nok ") + out.stdout.startswith("ok ") == (
        n_kernels * len(COMPUTE_CAPABILITIES) - len(LOCAL_MEMORY_EXPECTED)
        * len(COMPUTE_CAPABILITIES)), out.stdout


def test_required_ptx_fails_instead_of_skipping(monkeypatch):
    """CI's STEEPEST_REQUIRE_PTX=1 turns "no NVVM here" into a failure; without it, a skip."""
    out = _run_child('print("SKIP ImportError no NVVM")')
    monkeypatch.setenv("STEEPEST_REQUIRE_PTX", "1")
    with pytest.raises(pytest.fail.Exception, match="STEEPEST_REQUIRE_PTX=1"):
        _skip_or_fail(out)
    monkeypatch.delenv("STEEPEST_REQUIRE_PTX")
    with pytest.raises(pytest.skip.Exception, match="no NVVM"):
        _skip_or_fail(out)


def test_the_checks_see_float64_and_local_memory():
    """The patterns above catch what they are for, in PTX NVVM really produces."""
    out = _run_child(r'''
import re, sys
import numpy as np
from numba import cuda, float32, types as t
def spill(out, i):
    tmp = cuda.local.array(64, float32)
    for k in range(64):
        tmp[k] = out[k]
    out[0] = tmp[i]
def double(out):
    out[0] = out[0] * 0.1
try:
    local, _ = cuda.compile_ptx(spill, (t.float32[::1], t.int64), cc=(9, 0))
except Exception as exc:
    print("SKIP", type(exc).__name__)
    sys.exit(0)
wide, _ = cuda.compile_ptx(double, (t.float32[::1],), cc=(9, 0))
print(bool(re.findall(r"\S*\.local\S*|__local_depot\S*", local)),
      bool(re.findall(r"\S*\.f64\S*", wide)))
''')
    assert out.returncode == 0, out.stderr[-3000:]
    _skip_or_fail(out)
    assert out.stdout.split() == ["True", "True"], out.stdout
