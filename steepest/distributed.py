"""Data-parallel training over MPI (mpi4py): ``Network.fit(X, y, comm=comm)``.

Run a script (or ``python -m steepest train --distributed``) as K processes with
``mpiexec -n K``, pass ``comm=MPI.COMM_WORLD`` to ``fit``, and the K ranks train one network
together.  This is the one module that imports mpi4py, and only when a communicator is
used, so ``import steepest`` and everything else work without it (``pip install
'steepest[mpi]'`` brings mpi4py and MPICH).  It is plain Python around the kernels: on the
CPU gradient mode steps through the packed-layout steps of ``kernels/cpu/steps.py``; average
mode runs the single-process epoch kernels between its averagings (CUDA: see below).

``sync="gradient"``: synchronous data parallelism (Horovod, torch.distributed)
---------------------------------------------------------------------------
Every rank passes the same X, y and arguments; ``fit`` starts every rank from rank 0's
weights, optimiser state and shuffling generator (broadcast once), so the ranks shuffle
alike even when their networks were seeded differently.  Each global batch of ``batch_size``
rows (the rows ``order[start:start + batch_size]`` of the epoch's shuffled order, as one
process takes them) is cut into K contiguous near-equal parts (``shard_rows``); rank r
computes the gradient and loss over part r, straight from X through the order, each row
weighted by 1/B of the whole batch, and ONE ``Allreduce`` of one flat float32 buffer (the
gradient in the kernels' packed layout, then the part's loss sum) gives every rank the
batch's mean gradient and loss.  The parameters and optimiser state stay packed for the
whole epoch (packed once at its start, unpacked at its end).  Every rank then applies the same
update with the same optimiser state, so the ranks stay identical and the weights equal a
single process's ``fit`` to float32 rounding (the sums are taken in another order).
scikit-learn's penalty ``alpha`` and ``weight_decay`` are applied after the reduction, as one
process applies them.  A batch needs at least one row per rank (``batch_size`` ≥ K; the last,
short batch of an epoch may leave a rank without rows, which then adds zeros).  Rank 0
alone shows the progress bar and warnings and writes ``checkpoint``; every rank limits
Numba to its share of its node's cores (``thread_share``) for the call.

``sync="average"``: local SGD (periodic model averaging)
--------------------------------------------------------
For per-sample and small-batch SGD, where a reduction per step would cost more than the
step.  Each rank trains its own copy with the single-process compiled epoch kernel on its
own rows of the epoch, and every ``average_every`` samples (counted per rank: each rank
has trained that many of its rows since the last averaging; None: only at the end of each
epoch) ONE ``Allreduce`` of one flat float32 buffer [parameters | optimiser state | loss
sum | step count] replaces every rank's parameters and optimiser state by the ranks' mean.
``average_every`` must be a multiple of ``batch_size``, so averaging falls between batches;
full-batch training (``batch_size=None``) has no use for it (one step per epoch: use
gradient mode).  Every epoch ends with an averaging, so the ranks end each epoch (and
``fit``) identical, and rank 0's checkpoint holds the network of all of them.  The mean
step count is rounded (exact while it is below 2²⁴, float32's integers); ranks with rows
left over after the others' run out keep training up to their own count, and every rank
joins every averaging, ⌈(most rows of any rank) / average_every⌉ per epoch.

Whose rows (the sharded-data rule, one keyword): with ``sharded=False`` (the default) every
rank passes the same full X and y (checked, as in gradient mode), and each epoch's shuffled
order of all N rows, drawn alike on every rank, is cut into K contiguous blocks
(``shard_rows``): rank r trains on block r, read from X through the order (no copies), so
the ranks together visit each row once per epoch, as one process does.  With
``sharded=True`` X and y are this rank's own rows (loaded by this rank alone, e.g.
``shard(steepest.load_mnist()[:2], comm)``), used as given and shuffled by a generator of
their own, seeded by the network's shared generator and the rank; the ranks' row counts may
differ, and only the width of X and of y must agree.  Either way a run is reproducible for
a given seed and K.  Metrics measured on this rank's rows (training accuracy, and with
``sharded=True`` the validation metrics) are pooled over the ranks, weighted by rows, so the
history, schedules and callbacks see the same numbers on every rank.

Failing together
----------------
An error on one rank must never leave the others waiting in a collective.  ``fit`` checks
its arguments on every rank and the ranks agree (``agree``: one ``allgather``) before any
work: an error on any rank, or arguments that differ between ranks, raise on every rank.  During
training, the decisions that end it (divergence, a callback's stop) are agreed as well, once
per epoch; any other exception on one rank prints its traceback and calls
``comm.Abort(1)``, which ends every rank of the job with a non-zero status.

``timings`` adds up the seconds this process spent in those Allreduce calls (benchmarks).
Checkpoints hold no trace of the world size: one written by a K-rank run resumes on any
number of ranks, or on one process.

CUDA (``device="cuda"``)
-----------------------
Both modes run on GPUs too: ``fit`` first makes GPU ``local rank % GPUs`` current on each
rank (``Replicas.place``; the local rank is the rank's number among those on its node, so
``rank % GPUs`` on one node; ``steepest.kernels._cuda.selected_device()`` tells which), before
any CUDA work of the call.  A process that already worked on another GPU (a ``predict`` or a
``fit`` without ``comm`` first) cannot switch, and every rank raises.  Average mode runs the
single-process CUDA epoch kernels between averagings; gradient mode steps one batch at a
time (``device_epoch_runner``: the rank's rows copied to the device, ``network_gradient``,
the update on the device).  Every reduction goes through host buffers (device → host,
``Allreduce``, host → device): a CUDA-aware MPI is not detected or used.  The tests cover
this logic on numba-cuda's simulator (one device); real multi-GPU placement, device memory
and speed are untested without GPUs.

Not here: the kernels (``steepest.kernels``).
"""

