"""Activations on CUDA: one thread per element, or one thread per row for softmax.

Rows of softmax are short here (network outputs), so a thread per row beats a block-wide
reduction and needs no warp intrinsics (which the simulator lacks).
"""

from ..codes import IDENTITY, RELU, SIGMOID, SOFTMAX, TANH
from ._device import (
    ELEMENTWISE_THREADS,
    activate,
    activate_backward,
    blocks_for,
    check_code,
    cuda,
    flat,
    softmax_backward_row,
    softmax_row,
    step,
)

__all__ = [
    "activation_backward", "activation_forward", "identity_backward", "identity_forward",
    "relu_backward", "relu_forward", "sigmoid_backward", "sigmoid_forward", "softmax_backward",
    "softmax_forward", "step_forward", "tanh_backward", "tanh_forward",
]


@cuda.jit
def _activation_forward_kernel(a, z, activation):
    """a[k] = f(z[k]) over flat arrays (elementwise activations)."""
    k = cuda.grid(1)
    if k < a.shape[0]:
        a[k] = activate(z[k], activation)


@cuda.jit
def _activation_backward_kernel(dz, da, a, activation):
    """dz[k] = f′ applied to da[k], from a[k], over flat arrays (elementwise activations)."""
    k = cuda.grid(1)
    if k < dz.shape[0]:
        dz[k] = activate_backward(da[k], a[k], activation)


@cuda.jit
def _softmax_forward_kernel(a, z, n_rows, width):
    """Row-wise softmax of flat (n_rows × width) buffers; a may be z."""
    r = cuda.grid(1)
    if r < n_rows:
        softmax_row(a, r * width, z, r * width, width)


@cuda.jit
def _softmax_backward_kernel(dz, da, a, n_rows, width):
    """Row-wise softmax Jacobian product over flat (n_rows × width) buffers; dz may be da."""
    r = cuda.grid(1)
    if r < n_rows:
        softmax_backward_row(dz, r * width, da, r * width, a, r * width, width)


@cuda.jit
def _step_forward_kernel(a, z):
    """a[k] = step(z[k]) over flat arrays."""
    k = cuda.grid(1)
    if k < a.shape[0]:
        a[k] = step(z[k])


def launch_softmax_forward(a, z, n_rows, width):
    """Softmax of the first ``n_rows`` rows of flat buffers of row width ``width``."""
    _softmax_forward_kernel[blocks_for(n_rows, ELEMENTWISE_THREADS), ELEMENTWISE_THREADS](
        a, z, n_rows, width)


def launch_softmax_backward(dz, da, a, n_rows, width):
    _softmax_backward_kernel[blocks_for(n_rows, ELEMENTWISE_THREADS), ELEMENTWISE_THREADS](
        dz, da, a, n_rows, width)


def activation_forward(a, z, activation):
    """a = f(z) for the activation with code ``activation``.   z (B, N) -> a (B, N)"""
    activation = check_code("activation", activation, "activation")
    if activation == SOFTMAX:
        launch_softmax_forward(flat(a), flat(z), z.shape[0], z.shape[1])
        return
    _activation_forward_kernel[blocks_for(z.size, ELEMENTWISE_THREADS), ELEMENTWISE_THREADS](
        flat(a), flat(z), activation)


def activation_backward(dz, da, a, activation):
    """∂L/∂z = f′ applied to ∂L/∂a, from the forward output.   da, a (B, N) -> dz (B, N)"""
    activation = check_code("activation", activation, "activation")
    if activation == SOFTMAX:
        launch_softmax_backward(flat(dz), flat(da), flat(a), a.shape[0], a.shape[1])
        return
    _activation_backward_kernel[blocks_for(a.size, ELEMENTWISE_THREADS), ELEMENTWISE_THREADS](
        flat(dz), flat(da), flat(a), activation)


def identity_forward(a, z):
    """a = z.   z (B, N) -> a (B, N)"""
    activation_forward(a, z, IDENTITY)


def identity_backward(dz, da, a):
    """∂L/∂z = ∂L/∂a.   da (B, N), a (B, N) -> dz (B, N)"""
    activation_backward(dz, da, a, IDENTITY)


def sigmoid_forward(a, z):
    """a = σ(z) = 1 / (1 + e⁻ᶻ).   z (B, N) -> a (B, N)"""
    activation_forward(a, z, SIGMOID)


def sigmoid_backward(dz, da, a):
    """∂L/∂z = ∂L/∂a ⊙ a(1 − a).   da (B, N), a (B, N) -> dz (B, N)"""
    activation_backward(dz, da, a, SIGMOID)


def tanh_forward(a, z):
    """a = tanh(z).   z (B, N) -> a (B, N)"""
    activation_forward(a, z, TANH)


def tanh_backward(dz, da, a):
    """∂L/∂z = ∂L/∂a ⊙ (1 − a²).   da (B, N), a (B, N) -> dz (B, N)"""
    activation_backward(dz, da, a, TANH)


def relu_forward(a, z):
    """a = max(z, 0).   z (B, N) -> a (B, N)"""
    activation_forward(a, z, RELU)


def relu_backward(dz, da, a):
    """∂L/∂z = ∂L/∂a where a > 0, else 0.   da (B, N), a (B, N) -> dz (B, N)"""
    activation_backward(dz, da, a, RELU)


def softmax_forward(a, z):
    """Row-wise softmax, shifted by the row max so exp cannot overflow.   z (B, N) -> a (B, N)"""
    activation_forward(a, z, SOFTMAX)


def softmax_backward(dz, da, a):
    """∂L/∂z = a ⊙ (da − ⟨da, a⟩) (the softmax Jacobian product).   da, a (B, N) -> dz (B, N)"""
    activation_backward(dz, da, a, SOFTMAX)


def step_forward(a, z):
    """The perceptron's step (Heaviside) function: a = 1 where z ≥ 0, else 0.

    z (B, N) -> a (B, N)
    """
    _step_forward_kernel[blocks_for(z.size, ELEMENTWISE_THREADS), ELEMENTWISE_THREADS](
        flat(a), flat(z))
