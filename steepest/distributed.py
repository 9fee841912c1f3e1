"""Data-parallel training over MPI (mpi4py): ``Network.fit(X, y, comm=comm)``.

Run a script (or ``python -m steepest train --distributed``) as K processes with
``mpiexec -n K``, pass ``comm=MPI.COMM_WORLD`` to ``fit``, and the K ranks train one network
together.  This is the one module that imports mpi4py, and only when a communicator is
used, so ``import steepest`` and everything else work without it (``pip install
'steepest[mpi]'`` brings mpi4py and MPICH).  It is plain Python: the gradients come from the
CPU kernels a single process uses (``network_gradient``, ``optimizer_step``).

``sync="gradient"``: synchronous data parallelism (Horovod, torch.distributed)
---------------------------------------------------------------------------
Every rank passes the same X, y and arguments; ``fit`` starts every rank from rank 0's
weights, optimiser state and shuffling generator (broadcast once), so the ranks shuffle
alike even when their networks were seeded differently.  Each global batch of ``batch_size``
rows (the rows ``order[start:start + batch_size]`` of the epoch's shuffled order, as one
process takes them) is cut into K contiguous near-equal parts (``shard_rows``); rank r
computes the gradient and loss over part r, weighted by its share of the batch, and ONE
``Allreduce`` of one flat float32 buffer (the P gradient entries, then the part's loss sum)
gives every rank the batch's mean gradient and loss.  Every rank then applies the same
update with the same optimiser state, so the ranks stay identical and the weights equal a
single process's ``fit`` to float32 rounding (the sums are taken in another order).
scikit-learn's penalty ``alpha`` and ``weight_decay`` are applied after the reduction, as one
process applies them.  A batch needs at least one row per rank (``batch_size`` ≥ K; the last,
short batch of an epoch may leave a rank without rows, which then adds zeros).  Rank 0
alone shows the progress bar and warnings and writes ``checkpoint``; every rank limits
Numba to its share of its node's cores (``thread_share``) for the call.

Failing together
----------------
An error on one rank must never leave the others waiting in a collective.  ``fit`` checks
its arguments on every rank and the ranks agree (``agree``: one ``allgather``) before any
work: an error on any rank, or arguments that differ between ranks, raise on every rank.  During
training, the decisions that end it (divergence, a callback's stop) are agreed as well, once
per epoch; any other exception on one rank prints its traceback and calls
``comm.Abort(1)``, which ends every rank of the job with a non-zero status.

Not here: the kernels (``steepest.kernels``), CUDA (distributed training runs on the CPU).
"""

import os
import sys
import traceback
import warnings
from contextlib import contextmanager

import numpy as np

SYNC_MODES = ("gradient",)

__all__ = ["SYNC_MODES", "Replicas", "abort_on_failure", "agree", "check_comm", "check_sync",
           "limit_threads", "rank_and_size", "shard", "shard_rows", "thread_share", "world"]


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


def shard(array, comm):
    """This rank's block of the rows of ``array`` (``shard_rows`` over ``comm``): a slice,
    so a view of a NumPy array.  ``comm=None`` gives every row."""
    n = array.shape[0] if hasattr(array, "shape") else len(array)
    start, stop = shard_rows(n, *rank_and_size(comm))
    return array[start:stop]


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
    sys.stderr.write(f"steepest: rank {comm.Get_rank()} of {comm.Get_size()} failed; aborting "
                     f"every rank (comm.Abort) so that none waits for it:\n")
    traceback.print_exception(exc, file=sys.stderr)
    sys.stderr.flush()
    comm.Abort(1)


