"""Loss kernels on the CPU: batch-mean values, their gradients, and the output delta."""

import numpy as np

from ..codes import BINARY_CROSS_ENTROPY, CROSS_ENTROPY, MAE, SIGMOID, SOFTMAX
from ._jit import jit
from .activations import activation_backward

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
def mae_loss(a, y):
    """L = (1/B) Σ_batch Σᵢ |aᵢ − yᵢ|.   a (B, N), y (B, N) -> float"""
    total = np.float32(0.0)
    for s in range(a.shape[0]):
        for j in range(a.shape[1]):
            total += abs(a[s, j] - y[s, j])
    return total / np.float32(a.shape[0])


@jit
def mae_loss_backward(da, a, y):
    """∂L/∂a = sign(a − y) / B (0 where a = y).   a (B, N), y (B, N) -> da (B, N)"""
    inv_b = np.float32(1.0) / np.float32(a.shape[0])
    for s in range(a.shape[0]):
        for j in range(a.shape[1]):
            d = a[s, j] - y[s, j]
            da[s, j] = inv_b if d > 0 else (-inv_b if d < 0 else np.float32(0.0))


@jit
def binary_cross_entropy_loss(a, y):
    """L = −(1/B) Σ_batch Σᵢ [yᵢ log aᵢ + (1 − yᵢ) log(1 − aᵢ)], logs' arguments ≥ 1e-12.

    a (B, N), y (B, N) -> float
    """
    one = np.float32(1.0)
    total = np.float32(0.0)
    for s in range(a.shape[0]):
        for j in range(a.shape[1]):
            p, t = a[s, j], y[s, j]
            # the zero-weight term is skipped so that 0·log(clamp) never costs a log
            if t != 0:
                total -= t * np.log(max(p, LOG_EPS))
            if t != one:
                total -= (one - t) * np.log(max(one - p, LOG_EPS))
    return total / np.float32(a.shape[0])


@jit
def binary_cross_entropy_loss_backward(da, a, y):
    """∂L/∂a = (−y / a + (1 − y) / (1 − a)) / B, clamped as in the loss.

    a (B, N), y (B, N) -> da (B, N)
    """
    one = np.float32(1.0)
    inv_b = one / np.float32(a.shape[0])
    for s in range(a.shape[0]):
        for j in range(a.shape[1]):
            p, t = a[s, j], y[s, j]
            da[s, j] = (-t / max(p, LOG_EPS) + (one - t) / max(one - p, LOG_EPS)) * inv_b


@jit
def sigmoid_binary_cross_entropy_backward(dz, a, y):
    """Output delta of sigmoid + binary cross-entropy: ∂L/∂z = (a − y) / B.

    a (B, N), y (B, N) -> dz (B, N)
    """
    mse_loss_backward(dz, a, y)  # the same arithmetic: (a − y) / B


@jit
def loss_value(a, y, loss):
    """The batch-mean loss with code ``loss``, from the output activations; log losses clamp
    them at LOG_EPS (see ``network_evaluate`` for exact values).   a, y (B, N) -> float
    """
    if loss == CROSS_ENTROPY:
        return cross_entropy_loss(a, y)
    if loss == MAE:
        return mae_loss(a, y)
    if loss == BINARY_CROSS_ENTROPY:
        return binary_cross_entropy_loss(a, y)
    return mse_loss(a, y)


@jit
def output_delta(dz, a, y, loss, activation):
    """δᴸ = ∂L/∂aᴸ ⊙ f′(zᴸ), fused where the maths collapses (softmax + cross-entropy,
    sigmoid + binary cross-entropy).

    a (B, N), y (B, N) -> dz (B, N)
    """
    if loss == CROSS_ENTROPY and activation == SOFTMAX:
        softmax_cross_entropy_backward(dz, a, y)
        return
    if loss == BINARY_CROSS_ENTROPY and activation == SIGMOID:
        sigmoid_binary_cross_entropy_backward(dz, a, y)
        return
    # ∂L/∂a goes into dz, then f′ is applied in place: every activation_backward reads
    # da[s, j] (and, for softmax, the row's dot product) before it writes dz[s, j].
    if loss == CROSS_ENTROPY:
        cross_entropy_loss_backward(dz, a, y)
    elif loss == MAE:
        mae_loss_backward(dz, a, y)
    elif loss == BINARY_CROSS_ENTROPY:
        binary_cross_entropy_loss_backward(dz, a, y)
    else:
        mse_loss_backward(dz, a, y)
    activation_backward(dz, dz, a, activation)
