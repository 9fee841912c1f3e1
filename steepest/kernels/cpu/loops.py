"""Whole training loops on the CPU, each one compiled call: no Python runs per sample or step.

Each returns the epoch's mean loss over samples (each batch's loss taken before its update;
exact from the output pre-activations for softmax + cross-entropy and sigmoid + binary
cross-entropy, see ``_fused.py``), so a NaN or inf anywhere in the epoch shows up in the one
number the caller checks.

The mini-batch and full-batch loops are compiled twice: on the fused path, one thread
(``*_fused``), and on the tiled passes across Numba's threads (``*_tiled``, ``_tiled.py``),
which give the same bits.  The public names ask ``paths.training_path`` which to run, from
the widths, the batch and the threads; the fused twins also serve the sweeps, which run one
network per thread.
"""

import numpy as np

from ._fused import fused_gradient, fused_sgd_epoch
from ._jit import jit
from .optimizers import sgd_step
from .paths import training_path


@jit
def sgd_epoch_minibatch_fused(params, sizes, activations, loss, X, Y, order, batch_size,
                              learning_rate):
    """``sgd_epoch_minibatch`` on the fused path, one thread."""
    return fused_sgd_epoch(params, sizes, activations, loss, X, Y, order, batch_size,
                           learning_rate, None)


@jit
def sgd_epoch_minibatch_tiled(params, sizes, activations, loss, X, Y, order, batch_size,
                              learning_rate, tiles):
    """``sgd_epoch_minibatch`` on the tiled passes (``tiles``: a ``_tiled.Tiles``)."""
    return fused_sgd_epoch(params, sizes, activations, loss, X, Y, order, batch_size,
                           learning_rate, tiles)


def sgd_epoch_minibatch(params, sizes, activations, loss, X, Y, order, batch_size,
                        learning_rate):
    """One epoch of mini-batch SGD over the samples in ``order``; the last batch may be short.

    Each sample goes through the whole network while it is hot in cache, and zero inputs
    are skipped when the data is sparse; large batches and wide first layers take the
    tiled passes across threads (``paths.training_path``).
    params (P,) updated in place; X (N, IN), Y (N, OUT), order (N,) int -> mean loss
    """
    plan = training_path(sizes, batch_size, order.shape[0])
    if plan.tiles is None:
        return sgd_epoch_minibatch_fused(params, sizes, activations, loss, X, Y, order,
                                         batch_size, learning_rate)
    return sgd_epoch_minibatch_tiled(params, sizes, activations, loss, X, Y, order,
                                     batch_size, learning_rate, plan.tiles)


@jit
def sgd_epoch_per_sample(params, sizes, activations, loss, X, Y, order, learning_rate):
    """One epoch of per-sample SGD: an update after every sample, in ``order``.

    params (P,) updated in place; X (N, IN), Y (N, OUT), order (N,) int -> mean loss
    """
    # np.int64(1), not 1: a literal would compile a second specialisation of the epoch
    return fused_sgd_epoch(params, sizes, activations, loss, X, Y, order, np.int64(1),
                           learning_rate, None)


@jit
def gd_step_full_batch_fused(params, sizes, activations, loss, X, Y, learning_rate):
    """``gd_step_full_batch`` on the fused path, one thread."""
    grads = np.empty_like(params)
    value = fused_gradient(grads, params, sizes, activations, loss, X, Y, None)
    sgd_step(params, grads, learning_rate)
    return value


@jit
def gd_step_full_batch_tiled(params, sizes, activations, loss, X, Y, learning_rate, tiles):
    """``gd_step_full_batch`` on the tiled passes (``tiles``: a ``_tiled.Tiles``)."""
    grads = np.empty_like(params)
    value = fused_gradient(grads, params, sizes, activations, loss, X, Y, tiles)
    sgd_step(params, grads, learning_rate)
    return value


def gd_step_full_batch(params, sizes, activations, loss, X, Y, learning_rate):
    """One step of full-batch gradient descent on all of X; returns the loss before the step.

    The gradient of the mean over N comes from ``_fused.fused_gradient``, which takes X in
    chunks, so memory stays bounded for any N; the tiled passes where the chunks' work
    pays for threads (``paths.training_path``).
    params (P,) updated in place; X (N, IN), Y (N, OUT)
    """
    plan = training_path(sizes, None, len(Y))
    if plan.tiles is None:
        return gd_step_full_batch_fused(params, sizes, activations, loss, X, Y, learning_rate)
    return gd_step_full_batch_tiled(params, sizes, activations, loss, X, Y, learning_rate,
                                    plan.tiles)
