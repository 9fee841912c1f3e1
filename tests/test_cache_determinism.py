"""Same seed, same result, whether the CPU kernels were compiled in this process or loaded
from numba's cache (issue 11).

Each kernel runs in child processes that share one empty NUMBA_CACHE_DIR: the first compiles
everything (cold), the next two load it all from the cache (warm), the last of them calling
the kernels in the opposite order.  Every result must agree bit for bit.  Before the fix a
cold process ran the stand-alone copies of the kernels a training loop calls and a warm one
the loop's own copies, whose softmax sums LLVM had reassociated differently: the weights of
every network with a softmax output differed in their last bits.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import steepest

REPO = Path(steepest.__file__).resolve().parents[1]

# Small random MNIST-like problem (sparse non-negative inputs, 10 classes), ReLU hidden
# layer and softmax output: one call of every training loop, of a sweep and of inference,
# each result hashed.  Prints the hashes and the entry points' cache hits/misses as JSON.
CHILD = r"""
import hashlib, json, sys
import numpy as np
from steepest.kernels import codes, cpu
from steepest.kernels.cpu import _fused, loops, sweeps
from steepest.kernels.cpu.loops import NO_PROBE
from steepest.kernels.cpu import optimizer_loops as loops_opt

def digest(*arrays):
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()

rng = np.random.default_rng(0)
sizes = np.array([64, 32, 10], np.int64)
acts = np.array([codes.RELU, codes.SOFTMAX], np.int64)
loss = codes.CROSS_ENTROPY
n = 200
X = (rng.random((n, 64)) * (rng.random((n, 64)) < 0.25)).astype(np.float32)
Y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, n)]
n_params = int(sum(sizes[i] * sizes[i + 1] + sizes[i + 1] for i in range(len(sizes) - 1)))
params0 = (rng.standard_normal(n_params) * 0.3).astype(np.float32)
order = rng.permutation(n)
X_big = (rng.random((4608, 64)) * (rng.random((4608, 64)) < 0.25)).astype(np.float32)
lr = np.float32(0.1)

def minibatch():
    p = params0.copy()
    value = cpu.sgd_epoch_minibatch(p, sizes, acts, loss, X, Y, order, 10, lr)
    return digest(p, np.float32(value))

def per_sample():
    p = params0.copy()
    value = cpu.sgd_epoch_per_sample(p, sizes, acts, loss, X, Y, order, lr)
    return digest(p, np.float32(value))

def full_batch():
    p = params0.copy()
    values = [cpu.gd_step_full_batch(p, sizes, acts, loss, X, Y, lr) for _ in range(3)]
    return digest(p, np.array(values, np.float32))

def adam():
    p = params0.copy()
    state = np.zeros((codes.STATE_SLOTS[codes.ADAM], n_params), np.float32)
    step = np.zeros(1, np.int64)
    hyper = np.array([0.01, 0.0, 0.9, 0.999, 1e-8], np.float32)
    value = cpu.optimizer_epoch_minibatch(p, state, step, sizes, acts, loss, codes.ADAM,
                                          hyper, X, Y, order, 16)
    return digest(p, state, step, np.float32(value))

def predict():  # one thread (under 4096 rows) and the parallel path
    small = np.empty((n, 10), np.float32)
    cpu.network_forward(small, params0, sizes, acts, X)
    big = np.empty((len(X_big), 10), np.float32)
    cpu.network_forward(big, params0, sizes, acts, X_big)
    return digest(small, big)

def sweep():  # three networks, one compiled call spread over the threads: at the
    # threads there are, each alone or not; at one thread, a pair and one alone (_pairs.py)
    import numba
    results, default = [], numba.get_num_threads()
    for threads in (default, 1):
        p = np.stack([params0, 0.5 * params0, 0.25 * params0])
        losses = np.empty(3, np.float32)
        numba.set_num_threads(threads)
        cpu.sweep_sgd_epoch(p, sizes, acts, loss, X, Y, order, 10,
                            np.array([0.1, 0.3, 0.2], np.float32), np.ones(3, np.int64),
                            losses)
        results += [p, losses]
    numba.set_num_threads(default)
    return digest(*results)

def tiled():  # the tiled passes across threads (_tiled.py): loaded from the cache, their
    # first version corrupted the heap (a crash at exit, or garbage)
    from steepest.kernels.cpu._tiled import Tiles
    tiles = Tiles(32, 32, 7)
    p = params0.copy()
    value = loops.sgd_epoch_minibatch_tiled(p, sizes, acts, loss, X, Y, order, 50, lr, tiles,
                                            NO_PROBE)
    full = loops.gd_step_full_batch_tiled(p, sizes, acts, loss, X, Y, lr, tiles, NO_PROBE)
    state = np.zeros((codes.STATE_SLOTS[codes.ADAM], n_params), np.float32)
    step = np.zeros(1, np.int64)
    hyper = np.array([0.01, 0.0, 0.9, 0.999, 1e-8], np.float32)
    adam = loops_opt.optimizer_epoch_minibatch_tiled(p, state, step, sizes, acts, loss,
                                                     codes.ADAM, hyper, X, Y, order, 40, tiles,
                                                     NO_PROBE)
    return digest(p, state, step, np.array([value, full, adam], np.float32))

