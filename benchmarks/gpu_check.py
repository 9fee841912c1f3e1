"""The first minutes on a GPU, in one command: ``bash benchmarks/gpu_check.sh``.

On a machine with an NVIDIA GPU it runs, in about 9 minutes on one H100/H200:

1. the ``gpu``-marked tests (``tests/``: the device is really used, the launch limits);
2. ``compute-sanitizer --tool racecheck`` and ``--tool memcheck`` over one short epoch of
   each kernel path (``--one-epoch-per-path`` below), when the tool is on PATH;
3. the CUDA benchmarks W1–W3 (``benchmarks/test_bench_cuda.py``) beside PyTorch CUDA eager
   when torch is installed, each checked first against the CPU kernels from the same start;
4. the launch plan's calibration (``--launch-plans``): for the shapes where the choice
   matters, one epoch on each SGD path (one block, tiled launches) and the one-block path
   without the shared-memory opt-in, timed per step beside the plan's estimates, and whether
   the plan chose the faster path (if not, the constants in ``cuda/loops.py`` need the
   measured values);

5. the sweeps (``--sweeps``, issue 15's GPU target: 16 networks in ≤ 1.5× the time of one):
   one epoch of K = 1, 16 and 32 networks of W1 and W2 by ``steepest.sweep(device="cuda")``,
   timed in back-to-back pairs against one network's ``fit(epochs=1)`` on the GPU, each
   sweep's weights checked against the same sweep on the CPU;

and prints one table: samples/s, × torch, test accuracy on the GPU and on the CPU after the
same epoch, and how far the GPU's weights are from the CPU's; then the launch-plan table and
the sweep table.
Logs and the benchmark JSON go to ``$OUT`` (or ``gpu-check/``).  Without a GPU it says so
and exits 2, having checked nothing: the CUDA code is tested on the simulator and compiled
to PTX in CI, but only a GPU can show its speed, its races and its limits.
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


# (sizes, batch): the tutorials' networks, W3 around the one-block limit, and wide ones
LAUNCH_PLAN_SHAPES = [([784, 30, 10], 10), ([784, 16, 16, 10], 1), ([784, 128, 64, 10], 10),
                      ([784, 128, 64, 10], 32), ([784, 512, 10], 10), ([784, 2048, 10], 1),
                      ([784, 1024, 1024, 10], 1), ([784, 1024, 1024, 10], 10),
                      ([784, 1024, 1024, 10], 32)]


def time_launch_paths(shapes=LAUNCH_PLAN_SHAPES, rows=2048):
    """One epoch of ``rows`` samples on each SGD path for each (sizes, batch), after a warm-up
    epoch: a list of dicts with the seconds per step of "one-block", "one-block 48 KB" (the
    opt-in switched off) and "tiled", and the plan (``loops.launch_plan``).  Needs a GPU."""
    import numpy as np
    from numba import cuda

    import steepest
    from steepest.kernels.cuda import loops

    rng = np.random.default_rng(0)
    order = cuda.to_device(rng.permutation(rows))
    results = []
    for sizes, batch in shapes:
        net = steepest.Network(sizes, activation="relu", output="softmax",
                               loss="cross_entropy", seed=0)
        X = cuda.to_device(rng.random((rows, sizes[0]), dtype=np.float32))
        labels = rng.integers(0, sizes[-1], rows)
        Y = cuda.to_device(np.eye(sizes[-1], dtype=np.float32)[labels])
        args = (net._size_array, net._activation_codes, net._loss_code, X, Y, order, batch,
                np.float32(0.01))
        steps = -(-rows // batch)
        seconds = {}
        for name, epoch, opt_in in (("one-block", loops._one_block_epoch, True),
                                    ("one-block 48 KB", loops._one_block_epoch, False),
                                    ("tiled", loops._tiled_epoch, True)):
            loops.SHARED_MEMORY_OPT_IN = opt_in
            try:
                params = cuda.to_device(net._params)
                epoch(params, *args)  # compile (or load) and warm up
                cuda.synchronize()
                tick = time.perf_counter()
                epoch(params, *args)
                cuda.synchronize()
                seconds[name] = (time.perf_counter() - tick) / steps
            finally:
                loops.SHARED_MEMORY_OPT_IN = True
        results.append(dict(sizes=sizes, batch=batch, seconds=seconds,
                            plan=loops.launch_plan(sizes, batch, rows)))
    return results


def launch_plan_table(results):
    """The launch-plan calibration as text: µs per step measured and estimated, the choice."""
    lines = [f"{'network':20s} {'batch':>5s} {'one-block':>10s} {'48 KB':>8s} {'tiled':>8s} "
             f"{'est. one':>9s} {'est. tiled':>10s}  {'plan':9s} faster?"]
    for found in results:
        measured, plan = found["seconds"], found["plan"]
        faster = min(("one-block", "tiled"), key=lambda path: measured[path])
        estimate = plan["one_block_step_s"]
        lines.append(
            f"{'-'.join(map(str, found['sizes'])):20s} {found['batch']:5d} "
            f"{measured['one-block'] * 1e6:10.1f} {measured['one-block 48 KB'] * 1e6:8.1f} "
            f"{measured['tiled'] * 1e6:8.1f} "
            f"{'-' if estimate is None else f'{estimate * 1e6:.1f}':>9s} "
            f"{plan['tiled_step_s'] * 1e6:10.1f}  {plan['path']:9s} "
            f"{'yes' if plan['path'] == faster else 'NO: ' + faster}")
    return "\n".join(lines)


# Issue 15's GPU target: a sweep of 16 networks in at most 1.5× the time of one network's
# epoch; the K of the curve around it, and the back-to-back (sweep, fit) pairs per K
SWEEP_TARGET = (16, 1.5)
SWEEP_NETWORKS = (1, 16, 32)
SWEEP_PAIRS = 5
SWEEP_WORKLOADS = ("W1", "W2")


def time_sweeps(workloads, X, y, networks=SWEEP_NETWORKS, pairs=SWEEP_PAIRS):
    """For each workload (name: (sizes, hidden, output, loss, batch, rate), as
    ``test_bench_cuda.WORKLOADS``) and each K in ``networks``: one epoch of K networks by
    ``steepest.sweep(device="cuda")`` (rates η/3 … 3η, seed 0, X's own order), timed in
    ``pairs`` back-to-back pairs (which goes first alternates) against one network's
    ``fit(epochs=1)`` on the GPU, after both ran on a few rows (compiled, or loaded); and
    the same sweep on the CPU.  A list of dicts: name, sizes, networks, samples, sweep_s
    and fit_s (medians), ratio (the median of the pairs' sweep ÷ fit), weight_difference
    (over the networks, the largest max|W_gpu − W_cpu| ÷ max|W_cpu|)."""
    return [found for name, workload in workloads.items()
            for found in _time_sweeps_of(name, workload, X, y, networks, pairs)]


def _time_sweeps_of(name, workload, X, y, networks, pairs):
    """``time_sweeps`` for one workload."""
    import statistics
    from functools import partial

    import numpy as np
    from bench_helpers import paired_ratios, sweep_rates, timed

    import steepest

    sizes, hidden, output, loss, batch, rate = workload
    shape = dict(activation=hidden, output=output, loss=loss)

    def sweep(rows, k, device="cuda"):
        return steepest.sweep(sizes, X[:rows], y[:rows], learning_rates=sweep_rates(rate, k),
                              seeds=[0], epochs=1, batch_size=batch, shuffle=False,
                              device=device, **shape)

    def fit(rows):
        net = steepest.Network(sizes, seed=0, device="cuda", **shape)
        return net.fit(X[:rows], y[:rows], epochs=1, batch_size=batch, learning_rate=rate,
                       shuffle=False)

    def seconds_into(times, call, *args):
        times.append(timed(call, *args)[0])
        return times[-1]

    n = len(X)
    results = []
    for k in networks:
        sweep(min(n, 2 * batch), k)  # compile (or load) before timing
        fit(min(n, 2 * batch))
        sweep_s, fit_s = [], []
        ratios = paired_ratios(partial(seconds_into, sweep_s, sweep, n, k),
                               partial(seconds_into, fit_s, fit, n), pairs)
        on_gpu, on_cpu = sweep(n, k), sweep(n, k, "cpu")
        difference = max(float(np.abs(g._params - c._params).max() / np.abs(c._params).max())
                         for g, c in zip(on_gpu.networks, on_cpu.networks, strict=True))
        results.append(dict(name=name, sizes=list(sizes), networks=k, samples=n,
                            sweep_s=statistics.median(sweep_s), fit_s=statistics.median(fit_s),
                            ratio=statistics.median(ratios), weight_difference=difference))
    return results


def sweeps_on_mnist():
    """The ``--sweeps`` step: ``time_sweeps`` of SWEEP_WORKLOADS on the CUDA benchmarks'
    MNIST rows, as ``sweep_table``."""
    from test_bench_cuda import N_TRAIN, WORKLOADS

    import steepest

    X, y = steepest.load_mnist()[:2]
    return sweep_table(time_sweeps({name: WORKLOADS[name] for name in SWEEP_WORKLOADS},
                                   X[:N_TRAIN], y[:N_TRAIN], SWEEP_NETWORKS, SWEEP_PAIRS))


def sweep_table(results):
    """The sweeps as text: per workload and K, the medians, the ratio to one fit, and the
    target's verdict on its K's row."""
    networks, target = SWEEP_TARGET
    lines = [f"{'':4s} {'network':14s} {'K':>3s} {'sweep ms':>9s} {'fit ms':>8s} "
             f"{'x one fit':>9s} {'model-samples/s':>16s} {'max|dW|/max|W|':>15s}  "
             f"target (K = {networks}: <= {target})"]
    for found in results:
        verdict = ""
        if found["networks"] == networks:
            verdict = "yes" if found["ratio"] <= target else "NO"
        rate = found["networks"] * found["samples"] / found["sweep_s"]
        lines.append(f"{found['name']:4s} {'-'.join(map(str, found['sizes'])):14s} "
                     f"{found['networks']:3d} {found['sweep_s'] * 1e3:9.1f} "
                     f"{found['fit_s'] * 1e3:8.1f} {found['ratio']:9.2f} {rate:16,.0f} "
                     f"{found['weight_difference']:15.2e}  {verdict}".rstrip())
    return "\n".join(lines)


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
    steps["launch plans"] = run("launch-plans", [sys.executable, __file__, "--launch-plans"],
                                log_dir)
    steps["sweeps"] = run("sweeps", [sys.executable, __file__, "--sweeps"], log_dir)
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
    print("\nlaunch plan, µs per SGD step (one epoch of 2,048 rows):")
    print((log_dir / "launch-plans.log").read_text().rstrip())
    print(f"\nsweeps, one epoch of {SWEEP_WORKLOADS} on the GPU against one network's fit "
          f"(issue 15):")
    print((log_dir / "sweeps.log").read_text().rstrip())
    print(f"\nlogs and benchmark JSON in {log_dir}")
    return 0 if all(ok for ok, _, _ in steps.values()) else 1


if __name__ == "__main__":
    if sys.argv[1:] == ["--one-epoch-per-path"]:
        sys.path.insert(0, str(ROOT))
        one_epoch_per_path()
    elif sys.argv[1:] == ["--sweeps"]:
        import warnings

        warnings.simplefilter("ignore")  # numba's low-occupancy warnings
        sys.path.insert(0, str(ROOT))
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        print(sweeps_on_mnist())
    elif sys.argv[1:] == ["--launch-plans"]:
        import warnings

        warnings.simplefilter("ignore")  # numba's low-occupancy warnings: one block is the point
        sys.path.insert(0, str(ROOT))
        print(launch_plan_table(time_launch_paths()))
    else:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        sys.exit(main())