class Replicas:
    """The ranks of ``comm`` training one network in ``sync`` mode: what ``fit`` calls.

    Every method that talks to the other ranks is collective: every rank calls it, in the
    same order.
    """

    def __init__(self, comm, sync="gradient"):
        self.comm = check_comm(comm)
        self.sync = check_sync(sync)
        self.rank, self.size = rank_and_size(comm)
        self.lead = self.rank == 0  # rank 0 prints and writes files
        self._agreed_failure = False  # the ranks agreed to raise: no Abort needed

    def check_batch(self, batch_size, given):
        """A ValueError unless a batch of ``batch_size`` rows (``given``: what fit was
        passed) has a row for every rank."""
        if batch_size < self.size:
            per_sample = " (full batch)" if given is None else \
                " (per-sample SGD)" if given == 1 else ""
            raise ValueError(
                f"batch_size={given}{per_sample} gives batches of {batch_size} row(s), fewer "
                f"than the {self.size} processes of comm: sync={self.sync!r} splits each batch "
                f"across the processes, one row at least each; use batch_size ≥ {self.size}")

    def agree_on(self, plan, signature):
        """``agree(comm, plan, signature)``: before any work, every rank raises if ``plan()``
        failed on any rank or the ranks' signatures differ."""
        return agree(self.comm, plan, signature)

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
        import numba

        with self.abort_on_failure():
            previous = numba.get_num_threads()
            numba.set_num_threads(thread_share(self.comm))
            try:
                with warnings.catch_warnings():
                    if not self.lead:
                        warnings.simplefilter("ignore")
                    yield
            finally:
                numba.set_num_threads(previous)

    def epoch_runner(self, kernels, network, X, Y, n, batch_size, opt, rate):
        """A function (params, state, step, order) -> the epoch's mean loss, as
        ``Network._epoch_runner`` returns, that trains in gradient mode (module docstring).

        Per global batch: ``network_gradient`` over this rank's part, ONE ``Allreduce`` of
        the float32 buffer [Σ-weighted gradient (P,) | loss sum], then α's penalty and
        ``optimizer_step`` (which applies weight decay and counts the step; ``sgd_step`` for
        plain SGD, as one process's SGD loops, which count none) on every rank.
        ``network`` is (sizes, activation codes, loss code); X (N, IN) dense or
        ``SparseRows``, Y (N, OUT) float32 on the host.  The loss reported is a single
        process's: the mean over samples of each batch's loss before its update (α's
        ½α‖W‖² once per batch).
        """
        from .kernels import codes
        from .kernels.rows import take_rows

        MPI = _mpi()
        sizes, activations, loss_code = network
        batch = n if batch_size is None else min(batch_size, n)
        hyper = opt.hyper()
        hyper[codes.HYPER_LEARNING_RATE] = rate
        # as in one process, plain SGD takes sgd_step, which counts no steps (the SGD loops)
        plain_sgd = opt.code == codes.SGD and opt.weight_decay == 0 and opt.alpha == 0
        learning_rate = np.float32(rate)
        alpha = np.float32(opt.alpha)
        weights = _weight_slices(sizes) if opt.alpha else []
        n_params = sum(int(o) * int(i) + int(o) for i, o in zip(sizes[:-1], sizes[1:]))
        buffer = np.zeros(n_params + 1, np.float32)  # the one buffer every step reduces
        grads = buffer[:n_params]
        rank, size, comm = self.rank, self.size, self.comm

        def run(params, state, step, order):
            total = np.float32(0)
            for start in range(0, n, batch):
                rows = order[start:start + batch]
                first, last = shard_rows(len(rows), rank, size)
                if last > first:
                    mine = rows[first:last]
                    # the mean over this part, weighted by its share: the sum is the
                    # batch's mean gradient
                    loss = kernels.network_gradient(grads, params, sizes, activations,
                                                    loss_code, take_rows(X, mine), Y[mine])
                    buffer[:n_params] *= np.float32((last - first) / len(rows))
                    buffer[n_params] = np.float32(loss) * np.float32(last - first)
                else:  # the last, short batch of an epoch has no rows for this rank
                    buffer[:] = 0
                comm.Allreduce(MPI.IN_PLACE, buffer, op=MPI.SUM)
                total += buffer[n_params]
                if weights:
                    total += _l2_penalty(grads, params, weights, alpha, len(rows))
                if plain_sgd:
                    kernels.sgd_step(params, grads, learning_rate)
                else:
                    kernels.optimizer_step(params, state, step, grads, opt.code, hyper)
            return total / np.float32(n)

        return run


def _weight_slices(sizes):
    """slice of each layer's W in the flat parameter vector W⁰, b⁰, W¹, b¹, …"""
    slices, offset = [], 0
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        slices.append(slice(offset, offset + int(n_out) * int(n_in)))
        offset += int(n_out) * int(n_in) + int(n_out)
    return slices


def _l2_penalty(grads, params, weights, alpha, batch_rows):
    """scikit-learn's α for one batch, as the epoch loops apply it (``l2_penalty`` in
    ``kernels/cpu/optimizers.py``): (α/B)·W added to the weights' gradient (not the
    biases'); returns ½α‖W‖² (float32)."""
    scale = alpha / np.float32(batch_rows)
    squares = np.float32(0)
    for part in weights:
        W = params[part]
        grads[part] += scale * W
        squares += np.dot(W, W)
    return np.float32(0.5) * alpha * squares
