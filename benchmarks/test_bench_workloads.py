"""Whole-epoch benchmarks W1–W4: steepest against NumPy and PyTorch CPU eager, in one run.

Each implementation is warmed up (compiled, for steepest) before timing; compilation is
measured on its own in test_bench_compile.py.  Every timed round starts from the same
initial parameters and the same shuffled order.  extra_info carries the samples per round
and the test accuracy after one epoch; ``benchmarks/report.py`` turns a saved run into the
table of RESULTS.md.
"""

import numpy as np
import pytest
import workloads
from bench_helpers import record_accuracy, smoke

TRAIN_ROUNDS = {"steepest": 7, "numpy": 3, "torch": 3}   # torch W2 is ~1 min an epoch
INFERENCE_ROUNDS = 25
IMPLEMENTATIONS = ["steepest", "numpy", "torch"]


def _needs_torch(implementation):
    if implementation == "torch" and not workloads.torch_available():
        pytest.skip("PyTorch is not installed (pip install torch to compare against it)")


def _rounds(benchmark, implementation):
    return 1 if smoke(benchmark) else TRAIN_ROUNDS[implementation]


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("name", list(workloads.TRAINING))
def test_bench_epoch(benchmark, data, name, implementation):
    _needs_torch(implementation)
    work = workloads.TRAINING[name]
    X, Y, y, Xt, yt, order = data
    initial = work.initial_network()._params.copy()
    benchmark.group = f"{name} epoch: {'-'.join(map(str, work.sizes))}, batch {work.batch_size}"
    benchmark.extra_info.update(samples=int(order.shape[0]), workload=name,
                                implementation=implementation)

    if implementation == "steepest":
        params = initial.copy()
        workloads.steepest_epoch(work, params, X[:64], Y[:64], np.arange(64))  # compile
        state = {}

        def setup():
            state["params"] = initial.copy()
            return (work, state["params"], X, Y, order), {}

        benchmark.pedantic(workloads.steepest_epoch, setup=setup,
                           rounds=_rounds(benchmark, implementation), iterations=1)
        value = workloads.accuracy(workloads.steepest_forward(work, state["params"], Xt), yt)

    elif implementation == "numpy":
        state = {}

        def setup():
            state["Ws"], state["bs"] = workloads.split_params(initial, work.sizes)
            return (work, state["Ws"], state["bs"], X, Y, order), {}

        benchmark.pedantic(workloads.numpy_epoch, setup=setup,
                           rounds=_rounds(benchmark, implementation), iterations=1)
        value = workloads.accuracy(workloads.numpy_forward(work, state["Ws"], state["bs"], Xt),
                                   yt)

    else:
        import torch

        Xt_, Yt_ = torch.from_numpy(X), torch.from_numpy(Y)
        labels, order_t = torch.from_numpy(y), torch.from_numpy(order)
        state = {}

        def setup():
            state["model"] = workloads.TorchMLP(work, *workloads.split_params(initial, work.sizes))
            return (Xt_, Yt_, labels, order_t), {}

        workloads.TorchMLP(work, *workloads.split_params(initial, work.sizes)).epoch(
            Xt_, Yt_, labels, order_t[:64])  # warm-up: first-call allocations, thread pool

        benchmark.pedantic(lambda *args: state["model"].epoch(*args), setup=setup,
                           rounds=_rounds(benchmark, implementation), iterations=1)
        value = workloads.accuracy(state["model"].predict(torch.from_numpy(Xt)), yt)

    record_accuracy(benchmark, name, implementation, value)


@pytest.fixture(scope="module")
def trained_w1(request):
    """W1's network after one steepest epoch (W4 times inference with it), per data size."""
    cache = {}

    def get(is_smoke):
        if is_smoke not in cache:
            data = request.getfixturevalue("data_smoke" if is_smoke else "data_full")
            X, Y, y, Xt, yt, order = data
            params = workloads.INFERENCE.initial_network()._params.copy()
            workloads.steepest_epoch(workloads.INFERENCE, params, X, Y, order)
            cache[is_smoke] = params
        return cache[is_smoke]

    return get


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_bench_inference(benchmark, data, trained_w1, implementation):
    _needs_torch(implementation)
    work = workloads.INFERENCE
    X, Y, y, Xt, yt, order = data
    params = trained_w1(smoke(benchmark))
    benchmark.group = "W4 inference: 784-30-10 over the test images"
    benchmark.extra_info.update(samples=int(Xt.shape[0]), workload="W4",
                                implementation=implementation)
    rounds = 1 if smoke(benchmark) else INFERENCE_ROUNDS

    if implementation == "steepest":
        workloads.steepest_forward(work, params, Xt[:8])  # compile
        out = benchmark.pedantic(workloads.steepest_forward, args=(work, params, Xt),
                                 rounds=rounds, iterations=1, warmup_rounds=1)
    elif implementation == "numpy":
        Ws, bs = workloads.split_params(params, work.sizes)
        out = benchmark.pedantic(workloads.numpy_forward, args=(work, Ws, bs, Xt),
                                 rounds=rounds, iterations=1, warmup_rounds=1)
    else:
        import torch

        model = workloads.TorchMLP(work, *workloads.split_params(params, work.sizes))
        X_test = torch.from_numpy(Xt)
        out = benchmark.pedantic(model.predict, args=(X_test,), rounds=rounds, iterations=1,
                                 warmup_rounds=1)
    record_accuracy(benchmark, "W4", implementation, workloads.accuracy(out, yt))