import os
import sys
import time
import traceback
import warnings
from contextlib import contextmanager

import numpy as np

from .models.threads import numba_threads

SYNC_MODES = ("gradient", "average")

# Process-wide totals of the training Allreduce calls (Replicas._allreduce), for benchmarks:
# read them before and after a fit, or set them to 0.
timings = {"allreduce_seconds": 0.0, "allreduces": 0}

__all__ = ["SYNC_MODES", "Replicas", "abort_on_failure", "agree", "check_average_every",
           "check_comm", "check_sync", "limit_threads", "place", "rank_and_size", "shard",
           "shard_rows", "thread_limit", "thread_share", "timings", "world"]


def _mpi():
    """mpi4py's MPI module, imported on first use."""
    try:
        from mpi4py import MPI
    except ImportError:
        raise ImportError("distributed training needs mpi4py and an MPI library: "
                          "pip install 'steepest[mpi]'") from None
    return MPI


def world():
    """``MPI.COMM_WORLD``: every process that ``mpiexec`` started."""
    return _mpi().COMM_WORLD


def rank_and_size(comm):
    """(rank, size) of this process in ``comm``; (0, 1) for ``comm=None`` (one process)."""
    if comm is None:
        return 0, 1
    return comm.Get_rank(), comm.Get_size()


def check_sync(sync):
    """``sync`` if it is a known mode, else a ValueError listing them."""
    if not isinstance(sync, str) or sync not in SYNC_MODES:
        raise ValueError(f"sync must be one of {', '.join(map(repr, SYNC_MODES))}; "
                         f"got {sync!r}")
    return sync


def check_average_every(average_every, sync, batch_size):
    """``average_every`` checked against the mode and the batch size it serves: None or a
    whole multiple ≥ 1 of ``batch_size``, with ``sync="average"`` only."""
    if average_every is None:
        return None
    if isinstance(average_every, bool) or not isinstance(average_every, (int, np.integer)):
        raise TypeError(f"average_every must be a whole number of samples or None; "
                        f"got {average_every!r}")
    if sync != "average":
        raise ValueError(f"average_every applies to sync='average' only; got "
                         f"average_every={average_every} with sync={sync!r}")
    if average_every < 1:
        raise ValueError(f"average_every must be ≥ 1 (samples per rank between averagings), "
                         f"or None (at each epoch's end); got {average_every}")
    if batch_size is not None and average_every % batch_size:
        raise ValueError(f"average_every must be a multiple of batch_size={batch_size} (the "
                         f"ranks average between batches); got {average_every}")
    return int(average_every)


