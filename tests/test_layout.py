"""Structure the project promises: paired kernel names, a light import, float32 kernels."""

import os
import subprocess
import sys

import pytest
from helpers import assert_compiled_without_float64

from steepest.kernels import cpu, reference


def test_cpu_and_reference_export_the_same_kernels():
    assert set(cpu.__all__) == set(reference.__all__)
    for name in reference.__all__:
        assert callable(getattr(cpu, name)) and callable(getattr(reference, name)), name


def test_import_steepest_is_light():
    code = ("import sys, steepest; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('numba', 'llvmlite')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("device,simulator", [("cpu", "0"), ("cpu", "1"), ("auto", "1")])
def test_cpu_work_never_imports_numba_cuda(device, simulator):
    # "auto" under the simulator must choose the CPU without importing numba.cuda to find out
    code = ("import sys, numpy as np, steepest; "
            f"n = steepest.Network([3, 2], seed=0, device={device!r}); "
            "n.fit(np.ones((4, 3)), [0, 1, 0, 1]); print(n.backend_device, "
            "any(m.startswith('numba.cuda') or m.startswith('numba_cuda') for m in sys.modules))")
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": simulator}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=env)
    assert out.stdout.strip() == "cpu False"


def test_training_loops_compile_without_float64_arithmetic():
    assert_compiled_without_float64("""
from steepest.kernels import cpu
sizes, acts = np.array([4, 3, 2]), np.array([1, 4])
X, Y = np.ones((5, 4), np.float32), np.eye(2, dtype=np.float32)[[0, 1, 0, 1, 0]]
params = np.ones(23, np.float32)
from steepest.kernels.cpu import _fused, _tiled, loops
from steepest.kernels.cpu.loops import NO_PROBE
from steepest.kernels.cpu._tiled import Tiles
tiles = Tiles(32, 32, 2)
loops.sgd_epoch_minibatch_fused(params, sizes, acts, 1, X, Y, np.arange(5), 2, np.float32(0.1),
                               NO_PROBE)
loops.sgd_epoch_minibatch_tiled(params, sizes, acts, 1, X, Y, np.arange(5), 2, np.float32(0.1),
                                tiles, NO_PROBE)
cpu.sgd_epoch_per_sample(params, sizes, acts, 0, X, Y, np.arange(5), np.float32(0.1))
loops.gd_step_full_batch_fused(params, sizes, acts, 0, X, Y, np.float32(0.1), NO_PROBE)
loops.gd_step_full_batch_tiled(params, sizes, acts, 0, X, Y, np.float32(0.1), tiles,
                              NO_PROBE)
out = np.empty((5, 2), np.float32)
cpu.network_forward(out, params, sizes, acts, X)
grads = np.empty_like(params)
cpu.network_gradient(grads, params, sizes, acts, 1, X, Y)
W, b, z = np.ones((3, 4), np.float32), np.ones(3, np.float32), np.empty((5, 3), np.float32)
cpu.dense_forward(z, X, W, b)
cpu.dense_backward_input(np.empty_like(X), z, W)
cpu.dense_backward_params(np.empty_like(W), np.empty_like(b), z, X)
KERNELS = [loops.sgd_epoch_minibatch_fused, loops.sgd_epoch_minibatch_tiled,
           loops.sgd_epoch_per_sample_fused, loops.gd_step_full_batch_fused,
           loops.gd_step_full_batch_tiled, _fused.fused_inference, cpu.network_gradient,
           cpu.dense_forward, cpu.dense_backward_input, cpu.dense_backward_params,
           # the tiled passes' jobs, which the parallel loops of _tiled.py call
           _tiled._count_block_columns, _tiled._place_block_columns,
           _tiled._fill_block_columns, _tiled._first_layer_job, _tiled._rest_of_four_samples,
           _tiled._update_first_layer_job, _tiled._update_later_rows_job,
           _tiled._update_four_rows, _tiled.sum_in_order]
""")
