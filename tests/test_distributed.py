"""steepest.distributed: data-parallel training over MPI, gradient and average mode.

The tests that need MPI write a script to tmp_path and launch ``mpiexec -n 2 python script``
as a subprocess with a timeout, so a hang fails the test instead of blocking the run; they
skip with the reason when mpi4py or mpiexec is missing (``pip install -e ".[mpi]"``).  The
child scripts compare against one process in the same run.  MPI never starts in the pytest
process itself.
"""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from helpers import CUDA_UNAVAILABLE, REAL_GPU

import steepest
from steepest.distributed import check_comm, rank_and_size, shard, shard_rows
from steepest.kernels import codes, cpu
from steepest.optimizers import get_optimizer

# A launch takes seconds with Numba's cache warm; a cold cache compiles the kernels first
# (about 40 s on two busy cores), so the limit leaves room for that and still ends a hang.
TIMEOUT = 240
RANKS = 2
# gradient mode against one process: the same updates, the sums taken in another order.
# Measured: at most 9e-7 apart after 3 epochs (weights of size ~0.5).
ATOL, RTOL = 1e-5, 1e-4


def _mpiexec():
    found = shutil.which("mpiexec")
    beside = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return found or (beside if os.access(beside, os.X_OK) else None)


MPIEXEC = _mpiexec()
needs_mpi = pytest.mark.skipif(
    importlib.util.find_spec("mpi4py") is None or MPIEXEC is None,
    reason="needs mpi4py and mpiexec: pip install -e '.[mpi]'")

# Shared by the child scripts: data, a network, and where to write results.
PREAMBLE = """
import json, os, sys
import numpy as np
from mpi4py import MPI
import steepest
comm = MPI.COMM_WORLD
rank = comm.Get_rank()
out = sys.argv[1]
rng = np.random.default_rng(1)
X = rng.random((203, 12), dtype=np.float32)   # 203: the last batches are short
y = rng.integers(0, 3, 203)

def network(seed=3):
    return steepest.Network([12, 9, 3], activation="tanh", loss="cross_entropy", seed=seed,
                            device="cpu")
"""


def launch(tmp_path, body, *args, module=True, env=None):
    """Run PREAMBLE + body on RANKS processes (under ``python -m mpi4py``, which aborts
    every rank on an uncaught exception, unless ``module`` is False), with ``env`` added to
    this process's environment; the finished process."""
    script = tmp_path / "child.py"
    script.write_text(PREAMBLE + textwrap.dedent(body))
    runner = [sys.executable, "-m", "mpi4py"] if module else [sys.executable]
    command = [MPIEXEC, "-n", str(RANKS), *runner, str(script), str(tmp_path), *args]
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT,
                              cwd=tmp_path, env=None if env is None else {**os.environ, **env})
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"mpiexec did not finish within {TIMEOUT} s (a rank hangs?):\n"
                    f"{exc.stdout}\n{exc.stderr}")


def launched(tmp_path, body, *args, env=None):
    """``launch`` that must succeed."""
    done = launch(tmp_path, body, *args, env=env)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    return done


def cli_on_two_ranks(tmp_path, *flags):
    """``python -m steepest train --distributed *flags`` on RANKS processes, which must
    succeed; the finished process."""
    command = [MPIEXEC, "-n", str(RANKS), sys.executable, "-m", "steepest", "train",
               "--distributed", *flags]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT,
                              cwd=tmp_path)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"mpiexec did not finish within {TIMEOUT} s:\n{exc.stdout}\n{exc.stderr}")
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    return done


def launched_once(tmp_path_factory, name, body):
    """For a module-scoped fixture: ``launched`` in a fresh folder ``name`` (skipped where
    MPI is missing); the folder the ranks wrote to."""
    if MPIEXEC is None or importlib.util.find_spec("mpi4py") is None:
        pytest.skip("needs mpi4py and mpiexec: pip install -e '.[mpi]'")
    tmp_path = tmp_path_factory.mktemp(name)
    launched(tmp_path, body)
    return tmp_path


def per_rank(tmp_path, name):
    return [json.loads((tmp_path / f"{name}{r}.json").read_text()) for r in range(RANKS)]


def blobs(n=120):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, n)
    X = (rng.standard_normal((n, 5)) + y[:, None]).astype(np.float32)
    return X, y


