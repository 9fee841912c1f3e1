"""Helpers the benchmark files import: smoke mode, the accuracy agreement check, and the
network a public-API benchmark trains.

They live here, not in conftest.py, because tests/ has a conftest.py too and ``from conftest
import`` would pick whichever pytest loaded first.
"""

import statistics
import time

import numpy as np
import workloads

# Accuracy after one epoch, per workload and implementation, filled as the benchmarks run.
_ACCURACIES = {}
FULL_TOLERANCE = 0.005   # the bound: implementations within 0.5% of each other
SMOKE_TOLERANCE = 0.04   # 1,000 training samples, 500 test images: one image is 0.2%
# Per-sample SGD (W2: 50,000 sigmoid updates at η = 0.5) amplifies float32 rounding: the same
# NumPy code gives 0.8869 in float32 and 0.8979 in float64 with identical data and order, so
# no float32 implementation can be held to 0.5% there.  See benchmarks/RESULTS.md.
PER_SAMPLE_TOLERANCE = 0.02


def smoke(benchmark):
    """True when benchmarks are disabled: run once, on a small slice."""
    return bool(getattr(benchmark, "disabled", False))


def record_accuracy(benchmark, workload, implementation, value):
    """Put the accuracy in extra_info and check it against the other implementations so far.

    Per-sample SGD in float32 depends on summation order, so implementations do not agree
    bit for bit; they must agree to within FULL_TOLERANCE (SMOKE_TOLERANCE on the slice).
    """
    benchmark.extra_info["accuracy"] = round(value, 4)
    tolerance = SMOKE_TOLERANCE if smoke(benchmark) else FULL_TOLERANCE
    if workload in workloads.TRAINING and workloads.TRAINING[workload].batch_size == 1:
        tolerance = max(tolerance, PER_SAMPLE_TOLERANCE)
    key = (workload, smoke(benchmark))
    seen = _ACCURACIES.setdefault(key, {})
    for other, other_value in seen.items():
        assert abs(value - other_value) <= tolerance, (
            f"{workload}: {implementation} accuracy {value:.4f} vs {other} {other_value:.4f} "
            f"differ by more than {tolerance:.3f}")
    seen[implementation] = value


def user_network(work):
    """The workload's initial network as a user builds it (``work.initial_network()``), its
    generator set so that ``fit``'s own shuffle (``Generator.permutation(n)`` of the network's
    generator) draws ``workloads.load_data``'s order: the public-API rows then train on the
    same parameters in the same order as the kernel rows.  Untimed set-up."""
    net = work.initial_network()
    net._rng = np.random.default_rng(workloads.ORDER_SEED)
    return net


def bench_numpy_epoch(benchmark, work, initial, X, Y, order, rounds):
    """Benchmark ``workloads.numpy_epoch`` from the flat parameters ``initial``, fresh for
    every round; returns the last round's trained (Ws, bs)."""
    state = {}

    def setup():
        state["Ws"], state["bs"] = workloads.split_params(initial, work.sizes)
        return (work, state["Ws"], state["bs"], X, Y, order), {}

    benchmark.pedantic(workloads.numpy_epoch, setup=setup, rounds=rounds, iterations=1)
    return state["Ws"], state["bs"]


def timed(function, *args, **kwargs):
    """(seconds, result) of one call."""
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - start, result


def sweep_rates(rate, k):
    """k learning rates from rate/3 to 3·rate, geometrically (rate alone for k = 1): the
    sweep benchmarks' (``test_bench_sweep.py``, ``gpu_check.py --sweeps``)."""
    if k == 1:
        return [rate]
    return list(np.geomspace(rate / 3, rate * 3, k))


def paired_ratio(numerator, denominator, rounds):
    """The median over ``rounds`` of numerator's seconds ÷ denominator's (``paired_ratios``)."""
    return statistics.median(paired_ratios(numerator, denominator, rounds))


def paired_ratios(numerator, denominator, rounds):
    """Numerator's seconds ÷ denominator's in each of ``rounds`` rounds, sorted: the two run
    back to back in each round (which goes first alternates), so that the load of a shared
    machine, which changes between one benchmark's rounds and the next's, weighs on both
    alike.  Each is a callable that does its own untimed set-up and returns the seconds of
    its timed part."""
    ratios = []
    for round_ in range(rounds):
        if round_ % 2:
            below = denominator()
            ratios.append(numerator() / below)
        else:
            ratios.append(numerator() / denominator())
    return sorted(ratios)
