"""Whole training loops on the CPU, each one compiled call: no Python runs per sample or step.

Each returns the epoch's mean loss over samples (each batch's loss taken before its update),
so a NaN or inf anywhere in the epoch shows up in the one number the caller checks.
"""

import numpy as np

from ._jit import jit
from .network import backward_into, forward_into, gather_rows, new_workspace
from .optimizers import sgd_step


@jit
def sgd_epoch_minibatch(params, sizes, activations, loss, X, Y, order, batch_size,
                        learning_rate):
    """One epoch of mini-batch SGD over the samples in ``order``; the last batch may be short.

    params (P,) updated in place; X (N, IN), Y (N, OUT), order (N,) int -> mean loss
    """
    n = order.shape[0]
    capacity = min(batch_size, n)
    acts, delta_a, delta_b = new_workspace(sizes, capacity)
    grads = np.empty_like(params)
    y_batch = np.empty((capacity, Y.shape[1]), np.float32)
    x_batch = acts[:capacity * sizes[0]].reshape((capacity, sizes[0]))
    total = np.float32(0.0)
    for start in range(0, n, capacity):
        n_rows = min(capacity, n - start)
        gather_rows(x_batch, X, order, start, n_rows)
        gather_rows(y_batch, Y, order, start, n_rows)
        forward_into(acts, params, sizes, activations, n_rows, capacity)
        value = backward_into(grads, acts, delta_a, delta_b, params, sizes, activations, loss,
                              y_batch[:n_rows], n_rows, capacity)
        total += value * np.float32(n_rows)
        sgd_step(params, grads, learning_rate)
    return total / np.float32(n)


@jit
def sgd_epoch_per_sample(params, sizes, activations, loss, X, Y, order, learning_rate):
    """One epoch of per-sample SGD: an update after every sample, in ``order``.

    params (P,) updated in place; X (N, IN), Y (N, OUT), order (N,) int -> mean loss
    """
    return sgd_epoch_minibatch(params, sizes, activations, loss, X, Y, order, 1, learning_rate)


@jit
def gd_step_full_batch(params, sizes, activations, loss, X, Y, learning_rate):
    """One step of full-batch gradient descent on all of X; returns the loss before the step.

    The gradient of the mean over N is accumulated chunk by chunk (each chunk's mean
    gradient weighted by its share of N), so memory stays bounded for any N.
    params (P,) updated in place; X (N, IN), Y (N, OUT)
    """
    n = X.shape[0]
    capacity = min(n, 1024)
    acts, delta_a, delta_b = new_workspace(sizes, capacity)
    grads = np.zeros_like(params)
    chunk_grads = np.empty_like(params)
    y_chunk = np.empty((capacity, Y.shape[1]), np.float32)
    x_chunk = acts[:capacity * sizes[0]].reshape((capacity, sizes[0]))
    order = np.arange(n)
    total = np.float32(0.0)
    for start in range(0, n, capacity):
        n_rows = min(capacity, n - start)
        gather_rows(x_chunk, X, order, start, n_rows)
        gather_rows(y_chunk, Y, order, start, n_rows)
        forward_into(acts, params, sizes, activations, n_rows, capacity)
        value = backward_into(chunk_grads, acts, delta_a, delta_b, params, sizes, activations,
                              loss, y_chunk[:n_rows], n_rows, capacity)
        share = np.float32(n_rows) / np.float32(n)
        total += value * share
        for k in range(grads.shape[0]):
            grads[k] += chunk_grads[k] * share
    sgd_step(params, grads, learning_rate)
    return total
