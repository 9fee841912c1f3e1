"""benchmarks/gpu_check.sh: without a GPU it says so and exits 2, having checked nothing; its
table reads pytest-benchmark's JSON the way the CUDA benchmarks write it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import REAL_GPU, needs_cuda

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import gpu_check  # noqa: E402


@pytest.mark.skipif(REAL_GPU, reason="a GPU is here: the check would run for minutes")
def test_the_dry_run_says_no_gpu_and_exits_non_zero():
    env = {key: value for key, value in os.environ.items() if key != "NUMBA_ENABLE_CUDASIM"}
    env["PYTHON"] = sys.executable
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh")], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == gpu_check.NO_GPU == 2, done.stdout + done.stderr
    assert "gpu_check: no NVIDIA GPU here" in done.stdout
    assert "Nothing was checked" in done.stdout
    assert not (ROOT / "gpu-check").exists()  # no logs: nothing ran


def test_the_table_reads_the_benchmarks_json(tmp_path):
    def bench(test, name, median, **extra):
        return {"name": f"{test}[{name}]", "params": {"name": name},
                "stats": {"median": median}, "extra_info": extra}

    path = tmp_path / "cuda.json"
    path.write_text(json.dumps({"benchmarks": [
        bench("test_bench_cuda_epoch", "W1", 0.05, gpu_test_accuracy=0.9, cpu_test_accuracy=0.91,
              weight_difference=2e-6),
        bench("test_bench_torch_epoch", "W1", 0.5, test_accuracy=0.9),
        bench("test_bench_cuda_epoch", "W3", 0.1, gpu_test_accuracy=0.95,
              cpu_test_accuracy=0.95, weight_difference=1e-6)]}))
    rows = gpu_check.benchmark_rows(path)
    assert set(rows) == {"W1", "W3"} and set(rows["W1"]) == {"steepest", "torch"}
    lines = gpu_check.table(rows, 50_000).splitlines()
    assert lines[1].split() == ["W1", "1,000,000", "100,000", "10.00", "0.9000", "0.9100",
                                "2.00e-06"]
    assert lines[2].split()[:4] == ["W3", "500,000", "nan", "-"]  # no torch: no ratio


def test_the_sanitizers_workload_runs(capsys):
    # on the CPU here: the same five paths' options are valid and each trains and evaluates
    gpu_check.one_epoch_per_path(device="cpu")
    assert capsys.readouterr().out.count("one epoch and evaluate ran on cpu") == 5


def test_the_launch_plan_table_says_when_the_plan_chose_the_slower_path():
    def found(one_block, tiled, path):
        plan = {"path": path, "one_block_step_s": 2e-5, "tiled_step_s": 1.2e-4}
        return {"sizes": [784, 30, 10], "batch": 10, "plan": plan, "seconds": {
            "one-block": one_block, "one-block 48 KB": 2 * one_block, "tiled": tiled}}

    lines = gpu_check.launch_plan_table([found(1e-5, 1e-4, "one-block"),
                                         found(1e-5, 1e-4, "tiled")]).splitlines()
    assert lines[1].split() == ["784-30-10", "10", "10.0", "20.0", "100.0", "20.0", "120.0",
                                "one-block", "yes"]
    assert lines[2].endswith("tiled     NO: one-block")


@needs_cuda
def test_the_launch_plan_timing_runs_every_path():
    # on the simulator here, tiny: each path trains an epoch and gets a time per step
    from steepest.kernels.cuda import loops

    results = gpu_check.time_launch_paths([([6, 5, 3], 1), ([6, 5, 3], 3)], rows=6)
    assert [(r["sizes"], r["batch"]) for r in results] == [([6, 5, 3], 1), ([6, 5, 3], 3)]
    for found in results:
        assert set(found["seconds"]) == {"one-block", "one-block 48 KB", "tiled"}
        assert all(seconds > 0 for seconds in found["seconds"].values())
        assert found["plan"] == loops.launch_plan([6, 5, 3], found["batch"], 6)
    assert loops.SHARED_MEMORY_OPT_IN  # switched back on
    assert len(gpu_check.launch_plan_table(results).splitlines()) == 3


def test_the_sweep_table_gives_the_target_its_verdict():
    def found(networks, ratio):
        return {"name": "W1", "sizes": [784, 30, 10], "networks": networks, "samples": 50_000,
                "sweep_s": 0.1 * ratio, "fit_s": 0.1, "ratio": ratio,
                "weight_difference": 3e-6}

    lines = gpu_check.sweep_table([found(1, 1.0), found(16, 1.4), found(16, 1.6),
                                   found(32, 2.5)]).splitlines()
    assert lines[1].split() == ["W1", "784-30-10", "1", "100.0", "100.0", "1.00", "500,000",
                                "3.00e-06"]  # no verdict: not the target's K
    assert lines[2].split()[-2:] == ["3.00e-06", "yes"]  # 16 networks in 1.4x one
    assert lines[2].split()[6] == "5,714,286"  # 16 x 50,000 samples in 140 ms
    assert lines[3].split()[-1] == "NO"
    assert lines[4].split()[-1] == "3.00e-06"


def test_the_sweep_step_times_workloads_the_cuda_benchmarks_define():
    import test_bench_cuda

    assert set(gpu_check.SWEEP_WORKLOADS) <= set(test_bench_cuda.WORKLOADS)
    assert gpu_check.SWEEP_TARGET[0] in gpu_check.SWEEP_NETWORKS


@needs_cuda
def test_the_sweep_step_times_each_workload_and_checks_it_against_the_cpu(rng, monkeypatch):
    # on the simulator here, tiny (6 inputs, not MNIST's 784: the simulator is slow): the
    # step as the GPU check runs it, each sweep timed against a fit and checked on the CPU
    import test_bench_cuda

    import steepest

    X = rng.random((4, 6), dtype=np.float32)
    y = rng.integers(0, 3, 4)
    monkeypatch.setattr(steepest, "load_mnist", lambda: (X, y, X, y))
    monkeypatch.setattr(test_bench_cuda, "N_TRAIN", 4)
    monkeypatch.setitem(test_bench_cuda.WORKLOADS, "W1",
                        ([6, 5, 3], "sigmoid", "sigmoid", "mse", 2, 3.0))
    monkeypatch.setitem(test_bench_cuda.WORKLOADS, "W2",
                        ([6, 4, 4, 3], "sigmoid", "sigmoid", "mse", 1, 0.5))
    monkeypatch.setattr(gpu_check, "SWEEP_NETWORKS", (2,))
    monkeypatch.setattr(gpu_check, "SWEEP_PAIRS", 1)
    rows = [row.split() for row in gpu_check.sweeps_on_mnist().splitlines()[1:]]
    assert [row[:3] for row in rows] == [["W1", "6-5-3", "2"], ["W2", "6-4-4-3", "2"]]
    for row in rows:
        sweep_ms, fit_ms, ratio, difference = (float(row[i]) for i in (3, 4, 5, 7))
        assert sweep_ms > 0 and fit_ms > 0 and ratio > 0
        assert difference <= 1e-4  # the simulator's sweep is the CPU's, to float32 rounding
