"""The first minutes on a GPU, in one command: ``bash benchmarks/gpu_check.sh``.

On a machine with an NVIDIA GPU it runs, in about 8 minutes on one H100/H200:

1. the ``gpu``-marked tests (``tests/``: the device is really used, the launch limits);
2. ``compute-sanitizer --tool racecheck`` and ``--tool memcheck`` over one short epoch of
   each kernel path (``--one-epoch-per-path`` below), when the tool is on PATH;
3. the CUDA benchmarks W1–W3 (``benchmarks/test_bench_cuda.py``) beside PyTorch CUDA eager
   when torch is installed, each checked first against the CPU kernels from the same start;

and prints one table: samples/s, × torch, test accuracy on the GPU and on the CPU after the
same epoch, and how far the GPU's weights are from the CPU's.  Logs and the benchmark JSON
go to ``$OUT`` (or ``gpu-check/``).  Without a GPU it says so and exits 2, having checked
nothing: the CUDA code is tested on the simulator and compiled to PTX in CI, but only a GPU
can show its speed, its races and its limits.
"""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NO_GPU = 2  # exit status when there is nothing to check
STEP_TIMEOUT = 300  # seconds: a hung step must not eat the whole lease


def gpu_missing_reason():
    """Why this machine cannot run the check, or None when it can (numba-free)."""
    sys.path.insert(0, str(ROOT))
    from steepest.kernels import _cuda

    if _cuda.real_gpu_present():
        return None
    if not _cuda.numba_cuda_installed():
        return "numba-cuda is not installed: pip install -e '.[cuda]'"
    if _cuda.simulator_enabled():
        return "NUMBA_ENABLE_CUDASIM is set: the simulator says nothing about a GPU"
    return "no NVIDIA GPU or driver was found"


def run(step, command, log_dir, timeout=STEP_TIMEOUT):
    """Run one step, its output to ``log_dir/<step>.log``; (ok, seconds, last line)."""
    tick = time.perf_counter()
    log = log_dir / f"{step}.log"
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                              timeout=timeout)
        output, ok = done.stdout + done.stderr, done.returncode == 0
    except subprocess.TimeoutExpired as exc:
        output, ok = f"{exc.stdout or ''}{exc.stderr or ''}\ntimed out after {timeout} s", False
    log.write_text(output)
    lines = [line for line in output.splitlines() if line.strip()]
    return ok, time.perf_counter() - tick, lines[-1] if lines else ""


def one_epoch_per_path(device="cuda"):
    """One short epoch of every CUDA training path, then inference: what the sanitizers
    watch.  Small data, so racecheck's slowdown stays bearable."""
    import numpy as np

    import steepest

    rng = np.random.default_rng(0)
    X = rng.random((128, 784), dtype=np.float32)
    y = rng.integers(0, 10, 128)
    paths = [  # (sizes, activation, output, loss, fit options)
        ([784, 30, 10], "sigmoid", "sigmoid", "mse", {"batch_size": 1}),
        ([784, 30, 10], "sigmoid", "sigmoid", "mse", {"batch_size": 10}),
        ([784, 1024, 1024, 10], "relu", "softmax", "cross_entropy", {"batch_size": 32}),
        ([784, 128, 64, 10], "relu", "softmax", "cross_entropy", {"batch_size": None}),
        ([784, 64, 10], "tanh", "softmax", "cross_entropy",
         {"batch_size": 64, "optimizer": "adam"}),
    ]
    for sizes, activation, output, loss, options in paths:
        net = steepest.Network(sizes, activation=activation, output=output, loss=loss, seed=0,
                               device=device)
        net.fit(X, y, epochs=1, learning_rate=0.01, **options)
        net.evaluate(X, y)
        print(f"{sizes} {options}: one epoch and evaluate ran on {net.backend_device}")


def sanitize(log_dir):
    """racecheck and memcheck over ``one_epoch_per_path``: {tool: (ok, seconds, last line)}."""
    tool = shutil.which("compute-sanitizer")
    if tool is None:
        return {}
    return {name: run(f"sanitizer-{name}",
                      [tool, "--tool", name, "--error-exitcode", "1", sys.executable,
                       __file__, "--one-epoch-per-path"], log_dir)
            for name in ("racecheck", "memcheck")}


def benchmark_rows(path):
    """{workload: {who: extra_info and median seconds}} from pytest-benchmark's JSON."""
    rows = {}
    for bench in json.loads(path.read_text())["benchmarks"]:
        name = bench["params"]["name"]
        who = "torch" if "torch" in bench["name"] else "steepest"
        rows.setdefault(name, {})[who] = {**bench["extra_info"],
                                          "median_s": bench["stats"]["median"]}
    return rows


def table(rows, n_train):
    lines = [f"{'':4s} {'samples/s':>12s} {'torch':>12s} {'x torch':>8s} {'acc GPU':>8s} "
             f"{'acc CPU':>8s} {'max|dW|/max|W|':>15s}"]
    for name, found in sorted(rows.items()):
        ours, torch = found.get("steepest", {}), found.get("torch")
        speed = n_train / ours["median_s"] if ours else float("nan")
        theirs = n_train / torch["median_s"] if torch else float("nan")
        ratio = f"{speed / theirs:8.2f}" if torch else f"{'-':>8s}"
        lines.append(f"{name:4s} {speed:12,.0f} {theirs:12,.0f} {ratio} "
                     f"{ours.get('gpu_test_accuracy', float('nan')):8.4f} "
                     f"{ours.get('cpu_test_accuracy', float('nan')):8.4f} "
                     f"{ours.get('weight_difference', float('nan')):15.2e}")
    return "\n".join(lines)


def main():
    reason = gpu_missing_reason()
    if reason is not None:
        print(f"gpu_check: no NVIDIA GPU here ({reason}). Nothing was checked; run this on a "
              f"machine with a GPU.")
        return NO_GPU
    log_dir = Path(os.environ.get("OUT") or ROOT / "gpu-check")
    log_dir.mkdir(parents=True, exist_ok=True)
    steps = {"gpu tests": run("gpu-tests", [sys.executable, "-m", "pytest", "-m", "gpu",
                                            "tests", "-q", "-p", "no:cacheprovider"], log_dir)}
    steps.update(sanitize(log_dir))
    bench_json = log_dir / "cuda-benchmarks.json"
    steps["benchmarks"] = run("benchmarks", [
        sys.executable, "-m", "pytest", "benchmarks/test_bench_cuda.py", "--benchmark-enable",
        f"--benchmark-json={bench_json}", "-q", "-p", "no:cacheprovider"], log_dir)
    print("\nstep            ok     seconds  last line")
    for step, (ok, seconds, last) in steps.items():
        print(f"{step:15s} {'yes' if ok else 'NO':5s} {seconds:9.1f}  {last[:80]}")
    if "racecheck" not in steps:
        print("compute-sanitizer: not on PATH, races and memory errors not checked")
    if bench_json.exists():
        from test_bench_cuda import N_TRAIN

        print("\n" + table(benchmark_rows(bench_json), N_TRAIN))
    print(f"\nlogs and benchmark JSON in {log_dir}")
    return 0 if all(ok for ok, _, _ in steps.values()) else 1


if __name__ == "__main__":
    if sys.argv[1:] == ["--one-epoch-per-path"]:
        sys.path.insert(0, str(ROOT))
        one_epoch_per_path()
    else:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        sys.exit(main())
