"""Losses and output deltas on CUDA: one thread per sample (row).

Losses are deterministic: no atomics.  Each row's loss goes to its own cell of a device
vector (a training loop adds each step's row r into cell r, so one thread owns a cell at a
time and launches on one stream run in order), and the host adds the cells up in float64
when it reads the value back, once per call or epoch.  The fused kernel of the training
steps does the output activation, loss and δ in one launch: the forward matmul leaves the
output layer's z, so softmax + cross-entropy and sigmoid + binary cross-entropy report their
exact loss from z (``activate_output_row``); ``loss_value`` and friends, which see only a,
clamp log arguments at 1e-12 as in the reference.
"""

import numpy as np

from ..codes import BINARY_CROSS_ENTROPY, CROSS_ENTROPY, IDENTITY, MAE, MSE, SIGMOID, SOFTMAX
from ._device import (
    ELEMENTWISE_THREADS,
    ONE,
    activate_output_row,
    blocks_for,
    check_code,
    cuda,
    flat,
    no_rows,
    row_loss,
    row_output_delta,
)

__all__ = [
    "binary_cross_entropy_loss", "binary_cross_entropy_loss_backward", "cross_entropy_loss",
    "cross_entropy_loss_backward", "loss_value", "mae_loss", "mae_loss_backward", "mse_loss",
    "mse_loss_backward", "output_delta", "sigmoid_binary_cross_entropy_backward",
    "softmax_cross_entropy_backward",
]


@cuda.jit
def _row_losses_kernel(losses, a, y, n_rows, width, loss):
    """losses[r] = the loss of row r of flat (n_rows × width) buffers."""
    r = cuda.grid(1)
    if r < n_rows:
        losses[r] = row_loss(a, r * width, y, r * width, width, loss)


@cuda.jit
def _output_delta_kernel(dz, a, y, n_rows, width, loss, activation, inv_batch):
    """δ of each row of flat (n_rows × width) buffers (see ``row_output_delta``)."""
    r = cuda.grid(1)
    if r < n_rows:
        base = r * width
        row_output_delta(dz, base, a, base, y, base, width, loss, activation, inv_batch)


@cuda.jit
def _loss_and_delta_kernel(delta, out, Y, rows, row_start, gather, n_rows, width, loss,
                           activation, loss_sums, loss_weight):
    """A training step's output layer, per row r < n_rows of flat buffers.

    Applies the output activation to ``out`` in place (the forward matmul left z there),
    adds loss_weight × the row's loss (exact from z where the loss pairs with the output,
    ``activate_output_row``) to loss_sums[r], and writes δ.
    Targets are row ``rows[row_start + r]`` of Y when gathering, else row r.
    """
    r = cuda.grid(1)
    if r < n_rows:
        base = r * width
        y_base = (rows[row_start + r] if gather else r) * width
        loss_sums[r] += loss_weight * activate_output_row(out, base, Y, y_base, width, loss,
                                                          activation)
        row_output_delta(delta, base, out, base, Y, y_base, width, loss, activation,
                         ONE / np.float32(n_rows))


@cuda.jit
def _activate_output_kernel(out, Y, losses, n_rows, width, loss, activation):
    """Per row r < n_rows of flat buffers: the output activation applied to ``out`` in place
    (the forward matmul left z there) and losses[r] = the row's loss (``activate_output_row``)."""
    r = cuda.grid(1)
    if r < n_rows:
        base = r * width
        losses[r] = activate_output_row(out, base, Y, base, width, loss, activation)


def launch_activate_output(out, Y, losses, loss, activation, n_rows, width):
    """The inference output layer with losses, on flat buffers with rows of ``width`` values."""
    _activate_output_kernel[blocks_for(n_rows, ELEMENTWISE_THREADS), ELEMENTWISE_THREADS](
        out, Y, losses, n_rows, width, loss, activation)


def launch_loss_and_delta(delta, out, Y, loss, activation, loss_sums, loss_weight, n_rows,
                          width, rows=None, row_start=0):
    """The fused output-layer kernel on flat buffers with rows of ``width`` values."""
    _loss_and_delta_kernel[blocks_for(n_rows, ELEMENTWISE_THREADS), ELEMENTWISE_THREADS](
        delta, out, Y, no_rows() if rows is None else rows, row_start, rows is not None,
        n_rows, width, loss, activation, loss_sums, np.float32(loss_weight))


