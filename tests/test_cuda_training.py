"""Training on device="cuda" against the CPU, the device choice, and the one-block layout.

On a machine without a GPU these run on numba-cuda's simulator (see conftest), so the
networks and data sets are tiny.  CUDA fuses multiply-adds and sums in another order, so
CPU and CUDA agree to 1e-4 relative, not bit for bit.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
from helpers import CUDA_IS_SIMULATOR, REAL_GPU, assert_close, needs_cuda

import steepest
from steepest.kernels import _cuda
from steepest.models import backend


def toy_data(rng, n, n_in, n_classes):
    X = rng.standard_normal((n, n_in)).astype(np.float32)
    return X, rng.integers(0, n_classes, n)


def start_weights(rng, sizes):
    weights = [(rng.standard_normal((o, i)) / np.sqrt(i)).astype(np.float32)
               for i, o in zip(sizes[:-1], sizes[1:])]
    biases = [rng.standard_normal(o).astype(np.float32) * 0.1 for o in sizes[1:]]
    return weights, biases


def train_on(device, weights, biases, X, y, **config):
    fit = {k: config.pop(k) for k in ("batch_size", "learning_rate", "epochs", "optimizer")
           if k in config}
    net = steepest.Network.from_params([W.copy() for W in weights], [b.copy() for b in biases],
                                       device=device, **config)
    history = net.fit(X, y, shuffle=False, **fit)
    return net, history


CASES = {  # name: (sizes, n samples, network and fit settings)
    # one launch per epoch; dot products of 40 and 37 terms are split over threads in the
    # forward pass, and the 37-term δ propagation below the 37-wide layer too
    "per-sample": ([40, 6, 37, 3], 8, dict(activation="sigmoid", loss="mse", batch_size=1,
                                           learning_rate=0.5, epochs=2)),
    # the one-block kernel with batches of 5 and a short last batch of 3; 5 × 20 = 100
    # products of 40 terms, more than the 64 threads, still split in 2 (several per thread)
    "minibatch-one-block": ([40, 20, 5, 3], 23, dict(activation="relu", loss="cross_entropy",
                                                    batch_size=5, learning_rate=0.2, epochs=2)),
    # batches above ONE_BLOCK_MAX_BATCH (lowered to 4 below, to keep the simulator quick):
    # tiled launches, 18 outputs straddling a tile edge, a short last batch of 3
    "minibatch-tiled": ([5, 18, 3], 13, dict(activation="tanh", loss="mse", batch_size=5,
                                             learning_rate=0.3, epochs=2)),
    "full-batch": ([5, 6, 3], 21, dict(activation="relu", loss="cross_entropy",
                                       batch_size=None, learning_rate=0.4, epochs=2)),
    # any optimiser: tiled gradient + one optimiser launch per step; binary cross-entropy
    "adam-minibatch": ([5, 7, 3], 14, dict(activation="tanh", loss="binary_cross_entropy",
                                           batch_size=4, learning_rate=0.02, epochs=2,
                                           optimizer="adam")),
}


@needs_cuda
@pytest.mark.parametrize("case", list(CASES))
def test_cuda_training_matches_cpu(rng, monkeypatch, case):
    from steepest.kernels.cuda import loops

    if case == "minibatch-tiled":
        monkeypatch.setattr(loops, "ONE_BLOCK_MAX_BATCH", 4)
    sizes, n, config = CASES[case]
    X, y = toy_data(rng, n, sizes[0], sizes[-1])
    weights, biases = start_weights(rng, sizes)
    cpu_net, cpu_hist = train_on("cpu", weights, biases, X, y, **dict(config))
    gpu_net, gpu_hist = train_on("cuda", weights, biases, X, y, **dict(config))
    assert gpu_net.backend_device == "cuda" and gpu_hist.device == "cuda"
    assert cpu_hist.device == "cpu"
    assert not np.allclose(cpu_net._params, np.concatenate(
        [p.ravel() for wb in zip(weights, biases) for p in wb]))  # training moved the weights
    assert_close(gpu_net._params, cpu_net._params, rtol=1e-4, atol=1e-5)
    assert_close(gpu_hist["loss"], cpu_hist["loss"], rtol=1e-4, atol=1e-6)


@needs_cuda
def test_one_block_global_fallbacks_match_cpu(rng, monkeypatch):
    # Shrink the shared-memory budget so the same kernel keeps (a) the first layer's weights,
    # then (b) everything, work buffers included, in global memory.
    from steepest.kernels.cuda import loops

    sizes, n = [6, 8, 5, 3], 9
    X, y = toy_data(rng, n, sizes[0], sizes[-1])
    weights, biases = start_weights(rng, sizes)
    config = dict(activation="sigmoid", loss="mse", batch_size=1, learning_rate=0.5, epochs=1)
    cpu_net, _ = train_on("cpu", weights, biases, X, y, **dict(config))
    threads = loops.ONE_BLOCK_THREADS
    n_params = cpu_net.n_parameters
    first_layer = 8 * 6 + 8
    work = 1 * (8 + 5 + 3) + 2 * 8
    for budget_floats, expect_from, expect_shared_work in [
            (threads + work + n_params - first_layer, first_layer, True),
            (threads + 1, n_params, False)]:
        monkeypatch.setattr(loops, "SHARED_MEMORY_BYTES", 4 * budget_floats)
        layout = loops.one_block_layout(sizes, 1, threads, loops.SHARED_MEMORY_BYTES)
        assert (layout["shared_from"], layout["work_in_shared"]) == (expect_from,
                                                                     expect_shared_work)
        gpu_net, _ = train_on("cuda", weights, biases, X, y, **dict(config))
        assert_close(gpu_net._params, cpu_net._params, rtol=1e-4, atol=1e-5)


@needs_cuda
def test_tutorial_networks_keep_the_first_layer_in_global_memory():
    # 784-16-16-10 is 52 KB of float32: over the 48 KB cap, so W⁰ and b⁰ stay global and
    # everything after them, with the activations, fits in shared memory.
    from steepest.kernels.cuda import loops

    for sizes in ([784, 16, 16, 10], [784, 30, 10]):
        layout = loops.one_block_layout(sizes, 1, 256, 48 * 1024)
        assert layout["shared_from"] == sizes[1] * (784 + 1)
        assert layout["work_in_shared"]
        assert layout["shared_bytes"] <= 48 * 1024
    whole = loops.one_block_layout([20, 16, 10], 1, 256, 48 * 1024)
    assert whole["shared_from"] == 0  # small networks live entirely in shared memory
    # W1's batches of 10: the 784-term products split 8 ways for coalescing (300 products ×
    # 8 parts of partial sums), W⁰ still global
    w1 = loops.one_block_layout([784, 30, 10], 10, 256, 48 * 1024)
    assert (w1["n_partials"], w1["coalesce_parts"]) == (2400, 8)
    assert w1["shared_from"] == 30 * 785 and w1["work_in_shared"]
    assert w1["shared_bytes"] <= 48 * 1024


@needs_cuda
def test_predict_and_evaluate_on_cuda_match_cpu(rng):
    X, y = toy_data(rng, 29, 6, 4)
    weights, biases = start_weights(rng, [6, 7, 4])
    nets = {d: steepest.Network.from_params(weights, biases, activation="tanh",
                                            loss="cross_entropy", device=d)
            for d in ("cpu", "cuda")}
    assert_close(nets["cuda"].predict_proba(X), nets["cpu"].predict_proba(X), rtol=1e-5,
                 atol=1e-6)
    cpu_eval, gpu_eval = nets["cpu"].evaluate(X, y), nets["cuda"].evaluate(X, y)
    assert gpu_eval["accuracy"] == cpu_eval["accuracy"]
    assert gpu_eval["loss"] == pytest.approx(cpu_eval["loss"], rel=1e-5)


@needs_cuda
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the simulator overflows in NumPy
def test_divergence_is_caught_on_cuda(rng):
    X, y = toy_data(rng, 6, 4, 3)
    weights, biases = start_weights(rng, [4, 5, 3])
    net = steepest.Network.from_params(weights, biases, activation="relu", output="identity",
                                       loss="mse", device="cuda")
    before = net._params.copy()
    with pytest.raises(steepest.DivergenceError):
        net.fit(X, y, epochs=2, batch_size=1, learning_rate=1e30, shuffle=False)
    assert np.array_equal(net._params, before)  # restored to the last good epoch (the start)


@pytest.mark.skipif(not CUDA_IS_SIMULATOR, reason="checks the choice made under the simulator")
def test_auto_picks_the_cpu_under_the_simulator():
    assert _cuda.simulator_enabled()
    assert backend.get_backend("auto").name == "cpu"
    assert steepest.Network([3, 2], device="auto").backend_device == "cpu"
    assert steepest.Network([3, 2], device="cuda").backend_device == "cuda"


def test_cuda_without_numba_cuda_says_how_to_get_it(monkeypatch):
    monkeypatch.setattr(_cuda, "numba_cuda_installed", lambda: False)
    with pytest.raises(ValueError, match=r"pip install steepest\[cuda\]"):
        backend.get_backend("cuda")
    assert backend.get_backend("auto").name == "cpu"


def test_a_network_made_without_a_gpu_searches_for_no_package(monkeypatch):
    # device="auto" asks whether a real GPU is present for every Network made: the package
    # search (0.2 ms) came first, paid 16 times by a 16-network sweep; the driver's count,
    # two file checks without a GPU, comes first now
    searched = []
    monkeypatch.setattr(_cuda, "simulator_enabled", lambda: False)
    monkeypatch.setattr(_cuda, "driver_gpu_count", lambda: 0)
    monkeypatch.setattr(_cuda, "numba_cuda_installed", lambda: searched.append(1) or True)
    assert steepest.Network([3, 2]).backend_device == "cpu"
    assert searched == []


def _child(code, **env):
    environment = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    environment.update(env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=environment)


@pytest.mark.skipif(REAL_GPU, reason="needs a machine without a GPU")
def test_cuda_without_gpu_or_simulator_says_how_to_get_one():
    out = _child("import steepest\n"
                 "try:\n    steepest.Network([3, 2], device='cuda')\n"
                 "except ValueError as e:\n    print(e)\n")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "no NVIDIA GPU" in out.stdout and "NUMBA_ENABLE_CUDASIM=1" in out.stdout
    assert "pip install steepest[cuda]" in out.stdout


@pytest.mark.skipif(REAL_GPU, reason="needs a machine without a GPU")
def test_auto_without_gpu_never_imports_numba_cuda():
    # the simulator switch is off in the child: "auto" must ask the driver, not numba.cuda
    out = _child("import sys, steepest\n"
                 "net = steepest.Network([3, 2], device='auto', seed=0)\n"
                 "print(net.backend_device, "
                 "any(m.startswith(('numba.cuda', 'numba_cuda')) for m in sys.modules))")
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["cpu", "False"]