def check_comm(comm):
    """``comm`` if it is an mpi4py intra-communicator, else a TypeError naming it.  Anything
    that is not an mpi4py object is refused without importing mpi4py (which starts MPI)."""
    is_mpi4py = type(comm).__module__.split(".")[0] == "mpi4py"
    MPI = _mpi() if is_mpi4py else None
    if MPI is None or not isinstance(comm, MPI.Intracomm) or comm == MPI.COMM_NULL:
        raise TypeError(f"comm must be an mpi4py communicator such as MPI.COMM_WORLD, or None; "
                        f"got {comm!r}")
    return comm


def shard_rows(n, rank, size):
    """The rows [start, stop) of n that rank ``rank`` of ``size`` takes.

    Contiguous, near-equal blocks in rank order: the first n % size ranks take
    ⌈n/size⌉ rows, the others ⌊n/size⌋ (none when n < size), and together they cover
    0..n-1 exactly once.  ``shard_rows(10, 0, 3)`` is (0, 4), then (4, 7) and (7, 10).
    """
    for value, name in ((n, "n"), (rank, "rank"), (size, "size")):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{name} must be an integer; got {value!r}")
    if n < 0:
        raise ValueError(f"n must be ≥ 0; got {n}")
    if size < 1:
        raise ValueError(f"size must be ≥ 1; got {size}")
    if not 0 <= rank < size:
        raise ValueError(f"rank must be in 0..{size - 1} (size={size}); got {rank}")
    base, extra = divmod(int(n), int(size))
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def shard(data, comm):
    """This rank's block of the rows of ``data`` (``shard_rows`` over ``comm``): a slice, so
    a view of a NumPy array.  A tuple or list of arrays (such as ``load_mnist()``'s
    ``(X, y, X_test, y_test)``) gives a tuple of each one's block.  ``comm=None`` gives
    every row.  For ``fit(..., sync="average", sharded=True)``:
    ``X, y = shard(steepest.load_mnist()[:2], comm)``."""
    if isinstance(data, (tuple, list)):
        return tuple(shard(part, comm) for part in data)
    n = data.shape[0] if hasattr(data, "shape") else len(data)
    start, stop = shard_rows(n, *rank_and_size(comm))
    return data[start:stop]


def thread_share(comm):
    """Numba threads for this rank: the cores of its node shared among the ranks on it.

    The node's ranks are found with ``Split_type(COMM_TYPE_SHARED)``; its cores are the
    union of the CPUs those ranks may run on (``os.sched_getaffinity``), so ranks bound
    to cores of their own and ranks free to run anywhere both get their share.  Collective
    over ``comm``.  At least 1, at most Numba's thread count.
    """
    import numba

    MPI = _mpi()
    if hasattr(os, "sched_getaffinity"):
        cpus = sorted(os.sched_getaffinity(0))
    else:
        cpus = list(range(os.cpu_count() or 1))
    node = comm.Split_type(MPI.COMM_TYPE_SHARED)
    try:
        cores = len(set().union(*map(set, node.allgather(cpus))))
        share = cores // node.Get_size()
    finally:
        node.Free()
    return max(1, min(share, numba.config.NUMBA_NUM_THREADS))


def limit_threads(comm):
    """Set Numba's threads in this process to ``thread_share(comm)`` (collective) and return
    that number: for a whole program run as one rank of ``comm``, where ``fit(comm=...)``
    limits them only for the call."""
    import numba

    with abort_on_failure(comm):
        threads = thread_share(comm)
        numba.set_num_threads(threads)
    return threads


@contextmanager
def thread_limit(comm):
    """Numba's threads set to ``thread_share(comm)`` (collective) inside the block, restored
    after it: for one call run on every rank of ``comm`` (``fit``, ``sweep``)."""
    with numba_threads(thread_share(comm)):
        yield


def place(comm, backend):
    """Collective, before any device work: this process's device by ``backend.place`` (GPU
    ``local rank % GPUs``, the local rank being this rank's number among the ranks on its
    node; nothing on the CPU), agreed (``agree``): a failure on any rank raises on every
    rank.  Returns the GPU's index (None on the CPU)."""
    node = comm.Split_type(_mpi().COMM_TYPE_SHARED)
    try:
        local_rank = node.Get_rank()
    finally:
        node.Free()
    return agree(comm, lambda: backend.place(local_rank))


def _report(error):
    """What an error tells the other ranks: (the type they raise, its text)."""
    kind = "ValueError" if isinstance(error, ValueError) else \
        "TypeError" if isinstance(error, TypeError) else "RuntimeError"
    return kind, f"{type(error).__name__}: {error}"


