"""Per-layer loss kernels on the CPU: batch-mean values, their gradients, and the output delta.

The building-block API (twins of ``reference`` and ``cuda``): training takes its losses and
deltas on the fused path (``_fused.py``), from the same per-output formulas of ``_maths``.
Every kernel here sums or maps one of those formulas over a (B, N) batch and owns its 1/B.
"""

import numpy as np

from ..codes import BINARY_CROSS_ENTROPY, CROSS_ENTROPY, MAE, MSE
from . import _maths
from ._jit import jit, jit_inline

ONE = np.float32(1.0)
ZERO = np.float32(0.0)


@jit_inline
def _batch_mean(a, y, term):
    """(1/B) Σ_batch Σᵢ term(aᵢ, yᵢ).   a (B, N), y (B, N) -> float"""
    total = ZERO
    for s in range(a.shape[0]):
        for j in range(a.shape[1]):
            total += term(a[s, j], y[s, j])
    return total / np.float32(a.shape[0])


@jit_inline
def _batch_gradient(da, a, y, gradient):
    """da = gradient(a, y) / B elementwise.   a (B, N), y (B, N) -> da (B, N)"""
    inv_b = ONE / np.float32(a.shape[0])
    for s in range(a.shape[0]):
        for j in range(a.shape[1]):
            da[s, j] = gradient(a[s, j], y[s, j]) * inv_b


@jit
def mse_loss(a, y):
    """L = (1/B) Σ_batch ½‖a − y‖².   a (B, N), y (B, N) -> float"""
    return _batch_mean(a, y, _maths.mse)


@jit
def mse_loss_backward(da, a, y):
    """∂L/∂a = (a − y) / B.   a (B, N), y (B, N) -> da (B, N)"""
    _batch_gradient(da, a, y, _maths.mse_gradient)


@jit
def cross_entropy_loss(a, y):
    """L = −(1/B) Σ_batch Σᵢ yᵢ log aᵢ, with a clamped to ≥ 1e-12.   a, y (B, N) -> float"""
    return _batch_mean(a, y, _maths.cross_entropy)


@jit
def cross_entropy_loss_backward(da, a, y):
    """∂L/∂a = −y / a / B (a clamped as in the loss).   a, y (B, N) -> da (B, N)"""
    _batch_gradient(da, a, y, _maths.cross_entropy_gradient)


@jit
def softmax_cross_entropy_backward(dz, a, y):
    """Output delta of softmax + cross-entropy: ∂L/∂z = (a − y) / B.   a, y (B, N) -> dz (B, N)"""
    _batch_gradient(dz, a, y, _maths.logit_delta)


@jit
def mae_loss(a, y):
    """L = (1/B) Σ_batch Σᵢ |aᵢ − yᵢ|.   a (B, N), y (B, N) -> float"""
    return _batch_mean(a, y, _maths.mae)


@jit
def mae_loss_backward(da, a, y):
    """∂L/∂a = sign(a − y) / B (0 where a = y).   a (B, N), y (B, N) -> da (B, N)"""
    _batch_gradient(da, a, y, _maths.mae_gradient)


@jit
def binary_cross_entropy_loss(a, y):
    """L = −(1/B) Σ_batch Σᵢ [yᵢ log aᵢ + (1 − yᵢ) log(1 − aᵢ)], logs' arguments ≥ 1e-12.

    a (B, N), y (B, N) -> float
    """
    return _batch_mean(a, y, _maths.binary_cross_entropy)


@jit
def binary_cross_entropy_loss_backward(da, a, y):
    """∂L/∂a = (−y / a + (1 − y) / (1 − a)) / B, clamped as in the loss.

    a (B, N), y (B, N) -> da (B, N)
    """
    _batch_gradient(da, a, y, _maths.binary_cross_entropy_gradient)


@jit
def sigmoid_binary_cross_entropy_backward(dz, a, y):
    """Output delta of sigmoid + binary cross-entropy: ∂L/∂z = (a − y) / B.

    a (B, N), y (B, N) -> dz (B, N)
    """
    _batch_gradient(dz, a, y, _maths.logit_delta)


def loss_value(a, y, loss):
    """The batch-mean loss with code ``loss``, from the output activations; log losses clamp
    them at LOG_EPS (see ``network_evaluate`` for exact values).   a, y (B, N) -> float

    The kernel is chosen here, in Python, so that a call compiles only its own loss:
    compiled into one kernel, the four cost a cold first call about 1 s (issue 14).
    """
    kernel = _LOSS_VALUE.get(loss)
    if kernel is None:
        raise ValueError("loss: unknown loss code")
    return kernel(a, y)


@jit
def output_delta(dz, a, y, loss, activation):
    """δᴸ = ∂L/∂aᴸ ⊙ f′(zᴸ), fused where the maths collapses (softmax + cross-entropy,
    sigmoid + binary cross-entropy): one ``_maths.output_delta_row`` per sample.

    a (B, N), y (B, N) -> dz (B, N)
    """
    _maths.check_loss(loss)
    _maths.check_activations((activation,))
    inv_b = ONE / np.float32(a.shape[0])
    for s in range(a.shape[0]):
        _maths.output_delta_row(dz[s], 0, a[s], 0, y, s, a.shape[1], loss, activation,
                                inv_b)


_LOSS_VALUE = {MSE: mse_loss, CROSS_ENTROPY: cross_entropy_loss, MAE: mae_loss,
               BINARY_CROSS_ENTROPY: binary_cross_entropy_loss}
