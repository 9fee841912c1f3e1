"""Whole-network forward pass and backpropagation on the CPU.

A network travels as (params, sizes, activations): one flat float32 parameter vector
W⁰, b⁰, W¹, b¹, … (W of shape (out, in)), the layer widths, and one activation code per
layer.  Both kernels run on the fused path of ``_fused.py`` (each row through the whole
network while it is in cache, zero inputs skipped); the layer-by-layer statement of the
same maths, δᴸ = ∂L/∂aᴸ ⊙ f′(zᴸ), δˡ = (Wˡ⁺¹)ᵀδˡ⁺¹ ⊙ f′(zˡ), ∂L/∂Wˡ = δˡ(aˡ⁻¹)ᵀ, is
``reference.network_gradient``, which the tests hold these to.
"""

import numpy as np

from ..codes import BINARY_CROSS_ENTROPY, CROSS_ENTROPY, MSE, SIGMOID, SOFTMAX
from ._fused import fused_gradient, fused_inference
from ._jit import jit
from ._maths import LOSS_CODES
from .losses import loss_value
from .paths import training_path


def network_forward(out, params, sizes, activations, X):
    """Output activations of the whole network for every row of X.

    params (P,), sizes (L+1,), activations (L,), X (N, sizes[0]) -> out (N, sizes[-1])
    """
    # The inference kernel network_evaluate takes (one row at a time through the whole
    # network, zero inputs skipped, _fused.py), asked for a loss it does not take (MSE: from
    # the outputs, by the caller) and so given no target rows: one kernel compiled for
    # predict and evaluate, not one each (issue 14)
    fused_inference(out, params, sizes, activations, MSE, X,
                    np.empty((0, out.shape[1]), np.float32))


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
    value = fused_inference(out, params, sizes, activations, loss, X, Y)
    if _loss_from_logits(loss, activations[-1]):
        return value
    return loss_value(out, Y, loss)


def _loss_from_logits(loss, code):
    """``_maths.loss_from_logits``, in Python (``tests/test_exact_losses.py`` holds the two
    to the same pairs)."""
    return (loss == CROSS_ENTROPY and code == SOFTMAX) or (
        loss == BINARY_CROSS_ENTROPY and code == SIGMOID)


@jit
def network_gradient(grads, params, sizes, activations, loss, X, Y):
    """Backpropagation: the gradient of the batch-mean loss over all of X, and that loss
    (exact, as in ``network_evaluate``).

    Runs on the fused path (``_fused.fused_gradient``): each row through the whole network,
    zero inputs skipped, X taken in chunks so the scratch stays bounded for any N.
    params (P,), X (B, sizes[0]), Y (B, sizes[-1]) -> grads (P,), returns the loss
    """
    return fused_gradient(grads, params, sizes, activations, loss, X, Y, None)


@jit
def network_gradient_tiled(grads, params, sizes, activations, loss, X, Y, tiles):
    """``network_gradient`` on the tiled passes (``tiles``: a ``_tiled.Tiles``); the same
    gradient to float32 rounding.   params (P,), X (B, IN), Y (B, OUT) -> grads (P,)"""
    return fused_gradient(grads, params, sizes, activations, loss, X, Y, tiles)


def network_gradient_for_epochs(grads, params, sizes, activations, loss, X, Y, batch_size,
                                n_samples):
    """``network_gradient`` on the path (``paths.training_path``) of epochs of ``n_samples``
    rows in batches of ``batch_size`` (None: full batch): fit's gradient probe, which so
    runs the passes its epochs compiled.  On the fused path for epochs that train tiled,
    the probe alone compiled the fused passes: 7 s of a cold W3 fit's 34 s (issue 14)."""
    tiles = training_path(sizes, batch_size, n_samples).tiles
    if tiles is None:
        return network_gradient(grads, params, sizes, activations, loss, X, Y)
    return network_gradient_tiled(grads, params, sizes, activations, loss, X, Y, tiles)
