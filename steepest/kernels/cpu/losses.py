"""Loss kernels on the CPU: batch-mean values, their gradients, and the output delta."""

import numpy as np

from ..codes import CROSS_ENTROPY, SOFTMAX
from .activations import activation_backward
from ._jit import jit

HALF = np.float32(0.5)
LOG_EPS = np.float32(1e-12)


@jit
def mse_loss(a, y):
    """L = (1/B) Σ_batch ½‖a − y‖².   a (B, N), y (B, N) -> float"""
    total = np.float32(0.0)
    for s in range(a.shape[0]):
        for j in range(a.shape[1]):
            d = a[s, j] - y[s, j]
            total += d * d
    return HALF * total / np.float32(a.shape[0])


@jit
def mse_loss_backward(da, a, y):
    """∂L/∂a = (a − y) / B.   a (B, N), y (B, N) -> da (B, N)"""
    inv_b = np.float32(1.0) / np.float32(a.shape[0])
    for s in range(a.shape[0]):
        for j in range(a.shape[1]):
            da[s, j] = (a[s, j] - y[s, j]) * inv_b


@jit
def cross_entropy_loss(a, y):
    """L = −(1/B) Σ_batch Σᵢ yᵢ log aᵢ, with a clamped to ≥ 1e-12.   a, y (B, N) -> float"""
    total = np.float32(0.0)
    for s in range(a.shape[0]):
        for j in range(a.shape[1]):
            if y[s, j] != 0:
                total -= y[s, j] * np.log(max(a[s, j], LOG_EPS))
    return total / np.float32(a.shape[0])


@jit
def cross_entropy_loss_backward(da, a, y):
    """∂L/∂a = −y / a / B (a clamped as in the loss).   a, y (B, N) -> da (B, N)"""
    inv_b = np.float32(1.0) / np.float32(a.shape[0])
    for s in range(a.shape[0]):
        for j in range(a.shape[1]):
            da[s, j] = -y[s, j] / max(a[s, j], LOG_EPS) * inv_b


@jit
def softmax_cross_entropy_backward(dz, a, y):
    """Output delta of softmax + cross-entropy: ∂L/∂z = (a − y) / B.   a, y (B, N) -> dz (B, N)"""
    mse_loss_backward(dz, a, y)  # the same arithmetic: (a − y) / B


@jit
def loss_value(a, y, loss):
    """The batch-mean loss with code ``loss``.   a (B, N), y (B, N) -> float"""
    if loss == CROSS_ENTROPY:
        return cross_entropy_loss(a, y)
    return mse_loss(a, y)


@jit
def output_delta(dz, a, y, loss, activation):
    """δᴸ = ∂L/∂aᴸ ⊙ f′(zᴸ), fused where the maths collapses (softmax + cross-entropy).

    a (B, N), y (B, N) -> dz (B, N)
    """
    if loss == CROSS_ENTROPY and activation == SOFTMAX:
        softmax_cross_entropy_backward(dz, a, y)
        return
    # ∂L/∂a goes into dz, then f′ is applied in place: every activation_backward reads
    # da[s, j] (and, for softmax, the row's dot product) before it writes dz[s, j].
    if loss == CROSS_ENTROPY:
        cross_entropy_loss_backward(dz, a, y)
    else:
        mse_loss_backward(dz, a, y)
    activation_backward(dz, dz, a, activation)
