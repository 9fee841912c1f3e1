"""The training loop for every optimiser on the CPU: one compiled call per epoch.

Where ``loops.py`` hard-wires plain SGD, this loop takes the optimiser as a code with its
hyper-parameter vector and state (see ``steepest.models.optimizers`` for how to build them),
so Momentum, Adagrad, RMSProp and Adam train on the same fused path as SGD: each batch's
gradient comes from the per-sample forward/backward of ``_fused.py`` (or its tiled passes
across threads, ``_tiled.py``, as ``paths.training_path`` chooses), then ``optimizer_step``
updates every parameter.

As in ``loops.py``, the compiled loops' last argument ``probe`` (an empty array, or a (P,)
array for the gradient at ``params`` instead of an epoch) lets ``fit``'s gradient probe run
the loop its epochs compiled.
"""

from ._fused import fused_optimizer_epoch
from ._jit import jit
from .loops import NO_PROBE
from .paths import training_path


@jit
def optimizer_epoch_minibatch_fused(params, state, step, sizes, activations, loss, optimizer,
                                    hyper, X, Y, order, batch_size, probe):
    """``optimizer_epoch_minibatch`` on the fused path, one thread."""
    return fused_optimizer_epoch(params, state, step, sizes, activations, loss, optimizer,
                                 hyper, X, Y, order, batch_size, None, probe)


@jit
def optimizer_epoch_minibatch_tiled(params, state, step, sizes, activations, loss, optimizer,
                                    hyper, X, Y, order, batch_size, tiles, probe):
    """``optimizer_epoch_minibatch`` on the tiled passes (``tiles``: a ``_tiled.Tiles``)."""
    return fused_optimizer_epoch(params, state, step, sizes, activations, loss, optimizer,
                                 hyper, X, Y, order, batch_size, tiles, probe)


def optimizer_epoch_minibatch(params, state, step, sizes, activations, loss, optimizer, hyper,
                              X, Y, order, batch_size):
    """One epoch of mini-batch training by any optimiser, over the samples in ``order``.

    batch_size 1 is per-sample training, batch_size ≥ N one full-batch step; the last batch
    may be short.  The gradient of a batch is the mean over its rows, accumulated
    ``_fused.GRADIENT_CHUNK`` rows at a time, so any batch size runs in bounded memory.
    Returns the epoch's mean loss over samples, each batch's loss taken before its update.
    With α = hyper[HYPER_L2] > 0, scikit-learn's L2 penalty: (α/B)·W joins each batch's
    weight gradient (not the biases') and Σ over batches of ½α‖W‖² the loss's numerator, as
    in ``reference.optimizer_epoch_minibatch``.
    params (P,), state (slots, P), step (1,) int64 updated in place; hyper (N_HYPER,)
    float32 (or the 5 slots of before α: α = 0, no Nesterov);
    X (N, IN), Y (N, OUT), order (N,) int -> mean loss
    """
    plan = training_path(sizes, batch_size, order.shape[0])
    if plan.tiles is None:
        return optimizer_epoch_minibatch_fused(params, state, step, sizes, activations, loss,
                                               optimizer, hyper, X, Y, order, batch_size,
                                               NO_PROBE)
    return optimizer_epoch_minibatch_tiled(params, state, step, sizes, activations, loss,
                                           optimizer, hyper, X, Y, order, batch_size,
                                           plan.tiles, NO_PROBE)