runs = [minibatch, per_sample, full_batch, adam, predict, sweep, tiled]
if sys.argv[1] == "reverse":
    runs.reverse()
hashes = {run.__name__: run() for run in runs}
entries = [loops.sgd_epoch_minibatch_fused, loops.sgd_epoch_per_sample_fused,
           loops.gd_step_full_batch_fused, loops_opt.optimizer_epoch_minibatch_fused,
           _fused.fused_inference, sweeps.sweep_sgd_jobs, loops.sgd_epoch_minibatch_tiled,
           loops.gd_step_full_batch_tiled, loops_opt.optimizer_epoch_minibatch_tiled]
hits = sum(sum(e.stats.cache_hits.values()) for e in entries)
misses = sum(sum(e.stats.cache_misses.values()) for e in entries)
print(json.dumps({"hashes": hashes, "hits": hits, "misses": misses}))
"""


def _run(cache_dir, order, child=CHILD):
    env = {key: value for key, value in os.environ.items()
           if key not in ("STEEPEST_NO_CACHE", "NUMBA_DISABLE_JIT")}
    env["NUMBA_CACHE_DIR"] = str(cache_dir)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in [env.get("PYTHONPATH")] if p])
    out = subprocess.run([sys.executable, "-c", child, order], capture_output=True, text=True,
                         env=env, cwd=REPO, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_cold_compiled_and_cached_kernels_give_the_same_results(tmp_path):
    cold = _run(tmp_path, "forward")
    warm = _run(tmp_path, "forward")
    warm_reversed = _run(tmp_path, "reverse")
    # the first child really compiled (an empty cache of its own), the others really loaded
    assert cold["hits"] == 0 and cold["misses"] > 0, cold
    assert warm["misses"] == 0 and warm["hits"] > 0, warm
    assert warm_reversed["misses"] == 0 and warm_reversed["hits"] > 0, warm_reversed
    differ = {kernel: [name for name, run in (("warm", warm), ("warm, reversed", warm_reversed))
                       if run["hashes"][kernel] != value]
              for kernel, value in cold["hashes"].items()}
    differ = {kernel: runs for kernel, runs in differ.items() if runs}
    assert not differ, f"results that differ from the cold (compiling) run's: {differ}"


# The tiled loop is the first thing this child runs: nothing before it starts numba's
# threading layer (no fit, no numba.get_num_threads()).
TILED_FIRST = r"""
import json
import numpy as np
from steepest.kernels import codes
from steepest.kernels.cpu import loops
from steepest.kernels.cpu._tiled import Tiles

rng = np.random.default_rng(0)
sizes, acts = np.array([40, 70, 4]), np.array([codes.RELU, codes.SOFTMAX])
X = (rng.random((37, 40)) * (rng.random((37, 40)) < 0.3)).astype(np.float32)
Y = np.eye(4, dtype=np.float32)[rng.integers(0, 4, 37)]
params = (rng.standard_normal(40 * 70 + 70 + 70 * 4 + 4) * 0.3).astype(np.float32)
loops.sgd_epoch_minibatch_tiled(params, sizes, acts, codes.CROSS_ENTROPY, X, Y,
                                rng.permutation(37), 16, np.float32(0.1), Tiles(32, 32, 5),
                                loops.NO_PROBE)
print(json.dumps(bool(np.isfinite(params).all())))
"""


@pytest.mark.slow
def test_a_loop_compiled_over_cached_parallel_passes_runs_first_in_a_fresh_process(tmp_path):
    # Numba re-runs a cached function's set-up (starting its threading layer, which gives
    # compiled code numba_parallel_for) only if that function compiled its parallel loops
    # itself.  A loop compiled in a process that loaded its passes from the cache was cached
    # without it, and a process that ran it first called a null pointer: a segfault.
    assert _run(tmp_path, "", TILED_FIRST)  # compiles everything into the cache
    loop_entries = list(tmp_path.rglob("loops.sgd_epoch_minibatch_tiled-*"))
    assert loop_entries
    for path in loop_entries:
        path.unlink()
    assert _run(tmp_path, "", TILED_FIRST)  # the loop again, over the cached passes
    assert _run(tmp_path, "", TILED_FIRST)  # that loop loaded first
