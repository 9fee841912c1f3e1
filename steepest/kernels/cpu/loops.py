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

Each compiled loop takes a last argument ``probe``: an empty array to train, or a (P,) array
to compute, instead of an epoch, the gradient of the mean loss over all rows of X at
``params`` into it and return that loss (``network_gradient``).  That is ``fit``'s gradient
probe after each epoch (``network.network_gradient_for_epochs``): run by the loop its epochs
compiled, it needs no compiled function of its own, whose compile linked and optimised the
forward and backward passes once more (2.6 s of the CLI's cold 27 s, issue 14).
"""

import numpy as np

from ._fused import fused_gradient, fused_sgd_epoch
from ._jit import jit
from ._pairs import fused_sgd_epoch_pair
from .optimizers import sgd_step
from .paths import training_path

# the loops' ``probe`` argument for an epoch (module docstring); inside compiled code,
# ``np.empty(0, np.float32)``: a global array would be typed read-only, another signature
NO_PROBE = np.empty(0, np.float32)


@jit
def sgd_epoch_minibatch_fused(params, sizes, activations, loss, X, Y, order, batch_size,
                              learning_rate, probe):
    """``sgd_epoch_minibatch`` on the fused path, one thread (``probe``: module docstring)."""
    return fused_sgd_epoch(params, sizes, activations, loss, X, Y, order, batch_size,
                           learning_rate, None, probe)


@jit
def sgd_epoch_minibatch_tiled(params, sizes, activations, loss, X, Y, order, batch_size,
                              learning_rate, tiles, probe):
    """``sgd_epoch_minibatch`` on the tiled passes (``tiles``: a ``_tiled.Tiles``)."""
    return fused_sgd_epoch(params, sizes, activations, loss, X, Y, order, batch_size,
                           learning_rate, tiles, probe)


@jit
def sgd_epoch_minibatch_pair_fused(first, second, sizes, activations, loss, X, Y, order,
                                   batch_size, first_rate, second_rate):
    """Two networks' ``sgd_epoch_minibatch`` on the fused path, one thread, batch by batch in
    turn (``_pairs.py``: each gets its own bits); returns their two mean losses."""
    return fused_sgd_epoch_pair(first, second, sizes, activations, loss, X, Y, order,
                                batch_size, first_rate, second_rate)


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
                                         batch_size, learning_rate, NO_PROBE)
    return sgd_epoch_minibatch_tiled(params, sizes, activations, loss, X, Y, order,
                                     batch_size, learning_rate, plan.tiles, NO_PROBE)


@jit
def sgd_epoch_per_sample_fused(params, sizes, activations, loss, X, Y, order, learning_rate,
                               probe):
    """``sgd_epoch_per_sample`` (``probe``: module docstring)."""
    # np.int64(1), not 1: a literal would compile a second specialisation of the epoch
    return fused_sgd_epoch(params, sizes, activations, loss, X, Y, order, np.int64(1),
                           learning_rate, None, probe)


def sgd_epoch_per_sample(params, sizes, activations, loss, X, Y, order, learning_rate):
    """One epoch of per-sample SGD: an update after every sample, in ``order``.

    params (P,) updated in place; X (N, IN), Y (N, OUT), order (N,) int -> mean loss
    """
    return sgd_epoch_per_sample_fused(params, sizes, activations, loss, X, Y, order,
                                      learning_rate, NO_PROBE)


@jit
def gd_step_full_batch_fused(params, sizes, activations, loss, X, Y, learning_rate, probe):
    """``gd_step_full_batch`` on the fused path, one thread (``probe``: module docstring)."""
    grads = probe if probe.shape[0] else np.empty_like(params)
    value = fused_gradient(grads, params, sizes, activations, loss, X, Y, None)
    if not probe.shape[0]:
        sgd_step(params, grads, learning_rate)
    return value


@jit
def gd_step_full_batch_tiled(params, sizes, activations, loss, X, Y, learning_rate, tiles,
                             probe):
    """``gd_step_full_batch`` on the tiled passes (``tiles``: a ``_tiled.Tiles``)."""
    grads = probe if probe.shape[0] else np.empty_like(params)
    value = fused_gradient(grads, params, sizes, activations, loss, X, Y, tiles)
    if not probe.shape[0]:
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
        return gd_step_full_batch_fused(params, sizes, activations, loss, X, Y, learning_rate,
                                        NO_PROBE)
    return gd_step_full_batch_tiled(params, sizes, activations, loss, X, Y, learning_rate,
                                    plan.tiles, NO_PROBE)
