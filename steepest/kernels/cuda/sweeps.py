"""Sweeps on CUDA: K same-shaped networks trained over the same order of samples.

Where a single network's epoch would be one launch of one block (per-sample and small-batch
SGD of a network the launch plan keeps on one SM, ``loops.launch_plan``), the whole sweep is
ONE launch of K blocks, a network each (``loops.sweep_one_block_epoch``): the networks train
at once on K SMs.  Otherwise (larger batches, full batch, other optimisers) each network's
epoch is the single network's launcher on its row of ``params``, one network after another.
"""

import numpy as np

from ._device import check_code, check_codes
from .loops import (
    gd_step_full_batch,
    optimizer_epoch_minibatch,
    sgd_epoch_minibatch,
    sgd_epoch_path,
    sweep_one_block_epoch,
)


def sweep_sgd_epoch(params, sizes, activations, loss, X, Y, order, batch_size, learning_rates,
                    active, losses):
    """K same-shaped networks' epochs of mini-batch SGD over the same ``order``: network k
    (params[k], at learning_rates[k]) as ``sgd_epoch_minibatch``, or, for a batch of all N
    rows, as ``gd_step_full_batch`` (as ``fit`` takes it), its mean loss in losses[k] (a
    host array).  A network with active[k] == 0 is left as it is, and losses[k] is NaN.
    One launch for all K where one network's epoch would be one block (module docstring).

    params (K, P) device, updated in place; learning_rates (K,), active (K,) host
    """
    activations = check_codes("activations", activations, "activation")  # before any launch
    loss = check_code("loss", loss, "loss")
    n = int(order.shape[0])
    if batch_size < n and sgd_epoch_path(sizes, batch_size, n) == "one-block":
        losses[:] = sweep_one_block_epoch(params, sizes, activations, loss, X, Y, order,
                                          batch_size, learning_rates, active)[0]
        return
    for k in range(params.shape[0]):
        if not active[k]:
            losses[k] = np.nan
        elif batch_size >= order.shape[0]:
            losses[k] = gd_step_full_batch(params[k], sizes, activations, loss, X, Y,
                                           learning_rates[k])
        else:
            losses[k] = sgd_epoch_minibatch(params[k], sizes, activations, loss, X, Y, order,
                                            batch_size, learning_rates[k])


def sweep_optimizer_epoch(params, state, step, sizes, activations, loss, optimizer, hyper, X,
                          Y, order, batch_size, active, losses):
    """K same-shaped networks' epochs by one optimiser over the same ``order``: network k
    (params[k], state[k], step[k], hyper[k]) as ``optimizer_epoch_minibatch``, its mean loss
    in losses[k] (a host array).  A network with active[k] == 0 is left as it is, and
    losses[k] is NaN.

    params (K, P), state (K, slots, P), step (K, 1) device, updated in place; hyper
    (K, N_HYPER), active (K,) host
    """
    check_codes("activations", activations, "activation")  # before any network's launch
    check_code("loss", loss, "loss")
    check_code("optimizer", optimizer, "optimizer")
    for k in range(params.shape[0]):
        losses[k] = optimizer_epoch_minibatch(
            params[k], state[k], step[k], sizes, activations, loss, optimizer, hyper[k], X, Y,
            order, batch_size) if active[k] else np.nan
