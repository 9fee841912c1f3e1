"""Distributed training on this machine: one epoch on 1 and on K MPI ranks, and a cost model.

    python benchmarks/distributed.py               # launches mpiexec itself; ~3 minutes
    python benchmarks/distributed.py --ranks 2 --epochs 5
    python benchmarks/distributed.py --model       # the cost model's table only (no MPI)

Workloads (benchmarks/workloads.py), on the first 50,000 MNIST training images:

* W3 784-128-64-10 (ReLU, softmax + cross-entropy), batch 128, η = 0.1, ``sync="gradient"``:
  the single-process ``fit`` (the baseline), the same code path over a communicator of one
  rank, and K ranks;
* W1 784-30-10 (sigmoid, MSE), batch 10, η = 3.0, ``sync="average"`` (every
  ``--average-every`` samples per rank, and at each epoch's end only): the single-process
  ``fit`` against K ranks, in time and in test accuracy after each epoch (10,000 test
  images).

Each child process is started by ``mpiexec -n K python benchmarks/distributed.py --child``;
every epoch's seconds come from ``History.seconds`` (the compiled epoch and its Allreduce
calls, after the warm-up compile) and the Allreduce seconds from ``distributed.timings``.
The machine this runs on may be shared: medians over the epochs, never the best.  The cost
model (``--model``, and below the measurements) is explained in benchmarks/SCALING.md.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

N_TRAIN = 50_000
BIG = (784, 1024, 1024, 10)
BIG_ROWS = 4096  # its epochs on the first 4,096 rows only (~2 s each on one core)
# Compute per sample measured on the 2-core machine of benchmarks/SCALING.md (single-process
# fit, median epoch): the --model table's defaults when it is printed without measuring.
SECONDS_PER_SAMPLE = {"W1": 1.7e-6, "W3": 5.1e-6, "784-1024-1024-10": 7.7e-4}
PARAMETERS = {"W1": 23_860, "W3": 109_386, "784-1024-1024-10": 1_863_690}
BATCH = {"W1": 10, "W3": 128, "784-1024-1024-10": 128}
NETWORKS = {  # (bit/s, latency in s) of a ring-allreduce hop
    "10 Gbit/s, 5 µs": (10e9, 5e-6),
    "100 Gbit/s, 1.5 µs": (100e9, 1.5e-6),
    # this machine's shared memory, fitted to 2-rank Allreduce times measured while it was
    # quiet (96 KB: 48 µs, 440 KB: 110 µs): only for K up to its 2 cores
    "shared memory of this node (44 Gbit/s, 15 µs; K ≤ 2 only)": (44e9, 15e-6),
}
STEP_OVERHEAD = 20e-6  # Python and kernel-call time per step of gradient mode (measured ~)
RANKS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


# ---------------------------------------------------------------- the child (one rank)
def child(args):
    from mpi4py import MPI

    import steepest
    from steepest import distributed

    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    X, y, Xt, yt = steepest.load_mnist()
    X, y = np.ascontiguousarray(X[:N_TRAIN]), y[:N_TRAIN]
    results = {}

    def timed(name, sizes, hidden, output, loss, batch, rate, epochs, use_comm, rows=N_TRAIN,
              **options):
        net = steepest.Network(list(sizes), activation=hidden, output=output, loss=loss,
                               seed=0, device="cpu")
        reduced = []

        def note(epoch, metrics):
            reduced.append(distributed.timings["allreduce_seconds"])

        distributed.timings["allreduce_seconds"] = 0.0
        validation = (Xt, yt) if name.startswith("W1") else None  # W1: the accuracy
        history = net.fit(X[:rows], y[:rows], epochs=epochs, batch_size=batch,
                          learning_rate=rate,
                          comm=comm if use_comm else None, callbacks=[note],
                          validation_data=validation, **options)
        per_epoch = np.diff([0.0] + reduced).tolist()
        results[name] = {"seconds": history["seconds"], "allreduce_seconds": per_epoch,
                         "val_accuracy": history.history.get("val_accuracy"),
                         "loss": history["loss"]}

    w3 = ((784, 128, 64, 10), "relu", "softmax", "cross_entropy", 128, 0.1)
    w1 = ((784, 30, 10), "sigmoid", "sigmoid", "mse", 10, 3.0)
    big = (BIG, "relu", "softmax", "cross_entropy", 128, 0.01)
    if size == 1:
        timed("W3 fit, one process", *w3, args.epochs, False)
        timed("W3 gradient, comm of 1", *w3, args.epochs, True, sync="gradient")
        timed("W1 fit, one process", *w1, args.w1_epochs, False)
        timed("784-1024-1024-10 fit, one process", *big, 3, False, rows=BIG_ROWS)
    else:
        timed(f"W3 gradient, {size} ranks", *w3, args.epochs, True, sync="gradient")
        timed(f"784-1024-1024-10 gradient, {size} ranks", *big, 3, True, rows=BIG_ROWS,
              sync="gradient")
        for every in (args.average_every, None):
            timed(f"W1 average every {every or 'epoch'}, {size} ranks", *w1, args.w1_epochs,
                  True, sync="average", average_every=every)
    if rank == 0:
        with open(args.out, "w") as f:
            json.dump(results, f)


# ---------------------------------------------------------------- the parent
def _mpiexec():
    found = shutil.which("mpiexec")
    beside = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return found or (beside if os.access(beside, os.X_OK) else None)


def launch(ranks, args):
    mpiexec = _mpiexec()
    if mpiexec is None:
        sys.exit("needs mpiexec (pip install -e '.[mpi]')")
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "results.json")
        command = [mpiexec, "-n", str(ranks), sys.executable, "-m", "mpi4py",
                   os.path.abspath(__file__), "--child", "--out", out,
                   "--epochs", str(args.epochs), "--w1-epochs", str(args.w1_epochs),
                   "--average-every", str(args.average_every)]
        started = time.perf_counter()
        subprocess.run(command, check=True, timeout=1800)
        print(f"  ({ranks} rank(s): {time.perf_counter() - started:.0f} s with start-up and "
              f"compile)", file=sys.stderr)
        with open(out) as f:
            return json.load(f)


def median(values):
    return statistics.median(values) if values else float("nan")


def report(one, many, args):
    ranks = args.ranks
    print(f"\nOne epoch of {N_TRAIN:,} MNIST rows ({BIG_ROWS:,} for 784-1024-1024-10); median "
          f"of {args.epochs} (W3) / {args.w1_epochs} (W1) / 3 epochs on a shared, noisy "
          f"machine.\n")
    print("| run | median epoch s | samples/s | Allreduce s/epoch (share) | speed-up vs one "
          "process |")
    print("|---|---|---|---|---|")
    rows = [("W3 fit, one process", one), ("W3 gradient, comm of 1", one),
            (f"W3 gradient, {ranks} ranks", many),
            ("784-1024-1024-10 fit, one process", one),
            (f"784-1024-1024-10 gradient, {ranks} ranks", many), ("W1 fit, one process", one),
            (f"W1 average every {args.average_every}, {ranks} ranks", many),
            (f"W1 average every epoch, {ranks} ranks", many)]
    base = {"W3": median(one["W3 fit, one process"]["seconds"]),
            "W1": median(one["W1 fit, one process"]["seconds"]),
            "78": median(one["784-1024-1024-10 fit, one process"]["seconds"])}
    for name, source in rows:
        result = source[name]
        seconds = median(result["seconds"])
        reduce = median(result["allreduce_seconds"])
        n = BIG_ROWS if name.startswith("784") else N_TRAIN
        print(f"| {name} | {seconds:.3f} | {n / seconds:,.0f} | {reduce:.3f} "
              f"({reduce / seconds:.0%}) | {base[name[:2]] / seconds:.2f}× |")
    print("\nW1 test accuracy after each epoch (the same seed and initial weights):\n")
    for name, source in rows[5:]:
        accuracy = source[name]["val_accuracy"]
        print(f"- {name}: " + ", ".join(f"{a:.2%}" for a in accuracy))
    measured = {"W1": base["W1"] / N_TRAIN, "W3": base["W3"] / N_TRAIN,
                "784-1024-1024-10": base["78"] / BIG_ROWS}
    print("\nCompute per sample measured here (single-process fit): "
          + ", ".join(f"{k} {v * 1e6:.2f} µs" for k, v in measured.items()))
    model_table(measured)


# ---------------------------------------------------------------- the cost model
def allreduce_seconds(k, n_bytes, bandwidth, latency):
    """Ring allreduce: 2(K−1)/K · bytes / bandwidth + 2(K−1) · latency (0 for one rank)."""
    if k == 1:
        return 0.0
    return 2 * (k - 1) / k * n_bytes * 8 / bandwidth + 2 * (k - 1) * latency


def gradient_efficiency(k, net, per_sample, bandwidth, latency):
    """T₁ / (K·T_K) for one step of batch B: T_K = (B/K)·t + allreduce(4P) + overhead."""
    batch = BATCH[net]
    one = batch * per_sample[net]
    step = batch / k * per_sample[net] + allreduce_seconds(k, 4 * PARAMETERS[net], bandwidth,
                                                           latency)
    return one / (k * (step + (STEP_OVERHEAD if k > 1 else 0.0)))


def average_efficiency(k, net, per_sample, every, bandwidth, latency):
    """Compute over compute + Allreduce of [params | state] for ``every`` samples per rank
    (plain SGD: no state); statistical efficiency (how much more training averaging needs)
    is not in it."""
    compute = every * per_sample[net]
    return compute / (compute + allreduce_seconds(k, 4 * PARAMETERS[net], bandwidth, latency))


def model_table(per_sample=None):
    per_sample = per_sample or SECONDS_PER_SAMPLE
    for label, (bandwidth, latency) in NETWORKS.items():
        ks = RANKS[1:2] if "K ≤ 2" in label else RANKS[1:]
        print(f"\nModelled efficiency (speed-up / K), {label}:\n")
        print("| network, mode | " + " | ".join(f"K={k}" for k in ks) + " |")
        print("|---|" + "---|" * len(ks))
        for net in PARAMETERS:
            cells = []
            for k in ks:
                e = gradient_efficiency(k, net, per_sample, bandwidth, latency)
                rows = BATCH[net] / k
                cells.append(f"{e:.2f}" + ("*" if rows < 8 else ""))
            print(f"| {net} gradient, batch {BATCH[net]} | " + " | ".join(cells) + " |")
            for every in (1000, None):
                cells = []
                for k in ks:
                    samples = every or N_TRAIN // k  # epoch end: the rank's rows
                    e = average_efficiency(k, net, per_sample, samples, bandwidth, latency)
                    cells.append(f"{e:.2f}")
                name = f"every {every}" if every else "every epoch (50k rows)"
                print(f"| {net} average, {name} | " + " | ".join(cells) + " |")
    print("\n* fewer than 8 rows of the batch per rank: per-row work no longer amortises the "
          "step's fixed costs, and the model (linear in rows) is no longer believable.")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=4, help="W3 epochs per run")
    parser.add_argument("--w1-epochs", type=int, default=5, help="W1 epochs per run")
    parser.add_argument("--average-every", type=int, default=1000,
                        help="W1 average mode: samples per rank between averagings")
    parser.add_argument("--model", action="store_true", help="print the cost model only")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    if args.model:
        return model_table()
    one = launch(1, args)
    many = launch(args.ranks, args)
    report(one, many, args)


if __name__ == "__main__":
    main()
