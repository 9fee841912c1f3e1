"""Sweeps on the CPU: K same-shaped networks (a learning-rate or seed sweep) trained over the
same order of samples in ONE compiled call per epoch, the networks spread over the cores.

Each network's epoch is the single network's own compiled loop (``loops.py``,
``optimizer_loops.py``) on its row of ``params``, so a network trains in a sweep exactly as
it trains alone.  Numba's threads share the work out as they go: ``prange`` gives each
thread a share of passes, and a thread's first pass takes the next job not yet taken
(``_atomic.take_next``) until none is left, so its other passes find none.  Stopped
networks (a sweep's upper rates, once they diverged) then cost no thread its share of the
work, and a thread on a slower core trains fewer networks instead of holding up the
others.  (Not ``prange(numba.get_num_threads())``: that call makes the kernel one numba
cannot cache.)  One parallel region per epoch: its start-up (10-150 µs) is nothing against
K epochs.

Plain SGD's jobs are pairs of networks where there are more networks than threads: a pair
trains batch by batch in turn on one thread (``_pairs.py``), in less time than its two
networks one after the other.  ``sgd_jobs`` pairs neighbours while the jobs still
outnumber the threads, so no thread is left without work for a pair's sake.
"""

import numba
import numpy as np
from numba import prange

from ._atomic import take_next
from ._jit import jit_parallel
from .loops import (
    gd_step_full_batch_fused,
    sgd_epoch_minibatch_fused,
    sgd_epoch_minibatch_pair_fused,
)
from .optimizer_loops import optimizer_epoch_minibatch_fused

# Pairs only for small networks, where a step's chain of dependent operations is short
# against its waits: a pair of 16 networks' jobs on MNIST as SparseRows, batch 10, took
# 0.98 of the time of one network per job for W1 (784-30-10, 23,860 parameters), 0.98
# for 784-64-10 (50,890) and 1.07 for 784-128-10 (101,770); W2 (12,730), per-sample, 0.95.
PAIR_MAX_PARAMS = 32_768
ALONE = -1  # a job's second network when it has none


def sweep_sgd_epoch(params, sizes, activations, loss, X, Y, order, batch_size, learning_rates,
                    active, losses):
    """K same-shaped networks' epochs of mini-batch SGD over the same ``order``: network k
    (params[k], at learning_rates[k]) as ``sgd_epoch_minibatch``, or, for a batch of all N
    rows, as ``gd_step_full_batch`` (as ``fit`` takes it), its mean loss in losses[k].  A
    network with active[k] == 0 is left as it is, and losses[k] is NaN.

    params (K, P) updated in place; learning_rates (K,); active (K,) int; losses (K,)
    """
    full_batch = batch_size >= order.shape[0]
    jobs = sgd_jobs(active, numba.get_num_threads(),
                    not full_batch and params.shape[1] <= PAIR_MAX_PARAMS)
    losses[np.asarray(active) == 0] = np.nan
    sweep_sgd_jobs(params, sizes, activations, loss, X, Y, order, batch_size, learning_rates,
                   jobs, losses)


def sgd_jobs(active, n_threads, pair):
    """The active networks as jobs (J, 2) int64 of (network, second network or ALONE), in
    order: with ``pair``, neighbours in pairs while more jobs than threads are left, the
    pairs first (the longest jobs start first); the rest alone."""
    live = np.flatnonzero(np.asarray(active))
    n_pairs = min(len(live) // 2, max(len(live) - n_threads, 0)) if pair else 0
    jobs = np.full((len(live) - n_pairs, 2), ALONE, np.int64)
    jobs[:n_pairs] = live[:2 * n_pairs].reshape(n_pairs, 2)
    jobs[n_pairs:, 0] = live[2 * n_pairs:]
    return jobs


@jit_parallel
def sweep_sgd_jobs(params, sizes, activations, loss, X, Y, order, batch_size, learning_rates,
                   jobs, losses):
    """``sweep_sgd_epoch``'s compiled call: each job (``sgd_jobs``) on one thread, a pair by
    ``sgd_epoch_minibatch_pair_fused``, a network alone by the single network's loop."""
    full_batch = batch_size >= order.shape[0]
    no_probe = np.empty(0, np.float32)  # train (``loops.py``)
    taken = np.zeros(1, np.int64)
    for _ in prange(jobs.shape[0]):
        j = take_next(taken)
        while j < jobs.shape[0]:
            k, second = jobs[j, 0], jobs[j, 1]
            if second != ALONE:
                losses[k], losses[second] = sgd_epoch_minibatch_pair_fused(
                    params[k], params[second], sizes, activations, loss, X, Y, order,
                    batch_size, learning_rates[k], learning_rates[second])
            elif full_batch:
                losses[k] = gd_step_full_batch_fused(params[k], sizes, activations, loss, X, Y,
                                                     learning_rates[k], no_probe)
            else:
                losses[k] = sgd_epoch_minibatch_fused(params[k], sizes, activations, loss, X,
                                                      Y, order, batch_size, learning_rates[k],
                                                      no_probe)
            j = take_next(taken)


@jit_parallel
def sweep_optimizer_epoch(params, state, step, sizes, activations, loss, optimizer, hyper, X,
                          Y, order, batch_size, active, losses):
    """K same-shaped networks' epochs by one optimiser over the same ``order``: network k
    (params[k], state[k], step[k], hyper[k]) as ``optimizer_epoch_minibatch``, its mean loss
    in losses[k].  A network with active[k] == 0 is left as it is, and losses[k] is NaN.

    params (K, P), state (K, slots, P), step (K, 1) updated in place; hyper (K, N_HYPER);
    active (K,) int; losses (K,)
    """
    no_probe = np.empty(0, np.float32)  # train (``loops.py``)
    taken = np.zeros(1, np.int64)
    for _ in prange(params.shape[0]):
        k = take_next(taken)
        while k < params.shape[0]:
            if active[k]:
                losses[k] = optimizer_epoch_minibatch_fused(params[k], state[k], step[k],
                                                            sizes, activations, loss,
                                                            optimizer, hyper[k], X, Y, order,
                                                            batch_size, no_probe)
            else:
                losses[k] = np.nan
            k = take_next(taken)
