"""Whole-network forward pass and backpropagation on the CPU.

A network travels as (params, sizes, activations): one flat float32 parameter vector
W⁰, b⁰, W¹, b¹, … (W of shape (out, in)), the layer widths, and one activation code per
layer.  Both kernels run on the fused path of ``_fused.py`` (each row through the whole
network while it is in cache, zero inputs skipped); the layer-by-layer statement of the
same maths, δᴸ = ∂L/∂aᴸ ⊙ f′(zᴸ), δˡ = (Wˡ⁺¹)ᵀδˡ⁺¹ ⊙ f′(zˡ), ∂L/∂Wˡ = δˡ(aˡ⁻¹)ᵀ, is
``reference.network_gradient``, which the tests hold these to.
"""

from itertools import groupby
from operator import itemgetter

import numpy as np

from ..codes import BINARY_CROSS_ENTROPY, CROSS_ENTROPY, MSE, SIGMOID, SOFTMAX
from ..rows import n_rows
from . import loops, optimizer_loops
from ._fused import PARALLEL_MIN_ROWS, PARALLEL_ROW_BLOCK, fused_gradient, fused_inference
from ._jit import jit
from ._maths import LOSS_CODES
from .losses import loss_value
from .paths import training_path
from .spans import in_threads, spans

# a thread's share of inference: at least this many runs of rows, so that PARALLEL_MIN_ROWS
# rows are the fewest shared between two threads
MIN_SHARE_RUNS = PARALLEL_MIN_ROWS // (2 * PARALLEL_ROW_BLOCK)


def network_forward(out, params, sizes, activations, X):
    """Output activations of the whole network for every row of X.

    params (P,), sizes (L+1,), activations (L,), X (N, sizes[0]) -> out (N, sizes[-1])
    """
    # The inference kernel network_evaluate takes (one row at a time through the whole
    # network, zero inputs skipped, _fused.py), asked for a loss it does not take (MSE: from
    # the outputs, by the caller) and so given no target rows: one kernel compiled for
    # predict and evaluate, not one each (issue 14)
    network_forward_blocks([out], params, sizes, activations, [X])


def network_forward_blocks(outs, params, sizes, activations, blocks):
    """``network_forward`` of each array of rows in ``blocks`` into the array of ``outs`` at
    its place, in one call: the rows of all the blocks are shared among the threads at once
    (fit's training accuracy after each epoch reads eight runs of rows).

    outs [(N_b, sizes[-1])], blocks [(N_b, sizes[0])]
    """
    no_targets = np.empty((0, sizes[-1]), np.float32)
    _inference(outs, params, sizes, activations, MSE, blocks, [no_targets] * len(blocks))


def network_evaluate(out, params, sizes, activations, loss, X, Y):
    """``network_forward`` into ``out``, and the mean over the rows of X of each sample's
    exact loss against Y (softmax + cross-entropy and sigmoid + binary cross-entropy from
    the output pre-activations z, see ``reference.network_evaluate``).

    Exact losses are taken per row as it leaves the fused forward pass (no second pass over
    X, ``_fused.fused_inference``); the others (MSE, MAE, mismatched pairs) need only the
    outputs: ``loss_value`` on them afterwards.  The choice is made here, in Python, so
    that a call compiles only the loss it takes (issue 14).
    params (P,), X (N, sizes[0]), Y (N, sizes[-1]) -> out (N, sizes[-1]), returns the loss
    """
    if loss not in LOSS_CODES:  # before any work
        raise ValueError("loss: unknown loss code")
    sums = _inference([out], params, sizes, activations, loss, [X], [Y])[0]
    # the rows' losses, their blocks' sums added in block order (np.cumsum adds one float32
    # after another), so the same whatever the threads
    n = n_rows(X)
    value = np.cumsum(sums)[-1] / np.float32(n) if n else np.float32(np.nan)
    if _loss_from_logits(loss, activations[-1]):
        return value
    return loss_value(out, Y, loss)