# ---------------------------------------------------------------- without MPI
@pytest.mark.parametrize("size", [1, 2, 3, 5, 8])
@pytest.mark.parametrize("n", [0, 1, 2, 7, 10, 64, 203])
def test_shard_rows_are_contiguous_near_equal_blocks_covering_every_row(n, size):
    blocks = [shard_rows(n, rank, size) for rank in range(size)]
    assert blocks[0][0] == 0 and blocks[-1][1] == n
    assert all(stop == start for (_, stop), (start, _) in zip(blocks, blocks[1:]))
    lengths = [stop - start for start, stop in blocks]
    # the first n % size ranks take one row more, none fewer than ⌊n/size⌋
    assert lengths == [n // size + (rank < n % size) for rank in range(size)]


def test_shard_rows_example_and_errors_name_the_argument():
    assert [shard_rows(10, r, 3) for r in range(3)] == [(0, 4), (4, 7), (7, 10)]
    with pytest.raises(ValueError, match="rank"):
        shard_rows(10, 3, 3)
    with pytest.raises(ValueError, match="size"):
        shard_rows(10, 0, 0)
    with pytest.raises(ValueError, match="n must"):
        shard_rows(-1, 0, 2)
    with pytest.raises(TypeError, match="rank"):
        shard_rows(10, 0.5, 2)


class _Comm:
    """Just what shard and rank_and_size read of a communicator."""

    def __init__(self, rank, size):
        self.rank, self.size = rank, size

    def Get_rank(self):
        return self.rank

    def Get_size(self):
        return self.size


def test_shard_gives_each_rank_its_block_of_rows():
    X = np.arange(20).reshape(10, 2)
    parts = [shard(X, _Comm(r, 3)) for r in range(3)]
    assert [len(p) for p in parts] == [4, 3, 3]
    np.testing.assert_array_equal(np.concatenate(parts), X)
    assert np.shares_memory(parts[1], X)  # a view, no copy
    assert shard(X, None) is not None and len(shard(X, None)) == 10
    assert rank_and_size(None) == (0, 1)


def test_comm_none_is_the_single_process_fit_and_bad_comm_or_sync_are_refused():
    X, y = blobs()
    one = steepest.Network([5, 6, 3], seed=0, device="cpu")
    hist = one.fit(X, y, epochs=2, batch_size=8, learning_rate=0.5)
    two = steepest.Network([5, 6, 3], seed=0, device="cpu")
    hist2 = two.fit(X, y, epochs=2, batch_size=8, learning_rate=0.5, comm=None,
                    sync="gradient")
    np.testing.assert_array_equal(one._params, two._params)
    assert hist["loss"] == hist2["loss"]
    assert hist.world_size == 1 and hist.to_dict()["world_size"] == 1
    with pytest.raises(ValueError, match=r"sync must be one of 'gradient', 'average'; got 'x'"):
        two.fit(X, y, sync="x")
    with pytest.raises(TypeError, match="comm must be an mpi4py communicator"):
        two.fit(X, y, comm="COMM_WORLD")
    with pytest.raises(TypeError, match="comm must"):
        check_comm(_Comm(0, 2))
    np.testing.assert_array_equal(one._params, two._params)  # refused before any work


def test_shard_of_a_tuple_gives_each_array_its_block():
    X, y = np.arange(20).reshape(10, 2), np.arange(10)
    Xs, ys = shard((X, y), _Comm(2, 3))
    np.testing.assert_array_equal(Xs, X[7:])
    np.testing.assert_array_equal(ys, y[7:])
    assert isinstance(shard([X, y], _Comm(0, 3)), tuple)


def test_average_every_and_sharded_are_checked_before_any_work_naming_the_argument():
    """One process takes sync="average" as itself (nothing to average); the arguments are
    checked all the same, before anything changes."""
    X, y = blobs()
    net = steepest.Network([5, 6, 3], seed=0, device="cpu")
    before = net._params.copy()
    bad = [({"average_every": 15, "batch_size": 10}, ValueError,
            "average_every must be a multiple of batch_size=10"),
           ({"average_every": 0, "batch_size": 10}, ValueError, "average_every must be ≥ 1"),
           ({"average_every": 2.5, "batch_size": 1}, TypeError, "average_every must be a whole"),
           ({"average_every": True, "batch_size": 1}, TypeError, "average_every must be a whole"),
           ({"average_every": 20, "batch_size": 10, "sync": "gradient"}, ValueError,
            "average_every applies to sync='average' only"),
           ({"sharded": True, "sync": "gradient"}, ValueError, "sharded=True needs sync='average'"),
           ({"sharded": "yes"}, TypeError, "sharded must be True or False")]
    for options, error, message in bad:
        options = {"sync": "average", **options}
        with pytest.raises(error, match=message):
            net.fit(X, y, epochs=1, **options)
    np.testing.assert_array_equal(net._params, before)
    assert net.epochs_trained == 0
    one = steepest.Network([5, 6, 3], seed=0, device="cpu")
    one.fit(X, y, epochs=2, batch_size=10, sync="average", average_every=20)
    alone = steepest.Network([5, 6, 3], seed=0, device="cpu")
    alone.fit(X, y, epochs=2, batch_size=10)
    np.testing.assert_array_equal(one._params, alone._params)


# The packed steps of gradient mode (kernels/cpu/steps.py) against the epoch kernels, in
# this process: one "rank" stepping every batch reproduces optimizer_epoch_minibatch bit for
# bit; two halves of each batch summed (what an Allreduce of two ranks gives) to float32.
@pytest.mark.parametrize("optimizer", ["sgd", "adam", "momentum"])
@pytest.mark.parametrize("density", [1.0, 0.2])
def test_packed_steps_reproduce_the_optimizer_epoch(optimizer, density):
    rng = np.random.default_rng(5)
    n, n_in, batch = 203, 23, 16
    X = rng.random((n, n_in), dtype=np.float32)
    X[rng.random((n, n_in)) > density] = 0  # 0.2: the first layer walks nonzero inputs only
    Y = np.eye(5, dtype=np.float32)[rng.integers(0, 5, n)]
    sizes = np.array([n_in, 17, 5])
    activations = np.array([codes.ACTIVATION_CODES["tanh"], codes.ACTIVATION_CODES["softmax"]])
    loss = codes.LOSS_CODES["cross_entropy"]
    opt = get_optimizer(optimizer, 0.05)
    if optimizer == "momentum":
        opt = type(opt)(0.05, weight_decay=1e-3, alpha=1e-2)
    hyper = opt.hyper()
    n_params = n_in * 17 + 17 + 17 * 5 + 5
    initial = (rng.standard_normal(n_params) * 0.3).astype(np.float32)
    order = rng.permutation(n)

    epoch_params, epoch_state = initial.copy(), opt.new_state(n_params)
    epoch_step = np.zeros(1, np.int64)
    epoch_loss = cpu.optimizer_epoch_minibatch(epoch_params, epoch_state, epoch_step, sizes,
                                               activations, loss, opt.code, hyper, X, Y,
                                               order, batch)
    for parts in (1, 2):
        params, state, step = initial.copy(), opt.new_state(n_params), np.zeros(1, np.int64)
        theta_rows, w_total = cpu.pack_rows(params.reshape(1, -1), sizes, activations)
        theta, packed_state = theta_rows[0], cpu.pack_rows(state, sizes, activations)[0]
        grad, part = np.empty_like(theta), np.empty_like(theta)
        sparse = cpu.rows_are_sparse(X, order)
        total = np.float32(0)
        for start in range(0, n, batch):
            rows = min(batch, n - start)
            grad[:] = 0
            for rank in range(parts):
                first, last = shard_rows(rows, rank, parts)
                total += cpu.packed_gradient(part, theta, sizes, activations, loss, X, Y, order,
                                             start + first, start + last,
                                             np.float32(1) / np.float32(rows), sparse)
                grad += part
            total += cpu.packed_update(theta, packed_state, step, grad, opt.code, hyper,
                                       w_total, rows, False)
        cpu.unpack_rows(params.reshape(1, -1), theta_rows, sizes, activations)
        cpu.unpack_rows(state, packed_state, sizes, activations)
        assert params.dtype == state.dtype == np.float32
        assert step[0] == epoch_step[0] == -(-n // batch)
        np.testing.assert_allclose(total / np.float32(n), epoch_loss, rtol=1e-5)
        if parts == 1:
            np.testing.assert_array_equal(params, epoch_params)
            np.testing.assert_array_equal(state, epoch_state)
        else:
            np.testing.assert_allclose(params, epoch_params, rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose(state, epoch_state, rtol=1e-3, atol=1e-6)


def test_import_steepest_and_fit_never_import_mpi4py():
    code = ("import sys, numpy as np, steepest, steepest.distributed; "
            "X = np.random.default_rng(0).random((20, 3), dtype=np.float32); "
            "steepest.Network([3, 2], device='cpu').fit(X, X[:, 0] > 0.5, epochs=1); "
            "assert 'mpi4py' not in sys.modules, 'mpi4py imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


# ---------------------------------------------------------------- gradient mode over MPI
EQUALITY = """
from steepest.optimizers import Adam, Momentum

cases = {
    "sgd": dict(batch_size=10, learning_rate=0.5),
    "adam": dict(batch_size=16, optimizer=Adam(learning_rate=0.01)),
    "full_batch": dict(batch_size=None, learning_rate=2.0),
    "momentum_decay_alpha": dict(batch_size=7, optimizer=Momentum(
        0.1, weight_decay=1e-3, alpha=1e-2, nesterov=True)),
}
arrays, results = {}, {}
for name, options in cases.items():
    # each rank seeded differently: fit starts every rank from rank 0's network
    net = network(seed=3 if rank == 0 else 100 + rank)
    hist = net.fit(X, y, epochs=3, comm=comm, **options)
    single = network(seed=3)
    single_hist = single.fit(X, y, epochs=3, **options)
    ranks_params = comm.gather(net._params, root=0)
    ranks_losses = comm.gather(hist["loss"], root=0)
    if rank == 0:
        arrays[name] = net._params
        arrays[name + "_single"] = single._params
        results[name] = {
            "ranks_identical": all(np.array_equal(p, ranks_params[0]) for p in ranks_params),
            "losses_identical": all(l == ranks_losses[0] for l in ranks_losses),
            "loss": hist["loss"], "single_loss": single_hist["loss"],
            "world_size": hist.world_size, "to_dict": hist.to_dict()["world_size"],
            "optimizer_step": int(net._opt_step[0]), "single_step": int(single._opt_step[0]),
            "epochs_trained": net.epochs_trained}
if rank == 0:
    np.savez(os.path.join(out, "params.npz"), **arrays)
    with open(os.path.join(out, "equality.json"), "w") as f:
        json.dump(results, f)
"""

CASES = ["sgd", "adam", "full_batch", "momentum_decay_alpha"]


@pytest.fixture(scope="module")
def equality(tmp_path_factory):
    tmp_path = launched_once(tmp_path_factory, "equality", EQUALITY)
    results = json.loads((tmp_path / "equality.json").read_text())
    with np.load(tmp_path / "params.npz") as params:
        return results, dict(params)


@needs_mpi
@pytest.mark.parametrize("case", CASES)
def test_gradient_mode_on_two_ranks_trains_the_weights_of_one_process(equality, case):
    """Mini-batch SGD and Adam with shuffling, full batch, momentum with both penalties:
    the same weights (to ATOL + RTOL·|w|) and per-epoch losses as one process, every rank
    bit-identical, the history saying world_size 2."""
    results, params = equality
    result = results[case]
    distributed, single = params[case], params[case + "_single"]
    assert distributed.dtype == np.float32
    np.testing.assert_allclose(distributed, single, rtol=RTOL, atol=ATOL)
    assert not np.array_equal(distributed, params["sgd_single"] * 0)  # it trained
    np.testing.assert_allclose(result["loss"], result["single_loss"], rtol=RTOL)
    assert result["ranks_identical"] and result["losses_identical"]
    assert result["world_size"] == result["to_dict"] == RANKS
    assert result["optimizer_step"] == result["single_step"]  # one update per global batch
    assert result["epochs_trained"] == 3


BEHAVIOUR = """
import numba
from steepest.models.network import DivergenceError

def error(X=X, y=y, **options):
    # what this rank's fit raises: [type name, message], or None
    try:
        network().fit(X, y, comm=comm, **options)
    except Exception as exc:
        return [type(exc).__name__, str(exc)]
    return None

report = {
    "per_sample": error(batch_size=1),
    # one row in all: a full batch smaller than the two ranks
    "full_batch_of_one_row": error(X=X[:1], y=y[:1], batch_size=None),
    "average_every": error(batch_size=10, sync="average", average_every=15),
    "average_full_batch": error(batch_size=None, sync="average"),
    # rank 1 alone passes a y of the wrong length: both ranks raise, before any work
    "rank1_bad_y": error(y=y if rank == 0 else y[:5], batch_size=10),
    # the ranks disagree on batch_size
    "batch_sizes_differ": error(batch_size=10 + rank),
}
# diverging: every rank raises DivergenceError in the same epoch
try:
    network().fit(X, y, batch_size=10, learning_rate=1e30, comm=comm, epochs=3)
except DivergenceError as exc:
    report["divergence"] = [exc.epoch, str(exc)]
# a callback that stops training on rank 0 alone stops every rank after the same epoch
stopped = network()
stopped.fit(X, y, batch_size=10, epochs=5, comm=comm,
            callbacks=[lambda epoch, metrics: rank == 0 and epoch == 2])
report["stopped_after"] = stopped.epochs_trained
# after all that the ranks are still in step; only rank 0 writes its checkpoint, and each
# rank runs its share of the cores' threads for the fit, restored afterwards
threads_before = numba.get_num_threads()
in_fit = []
net = network()
net.fit(X, y, batch_size=10, epochs=2, comm=comm,
        checkpoint=os.path.join(out, f"checkpoint{rank}.npz"),
        callbacks=[lambda epoch, metrics: in_fit.append(numba.get_num_threads())])
report.update(threads_before=threads_before, threads_in_fit=in_fit,
              threads_after=numba.get_num_threads(), cores=len(os.sched_getaffinity(0)),
              numba_threads=numba.config.NUMBA_NUM_THREADS, params=net._params.tolist())
with open(os.path.join(out, f"behaviour{rank}.json"), "w") as f:
    json.dump(report, f)
"""


@needs_mpi
def test_errors_raise_on_every_rank_and_rank_0_alone_writes_the_checkpoint(tmp_path):
    launched(tmp_path, BEHAVIOUR)
    reports = per_rank(tmp_path, "behaviour")
    for rank, report in enumerate(reports):
        for key in ("per_sample", "full_batch_of_one_row", "average_every",
                    "average_full_batch", "rank1_bad_y", "batch_sizes_differ"):
            assert report[key][0] == "ValueError", (key, report[key])
        message = report["per_sample"][1]
        assert "batch_size=1 (per-sample SGD)" in message and "2 processes" in message
        assert "batch_size=None (full batch) gives batches of 1 row" in \
            report["full_batch_of_one_row"][1]
        assert "average_every must be a multiple of batch_size=10" in \
            report["average_every"][1]
        assert "batch_size=None (full batch)" in report["average_full_batch"][1]
        # rank 1's own error; on rank 0 the same error passed on with rank 1's number
        message = report["rank1_bad_y"][1]
        assert "y" in message and "5" in message, message
        assert message.startswith("rank 1 of 2 failed: ValueError: ") == (rank == 0), message
        assert "batch_size: rank 0 has 10, rank 1 has 11" in report["batch_sizes_differ"][1]
        assert report["stopped_after"] == 2
        assert report["divergence"][0] == 1
        assert report["divergence"] == reports[0]["divergence"]
        # the node's cores shared by its two ranks
        share = max(1, min(report["numba_threads"], report["cores"] // RANKS))
        assert report["threads_in_fit"] == [share] * 2
        assert report["threads_after"] == report["threads_before"]
    assert reports[0]["params"] == reports[1]["params"]
    assert (tmp_path / "checkpoint0.npz").exists()
    assert not (tmp_path / "checkpoint1.npz").exists()
    saved = steepest.Network.load(tmp_path / "checkpoint0.npz")
    assert saved.epochs_trained == 2
    np.testing.assert_array_equal(saved._params, np.float32(reports[0]["params"]))


FAILURE = """
import time

def fail_on_rank_1(epoch, metrics):
    if rank == 1 and epoch == 2:
        raise RuntimeError("rank 1 fails in its callback")

# 10,000 epochs would take minutes: only an abort ends this quickly
network().fit(X, y, batch_size=10, epochs=10_000, comm=comm, callbacks=[fail_on_rank_1])
print("training finished", rank)
"""


@needs_mpi
def test_an_exception_on_one_rank_ends_every_rank_with_an_error_quickly(tmp_path):
    # plain python, not python -m mpi4py: steepest itself must abort the other rank
    started = time.perf_counter()
    done = launch(tmp_path, FAILURE, module=False)
    seconds = time.perf_counter() - started
    assert done.returncode != 0
    assert "training finished" not in done.stdout
    assert "rank 1 of 2 failed" in done.stderr and "rank 1 fails in its callback" in done.stderr
    assert seconds < 60, seconds


@needs_mpi
def test_cli_distributed_trains_on_two_processes_and_rank_0_reports(tmp_path):
    done = cli_on_two_ranks(tmp_path, "--epochs", "1", "--train-samples", "600", "--quiet",
                            "--metrics-json", str(tmp_path / "metrics.json"),
                            "--save", str(tmp_path / "net.npz"))
    lines = done.stdout.splitlines()
    # rank 0 alone prints: one header, one final line, each with the world size
    assert sum(line.startswith("Network(") for line in lines) == 1, done.stdout
    assert sum(line.startswith("final test accuracy") for line in lines) == 1, done.stdout
    assert "600 training samples" in lines[0] and lines[0].endswith("world size 2")
    final = next(line for line in lines if line.startswith("final"))
    assert "device cpu, world size 2)" in final
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["device"] == "cpu"
    assert metrics["epochs_trained"] == 1 and len(metrics["epochs"]) == 1
    assert steepest.Network.load(tmp_path / "net.npz").epochs_trained == 1


@needs_mpi
def test_cli_distributed_refuses_cuda_before_any_work(tmp_path):
    done = subprocess.run([MPIEXEC, "-n", str(RANKS), sys.executable, "-m", "steepest", "train",
                           "--distributed", "--device", "cuda"],
                          capture_output=True, text=True, timeout=TIMEOUT, cwd=tmp_path)
    assert done.returncode == 2
    # printed once, by rank 0
    assert done.stderr.count("--distributed trains on the CPU only") == 1, done.stderr


# ---------------------------------------------------------------- average mode over MPI
AVERAGE = """
from steepest import distributed
from steepest.optimizers import Adam

# three separable blobs: 400 rows to train on, 200 held out
data = np.random.default_rng(0)
yb = data.integers(0, 3, 600)
Xb = (data.standard_normal((600, 12)) * 0.8 + 1.5 * np.eye(3, 12)[yb]).astype(np.float32)
X_train, y_train, X_test, y_test = Xb[:400], yb[:400], Xb[400:], yb[400:]
if rank == 0:
    np.savez(os.path.join(out, "blobs.npz"), X=X_train, y=y_train)
report = {}

def same_on_every_rank(*arrays):
    gathered = comm.allgather([np.asarray(a).tolist() for a in arrays])
    return all(g == gathered[0] for g in gathered)

# converges: per-sample SGD averaged every 50 samples, batches of 8 averaged at epoch ends,
# Adam every 40; against one process at equal epochs, each rank seeded differently
cases = {"per_sample": dict(batch_size=1, learning_rate=0.05, average_every=50),
         "epoch_end": dict(batch_size=8, learning_rate=0.5),
         "adam": dict(batch_size=8, optimizer=Adam(0.01), average_every=40)}
for name, options in cases.items():
    net = network(seed=3 if rank == 0 else 50 + rank)
    hist = net.fit(X_train, y_train, epochs=4, comm=comm, sync="average", **options)
    single = network(seed=3)
    single.fit(X_train, y_train, epochs=4,
               **{k: v for k, v in options.items() if k != "average_every"})
    report[name] = {
        "accuracy": net.evaluate(X_test, y_test)["accuracy"],
        "single_accuracy": single.evaluate(X_test, y_test)["accuracy"],
        "identical": same_on_every_rank(net._params, net._opt_state, net._opt_step),
        "history_identical": same_on_every_rank(hist["loss"], hist["accuracy"]),
        "steps": int(net._opt_step[0]), "world_size": hist.world_size}

# sharded loading: each rank's shard passed as its own rows trains exactly as the shared
# full X does (without shuffling the two give each rank the same rows in the same order)
Xs, ys = distributed.shard((X_train, y_train), comm)
own = network()
own.fit(Xs, ys, epochs=2, batch_size=8, learning_rate=0.5, shuffle=False, comm=comm,
        sync="average", sharded=True)
full = network()
full.fit(X_train, y_train, epochs=2, batch_size=8, learning_rate=0.5, shuffle=False, comm=comm,
         sync="average")
report["sharded_equals_full"] = bool(np.array_equal(own._params, full._params))
# rows a rank loaded itself, unequal counts, shuffled; metrics pooled over the ranks
mine = slice(0, 150) if rank == 0 else slice(150, 400)
uneven = network()
hist = uneven.fit(X_train[mine], y_train[mine], epochs=2, batch_size=8, learning_rate=0.5,
                  comm=comm, sync="average", sharded=True, average_every=40,
                  validation_data=(X_train[mine], y_train[mine]))
report["uneven"] = {"identical": same_on_every_rank(uneven._params),
                    "history_identical": same_on_every_rank(
                        hist["loss"], hist["accuracy"], hist["val_accuracy"]),
                    "samples": hist["samples_per_s"][0] * hist["seconds"][0]}

# sharded rows need not agree, but whether there is validation data must (pooled metrics)
try:
    network().fit(Xs, ys, batch_size=8, comm=comm, sync="average", sharded=True,
                  validation_data=(Xs, ys) if rank == 0 else None)
    report["validation_on_one_rank"] = None
except ValueError as exc:
    report["validation_on_one_rank"] = str(exc)

# reproducible for a given seed and K: shuffled, shared and sharded rows
def run(**options):
    net = network(seed=11)
    net.fit(X_train, y_train, epochs=2, batch_size=4, learning_rate=0.3, comm=comm,
            sync="average", average_every=20, **options)
    return net._params
report["reproducible"] = bool(np.array_equal(run(), run()))
Xs2, ys2 = distributed.shard((X_train, y_train), comm)
def run_sharded():
    net = network(seed=11)
    net.fit(Xs2, ys2, epochs=2, batch_size=4, learning_rate=0.3, comm=comm, sync="average",
            sharded=True)
    return net._params
report["reproducible_sharded"] = bool(np.array_equal(run_sharded(), run_sharded()))

# a checkpoint of this 2-rank run resumes on 2 ranks (here) and on 1 process (the test)
path = os.path.join(out, "average.npz")
options = dict(batch_size=8, comm=comm, sync="average", average_every=40)
first = network()
first.fit(X_train, y_train, epochs=2, optimizer=Adam(0.01), checkpoint=path, **options)
whole = network()
whole.fit(X_train, y_train, epochs=3, optimizer=Adam(0.01), **options)
comm.Barrier()
resumed = steepest.Network.load(path)
saved_step = int(resumed._opt_step[0])
resumed.fit(X_train, y_train, epochs=1, **options)  # Adam, its state and rate continue
report["resume"] = {"equal": bool(np.array_equal(resumed._params, whole._params)),
                    "state_equal": bool(np.array_equal(resumed._opt_state, whole._opt_state)),
                    "epochs_trained": resumed.epochs_trained, "saved_step": saved_step,
                    "step": int(resumed._opt_step[0]), "optimizer": resumed._optimizer_name}
with open(os.path.join(out, f"average{rank}.json"), "w") as f:
    json.dump(report, f)
"""
# average mode against one process at equal epochs (4 epochs of 400 blob rows, 200 held out):
# measured 0.0 to 0.02 apart; local SGD is not the same optimiser, so a margin.
ACCURACY_MARGIN = 0.05


@pytest.fixture(scope="module")
def average(tmp_path_factory):
    tmp_path = launched_once(tmp_path_factory, "average", AVERAGE)
    return per_rank(tmp_path, "average"), tmp_path


@needs_mpi
@pytest.mark.parametrize("case", ["per_sample", "epoch_end", "adam"])
def test_average_mode_converges_like_one_process_and_ends_with_identical_ranks(average, case):
    reports, _ = average
    result = reports[0][case]
    assert result["single_accuracy"] > 0.8  # a problem one process learns
    assert result["accuracy"] >= result["single_accuracy"] - ACCURACY_MARGIN, result
    assert result["identical"] and result["history_identical"]  # params, state, step
    assert result["world_size"] == RANKS
    assert all(report[case] == result for report in reports)
    if case == "adam":  # each rank 200 rows a epoch, batches of 8: 25 steps, 4 epochs
        assert result["steps"] == 4 * 25


@needs_mpi
def test_average_mode_sharded_rows_are_each_ranks_own_and_runs_are_reproducible(average):
    reports, _ = average
    for report in reports:
        assert report["sharded_equals_full"]
        uneven = report["uneven"]
        assert uneven["identical"] and uneven["history_identical"]
        assert round(uneven["samples"]) == 400  # samples/s counts every rank's rows
        assert "validation_data: rank 0 has True, rank 1 has False" in \
            report["validation_on_one_rank"]
        assert report["reproducible"] and report["reproducible_sharded"]


@needs_mpi
def test_a_checkpoint_of_two_ranks_resumes_on_two_ranks_and_on_one_process(average):
    reports, tmp_path = average
    for report in reports:
        resume = report["resume"]
        assert resume["equal"] and resume["state_equal"]  # as if never interrupted
        assert resume["epochs_trained"] == 3 and resume["optimizer"] == "adam"
        assert resume["saved_step"] == 2 * 25 and resume["step"] == 3 * 25
    # on one process: the epoch count, Adam's state and step and the rate carry over
    with np.load(tmp_path / "blobs.npz") as blobs_:
        X, y = blobs_["X"], blobs_["y"]
    net = steepest.Network.load(tmp_path / "average.npz")
    state = net._opt_state.copy()
    assert net.epochs_trained == 2 and np.any(state)
    hist = net.fit(X, y, epochs=1)
    assert net.epochs_trained == 3 and hist["epoch"] == [3]
    assert net._optimizer_name == "adam" and int(net._opt_step[0]) == 2 * 25 + 50
    assert hist.world_size == 1 and not np.array_equal(net._opt_state, state)


@needs_mpi
def test_cli_distributed_average_mode(tmp_path):
    done = cli_on_two_ranks(tmp_path, "--sync", "average", "--average-every", "100",
                            "--epochs", "1", "--train-samples", "600", "--quiet",
                            "--metrics-json", str(tmp_path / "metrics.json"))
    header = done.stdout.splitlines()[0]
    assert header.endswith("averaging every 100 samples, world size 2"), header
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["epochs_trained"] == 1
    assert metrics["final"]["test_accuracy"] > 0.2  # it learned (300 rows a rank, 1 epoch)


def test_cli_sync_options_need_distributed_and_average(capsys):
    from steepest.cli import main

    assert main(["train", "--sync", "average", "--epochs", "1"]) == 2
    assert "--sync needs --distributed" in capsys.readouterr().err
    assert main(["train", "--average-every", "10", "--epochs", "1"]) == 2
    assert "--average-every needs --distributed" in capsys.readouterr().err


# ---------------------------------------------------------------- sweeps split over ranks
SWEEP = """
options = dict(learning_rates=[0.05, 0.2, 1.0], seeds=[3], epochs=2, batch_size=10,
               activation="tanh", loss="cross_entropy", device="cpu")
split = steepest.sweep([12, 9, 3], X, y, comm=comm, **options)
alone = steepest.sweep([12, 9, 3], X, y, **options)
found = {"params": split.params,
         "weights_equal": [bool(np.array_equal(a._params, b._params))
                           for a, b in zip(split.networks, alone.networks)],
         "losses_equal": [a.history["loss"] == b.history["loss"]
                          for a, b in zip(split.runs, alone.runs)],
         "epochs": [len(h) for h in split.histories]}
bad_y = y.copy()
if rank == 1:
    bad_y[0] = 99  # a label the network cannot have, on one rank only
try:
    steepest.sweep([12, 9, 3], X, bad_y, comm=comm, **options)
except ValueError as exc:
    found["error"] = str(exc)
with open(os.path.join(out, f"sweep{rank}.json"), "w") as f:
    json.dump(found, f)
"""


@needs_mpi
def test_a_sweep_split_over_two_ranks_equals_one_process_and_fails_together(tmp_path):
    # 3 networks over 2 ranks (2 and 1): every rank gets every network, each bit for bit
    # the one-process sweep's; a bad label on rank 1 alone raises on both, before training
    launched(tmp_path, SWEEP)
    for rank, found in enumerate(per_rank(tmp_path, "sweep")):
        assert found["params"] == [{"learning_rate": r, "seed": 3} for r in (0.05, 0.2, 1.0)]
        assert found["weights_equal"] == [True] * 3, rank
        assert found["losses_equal"] == [True] * 3, rank
        assert found["epochs"] == [2, 2, 2]
        assert "99" in found["error"] or "rank 1 of 2 failed" in found["error"], found
    assert "rank 1 of 2 failed" in per_rank(tmp_path, "sweep")[0]["error"]


# ---------------------------------------------------------------- CUDA (simulator)
CUDA_CHILD = """
from steepest.kernels import _cuda
from steepest.optimizers import Adam, Momentum

Xs, ys = X[:20], y[:20]

def net(device):
    return steepest.Network([12, 9, 3], activation="tanh", loss="cross_entropy", seed=3,
                            device=device)

results = {"gpu": None, "count": _cuda.gpu_count()}
arrays = {}
gradient = {"sgd": dict(learning_rate=0.5, epochs=1),
            "adam_alpha": dict(optimizer=Adam(0.01, alpha=1e-2), epochs=1)}
for name, options in gradient.items():
    gpu = net("cuda")
    hist = gpu.fit(Xs, ys, batch_size=10, comm=comm, **options)
    if results["gpu"] is None:  # chosen by the first fit, before any CUDA work
        results["gpu"] = _cuda.selected_device()
    single = net("cpu")
    single.fit(Xs, ys, batch_size=10, **options)
    arrays[name], arrays[name + "_single"] = gpu._params, single._params
    results[name] = {"device": hist.device, "loss": hist["loss"],
                     "step": int(gpu._opt_step[0]), "single_step": int(single._opt_step[0])}
averaged = {}
for device in ("cuda", "cpu"):
    model = net(device)
    hist = model.fit(Xs, ys, epochs=1, batch_size=5, sync="average", average_every=5,
                     optimizer=Momentum(0.1), comm=comm)
    arrays["average_" + device] = model._params
    averaged[device] = hist["loss"]
results["average_loss"] = averaged
ranks = comm.gather(arrays, root=0)
if rank == 0:
    results["ranks_identical"] = all(np.array_equal(r[k], ranks[0][k]) for r in ranks
                                     for k in ranks[0])
    np.savez(os.path.join(out, "params.npz"), **arrays)
with open(os.path.join(out, f"cuda{rank}.json"), "w") as f:
    json.dump(results, f)
"""


@needs_mpi
@pytest.mark.skipif(CUDA_UNAVAILABLE is not None, reason=f"CUDA unavailable: {CUDA_UNAVAILABLE}")
def test_cuda_training_over_mpi(tmp_path):
    """device="cuda" over 2 ranks (numba-cuda's simulator without a GPU, tiny shapes): each
    rank selects GPU rank % GPUs; gradient mode (plain SGD's sgd_step; Adam with α's
    penalty) equals one CPU process, average mode equals average mode on the CPU; every
    reduction goes through host buffers."""
    env = {} if REAL_GPU else {"NUMBA_ENABLE_CUDASIM": "1"}
    launched(tmp_path, CUDA_CHILD, env=env)
    ranks = per_rank(tmp_path, "cuda")
    assert [r["gpu"] for r in ranks] == [rank % ranks[0]["count"] for rank in range(RANKS)]
    assert ranks[0]["ranks_identical"]
    arrays = np.load(tmp_path / "params.npz")
    for name in ("sgd", "adam_alpha"):
        assert ranks[0][name]["device"] == "cuda"
        assert ranks[0][name]["step"] == ranks[0][name]["single_step"]
        np.testing.assert_allclose(arrays[name], arrays[name + "_single"], rtol=RTOL, atol=ATOL)
    assert ranks[0]["adam_alpha"]["step"] == 2  # 20 rows, batch 10
    np.testing.assert_allclose(arrays["average_cuda"], arrays["average_cpu"], rtol=RTOL,
                               atol=ATOL)
    np.testing.assert_allclose(ranks[0]["average_loss"]["cuda"],
                               ranks[0]["average_loss"]["cpu"], rtol=1e-4)
