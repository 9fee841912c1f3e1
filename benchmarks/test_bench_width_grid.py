"""Issue 19's grid: 784-H-10 (ReLU, softmax + cross-entropy, η = 0.1), one epoch of the first
10,000 MNIST training rows, H × batch, steepest through ``fit`` beside NumPy and PyTorch CPU
eager (all of its threads) in one run; and the thread-count curve of W3 (784-128-64-10,
batch 128) through ``fit(threads=…)`` beside PyTorch on as many threads.

``steepest fit`` is one ``Network.fit(X, y, epochs=1, batch_size=…, learning_rate=0.1)`` on
the rows and integer labels, as a user calls it: input checks, targets, warm-up, gradient
probe, the epoch and the training accuracy.  Its extra_info names the path the call took
(``training_path``: fused or tiled, ``kernels/cpu/paths.py``).  NumPy and PyTorch run the
same maths from the same initial parameters in the same order (``workloads.py``).
``benchmarks/report.py`` turns a saved run into the tables of RESULTS.md.
"""

import numpy as np
import pytest
import workloads
from bench_helpers import bench_numpy_epoch, smoke

import steepest

GRID_ROWS, SMOKE_ROWS = 10_000, 500
WIDTHS = (32, 128, 512, 2048)
BATCHES = (10, 128, None)  # None: full batch
# 784-2048-10 at batch 10 is left out, as in the grid (minutes of PyTorch per round)
CELLS = [(width, batch) for width in WIDTHS for batch in BATCHES
         if not (width == 2048 and batch == 10)]
ROUNDS = {"steepest fit": 5, "numpy": 3, "torch": 3}
W3_THREADS = (1, 2)


def _work(width, batch, n):
    return workloads.Workload(f"784-{width}-10", (784, width, 10), "relu", "softmax",
                              "cross_entropy", n if batch is None else batch, 0.1)


def _grid_data(data, benchmark):
    X, Y, y, _, _, _ = data
    n = SMOKE_ROWS if smoke(benchmark) else GRID_ROWS
    order = np.random.default_rng(workloads.ORDER_SEED).permutation(n)
    return X[:n], Y[:n], y[:n], order


def _rounds(benchmark, implementation):
    return 1 if smoke(benchmark) else ROUNDS[implementation]


def _fit_round(benchmark, work, X, y, batch, threads=None):
    """Benchmark one fit call per round; returns the last round's history."""
    state = {}
    work.initial_network().fit(X[:256], y[:256], epochs=1, batch_size=batch,
                               learning_rate=0.1, threads=threads)  # compile

    def setup():
        state["net"] = work.initial_network()
        return (), {}

    def fit():
        state["history"] = state["net"].fit(X, y, epochs=1, batch_size=batch,
                                            learning_rate=0.1, threads=threads)

    benchmark.pedantic(fit, setup=setup, rounds=_rounds(benchmark, "steepest fit"),
                       iterations=1)
    benchmark.extra_info["training_path"] = state["history"].training_path
    return state["history"]


def _torch_round(benchmark, work, X, Y, y, order, initial, threads=None):
    import torch

    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        X_, Y_ = torch.from_numpy(X), torch.from_numpy(Y)
        labels, order_t = torch.from_numpy(y.astype(np.int64)), torch.from_numpy(order)
        state = {}
        workloads.TorchMLP(work, *workloads.split_params(initial, work.sizes)).epoch(
            X_, Y_, labels, order_t[:256])  # warm-up: first-call allocations, thread pool

        def setup():
            state["model"] = workloads.TorchMLP(work, *workloads.split_params(initial,
                                                                               work.sizes))
            return (X_, Y_, labels, order_t), {}

        benchmark.pedantic(lambda *args: state["model"].epoch(*args), setup=setup,
                           rounds=_rounds(benchmark, "torch"), iterations=1)
        benchmark.extra_info["threads"] = torch.get_num_threads()
    finally:
        torch.set_num_threads(previous)


def _needs_torch(implementation):
    if implementation == "torch" and not workloads.torch_available():
        pytest.skip("PyTorch is not installed (pip install torch to compare against it)")


@pytest.mark.parametrize("implementation", ["steepest fit", "numpy", "torch"])
@pytest.mark.parametrize("width,batch", CELLS, ids=[f"H{w}-B{b or 'full'}" for w, b in CELLS])
def test_bench_width_grid(benchmark, data, width, batch, implementation):
    _needs_torch(implementation)
    X, Y, y, order = _grid_data(data, benchmark)
    n = len(order)
    work = _work(width, batch, n)
    initial = work.initial_network()._params.copy()
    benchmark.group = f"grid 784-{width}-10, batch {batch or 'full'}"
    benchmark.extra_info.update(samples=n, width=width, batch=batch or "full",
                                implementation=implementation)
    if implementation == "steepest fit":
        history = _fit_round(benchmark, work, X, y, batch)
        assert np.isfinite(history["loss"][-1])
    elif implementation == "numpy":
        bench_numpy_epoch(benchmark, work, initial, X, Y, order,
                          _rounds(benchmark, implementation))
    else:
        _torch_round(benchmark, work, X, Y, y, order, initial)


@pytest.mark.parametrize("implementation", ["steepest fit", "torch"])
@pytest.mark.parametrize("threads", W3_THREADS)
def test_bench_w3_threads(benchmark, data, threads, implementation):
    _needs_torch(implementation)
    import numba

    if threads > numba.config.NUMBA_NUM_THREADS:
        pytest.skip(f"{threads} threads: Numba has {numba.config.NUMBA_NUM_THREADS}")
    X, Y, y, order = _grid_data(data, benchmark)
    work = workloads.TRAINING["W3"]
    benchmark.group = "W3 784-128-64-10, batch 128: threads"
    benchmark.extra_info.update(samples=len(order), threads=threads,
                                implementation=f"{implementation}, {threads} thread"
                                               f"{'s' if threads > 1 else ''}")
    if implementation == "steepest fit":
        _fit_round(benchmark, work, X, y, work.batch_size, threads=threads)
    else:
        _torch_round(benchmark, work, X, Y, y, order, work.initial_network()._params.copy(),
                     threads=threads)


def test_fit_trains_on_the_numba_threads_it_was_given():
    # the curve above means something only if threads= reaches Numba (and is given back)
    import numba

    seen = []
    net = steepest.Network([20, 8, 3], activation="relu", output="softmax",
                           loss="cross_entropy", seed=0)
    X = np.random.default_rng(0).random((30, 20)).astype(np.float32)
    net.fit(X, np.arange(30) % 3, epochs=1, threads=1,
            callbacks=[lambda epoch, metrics: seen.append(numba.get_num_threads())])
    assert seen == [1]
    assert numba.get_num_threads() == numba.config.NUMBA_NUM_THREADS
