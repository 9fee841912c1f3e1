"""Whole-network forward pass and backpropagation on the CPU, built from the layer kernels.

A network travels as (params, sizes, activations): one flat float32 parameter vector
W⁰, b⁰, W¹, b¹, … (W of shape (out, in)), the layer widths, and one activation code per
layer.  Activations of a batch live in one flat workspace, layer l at rows
[B·Σsizes[:l], B·Σsizes[:l+1]), so a training loop allocates once per epoch, not per step.
"""

import numpy as np

from ._fused import fused_forward, fused_gradient
from ._jit import jit
from .activations import activation_backward, activation_forward
from .dense import dense_backward_input, dense_backward_params, dense_forward
from .losses import loss_value, output_delta


@jit
def layer_offsets(sizes):
    """Start of each layer's W and b in the flat parameter vector.   sizes (L+1,) -> (L,), (L,)"""
    n_layers = sizes.shape[0] - 1
    w_off = np.empty(n_layers, np.int64)
    b_off = np.empty(n_layers, np.int64)
    offset = 0
    for layer in range(n_layers):
        w_off[layer] = offset
        offset += sizes[layer + 1] * sizes[layer]
        b_off[layer] = offset
        offset += sizes[layer + 1]
    return w_off, b_off


@jit
def _weights(params, sizes, w_off, layer):
    n_in, n_out = sizes[layer], sizes[layer + 1]
    return params[w_off[layer]:w_off[layer] + n_out * n_in].reshape((n_out, n_in))


@jit
def _bias(params, sizes, b_off, layer):
    return params[b_off[layer]:b_off[layer] + sizes[layer + 1]]


@jit
def _activation_offsets(sizes, capacity):
    offsets = np.empty(sizes.shape[0], np.int64)
    offset = 0
    for layer in range(sizes.shape[0]):
        offsets[layer] = offset
        offset += capacity * sizes[layer]
    return offsets


@jit
def _rows(buffer, offset, n_rows, width):
    return buffer[offset:offset + n_rows * width].reshape((n_rows, width))


@jit
def new_workspace(sizes, capacity):
    """Scratch for batches of up to ``capacity`` rows: (activations, two delta buffers)."""
    widest = 0
    for layer in range(1, sizes.shape[0]):
        widest = max(widest, sizes[layer])
    acts = np.empty(capacity * sizes.sum(), np.float32)
    return acts, np.empty(capacity * widest, np.float32), np.empty(capacity * widest, np.float32)


@jit
def forward_into(acts, params, sizes, activations, n_rows, capacity):
    """Fill layers 1..L of the workspace from layer 0 (the inputs, already in place)."""
    w_off, b_off = layer_offsets(sizes)
    a_off = _activation_offsets(sizes, capacity)
    for layer in range(sizes.shape[0] - 1):
        inp = _rows(acts, a_off[layer], n_rows, sizes[layer])
        out = _rows(acts, a_off[layer + 1], n_rows, sizes[layer + 1])
        dense_forward(out, inp, _weights(params, sizes, w_off, layer), _bias(params, sizes, b_off, layer))
        activation_forward(out, out, activations[layer])  # in place: z is not kept


@jit
def backward_into(grads, acts, delta_a, delta_b, params, sizes, activations, loss, Y, n_rows,
                  capacity):
    """Backpropagate from the workspace filled by ``forward_into``; returns the batch loss.

    δᴸ = ∂L/∂aᴸ ⊙ f′(zᴸ);  δˡ = (Wˡ⁺¹)ᵀδˡ⁺¹ ⊙ f′(zˡ);  ∂L/∂Wˡ = δˡ(aˡ⁻¹)ᵀ, ∂L/∂bˡ = δˡ.
    """
    w_off, b_off = layer_offsets(sizes)
    a_off = _activation_offsets(sizes, capacity)
    n_layers = sizes.shape[0] - 1
    out = _rows(acts, a_off[n_layers], n_rows, sizes[n_layers])
    value = loss_value(out, Y, loss)
    delta = _rows(delta_a, 0, n_rows, sizes[n_layers])
    output_delta(delta, out, Y, loss, activations[n_layers - 1])
    for layer in range(n_layers - 1, -1, -1):
        n_in, n_out = sizes[layer], sizes[layer + 1]
        inp = _rows(acts, a_off[layer], n_rows, n_in)
        dW = grads[w_off[layer]:w_off[layer] + n_out * n_in].reshape((n_out, n_in))
        db = grads[b_off[layer]:b_off[layer] + n_out]
        dense_backward_params(dW, db, delta, inp)
        if layer > 0:
            # the two delta buffers alternate, so δˡ⁺¹ is intact while δˡ is written
            target = delta_b if (n_layers - layer) % 2 == 1 else delta_a
            below = _rows(target, 0, n_rows, n_in)
            dense_backward_input(below, delta, _weights(params, sizes, w_off, layer))
            activation_backward(below, below, inp, activations[layer - 1])
            delta = below
    return value


@jit
def gather_rows(dest, src, order, start, n_rows):
    """dest[k] = src[order[start + k]] for k < n_rows: a shuffled batch made contiguous."""
    width = src.shape[1]
    for k in range(n_rows):
        row = order[start + k]
        for j in range(width):
            dest[k, j] = src[row, j]


@jit
def network_forward(out, params, sizes, activations, X):
    """Output activations of the whole network for every row of X.

    params (P,), sizes (L+1,), activations (L,), X (N, sizes[0]) -> out (N, sizes[-1])
    """
    # one row at a time through the whole network, zero inputs skipped (_fused.py)
    fused_forward(out, params, sizes, activations, X)


@jit
def network_gradient(grads, params, sizes, activations, loss, X, Y):
    """Backpropagation: the gradient of the batch-mean loss over all of X, and that loss.

    Runs on the fused path (``_fused.fused_gradient``): each row through the whole network,
    zero inputs skipped, X taken in chunks so the scratch stays bounded for any N.
    params (P,), X (B, sizes[0]), Y (B, sizes[-1]) -> grads (P,), returns the loss
    """
    return fused_gradient(grads, params, sizes, activations, loss, X, Y)