def _inference(outs, params, sizes, activations, loss, blocks, targets):
    """``_fused.fused_inference`` over every array of rows in ``blocks`` into its out, its
    targets in ``targets``: their runs of PARALLEL_ROW_BLOCK rows shared among Python threads
    (``spans.py``) from PARALLEL_MIN_ROWS rows on, a thread taking a contiguous share.  For
    each array, the sums of its runs' losses (``fused_inference``).

    Python threads, not a parallel loop: numba compiles a parallel loop as functions of its
    own (the inference kernel's compile was 9.9-10.1 s with one, 4.6-4.9 s without, in the
    CLI's cold run, issue 14), and the compiled kernel releases the GIL.
    """
    runs = [-(-n_rows(X) // PARALLEL_ROW_BLOCK) for X in blocks]
    sums = [np.zeros(max(1, count), np.float32) for count in runs]
    if sum(runs) < 2 * MIN_SHARE_RUNS:  # one thread: no sharing to arrange
        for b, count in enumerate(runs):
            fused_inference(outs[b], params, sizes, activations, loss, blocks[b], targets[b],
                            sums[b], 0, count)
        return sums
    jobs = [(b, run) for b, count in enumerate(runs) for run in range(count)]

    def share(start, stop):
        for b, jobs_of_b in groupby(jobs[start:stop], key=itemgetter(0)):
            runs_of_b = [run for _, run in jobs_of_b]  # consecutive
            fused_inference(outs[b], params, sizes, activations, loss, blocks[b], targets[b],
                            sums[b], runs_of_b[0], runs_of_b[-1] + 1)

    in_threads(share, spans(len(jobs), MIN_SHARE_RUNS))
    return sums


def _loss_from_logits(loss, code):
    """``_maths.loss_from_logits``, in Python (``tests/test_exact_losses.py`` holds the two
    to the same pairs)."""
    return (loss == CROSS_ENTROPY and code == SOFTMAX) or (
        loss == BINARY_CROSS_ENTROPY and code == SIGMOID)


def network_gradient_for_sweeps(grads, params, sizes, activations, loss, X, Y, batch_size,
                                n_samples, plain_sgd):
    """``network_gradient_for_epochs`` for one network of a sweep: computed by the loop that
    trains it in the sweep kernels (``sweeps.py``: the fused loops, one network per thread,
    a batch of one as a mini-batch), which compiled it, so that a sweep compiles no
    gradient function of its own (``network_gradient`` took 2.2-2.3 s of a cold sweep's
    start, issue 14).  Same bits as ``network_gradient`` (both are
    ``_fused.fused_gradient``).
    """
    batch = n_samples if batch_size is None else batch_size
    if not plain_sgd:  # sweep_optimizer_epoch
        return optimizer_loops.optimizer_epoch_minibatch_fused(
            *_optimizer_probe_arguments(params, sizes, activations, loss, X, Y, batch), grads)
    shape = (params, sizes, activations, loss, X, Y)
    rate = np.float32(0)  # unread: not an epoch
    if batch >= n_samples:  # sweep_sgd_epoch's full batch
        return loops.gd_step_full_batch_fused(*shape, rate, grads)
    return loops.sgd_epoch_minibatch_fused(*shape, np.empty(0, np.int64), batch, rate, grads)


def _optimizer_probe_arguments(params, sizes, activations, loss, X, Y, batch):
    """``optimizer_epoch_minibatch``'s arguments but the last for a probe: an empty state
    and order, which it does not read."""
    return (params, np.empty((0, 0), np.float32), np.zeros(1, np.int64), sizes, activations,
            loss, np.int64(0), np.zeros(0, np.float32), X, Y, np.empty(0, np.int64), batch)


@jit
def network_gradient(grads, params, sizes, activations, loss, X, Y):
    """Backpropagation: the gradient of the batch-mean loss over all of X, and that loss
    (exact, as in ``network_evaluate``).

    Runs on the fused path (``_fused.fused_gradient``): each row through the whole network,
    zero inputs skipped, X taken in chunks so the scratch stays bounded for any N.
    params (P,), X (B, sizes[0]), Y (B, sizes[-1]) -> grads (P,), returns the loss
    """
    return fused_gradient(grads, params, sizes, activations, loss, X, Y, None)


def network_gradient_for_epochs(grads, params, sizes, activations, loss, X, Y, batch_size,
                                n_samples, plain_sgd):
    """``network_gradient``, computed by the compiled loop that runs epochs of ``n_samples``
    rows in batches of ``batch_size`` (None: full batch) by plain SGD (``plain_sgd``) or
    another optimiser, on their path (``paths.training_path``): fit's gradient probe.

    The loops take it as a mode (their ``probe`` argument, ``loops.py``), so the probe
    compiles nothing of its own.  As a compiled function of its own it linked and optimised
    the forward and backward passes once more: 2.6 s of the CLI's cold 27 s; and on the
    fused path, for epochs that train tiled, it compiled the fused passes for itself alone:
    8.2 s of a cold W3 fit's 38.9 s (issue 14).  Same bits as ``network_gradient`` on that
    path (both are ``_fused.fused_gradient``).
    """
    rate, no_order = np.float32(0), np.empty(0, np.int64)  # unread: not an epoch
    if not plain_sgd:  # fit: optimizer_epoch_minibatch, a full batch as a batch of N rows
        batch = n_samples if batch_size is None else batch_size
        tiles = training_path(sizes, batch, n_samples).tiles
        shared = _optimizer_probe_arguments(params, sizes, activations, loss, X, Y, batch)
        if tiles is None:
            return optimizer_loops.optimizer_epoch_minibatch_fused(*shared, grads)
        return optimizer_loops.optimizer_epoch_minibatch_tiled(*shared, tiles, grads)
    if batch_size == 1:  # fit: sgd_epoch_per_sample
        return loops.sgd_epoch_per_sample_fused(params, sizes, activations, loss, X, Y,
                                                no_order, rate, grads)
    tiles = training_path(sizes, batch_size, n_samples).tiles
    shape = (params, sizes, activations, loss, X, Y)
    if batch_size is None or batch_size >= n_samples:  # fit: gd_step_full_batch
        if tiles is None:
            return loops.gd_step_full_batch_fused(*shape, rate, grads)
        return loops.gd_step_full_batch_tiled(*shape, rate, tiles, grads)
    if tiles is None:
        return loops.sgd_epoch_minibatch_fused(*shape, no_order, batch_size, rate, grads)
    return loops.sgd_epoch_minibatch_tiled(*shape, no_order, batch_size, rate, tiles, grads)
