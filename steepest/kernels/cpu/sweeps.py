"""Sweeps on the CPU: K same-shaped networks (a learning-rate or seed sweep) trained over the
same order of samples in ONE compiled call per epoch, the networks spread over the cores.

Each network's epoch is the single network's own compiled loop (``loops.py``,
``optimizer_loops.py``) on its row of ``params``, so a network trains in a sweep exactly as
it trains alone.  Numba's threads share the networks out as they go: ``prange`` over the K
networks gives each thread a share of passes, and a thread's first pass takes the next
network not yet taken (``_atomic.take_next``) until none is left, so its other passes find
none.  Stopped networks (a sweep's upper rates, once they diverged) then cost no thread its
share of the work, and a thread on a slower core trains fewer networks instead of holding up
the others.  (Not ``prange(numba.get_num_threads())``: that call
makes the kernel one numba cannot cache.)  One parallel region per epoch: its start-up
(10–150 µs) is nothing against K epochs.
"""

import numpy as np
from numba import prange

from ._atomic import take_next
from ._jit import jit_parallel
from .loops import gd_step_full_batch_fused, sgd_epoch_minibatch_fused
from .optimizer_loops import optimizer_epoch_minibatch_fused


@jit_parallel
def sweep_sgd_epoch(params, sizes, activations, loss, X, Y, order, batch_size, learning_rates,
                    active, losses):
    """K same-shaped networks' epochs of mini-batch SGD over the same ``order``: network k
    (params[k], at learning_rates[k]) as ``sgd_epoch_minibatch``, or, for a batch of all N
    rows, as ``gd_step_full_batch`` (as ``fit`` takes it), its mean loss in losses[k].  A
    network with active[k] == 0 is left as it is, and losses[k] is NaN.

    params (K, P) updated in place; learning_rates (K,); active (K,) int; losses (K,)
    """
    full_batch = batch_size >= order.shape[0]
    no_probe = np.empty(0, np.float32)  # train (``loops.py``)
    taken = np.zeros(1, np.int64)
    for _ in prange(params.shape[0]):
        k = take_next(taken)
        while k < params.shape[0]:
            if not active[k]:
                losses[k] = np.nan
            elif full_batch:
                losses[k] = gd_step_full_batch_fused(params[k], sizes, activations, loss, X, Y,
                                                     learning_rates[k], no_probe)
            else:
                losses[k] = sgd_epoch_minibatch_fused(params[k], sizes, activations, loss, X,
                                                      Y, order, batch_size, learning_rates[k],
                                                      no_probe)
            k = take_next(taken)


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