def agree(comm, function, signature=None):
    """Collective: ``function()`` on every rank of ``comm``; returns its result when it
    succeeded everywhere.  When it raised on any rank, every rank raises: its own exception,
    or, on a rank where it succeeded, the first failing rank's error (a ValueError or
    TypeError for those, else a RuntimeError) with that rank's number and message.  With
    ``signature``, a function of the result giving a dict of what must be equal on every
    rank keyed by the argument that sets it, values that differ raise a ValueError naming
    the key on every rank.  One ``allgather``; an interrupt (KeyboardInterrupt) aborts.
    """
    result = error = None
    with abort_on_failure(comm):
        try:
            result = function()
            report = ("ok", None if signature is None else signature(result))
        except Exception as exc:
            error, report = exc, ("error", *_report(exc))
        reports = comm.allgather(report)
    failed = [(rank, r) for rank, r in enumerate(reports) if r[0] == "error"]
    if error is not None:
        raise error
    if failed:
        rank, (_, kind, text) = failed[0]
        raise {"ValueError": ValueError, "TypeError": TypeError}.get(kind, RuntimeError)(
            f"rank {rank} of {len(reports)} failed: {text}")
    if signature is not None:
        first = reports[0][1]
        differ = [f"{key}: rank 0 has {first[key]!r}, rank {rank} has {r[1][key]!r}"
                  for key in first for rank, r in enumerate(reports) if r[1][key] != first[key]]
        if differ:
            raise ValueError(f"the processes of comm were given different arguments "
                             f"({'; '.join(differ)}); every rank needs the same X, y, network "
                             f"and arguments")
    return result


@contextmanager
def abort_on_failure(comm):
    """An exception that leaves this block prints its traceback and aborts every rank of
    ``comm`` (``comm.Abort(1)``): the other ranks may be waiting for this one in a
    collective, and would wait for ever.  For code where an exception is this rank's
    alone; one process (size 1) just raises."""
    try:
        yield
    except BaseException as exc:
        _abort(comm, exc)
        raise  # Abort does not return


def _abort(comm, exc):
    """``exc``'s traceback on stderr, then ``comm.Abort(1)``; nothing for one process."""
    if comm.Get_size() == 1:
        return
    # one write: the launcher forwards what reached it before the abort, and once the first
    # line without the traceback reached a test (one run in many, not reproduced since)
    sys.stderr.write(f"steepest: rank {comm.Get_rank()} of {comm.Get_size()} failed; aborting "
                     f"every rank (comm.Abort) so that none waits for it:\n"
                     + "".join(traceback.format_exception(exc)))
    sys.stderr.flush()
    comm.Abort(1)


