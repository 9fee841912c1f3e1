"""Sweeps (issue 15): K networks of one workload trained by ONE ``steepest.sweep`` call, one
epoch, against one network's ``fit(epochs=1)``: what K learning rates cost next to one.

For W1 (784-30-10, mini-batch 10) and W2 (784-16-16-10, per-sample), K = 1, 2, 4, 8, 16, 32
networks, the learning rates spread geometrically around the workload's (÷3 … ×3), all from
the workload's initial weights (seed 0).  Each round times the whole call as a user makes it
(``steepest.sweep(..., epochs=1)``: compaction, the compiled epoch of all K, each network's
checks and metrics), after a warm-up sweep on a few rows compiled the kernels.

extra_info: ``networks`` (K), ``samples`` (per network), ``model_samples_per_s`` (K × samples
÷ the median), and ``over_one_fit_paired``: the median over PAIRS back-to-back pairs of the
sweep's time ÷ one network's ``fit(epochs=1)`` (the issue's target at K = 16: ≤ 6), and
``over_one_fit_pairs``: the PAIRS ratios it is the median of, sorted (their spread is this
shared machine's noise: run 0017's K = 16 W1 ratio was 5.15, four reruns gave 5.18-7.62).

Smoke mode (benchmarks disabled): 1,000 training rows, one round.
"""

import statistics

import numpy as np
import pytest
import workloads
from bench_helpers import paired_ratios, smoke, sweep_rates, timed

import steepest

NETWORKS = [1, 2, 4, 8, 16, 32]
ROUNDS = 3
# back-to-back (sweep, fit) pairs for the ratio: with 3, run 0013's W1 K = 16 ratio was 7.2
# while three reruns of that case gave 6.85, 6.74 and 5.79 (the sweep needs the VM's second
# core, one fit does not, and how much of it the VM gets changes from second to second)
PAIRS = 9
CASES = [pytest.param(name, k, id=f"{name}-K{k}") for name in ("W1", "W2") for k in NETWORKS]


def _options(work):
    return dict(activation=work.hidden, output=work.output, loss=work.loss)


def _sweep(work, X, y, k):
    return steepest.sweep(work.sizes, X, y, learning_rates=sweep_rates(work.learning_rate, k),
                          seeds=[0], epochs=1, batch_size=work.batch_size, shuffle=False,
                          **_options(work))


def _one_fit(work, X, y):
    net = steepest.Network(work.sizes, seed=0, **_options(work))
    return net.fit(X, y, epochs=1, batch_size=work.batch_size, learning_rate=work.learning_rate,
                   shuffle=False)


@pytest.mark.parametrize("name, k", CASES)
def test_bench_sweep(benchmark, data, name, k):
    is_smoke = smoke(benchmark)
    work = workloads.TRAINING[name]
    X, _, y, _, _, _ = data
    _sweep(work, X[:200], y[:200], k)  # compile (or load) before timing
    _one_fit(work, X[:200], y[:200])
    benchmark.group = f"sweep: {name} {'-'.join(map(str, work.sizes))}, K networks, 1 epoch"
    result = benchmark.pedantic(_sweep, args=(work, X, y, k), rounds=1 if is_smoke else ROUNDS,
                                iterations=1)
    assert len(result.runs) == k and not any(result.diverged)
    benchmark.extra_info.update(networks=k, samples=int(len(X)),
                                implementation=f"steepest sweep K={k}")
    if not is_smoke:
        median = benchmark.stats.stats.median
        benchmark.extra_info["model_samples_per_s"] = round(k * len(X) / median)
        _record_ratios(benchmark, paired_ratios(
            lambda: timed(_sweep, work, X, y, k)[0], lambda: timed(_one_fit, work, X, y)[0],
            PAIRS))


def _record_ratios(benchmark, ratios):
    """The pairs' ratios (sorted) and their median, the one the issue's target reads."""
    benchmark.extra_info["over_one_fit_paired"] = round(statistics.median(ratios), 3)
    benchmark.extra_info["over_one_fit_pairs"] = [round(ratio, 3) for ratio in ratios]


# A learning-rate sweep whose upper rates diverge: W1's 784-30-10 with an identity output
# (sigmoid hidden, MSE, batch 10), 16 rates from 0.3 to 30; on MNIST the 9 from 2.57 up
# diverge in epoch 1 and are stopped, the 7 below train on through epochs 2 and 3.  The
# survivors are the low rates, one contiguous run of the networks: split in equal shares
# among the threads they all fell to one thread, which trained them while the other idled.
DIVERGING = dict(sizes=(784, 30, 10), activation="sigmoid", output="identity", loss="mse")
DIVERGING_RATES = list(np.geomspace(0.3, 30, 16))
DIVERGING_EPOCHS = 3


def _diverging_sweep(X, y):
    return steepest.sweep(DIVERGING["sizes"], X, y, learning_rates=DIVERGING_RATES, seeds=[0],
                          epochs=DIVERGING_EPOCHS, batch_size=10, shuffle=False,
                          **{k: v for k, v in DIVERGING.items() if k != "sizes"})


def _diverging_fit(X, y):
    net = steepest.Network(DIVERGING["sizes"], seed=0,
                           **{k: v for k, v in DIVERGING.items() if k != "sizes"})
    return net.fit(X, y, epochs=DIVERGING_EPOCHS, batch_size=10,
                   learning_rate=DIVERGING_RATES[0], shuffle=False)


@pytest.mark.filterwarnings("ignore::steepest.TrainingWarning")
def test_bench_sweep_with_diverging_rates(benchmark, data):
    is_smoke = smoke(benchmark)
    X, _, y, _, _, _ = data
    _diverging_sweep(X[:200], y[:200])  # compile (or load) before timing
    _diverging_fit(X[:200], y[:200])
    benchmark.group = "sweep: 784-30-10 identity output, 16 rates 0.3-30, 3 epochs"
    result = benchmark.pedantic(_diverging_sweep, args=(X, y), rounds=1 if is_smoke else ROUNDS,
                                iterations=1)
    stopped = sum(run.diverged_epoch is not None for run in result.runs)
    benchmark.extra_info.update(networks=len(DIVERGING_RATES), stopped=stopped,
                                samples=int(len(X)),
                                implementation="steepest sweep, upper rates diverging")
    if not is_smoke:
        assert 0 < stopped < len(DIVERGING_RATES)
        _record_ratios(benchmark, paired_ratios(
            lambda: timed(_diverging_sweep, X, y)[0], lambda: timed(_diverging_fit, X, y)[0],
            PAIRS))
