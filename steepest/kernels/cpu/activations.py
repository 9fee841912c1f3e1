"""Activation kernels on the CPU: forward from z, backward from the forward output a.

Constants are float32 so float32 arrays are never promoted to float64 by a literal.
"""

import numpy as np

from ..codes import RELU, SIGMOID, SOFTMAX, TANH
from ._jit import jit

ONE = np.float32(1.0)
ZERO = np.float32(0.0)


@jit
def identity_forward(a, z):
    """a = z.   z (B, N) -> a (B, N)"""
    a[...] = z


@jit
def identity_backward(dz, da, a):
    """∂L/∂z = ∂L/∂a.   da (B, N), a (B, N) -> dz (B, N)"""
    dz[...] = da


@jit
def sigmoid_forward(a, z):
    """a = σ(z) = 1 / (1 + e⁻ᶻ); e⁻ᶻ may overflow to inf, giving exactly 0.

    z (B, N) -> a (B, N)
    """
    for s in range(z.shape[0]):
        for j in range(z.shape[1]):
            a[s, j] = ONE / (ONE + np.exp(-z[s, j]))


@jit
def sigmoid_backward(dz, da, a):
    """∂L/∂z = ∂L/∂a ⊙ a(1 − a).   da (B, N), a (B, N) -> dz (B, N)"""
    for s in range(a.shape[0]):
        for j in range(a.shape[1]):
            dz[s, j] = da[s, j] * a[s, j] * (ONE - a[s, j])


@jit
def tanh_forward(a, z):
    """a = tanh(z).   z (B, N) -> a (B, N)"""
    for s in range(z.shape[0]):
        for j in range(z.shape[1]):
            a[s, j] = np.tanh(z[s, j])


@jit
def tanh_backward(dz, da, a):
    """∂L/∂z = ∂L/∂a ⊙ (1 − a²).   da (B, N), a (B, N) -> dz (B, N)"""
    for s in range(a.shape[0]):
        for j in range(a.shape[1]):
            dz[s, j] = da[s, j] * (ONE - a[s, j] * a[s, j])


@jit
def relu_forward(a, z):
    """a = max(z, 0).   z (B, N) -> a (B, N)"""
    for s in range(z.shape[0]):
        for j in range(z.shape[1]):
            a[s, j] = z[s, j] if z[s, j] > ZERO else ZERO


@jit
def relu_backward(dz, da, a):
    """∂L/∂z = ∂L/∂a where a > 0, else 0.   da (B, N), a (B, N) -> dz (B, N)"""
    for s in range(a.shape[0]):
        for j in range(a.shape[1]):
            dz[s, j] = da[s, j] if a[s, j] > ZERO else ZERO


@jit
def softmax_forward(a, z):
    """Row-wise softmax, shifted by the row max so exp cannot overflow.   z (B, N) -> a (B, N)"""
    for s in range(z.shape[0]):
        m = z[s, 0]
        for j in range(1, z.shape[1]):
            m = max(m, z[s, j])
        total = ZERO
        for j in range(z.shape[1]):
            e = np.exp(z[s, j] - m)
            a[s, j] = e
            total += e
        inv = ONE / total
        for j in range(z.shape[1]):
            a[s, j] *= inv


@jit
def softmax_backward(dz, da, a):
    """∂L/∂z = a ⊙ (da − ⟨da, a⟩) (the softmax Jacobian product).   da, a (B, N) -> dz (B, N)"""
    for s in range(a.shape[0]):
        dot = ZERO
        for j in range(a.shape[1]):
            dot += da[s, j] * a[s, j]
        for j in range(a.shape[1]):
            dz[s, j] = a[s, j] * (da[s, j] - dot)


@jit
def activation_forward(a, z, activation):
    """a = f(z) for the activation with code ``activation``.   z (B, N) -> a (B, N)"""
    if activation == SIGMOID:
        sigmoid_forward(a, z)
    elif activation == RELU:
        relu_forward(a, z)
    elif activation == TANH:
        tanh_forward(a, z)
    elif activation == SOFTMAX:
        softmax_forward(a, z)
    else:
        identity_forward(a, z)


@jit
def activation_backward(dz, da, a, activation):
    """∂L/∂z = f′ applied to ∂L/∂a, from the forward output.   da, a (B, N) -> dz (B, N)"""
    if activation == SIGMOID:
        sigmoid_backward(dz, da, a)
    elif activation == RELU:
        relu_backward(dz, da, a)
    elif activation == TANH:
        tanh_backward(dz, da, a)
    elif activation == SOFTMAX:
        softmax_backward(dz, da, a)
    else:
        identity_backward(dz, da, a)


@jit
def step_forward(a, z):
    """The perceptron's step (Heaviside) function: a = 1 where z ≥ 0, else 0.

    z (B, N) -> a (B, N)
    """
    for s in range(z.shape[0]):
        for j in range(z.shape[1]):
            a[s, j] = ONE if z[s, j] >= ZERO else ZERO