class Replicas:
    """The ranks of ``comm`` training one network in ``sync`` mode: what ``fit`` calls.

    Every method that talks to the other ranks is collective: every rank calls it, in the
    same order.
    """

    def __init__(self, comm, sync="gradient", average_every=None, sharded=False):
        self.comm = check_comm(comm)
        self.sync = check_sync(sync)
        self.average_every = average_every  # checked by fit (check_average_every)
        self.sharded = bool(sharded)
        self.rank, self.size = rank_and_size(comm)
        self.lead = self.rank == 0  # rank 0 prints and writes files
        self._agreed_failure = False  # the ranks agreed to raise: no Abort needed
        self.rows_per_rank = None  # average mode: every rank's rows of an epoch (share_rows)
        self.gpu = None  # the GPU this rank trains on (place), None on the CPU

    def check_batch(self, batch_size, given, n_rows):
        """A ValueError unless the ranks can share this training: in gradient mode a batch of
        ``batch_size`` rows (``given``: what fit was passed) needs a row for every rank; in
        average mode mini-batches (not full batch), and with ``sharded=False`` at least one
        of the ``n_rows`` rows per rank."""
        if self.sync == "average":
            if given is None:
                raise ValueError("batch_size=None (full batch) takes one step per epoch, "
                                 "which sync='average' cannot share out; use "
                                 "sync='gradient' (the same step, split across the ranks)")
            if not self.sharded and n_rows < self.size:
                raise ValueError(f"X has {n_rows} row(s), fewer than the {self.size} "
                                 f"processes of comm: sync='average' gives each its own rows")
            return
        if batch_size < self.size:
            per_sample = " (full batch)" if given is None else \
                " (per-sample SGD)" if given == 1 else ""
            raise ValueError(
                f"batch_size={given}{per_sample} gives batches of {batch_size} row(s), fewer "
                f"than the {self.size} processes of comm: sync={self.sync!r} splits each batch "
                f"across the processes, one row at least each; use batch_size ≥ {self.size}")

    def place(self, backend):
        """Collective, before any device work of the fit: this process's device by
        ``backend.place`` (GPU ``local rank % GPUs``, the local rank being this rank's
        number among the ranks on its node: ``rank % GPUs`` on one node; nothing on the
        CPU), agreed (``agree``): a failure on any rank raises on every rank.  Sets and
        returns ``gpu`` (None on the CPU)."""
        self.gpu = place(self.comm, backend)
        return self.gpu

    def agree_on(self, plan, signature):
        """``agree(comm, plan, signature)``: before any work, every rank raises if ``plan()``
        failed on any rank or the ranks' signatures differ."""
        return agree(self.comm, plan, signature)

    def share_rows(self, n):
        """Average mode: every rank's number of rows per epoch (collective), from ``n``, the
        rows of this rank's X; sets ``rows_per_rank`` and ``averagings_per_epoch``."""
        if self.sharded:
            self.rows_per_rank = [int(r) for r in self.comm.allgather(int(n))]
        else:
            self.rows_per_rank = [stop - start for start, stop in
                                  (shard_rows(n, r, self.size) for r in range(self.size))]
        most = max(self.rows_per_rank)
        every = self.average_every
        self.averagings_per_epoch = 1 if every is None else max(1, -(-most // every))

    def epoch_order(self, rng, n, shuffle):
        """Average mode: this rank's rows of the epoch, in training order, as indices into its
        X of ``n`` rows (module docstring).  Every rank draws from ``rng`` alike, so the
        generators (which checkpoints keep) stay one."""
        if self.sharded:
            if not shuffle:
                return np.arange(n)
            key = int(rng.integers(2**63))
            return np.random.default_rng([key, self.rank]).permutation(n)
        order = rng.permutation(n) if shuffle else np.arange(n)
        start, stop = shard_rows(n, self.rank, self.size)
        return order[start:stop]

    def pooled(self, values, rows):
        """The mean over ranks of each of ``values`` (a dict of floats measured on ``rows``
        of this rank's data), weighted by rows (collective)."""
        gathered = self.comm.allgather((dict(values), int(rows)))
        weight = sum(r for _, r in gathered)
        return {key: sum(v[key] * r for v, r in gathered) / weight for key in values}

    def broadcast(self, array):
        """Rank 0's values of ``array`` (a contiguous NumPy array) on every rank, in place."""
        self.comm.Bcast(array, root=0)

    def broadcast_object(self, value):
        """Rank 0's ``value`` (any picklable object) on every rank."""
        return self.comm.bcast(value, root=0)

    def any(self, flag):
        """Whether ``flag`` is true on any rank."""
        return bool(self.comm.allreduce(bool(flag), op=_mpi().LOR))

    def first_problem(self, problem):
        """The first rank's non-None ``problem`` (a message, or None), on every rank: when it
        is not None every rank raises its error together (no Abort)."""
        problems = [p for p in self.comm.allgather(problem) if p is not None]
        if problems:
            self._agreed_failure = True
            return problems[0]
        return None

    @contextmanager
    def abort_on_failure(self):
        """An exception that leaves this block on this rank alone (not agreed with
        ``first_problem``) aborts every rank (``abort_on_failure``)."""
        try:
            yield
        except BaseException as exc:
            if self._agreed_failure:
                raise
            _abort(self.comm, exc)
            raise  # Abort does not return

    @contextmanager
    def training(self):
        """The whole of training: this rank's share of the node's cores for Numba (see
        ``thread_share``; restored afterwards), warnings shown by rank 0 only, and any
        exception of one rank alone aborting every rank (``abort_on_failure``)."""
        with self.abort_on_failure(), thread_limit(self.comm), warnings.catch_warnings():
            if not self.lead:
                warnings.simplefilter("ignore")
            yield

    def epoch_runner(self, backend, network, X, Y, n, batch_size, opt, rate):
        """A function (params, state, step, order) -> the epoch's mean loss, as
        ``Network._epoch_runner`` returns, that trains in gradient mode (module docstring),
        with ``backend``'s kernels (``steepest.models.backend``): the packed steps below on
        the host's memory (the CPU), else ``device_epoch_runner``.  X and Y are the host's.

        θ and the optimiser state are packed once per epoch (``kernels.pack_rows``, the
        fused layout) and unpacked at the end.  Per global batch: ``packed_gradient`` over
        this rank's part of it, read from X through ``order`` (no row copies; each δ carries
        1/B of the whole batch, so the parts' sum is the batch's mean gradient), ONE
        ``Allreduce`` of the float32 buffer [packed gradient (Q,) | loss sum], then
        ``packed_update`` (α's penalty, and ``optimizer_step``, or ``sgd_step`` for plain
        SGD, which counts no steps, as one process's SGD loops) on every rank.  ``network``
        is (sizes, activation codes, loss code); X (N, IN) dense or ``SparseRows``, Y (N, OUT)
        float32 on the host.  The loss reported is a single process's: the mean over samples
        of each batch's loss before its update (α's ½α‖W‖² once per batch).
        """
        if not backend.host_memory:
            return self.device_epoch_runner(backend, network, X, Y, n, batch_size, opt, rate)
        from .kernels import codes

        kernels = backend.kernels
        MPI = _mpi()
        sizes, activations, loss_code = network
        batch = n if batch_size is None else min(batch_size, n)
        hyper = opt.hyper()
        hyper[codes.HYPER_LEARNING_RATE] = rate
        # as in one process, plain SGD takes sgd_step, which counts no steps (the SGD loops)
        plain_sgd = opt.plain_sgd
        rank, size, comm = self.rank, self.size, self.comm

        def run(params, state, step, order):
            theta_rows, w_total = kernels.pack_rows(params.reshape(1, -1), sizes, activations)
            theta = theta_rows[0]
            packed_state = kernels.pack_rows(state, sizes, activations)[0]
            q = theta.shape[0]
            buffer = np.empty(q + 1, np.float32)  # the one buffer every step reduces
            grad = buffer[:q]
            sparse = kernels.rows_are_sparse(X, order)
            total = np.float32(0)
            for start in range(0, n, batch):
                rows = min(batch, n - start)
                first, last = shard_rows(rows, rank, size)  # none for a short last batch
                buffer[q] = kernels.packed_gradient(
                    grad, theta, sizes, activations, loss_code, X, Y, order, start + first,
                    start + last, np.float32(1) / np.float32(rows), sparse)
                self._allreduce(comm, MPI, buffer)
                total += buffer[q]
                total += kernels.packed_update(theta, packed_state, step, grad, opt.code,
                                               hyper, w_total, rows, plain_sgd)
            kernels.unpack_rows(params.reshape(1, -1), theta_rows, sizes, activations)
            kernels.unpack_rows(state, packed_state, sizes, activations)
            return total / np.float32(n)

        return run

    def device_epoch_runner(self, backend, network, X, Y, n, batch_size, opt, rate):
        """``epoch_runner`` for kernels on a device (CUDA), one step at a time: per global
        batch, this rank's part of it (host rows of X and Y through ``order``, copied to the
        device) → ``network_gradient`` (the part's mean) on the device, scaled by the part's
        share of the batch, copied to the host float32 buffer [gradient (P,) | loss sum], ONE
        ``Allreduce`` (through host memory: no CUDA-aware MPI is used), copied back, then
        α's penalty (on the host, from a host copy of the weights) and ``optimizer_step``,
        or ``sgd_step`` for plain SGD, on the device, as one process steps.
        """
        from .kernels import codes
        from .kernels.rows import take_rows

        kernels, MPI = backend.kernels, _mpi()
        sizes, activations, loss_code = network
        batch = n if batch_size is None else min(batch_size, n)
        hyper = opt.hyper()
        hyper[codes.HYPER_LEARNING_RATE] = rate
        hyper_dev = backend.to_device(hyper)
        rate32 = np.float32(rate)
        alpha = np.float32(opt.alpha)
        plain_sgd = opt.plain_sgd
        weights = _weight_slices(sizes)
        rank, size, comm = self.rank, self.size, self.comm

        def run(params, state, step, order):
            q = int(params.shape[0])
            buffer = np.empty(q + 1, np.float32)  # the one buffer every step reduces
            grad = buffer[:q]
            grad_dev = backend.to_device(grad)
            theta = np.empty(q, np.float32) if alpha else None
            total = np.float32(0)
            for start in range(0, n, batch):
                rows = min(batch, n - start)
                first, last = shard_rows(rows, rank, size)  # none for a short last batch
                buffer[:] = 0
                if last > first:
                    part = np.asarray(order[start + first:start + last], np.int64)
                    loss = kernels.network_gradient(
                        grad_dev, params, sizes, activations, loss_code,
                        backend.to_device(take_rows(X, part)), backend.to_device(Y[part]))
                    backend.to_host(grad, grad_dev)
                    grad *= np.float32(last - first) / np.float32(rows)
                    buffer[q] = np.float32(loss) * np.float32(last - first)
                self._allreduce(comm, MPI, buffer)
                total += buffer[q]
                if alpha:  # scikit-learn's penalty, as l2_penalty: (α/B)·W, ½α‖W‖²
                    backend.to_host(theta, params)
                    scale, squares = alpha / np.float32(rows), np.float32(0)
                    for first_w, stop_w in weights:
                        w = theta[first_w:stop_w]
                        grad[first_w:stop_w] += scale * w
                        squares += np.float32(np.dot(w, w))
                    total += np.float32(0.5) * alpha * squares
                backend.to_device_into(grad_dev, grad)
                if plain_sgd:
                    kernels.sgd_step(params, grad_dev, rate32)
                else:
                    kernels.optimizer_step(params, state, step, grad_dev, opt.code, hyper_dev)
            return total / np.float32(n)

        return run

    def averaging_runner(self, local_run, n_params, backend):
        """A function (params, state, step, order) -> the epoch's mean loss over every
        rank's rows, that trains in average mode (module docstring): ``local_run`` (the
        single-process epoch kernel, on ``order``, this rank's rows of the epoch) over
        ``average_every`` rows at a time, each stretch followed by ONE ``Allreduce`` of the
        float32 buffer [params (P,) | state (slots·P,) | the stretch's loss sum | steps]
        and the mean of the ranks' parameters, state and step count (rounded) on every rank.
        Every rank averages ``averagings`` times per epoch, the same number, whatever its
        rows (a rank whose rows ran out only averages).  params, state and step are
        ``backend``'s arrays, copied through the host buffer (``to_host``, then
        ``to_device_into``; no copies on the CPU): a CUDA-aware MPI is never used.
        """
        MPI = _mpi()
        comm, size = self.comm, self.size
        every, averagings = self.average_every, self.averagings_per_epoch
        inv_size = np.float32(1) / np.float32(size)
        total_rows = np.float32(sum(self.rows_per_rank))

        def run(params, state, step, order):
            slots = int(np.prod(state.shape))
            buffer = np.empty(n_params + slots + 2, np.float32)
            host_params = buffer[:n_params]
            host_state = buffer[n_params:n_params + slots].reshape(state.shape)
            host_step = np.zeros(1, np.int64)
            total = np.float32(0)
            for k in range(averagings):
                part = order if every is None else order[k * every:(k + 1) * every]
                loss_sum = np.float32(0)
                if len(part):
                    loss_sum = np.float32(local_run(params, state, step, part)) * \
                        np.float32(len(part))
                backend.to_host(host_params, params)
                if slots:
                    backend.to_host(host_state, state)
                backend.to_host(host_step, step)
                buffer[-2] = loss_sum
                buffer[-1] = host_step[0]
                self._allreduce(comm, MPI, buffer)
                total += buffer[-2]
                buffer *= inv_size
                host_step[0] = int(np.rint(buffer[-1]))
                backend.to_device_into(params, host_params)
                if slots:
                    backend.to_device_into(state, host_state)
                backend.to_device_into(step, host_step)
            return total / total_rows

        return run

    def _allreduce(self, comm, MPI, buffer):
        """``Allreduce(IN_PLACE, buffer, SUM)``, its time added to ``timings``."""
        tic = time.perf_counter()
        comm.Allreduce(MPI.IN_PLACE, buffer, op=MPI.SUM)
        timings["allreduce_seconds"] += time.perf_counter() - tic
        timings["allreduces"] += 1


def _weight_slices(sizes):
    """[start, stop) of each layer's weights in the parameter vector (each layer's W, then
    its b)."""
    slices, offset = [], 0
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        slices.append((offset, offset + int(n_out) * int(n_in)))
        offset += int(n_out) * int(n_in) + int(n_out)
    return slices
