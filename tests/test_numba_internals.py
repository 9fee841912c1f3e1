"""The three places where steepest relies on numba internals (``kernels/cpu/_jit.py``; the
reasons are in ``kernels/DESIGN.md``) still apply to the installed numba.

Each falls back to numba's own behaviour when the internals move, which keeps the kernels
working but silently loses what the patch is for (a cache that follows edits of any kernel,
the same bits cold or cached, per-sample code without reference counting).  These tests turn
that silence into a failure, so a numba upgrade that moves them is caught here.
"""

import os
import subprocess
import sys

from steepest.kernels.cpu import _fused, _jit


def test_callee_copies_are_made_local():
    from numba.core.codegen import CPUCodeLibrary

    assert getattr(CPUCodeLibrary._optimize_final_module, "_steepest", False)


def test_cache_entries_are_stamped_with_the_whole_kernel_set():
    from numba.core import caching

    impl = caching.CacheImpl
    if not _jit.CACHE:  # STEEPEST_NO_CACHE=1: nothing is cached, so nothing to stamp
        return
    ours = [cls for cls in impl._locator_classes if cls.__name__.startswith("Steepest")]
    assert len(ours) == 3
    stamp = _jit._kernel_set_stamp()
    locator = ours[1].from_function(_fused.update_batch.py_func, _fused.__file__)
    assert locator is not None and locator.get_source_stamp() == stamp


CHILD = r"""
import numpy as np
from steepest.kernels import codes, cpu
from steepest.kernels.cpu import _fused

rng = np.random.default_rng(0)
sizes = np.array([12, 5, 4, 3], np.int64)
activations = np.array([codes.SIGMOID, codes.TANH, codes.SOFTMAX], np.int64)
params = (0.1 * rng.standard_normal(12 * 5 + 5 + 5 * 4 + 4 + 4 * 3 + 3)).astype(np.float32)
X = rng.random((6, 12)).astype(np.float32)
Y = np.eye(3, dtype=np.float32)[[0, 1, 2, 0, 1, 2]]
cpu.sgd_epoch_minibatch(params, sizes, activations, codes.CROSS_ENTROPY, X, Y, np.arange(6),
                        np.int64(2), np.float32(0.1))
for kernel in (_fused.first_layer_forward, _fused.backward_sample, _fused._hidden_delta,
               _fused._output_delta, _fused.update_batch, _fused._activate):
    assert kernel.signatures, kernel
    for signature in kernel.signatures:
        ir = kernel.inspect_llvm(signature)
        assert "NRT_incref" not in ir and "NRT_decref" not in ir, kernel
print("ok")
"""


def test_per_sample_functions_count_no_references():
    # compiled afresh in a child (a cached epoch loop never compiles its callees here)
    env = {**os.environ, "STEEPEST_NO_CACHE": "1"}
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                         env=env, timeout=600)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-3000:]
