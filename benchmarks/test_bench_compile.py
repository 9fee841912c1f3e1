"""Compile time, measured apart from the epochs: a cold first call, and a warm-cache start.

Each measurement runs in a fresh Python process (numba keeps compiled code per process):

* cold: ``STEEPEST_NO_CACHE=1``; the child times its first call of the workload's kernel
  on 64 samples (so almost all of it is compilation) -> extra_info ``first_call_s``;
* warm: a child with an empty ``NUMBA_CACHE_DIR`` fills the cache, then a second child with
  the same cache directory is timed from its launch to the end of its first call ->
  extra_info ``warm_start_s`` (the whole process: interpreter, imports, cache loading).

Targets (issue 7): first call ≤ 3 s per workload; warm start ≤ 1 s.  The child works on
random inputs with MNIST's sparsity, not MNIST itself, so data loading is not counted.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from bench_helpers import smoke

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np
sys.path.insert(0, {bench_dir!r})
import workloads
name = {name!r}
work = workloads.INFERENCE if name == "W4" else workloads.TRAINING[name]
rng = np.random.default_rng(0)
X = rng.random((64, work.sizes[0]), np.float32)
X[X < 0.81] = 0  # MNIST's share of zero pixels: the sparse path is the one compiled
Y = np.eye(work.sizes[-1], dtype=np.float32)[rng.integers(0, work.sizes[-1], 64)]
params = work.initial_network()._params.copy()
t1 = time.perf_counter()
if name == "W4":
    workloads.steepest_forward(work, params, X)
else:
    workloads.steepest_epoch(work, params, X, Y, np.arange(64))
t2 = time.perf_counter()
print(json.dumps({{"setup_s": t1 - t0, "first_call_s": t2 - t1}}))
"""

NAMES = ["W1", "W2", "W3", "W4"]
FIRST_CALL_TARGET_S = 3.0
WARM_START_TARGET_S = 1.0


def _run_child(name, env):
    code = CHILD.format(bench_dir=str(Path(__file__).parent), name=name)
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=600)
    wall = time.perf_counter() - start
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1]), wall


def _only_w1_in_smoke(benchmark, name):
    if smoke(benchmark) and name != "W1":
        pytest.skip("cold compiles of W2-W4 run only with --benchmark-enable (several seconds "
                    "each); W1 covers the mechanism in the smoke run")


@pytest.mark.parametrize("name", NAMES)
def test_bench_compile_cold(benchmark, name):
    _only_w1_in_smoke(benchmark, name)
    benchmark.group = "compile: cold first call (fresh process, no cache)"
    env = {**os.environ, "STEEPEST_NO_CACHE": "1"}
    result = {}

    def cold():
        result["child"], result["wall"] = _run_child(name, env)

    benchmark.pedantic(cold, rounds=1, iterations=1)
    benchmark.extra_info.update(workload=name,
                                first_call_s=round(result["child"]["first_call_s"], 3),
                                process_wall_s=round(result["wall"], 3),
                                target_s=FIRST_CALL_TARGET_S)


@pytest.mark.parametrize("name", NAMES)
def test_bench_compile_warm_start(benchmark, name, tmp_path):
    _only_w1_in_smoke(benchmark, name)
    benchmark.group = "compile: warm-cache start (fresh process, launch to first call done)"
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba-cache")}
    env.pop("STEEPEST_NO_CACHE", None)
    _run_child(name, env)  # fills the cache
    result = {}

    def warm():
        result["child"], result["wall"] = _run_child(name, env)

    benchmark.pedantic(warm, rounds=1, iterations=1)
    benchmark.extra_info.update(workload=name, warm_start_s=round(result["wall"], 3),
                                first_call_s=round(result["child"]["first_call_s"], 3),
                                target_s=WARM_START_TARGET_S)
    assert any((tmp_path / "numba-cache").rglob("*.nbi")), "the first child wrote no cache"
