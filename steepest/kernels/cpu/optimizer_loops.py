"""The training loop for every optimiser on the CPU: one compiled call per epoch.

Where ``loops.py`` hard-wires plain SGD, this loop takes the optimiser as a code with its
hyper-parameter vector and state (see ``steepest.models.optimizers`` for how to build them),
so Momentum, Adagrad, RMSProp and Adam train as fast as SGD does.
"""

import numpy as np

from ._jit import jit
from .network import backward_into, forward_into, gather_rows, new_workspace
from .optimizers import optimizer_step

CHUNK = 1024  # rows per forward/backward pass: bounds the workspace of a full batch


@jit
def optimizer_epoch_minibatch(params, state, step, sizes, activations, loss, optimizer, hyper,
                              X, Y, order, batch_size):
    """One epoch of mini-batch training by any optimiser, over the samples in ``order``.

    batch_size 1 is per-sample training, batch_size ≥ N one full-batch step; the last batch
    may be short.  A batch larger than ``CHUNK`` rows has its mean gradient accumulated chunk
    by chunk (each chunk weighted by its share of the batch).  Returns the epoch's mean loss
    over samples, each batch's loss taken before its update.
    params (P,), state (slots, P), step (1,) int64 updated in place; hyper (5,) float32;
    X (N, IN), Y (N, OUT), order (N,) int -> mean loss
    """
    n = order.shape[0]
    batch = min(batch_size, n)
    capacity = min(batch, CHUNK)
    acts, delta_a, delta_b = new_workspace(sizes, capacity)
    grads = np.empty_like(params)
    chunk_grads = np.empty_like(params)
    y_chunk = np.empty((capacity, Y.shape[1]), np.float32)
    x_chunk = acts[:capacity * sizes[0]].reshape((capacity, sizes[0]))
    total = np.float32(0.0)
    for start in range(0, n, batch):
        n_batch = min(batch, n - start)
        if n_batch <= capacity:  # the usual case: the whole batch in one pass
            gather_rows(x_chunk, X, order, start, n_batch)
            gather_rows(y_chunk, Y, order, start, n_batch)
            forward_into(acts, params, sizes, activations, n_batch, capacity)
            value = backward_into(grads, acts, delta_a, delta_b, params, sizes, activations,
                                  loss, y_chunk[:n_batch], n_batch, capacity)
            total += value * np.float32(n_batch)
        else:
            grads[:] = 0
            for chunk_start in range(start, start + n_batch, capacity):
                n_rows = min(capacity, start + n_batch - chunk_start)
                gather_rows(x_chunk, X, order, chunk_start, n_rows)
                gather_rows(y_chunk, Y, order, chunk_start, n_rows)
                forward_into(acts, params, sizes, activations, n_rows, capacity)
                value = backward_into(chunk_grads, acts, delta_a, delta_b, params, sizes,
                                      activations, loss, y_chunk[:n_rows], n_rows, capacity)
                share = np.float32(n_rows) / np.float32(n_batch)
                total += value * np.float32(n_rows)
                for k in range(grads.shape[0]):
                    grads[k] += chunk_grads[k] * share
        optimizer_step(params, state, step, grads, optimizer, hyper)
    return total / np.float32(n)
