"""Per-layer activation kernels on the CPU: forward from z, backward from the forward output a.

The building-block API (twins of ``reference`` and ``cuda``): training runs on the fused
path of ``_fused.py``.  Each kernel maps one formula of ``_maths`` over a (B, N) array.
"""

from ..codes import IDENTITY, RELU, SIGMOID, SOFTMAX, TANH
from . import _maths
from ._jit import jit, jit_inline


@jit_inline
def _map(out, x, f):
    """out[s, j] = f(x[s, j])."""
    for s in range(x.shape[0]):
        for j in range(x.shape[1]):
            out[s, j] = f(x[s, j])


@jit_inline
def _map_backward(dz, da, a, f):
    """dz[s, j] = f(da[s, j], a[s, j])."""
    for s in range(a.shape[0]):
        for j in range(a.shape[1]):
            dz[s, j] = f(da[s, j], a[s, j])


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
    _map(a, z, _maths.sigmoid)


@jit
def sigmoid_backward(dz, da, a):
    """∂L/∂z = ∂L/∂a ⊙ a(1 − a).   da (B, N), a (B, N) -> dz (B, N)"""
    _map_backward(dz, da, a, _maths.sigmoid_backward)


@jit
def tanh_forward(a, z):
    """a = tanh(z).   z (B, N) -> a (B, N)"""
    _map(a, z, _maths.tanh)


@jit
def tanh_backward(dz, da, a):
    """∂L/∂z = ∂L/∂a ⊙ (1 − a²).   da (B, N), a (B, N) -> dz (B, N)"""
    _map_backward(dz, da, a, _maths.tanh_backward)


@jit
def relu_forward(a, z):
    """a = max(z, 0).   z (B, N) -> a (B, N)"""
    _map(a, z, _maths.relu)


@jit
def relu_backward(dz, da, a):
    """∂L/∂z = ∂L/∂a where a > 0, else 0.   da (B, N), a (B, N) -> dz (B, N)"""
    _map_backward(dz, da, a, _maths.relu_backward)


@jit
def softmax_forward(a, z):
    """Row-wise softmax, shifted by the row max so exp cannot overflow.   z (B, N) -> a (B, N)"""
    n = z.shape[1]
    for s in range(z.shape[0]):
        row = a[s]
        for j in range(n):
            row[j] = z[s, j]
        _maths.softmax_in_place(row, 0, n, _maths.row_max(row, 0, n))


@jit
def softmax_backward(dz, da, a):
    """∂L/∂z = a ⊙ (da − ⟨da, a⟩) (the softmax Jacobian product).   da, a (B, N) -> dz (B, N)"""
    n = a.shape[1]
    for s in range(a.shape[0]):
        row = dz[s]
        for j in range(n):
            row[j] = da[s, j]
        _maths.softmax_backward_in_place(row, 0, a[s], 0, n)


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
    elif activation == IDENTITY:
        identity_forward(a, z)
    else:
        raise ValueError("activation: unknown activation code")


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
    elif activation == IDENTITY:
        identity_backward(dz, da, a)
    else:
        raise ValueError("activation: unknown activation code")


@jit
def step_forward(a, z):
    """The perceptron's step (Heaviside) function: a = 1 where z ≥ 0, else 0.

    z (B, N) -> a (B, N)
    """
    _map(a, z, _maths.step)
