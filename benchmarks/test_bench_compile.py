"""Compile time, measured apart from the epochs: a cold first call, and a warm-cache start.

Each measurement runs in a fresh Python process (numba keeps compiled code per process):

* cold: ``STEEPEST_NO_CACHE=1``; the child times its first call of the workload's kernel
  on 64 samples (so almost all of it is compilation) -> extra_info ``first_call_s``;
* warm: a child with an empty ``NUMBA_CACHE_DIR`` fills the cache, then a second child with
  the same cache directory is timed from its launch to the end of its first call ->
  extra_info ``warm_start_s`` (the whole process: interpreter, imports, cache loading).

Targets (issue 7): first call ≤ 3 s per workload; warm start ≤ 1 s.  The child works on
random inputs with MNIST's sparsity, not MNIST itself, so data loading is not counted.

The command line's whole first run (issue 14), ``python -m steepest train --epochs 1 --quiet``
in a fresh process (launch to exit: imports, MNIST, compiling or loading the kernels, the
epoch on 60,000 images, the test evaluation), wall seconds in extra_info:

* cold: ``STEEPEST_NO_CACHE=1`` (numba's cache off: everything is compiled; the empty
  ``NUMBA_CACHE_DIR`` it is also given must stay empty) -> ``cli_cold_s`` (target ≤ 6 s);
* warm: a fresh, empty ``NUMBA_CACHE_DIR``.  With it set, numba puts and looks for every
  kernel's cache there, never next to the package (``kernels/cpu/_jit.py`` puts numba's
  user-provided locator first), so the first run compiles everything and writes the cache,
  as on a fresh install -> ``cli_first_run_s``; a second run from that cache is timed ->
  ``cli_warm_s`` (reported; the 1 s target is the warm start above).

Smoke mode runs the warm pair only (the cold run costs as much as its first run again).
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
CLI = ["-m", "steepest", "train", "--epochs", "1", "--quiet"]
CLI_COLD_TARGET_S = 6.0
REPO = Path(__file__).resolve().parent.parent


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


def _run_cli(env):
    """Wall seconds of the CLI run from launch to exit, and its last line of output."""
    start = time.perf_counter()
    out = subprocess.run([sys.executable, *CLI], capture_output=True, text=True, env=env,
                         cwd=REPO, timeout=600)
    wall = time.perf_counter() - start
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    lines = out.stdout.strip().splitlines()
    return wall, lines[-1] if lines else ""


def _cache_files(directory):
    return sorted(str(path) for path in directory.rglob("*.nb[ic]"))


def test_bench_cli_cold(benchmark, tmp_path):
    if smoke(benchmark):
        pytest.skip("the cold CLI run (every kernel compiled: 30-45 s on the 2-core VM) runs "
                    "only with --benchmark-enable; the warm pair covers the command in the smoke "
                    "run")
    benchmark.group = "compile: the CLI's first run (python -m steepest train --epochs 1)"
    cache = tmp_path / "numba-cache"
    env = {**os.environ, "STEEPEST_NO_CACHE": "1", "NUMBA_CACHE_DIR": str(cache)}
    result = {}

    def cold():
        result["wall"], result["last_line"] = _run_cli(env)

    benchmark.pedantic(cold, rounds=1, iterations=1)
    assert not _cache_files(cache), "STEEPEST_NO_CACHE=1 run wrote a cache: it was not cold"
    benchmark.extra_info.update(command="python " + " ".join(CLI), start="cold",
                                cli_cold_s=round(result["wall"], 3), target_s=CLI_COLD_TARGET_S,
                                last_line=result["last_line"])


def test_bench_cli_warm(benchmark, tmp_path):
    benchmark.group = "compile: the CLI's first run (python -m steepest train --epochs 1)"
    cache = tmp_path / "numba-cache"
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    env.pop("STEEPEST_NO_CACHE", None)
    first_run_s, _ = _run_cli(env)  # compiles everything and fills the empty cache
    filled = _cache_files(cache)
    assert filled, "the first CLI run wrote no cache into NUMBA_CACHE_DIR"
    result = {}

    def warm():
        result["wall"], result["last_line"] = _run_cli(env)

    benchmark.pedantic(warm, rounds=1, iterations=1)
    added = len(_cache_files(cache)) - len(filled)  # what the warm run compiled afresh: 0
    benchmark.extra_info.update(command="python " + " ".join(CLI), start="warm",
                                cli_first_run_s=round(first_run_s, 3),
                                cli_warm_s=round(result["wall"], 3), cache_files=len(filled),
                                cache_files_added_by_warm_run=added,
                                last_line=result["last_line"])