def _loss(a, y, loss):
    n_rows, width = a.shape
    losses = cuda.device_array(n_rows, np.float32)
    _row_losses_kernel[blocks_for(n_rows, ELEMENTWISE_THREADS), ELEMENTWISE_THREADS](
        losses, flat(a), flat(y), n_rows, width, loss)
    return float(losses.copy_to_host().sum(dtype=np.float64)) / n_rows


def _delta(dz, a, y, loss, activation):
    n_rows, width = a.shape
    _output_delta_kernel[blocks_for(n_rows, ELEMENTWISE_THREADS), ELEMENTWISE_THREADS](
        flat(dz), flat(a), flat(y), n_rows, width, loss, activation, ONE / np.float32(n_rows))


def mse_loss(a, y):
    """L = (1/B) Σ_batch ½‖a − y‖².   a (B, N), y (B, N) -> float"""
    return _loss(a, y, MSE)


def cross_entropy_loss(a, y):
    """L = −(1/B) Σ_batch Σᵢ yᵢ log aᵢ, with a clamped to ≥ 1e-12.   a, y (B, N) -> float"""
    return _loss(a, y, CROSS_ENTROPY)


def loss_value(a, y, loss):
    """The batch-mean loss with code ``loss``.   a (B, N), y (B, N) -> float"""
    return _loss(a, y, check_code("loss", loss, "loss"))


def mse_loss_backward(da, a, y):
    """∂L/∂a = (a − y) / B.   a (B, N), y (B, N) -> da (B, N)"""
    _delta(da, a, y, MSE, IDENTITY)


def cross_entropy_loss_backward(da, a, y):
    """∂L/∂a = −y / a / B (a clamped as in the loss).   a, y (B, N) -> da (B, N)"""
    _delta(da, a, y, CROSS_ENTROPY, IDENTITY)


def softmax_cross_entropy_backward(dz, a, y):
    """Output delta of softmax + cross-entropy: ∂L/∂z = (a − y) / B.   a, y (B, N) -> dz (B, N)"""
    _delta(dz, a, y, CROSS_ENTROPY, SOFTMAX)


def output_delta(dz, a, y, loss, activation):
    """δᴸ = ∂L/∂aᴸ ⊙ f′(zᴸ), fused where the maths collapses (softmax + cross-entropy).

    a (B, N), y (B, N) -> dz (B, N)
    """
    _delta(dz, a, y, check_code("loss", loss, "loss"),
           check_code("activation", activation, "activation"))


def mae_loss(a, y):
    """L = (1/B) Σ_batch Σᵢ |aᵢ − yᵢ|.   a (B, N), y (B, N) -> float"""
    return _loss(a, y, MAE)


def mae_loss_backward(da, a, y):
    """∂L/∂a = sign(a − y) / B (0 where a = y).   a (B, N), y (B, N) -> da (B, N)"""
    _delta(da, a, y, MAE, IDENTITY)


def binary_cross_entropy_loss(a, y):
    """L = −(1/B) Σ_batch Σᵢ [yᵢ log aᵢ + (1 − yᵢ) log(1 − aᵢ)], logs' arguments ≥ 1e-12.

    a (B, N), y (B, N) -> float
    """
    return _loss(a, y, BINARY_CROSS_ENTROPY)


def binary_cross_entropy_loss_backward(da, a, y):
    """∂L/∂a = (−y / a + (1 − y) / (1 − a)) / B, clamped as in the loss.

    a (B, N), y (B, N) -> da (B, N)
    """
    _delta(da, a, y, BINARY_CROSS_ENTROPY, IDENTITY)


def sigmoid_binary_cross_entropy_backward(dz, a, y):
    """Output delta of sigmoid + binary cross-entropy: ∂L/∂z = (a − y) / B.

    a (B, N), y (B, N) -> dz (B, N)
    """
    _delta(dz, a, y, BINARY_CROSS_ENTROPY, SIGMOID)
