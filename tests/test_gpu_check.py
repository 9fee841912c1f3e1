"""benchmarks/gpu_check.sh: without a GPU it says so and exits 2, having checked nothing; its
table reads pytest-benchmark's JSON the way the CUDA benchmarks write it."""

import json
import os
import subprocess
import sys
from pathlib import Path

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
