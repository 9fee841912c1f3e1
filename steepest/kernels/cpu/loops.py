"""Whole training loops on the CPU, each one compiled call: no Python runs per sample or step.

Each returns the epoch's mean loss over samples (each batch's loss taken before its update;
exact from the output pre-activations for softmax + cross-entropy and sigmoid + binary
cross-entropy, see ``_fused.py``), so a NaN or inf anywhere in the epoch shows up in the one
number the caller checks.
"""

import numpy as np

from ._fused import fused_gradient, fused_sgd_epoch
from ._jit import jit
from .optimizers import sgd_step


@jit
def sgd_epoch_minibatch(params, sizes, activations, loss, X, Y, order, batch_size,
                        learning_rate):
    """One epoch of mini-batch SGD over the samples in ``order``; the last batch may be short.

    Runs on the fused path (``_fused.py``): each sample goes through the whole network while
    it is hot in cache, and zero inputs are skipped when the data is sparse.
    params (P,) updated in place; X (N, IN), Y (N, OUT), order (N,) int -> mean loss
    """
    return fused_sgd_epoch(params, sizes, activations, loss, X, Y, order, batch_size,
                           learning_rate)


@jit
def sgd_epoch_per_sample(params, sizes, activations, loss, X, Y, order, learning_rate):
    """One epoch of per-sample SGD: an update after every sample, in ``order``.

    params (P,) updated in place; X (N, IN), Y (N, OUT), order (N,) int -> mean loss
    """
    # np.int64(1), not 1: a literal would compile a second specialisation of the epoch
    return fused_sgd_epoch(params, sizes, activations, loss, X, Y, order, np.int64(1),
                           learning_rate)


@jit
def gd_step_full_batch(params, sizes, activations, loss, X, Y, learning_rate):
    """One step of full-batch gradient descent on all of X; returns the loss before the step.

    The gradient of the mean over N comes from ``_fused.fused_gradient``, which takes X in
    chunks, so memory stays bounded for any N.
    params (P,) updated in place; X (N, IN), Y (N, OUT)
    """
    grads = np.empty_like(params)
    value = fused_gradient(grads, params, sizes, activations, loss, X, Y)
    sgd_step(params, grads, learning_rate)
    return value
