"""The CUDA kernels at the GPU's block sizes, on the simulator.

By default the simulator gets small blocks (TILE 8, 64 one-block threads) to stay quick, so
the ordinary CUDA tests never see the shapes a GPU launches: 16 × 16 tiles, whose edges the
test shapes straddle differently, and 256-thread one-block epochs, whose dot-product splits
and partial-sum layouts differ.  This runs, once, a subset of tests/test_cuda_kernels.py and
tests/test_cuda_training.py that reaches every kernel and every launcher path (dense layers,
activations, losses, optimisers, network forward / evaluate / gradient, the one-block epoch
per sample and in mini-batches, the tiled epoch, full-batch descent and the any-optimiser
loop) in a child process with STEEPEST_CUDA_SIM_SIZES=production, and checks that the child
really used TILE 16 and 256 threads.  A simulator check: on a real GPU the ordinary tests
already run at these sizes.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REAL_GPU, needs_cuda

pytestmark = [needs_cuda, pytest.mark.skipif(
    REAL_GPU, reason="a simulator check: on a GPU every CUDA test runs at production sizes")]

ROOT = Path(__file__).parent.parent
KERNELS = "tests/test_cuda_kernels.py"
TRAINING = "tests/test_cuda_training.py"
# Each kernel and launcher at least once (what each reaches, beyond the name):
SUBSET = [
    # the tiled matmuls alone, 17 rows and 18 outputs straddling a 16-wide tile edge
    f"{KERNELS}::test_dense_forward[17-33-18]",
    f"{KERNELS}::test_dense_backward_input[17-33-18]",
    f"{KERNELS}::test_dense_backward_params_overwrites[17-33-18]",
    # elementwise and softmax row kernels, forward and backward; the step function
    f"{KERNELS}::test_activation_forward[tanh]",
    f"{KERNELS}::test_activation_forward[softmax]",
    f"{KERNELS}::test_activation_backward[tanh]",
    f"{KERNELS}::test_activation_backward[softmax]",
    f"{KERNELS}::test_step_forward",
    # row losses and the output δ kernel
    f"{KERNELS}::test_loss_values_and_gradients[cross_entropy]",
    # the SGD and any-optimiser elementwise kernels
    f"{KERNELS}::test_sgd_step",
    f"{KERNELS}::test_optimizer_steps[adam_step]",
    # network_forward and network_gradient (fused loss-and-δ kernel, no gather), 17 wide
    f"{KERNELS}::test_network_forward_and_gradient[sizes1-acts1-0]",
    # the any-optimiser loop: tiled steps with a gather, then the optimiser launch
    f"{KERNELS}::test_optimizer_epoch_minibatch[adam-4]",
    # the one-block epoch kernel: per sample, and in batches with a short last one
    f"{TRAINING}::test_cuda_training_matches_cpu[per-sample]",
    f"{TRAINING}::test_cuda_training_matches_cpu[minibatch-one-block]",
    # the tiled SGD epoch (gathered rows) and full-batch descent (rows in place)
    f"{TRAINING}::test_cuda_training_matches_cpu[minibatch-tiled]",
    f"{TRAINING}::test_cuda_training_matches_cpu[full-batch]",
    # network_evaluate: the inference output kernel with exact losses
    f"{TRAINING}::test_predict_and_evaluate_on_cuda_match_cpu",
]

CHILD = r"""
import sys
import pytest
from steepest.kernels.cuda import _device, loops
print("SIZES", _device.TILE, loops.ONE_BLOCK_THREADS, flush=True)
sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", *sys.argv[1:]]))
"""


def test_kernels_and_launchers_pass_at_production_sizes_on_the_simulator():
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1", "STEEPEST_CUDA_SIM_SIZES": "production"}
    out = subprocess.run([sys.executable, "-c", CHILD, *SUBSET], capture_output=True,
                         text=True, env=env, cwd=ROOT, timeout=900)
    report = out.stdout[-4000:] + out.stderr[-2000:]
    assert "SIZES 16 256" in out.stdout, report
    assert out.returncode == 0, report
    assert f"{len(SUBSET)} passed" in out.stdout, report


def test_small_sizes_stay_the_simulator_default():
    env = {k: v for k, v in os.environ.items() if k != "STEEPEST_CUDA_SIM_SIZES"}
    env["NUMBA_ENABLE_CUDASIM"] = "1"
    script = ("from steepest.kernels.cuda import _device, loops; "
              "print(_device.TILE, loops.ONE_BLOCK_THREADS, _device.PRODUCTION_SIZES)")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env=env)
    assert out.stdout.split() == ["8", "64", "False"], out.stderr[-2000:]
    env["STEEPEST_CUDA_SIM_SIZES"] = "huge"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env=env)
    assert out.returncode != 0 and "STEEPEST_CUDA_SIM_SIZES" in out.stderr
