"""Whole-epoch benchmarks W1–W4: steepest against NumPy and PyTorch CPU eager, in one run.

Each implementation is warmed up (compiled, for steepest) before timing; compilation is
measured on its own in test_bench_compile.py.  Every timed round starts from the same
initial parameters and the same shuffled order.  extra_info carries the samples per round
and the test accuracy after one epoch; ``benchmarks/report.py`` turns a saved run into the
table of RESULTS.md.

Beside the kernel rows (``steepest``: the epoch kernel called as ``Network.fit`` calls it)
stand the public-API rows, timed exactly as a user calls the library (issue 14):

* ``steepest fit``     one ``net.fit(X, y, epochs=1, batch_size=…, learning_rate=…)`` on the
  workload's rows and integer labels, everything else at its default (``shuffle=True``):
  input checks, targets, fit's warm-up and gradient probe, the epoch, the training accuracy;
* ``steepest fit x5``  one ``fit(epochs=5)`` call, samples = 5 × n, so samples/s is per-sample
  throughput over five epochs (a mostly-zero dense X is compacted once, then every epoch reads
  only its nonzeros); its accuracy is after five epochs, so it is not checked against the rest;
* ``steepest predict`` (W4) ``net.predict(X_test)``.

The network of each round is built in the round's setup, untimed, from the workload's
initial parameters, and its generator is seeded so that fit's own shuffle draws exactly the
kernel row's ``order``: same parameters, same order and the same (shuffled) memory access as
the kernel row, so the ratio of the two is the cost of the API alone, and the accuracy after
the round (computed outside the timing) matches the kernel row's; the test checks both.
The rows' medians are taken minutes apart on a shared machine, so ``steepest fit`` and
``steepest predict`` also time themselves beside their kernel in back-to-back pairs after
their rounds: the median ratio goes to extra_info (``fit_over_kernel_paired``,
``predict_over_kernel_paired``); ``fit_kernel_s`` is fit's own epoch time
(``History["seconds"]``).
"""

import numpy as np
import pytest
import workloads
from bench_helpers import (
    bench_numpy_epoch,
    paired_ratio,
    record_accuracy,
    smoke,
    timed,
    user_network,
)

import steepest

TRAIN_ROUNDS = {"steepest": 7, "numpy": 3, "torch": 3}   # torch W2 is ~1 min an epoch
INFERENCE_ROUNDS = 25
IMPLEMENTATIONS = ["steepest", "numpy", "torch"]
# public-API rows: param id -> (extra_info implementation, epochs per fit call, rounds)
FIT_ROWS = {"steepest_fit": ("steepest fit", 1, 7), "steepest_fit_x5": ("steepest fit x5", 5, 5)}
WARMUP_ROWS = 200


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
        Ws, bs = bench_numpy_epoch(benchmark, work, initial, X, Y, order,
                                   _rounds(benchmark, implementation))
        value = workloads.accuracy(workloads.numpy_forward(work, Ws, bs, Xt), yt)

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


def _fit_options(work):
    return {"batch_size": work.batch_size, "learning_rate": work.learning_rate}


@pytest.mark.parametrize("row", list(FIT_ROWS))
@pytest.mark.parametrize("name", list(workloads.TRAINING))
def test_bench_fit(benchmark, data, name, row):
    """The public API: ``Network.fit`` as a user calls it, beside the kernel row."""
    work = workloads.TRAINING[name]
    X, Y, y, Xt, yt, order = data
    n = int(order.shape[0])
    implementation, epochs, rounds = FIT_ROWS[row]
    benchmark.group = f"{name} epoch: {'-'.join(map(str, work.sizes))}, batch {work.batch_size}"
    benchmark.extra_info.update(samples=epochs * n, epochs=epochs, workload=name,
                                implementation=implementation)
    # compile what the timed call runs: the epoch on dense rows, and (epochs ≥ 2) the
    # compaction and the epoch on compacted rows
    for warmup_epochs in (1, 2):
        work.initial_network().fit(X[:WARMUP_ROWS], y[:WARMUP_ROWS], epochs=warmup_epochs,
                                   **_fit_options(work))
    state = {}

    def setup():
        state["net"] = user_network(work)
        return (), {}

    def fit():
        state["history"] = state["net"].fit(X, y, epochs=epochs, **_fit_options(work))

    rounds = 1 if smoke(benchmark) else rounds
    benchmark.pedantic(fit, setup=setup, rounds=rounds, iterations=1)
    net, history = state["net"], state["history"]
    benchmark.extra_info["fit_kernel_s"] = round(float(sum(history["seconds"])), 4)
    value = float(np.mean(net.predict(Xt) == yt))
    if epochs > 1:
        benchmark.extra_info["accuracy"] = round(value, 4)
        return
    # fit beside the kernel in back-to-back pairs, untimed by the benchmark: the two rows'
    # medians come from different minutes of a shared machine
    kernel_params = {}

    def kernel():
        kernel_params["last"] = params = work.initial_network()._params.copy()
        return timed(workloads.steepest_epoch, work, params, X, Y, order)[0]

    def user_fit():
        return timed(user_network(work).fit, X, y, epochs=1, **_fit_options(work))[0]

    benchmark.extra_info["fit_over_kernel_paired"] = round(
        paired_ratio(user_fit, kernel, rounds), 3)
    # the same parameters and order as the kernel row: the same epoch, to float32 rounding
    difference = float(np.max(np.abs(net._params - kernel_params["last"])))
    benchmark.extra_info["max_param_diff_vs_kernel"] = difference
    assert difference <= 1e-4, (
        f"{name}: fit's epoch differs from the kernel row's by {difference:.2e}: does fit "
        f"still draw its order as Generator.permutation(n) of the network's generator?")
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


@pytest.mark.parametrize("implementation", ["steepest_predict"])  # the id -k steepest selects
def test_bench_predict(benchmark, data, trained_w1, implementation):
    """The public API of W4: ``net.predict(X_test)`` of W1's trained network."""
    work = workloads.INFERENCE
    X, Y, y, Xt, yt, order = data
    params = trained_w1(smoke(benchmark))
    net = steepest.Network.from_params(*workloads.split_params(params, work.sizes),
                                       activation=work.hidden, output=work.output,
                                       loss=work.loss)
    benchmark.group = "W4 inference: 784-30-10 over the test images"
    benchmark.extra_info.update(samples=int(Xt.shape[0]), workload="W4",
                                implementation="steepest predict")
    rounds = 1 if smoke(benchmark) else INFERENCE_ROUNDS
    net.predict(Xt[:8])  # compile
    workloads.steepest_forward(work, params, Xt[:8])
    labels = benchmark.pedantic(net.predict, args=(Xt,), rounds=rounds, iterations=1,
                                warmup_rounds=1)
    benchmark.extra_info["predict_over_kernel_paired"] = round(paired_ratio(
        lambda: timed(net.predict, Xt)[0],
        lambda: timed(workloads.steepest_forward, work, params, Xt)[0], rounds), 3)
    record_accuracy(benchmark, "W4", "steepest predict", float(np.mean(labels == yt)))
