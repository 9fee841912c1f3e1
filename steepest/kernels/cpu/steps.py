"""Training steps on the fused path's packed layout, for loops that run in Python between
steps: the distributed gradient mode (``steepest.distributed``), which sums each batch's
gradient across processes between computing it and applying it.

The epoch loops of ``loops.py`` and ``optimizer_loops.py`` pack the parameters once per call
(``_layout.py``); a loop that steps from Python does the same with these, so no step repacks
or copies anything:

* ``pack_rows`` once per epoch: the flat parameters (and each row of optimiser state) in the
  padded layout, θ = [weights | biases];
* per step, ``packed_gradient``: the gradient over rows ``order[start:stop]`` read straight
  from X (no row copies), each row's δ carrying the caller's 1/B, so that parts of one batch
  computed apart add up to the batch's mean gradient; then the caller's reduction of that
  packed gradient (its zero padding stays zero); then ``packed_update``: α's penalty and the
  optimiser's step on θ and the packed state, as ``optimizer_epoch_minibatch`` applies them;
* ``unpack_rows`` at the end.

One process stepping every batch through these gets the weights of ``optimizer_epoch_minibatch``
bit for bit (the same chunks, sums and updates; ``tests/test_distributed.py``).

CPU only, with no reference or CUDA twin (on a GPU, gradient mode steps through the kernel
set's own ``network_gradient`` and ``optimizer_step``: ``Replicas.device_epoch_runner``), so
these are not in the kernel sets' common ``__all__``.
"""

import numpy as np

from ..codes import HYPER_L2, HYPER_LEARNING_RATE
from ._fused import GRADIENT_CHUNK, accumulate_gradient, batch_scratch
from ._inputs import inputs_are_sparse
from ._jit import jit
from ._layout import fused_layout, pack_params, unpack_params
from ._maths import ZERO, check_activations, check_loss
from .optimizers import hyper_slot, l2_penalty, optimizer_step, sgd_step


@jit
def pack_rows(flat, sizes, activations):
    """Each row of ``flat`` (a parameter vector, or one row of optimiser state) in the
    packed layout, and the number of weights that layout puts first (α's share).
    flat (R, P) -> (packed (R, Q), w_total)"""
    check_activations(activations)
    net = fused_layout(sizes, activations)
    packed = np.empty((flat.shape[0], net.w_total + net.b_total), np.float32)
    for r in range(flat.shape[0]):
        pack_params(packed[r, :net.w_total], packed[r, net.w_total:], flat[r], net)
    return packed, net.w_total


@jit
def unpack_rows(flat, packed, sizes, activations):
    """The inverse of ``pack_rows``, into ``flat``.   packed (R, Q) -> flat (R, P)"""
    net = fused_layout(sizes, activations)
    for r in range(flat.shape[0]):
        unpack_params(flat[r], packed[r, :net.w_total], packed[r, net.w_total:], net)


@jit
def rows_are_sparse(X, order):
    """Whether the first layer should walk only the nonzero inputs of the rows in ``order``
    (``_inputs.inputs_are_sparse``: measured on its first rows), decided once per epoch
    as the epoch loops decide it."""
    return inputs_are_sparse(X, order)


@jit
def packed_gradient(grad, theta, sizes, activations, loss, X, Y, order, start, stop, inv_b,
                    sparse):
    """Σ over the rows order[start:stop] of ∇ (each δ carrying ``inv_b``, the batch's 1/B)
    at the packed θ, into ``grad`` (overwritten; zeros for no rows); returns the sum of
    those rows' losses (exact from z where the loss allows, as the epoch loops take it).
    theta (Q,), X (N, IN), Y (N, OUT), order (N,) int -> grad (Q,)
    """
    check_activations(activations)
    check_loss(loss)
    grad[:] = 0
    n_rows = stop - start
    if n_rows <= 0:
        return ZERO
    net = fused_layout(sizes, activations)
    scratch = batch_scratch(net, X, sparse, max(1, min(n_rows, GRADIENT_CHUNK)), None)
    return accumulate_gradient(ZERO, grad, theta, scratch, X, Y, order, start, n_rows, net,
                               loss, np.float32(inv_b), None)


@jit
def packed_update(theta, state, step, grad, optimizer, hyper, w_total, batch_rows, plain_sgd):
    """One batch's update of the packed θ and state from its mean gradient: α's penalty
    (``l2_penalty`` on the weights, θ[:w_total]) added to ``grad``, then plain SGD's
    ``sgd_step`` (which counts no steps, as the SGD loops) or ``optimizer_step``.  Returns
    ½α‖W‖² at θ before the update (0 without α), which the epoch loss adds.
    theta (Q,), state (slots, Q), step (1,) int64 updated in place; grad (Q,)
    """
    alpha = hyper_slot(hyper, HYPER_L2)
    penalty = ZERO
    if alpha != ZERO:
        penalty = l2_penalty(grad, theta, w_total, alpha, batch_rows)
    if plain_sgd:
        sgd_step(theta, grad, hyper[HYPER_LEARNING_RATE])
    else:
        optimizer_step(theta, state, step, grad, optimizer, hyper)
    return penalty
