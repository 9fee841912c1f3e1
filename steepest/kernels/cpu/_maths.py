"""The CPU definition of every activation and loss, each formula written once.

Small functions inlined into every CPU kernel that needs them: the per-layer kernels of
``activations.py`` and ``losses.py`` loop them over 2-D arrays, the fused training path of
``_fused.py`` over one sample's row (16 lanes at a time where it can).  The float64
statement of the same maths, and the tests' oracle, is ``kernels/reference.py``; the CUDA
twins are the device functions of ``cuda/_device.py``.

* The elementwise formulas take a float32 or a 16-lane vector (``_simd.f32x16``) alike:
  the operators and ``exp``/``relu``/``positive`` accept both (see ``_simd``), so σ is this
  one line whether it runs on one number or sixteen.  tanh exists for scalars only (the
  fused path applies it element by element).
* Derivatives are written from the forward output a (σ′ = a(1 − a)), as in the reference.
* A loss is one term per output, ``loss_term(a, y)``, with its derivative
  ``loss_gradient(a, y)`` = ∂term/∂a; batch means are the callers' (they own the 1/B).
* A code that names no activation or loss raises ``ValueError`` (``check_codes``), once, at
  the entry of every kernel, before any work: nothing falls back silently to the identity
  or to MSE.  The dispatchers below trust their codes and never raise, on purpose: a
  function that may raise makes numba take a reference on every array it is given, two
  atomic operations per array per call, which cost per-sample training 15% (W2).
"""

import numpy as np

from ..codes import (
    BINARY_CROSS_ENTROPY,
    CROSS_ENTROPY,
    IDENTITY,
    MAE,
    MSE,
    RELU,
    SIGMOID,
    SOFTMAX,
    TANH,
)
from ..codes import (
    LOG_EPS as _LOG_EPS,
)
from ._jit import jit_inline
from ._simd import exp, positive, relu

ONE = np.float32(1.0)
ZERO = np.float32(0.0)
HALF = np.float32(0.5)
LOG_EPS = np.float32(_LOG_EPS)


ACTIVATION_CODES = (IDENTITY, SIGMOID, TANH, RELU, SOFTMAX)
LOSS_CODES = (MSE, CROSS_ENTROPY, MAE, BINARY_CROSS_ENTROPY)


@jit_inline
def check_activations(activations):
    """Raise unless every code of ``activations`` names an activation."""
    for code in activations:
        if code not in ACTIVATION_CODES:
            raise ValueError("activations: unknown activation code")


@jit_inline
def check_loss(loss):
    """Raise unless ``loss`` names a loss."""
    if loss not in LOSS_CODES:
        raise ValueError("loss: unknown loss code")


# ---------------------------------------------------------------------------- activations
@jit_inline
def sigmoid(z):
    """σ(z) = 1 / (1 + e⁻ᶻ); e⁻ᶻ may overflow to inf, giving exactly 0."""
    return ONE / (ONE + exp(-z))


@jit_inline
def sigmoid_backward(da, a):
    """∂L/∂z = ∂L/∂a · σ′, with σ′ = a(1 − a) from the output."""
    return da * (a * (ONE - a))


@jit_inline
def tanh(z):
    """tanh(z) (the library's; scalars only)."""
    return np.tanh(z)


@jit_inline
def tanh_backward(da, a):
    """∂L/∂z = ∂L/∂a · (1 − a²)."""
    return da * (ONE - a * a)


@jit_inline
def relu_backward(da, a):
    """∂L/∂z = ∂L/∂a where a > 0, else 0 (the subgradient 0 at z = 0)."""
    return da * positive(a)


@jit_inline
def step(z):
    """The perceptron's Heaviside step: 1 where z ≥ 0, else 0."""
    return ONE if z >= ZERO else ZERO


@jit_inline
def activate(z, code):
    """f(z) of one element for an elementwise activation (softmax is a row operation:
    ``softmax_in_place``)."""
    if code == SIGMOID:
        return sigmoid(z)
    if code == RELU:
        return relu(z)
    if code == TANH:
        return tanh(z)
    return z  # IDENTITY


@jit_inline
def activate_backward(da, a, code):
    """∂L/∂z from ∂L/∂a and the output a, for an elementwise activation (a float32 or a
    vector; softmax's Jacobian needs the whole row: ``softmax_backward_in_place``)."""
    if code == SIGMOID:
        return sigmoid_backward(da, a)
    if code == RELU:
        return relu_backward(da, a)
    if code == TANH:
        return tanh_backward(da, a)
    return da  # IDENTITY


@jit_inline
def row_max(buf, base, n):
    """max over buf[base:base + n] (softmax's shift)."""
    top = buf[base]
    for j in range(1, n):
        top = max(top, buf[base + j])
    return top


@jit_inline
def softmax_in_place(buf, base, n, top):
    """softmax over buf[base:base + n] in place, shifted by ``top`` = the row's max so that
    exp cannot overflow; returns Σⱼ e^{zⱼ − top} (log-sum-exp needs it)."""
    total = ZERO
    for j in range(n):
        e = np.exp(buf[base + j] - top)
        buf[base + j] = e
        total += e
    inv = ONE / total
    for j in range(n):
        buf[base + j] *= inv
    return total


@jit_inline
def softmax_backward_in_place(d, d_base, a, a_base, n):
    """d ← a ⊙ (d − ⟨d, a⟩) over one row: the softmax Jacobian J = diag(a) − aaᵀ applied to
    the ∂L/∂a held in d."""
    dot = ZERO
    for j in range(n):
        dot += d[d_base + j] * a[a_base + j]
    for j in range(n):
        d[d_base + j] = a[a_base + j] * (d[d_base + j] - dot)


# ---------------------------------------------------------------------------- losses
@jit_inline
def mse(a, y):
    """½(a − y)²."""
    d = a - y
    return HALF * d * d


@jit_inline
def mse_gradient(a, y):
    return a - y


@jit_inline
def cross_entropy(a, y):
    """−y log a, a clamped to ≥ LOG_EPS; a zero target costs no log."""
    return -y * np.log(max(a, LOG_EPS)) if y != ZERO else ZERO


@jit_inline
def cross_entropy_gradient(a, y):
    return -y / max(a, LOG_EPS)


@jit_inline
def mae(a, y):
    """|a − y|."""
    return abs(a - y)


@jit_inline
def mae_gradient(a, y):
    """sign(a − y), 0 where a = y."""
    d = a - y
    return ONE if d > ZERO else (-ONE if d < ZERO else ZERO)


@jit_inline
def binary_cross_entropy(a, y):
    """−y log a − (1 − y) log(1 − a), each log's argument clamped to ≥ LOG_EPS; a term
    with zero weight costs no log."""
    value = ZERO
    if y != ZERO:
        value -= y * np.log(max(a, LOG_EPS))
    if y != ONE:
        value -= (ONE - y) * np.log(max(ONE - a, LOG_EPS))
    return value


@jit_inline
def binary_cross_entropy_gradient(a, y):
    return -y / max(a, LOG_EPS) + (ONE - y) / max(ONE - a, LOG_EPS)


@jit_inline
def loss_term(a, y, loss):
    """One output's share of a sample's loss, from its activation a."""
    if loss == MSE:
        return mse(a, y)
    if loss == CROSS_ENTROPY:
        return cross_entropy(a, y)
    if loss == MAE:
        return mae(a, y)
    return binary_cross_entropy(a, y)  # BINARY_CROSS_ENTROPY


@jit_inline
def loss_gradient(a, y, loss):
    """∂ loss_term / ∂a."""
    if loss == MSE:
        return mse_gradient(a, y)
    if loss == CROSS_ENTROPY:
        return cross_entropy_gradient(a, y)
    if loss == MAE:
        return mae_gradient(a, y)
    return binary_cross_entropy_gradient(a, y)  # BINARY_CROSS_ENTROPY


# ---------------------------------------------------------------- output layer: loss and δ
@jit_inline
def loss_from_logits(loss, code):
    """Whether the output pair's loss and δ collapse: softmax + cross-entropy, sigmoid +
    binary cross-entropy.  Then δ = a − y (``logit_delta``, the Jacobian cancels ∂L/∂a)
    and the loss is taken exactly from the pre-activations z."""
    return (loss == CROSS_ENTROPY and code == SOFTMAX) or (
        loss == BINARY_CROSS_ENTROPY and code == SIGMOID)


@jit_inline
def logit_delta(a, y):
    """∂L/∂z of a ``loss_from_logits`` pair, per output."""
    return a - y


@jit_inline
def output_delta_row(d, d_base, a, a_base, Y, y_row, n, loss, code, scale):
    """δ of one sample's output layer, times ``scale`` (the batch's 1/B), into
    d[d_base:d_base + n], from its activations a[a_base:] and target row Y[y_row]; returns the
    sample's loss from a (log losses clamped), 0 for a ``loss_from_logits`` pair (its exact
    loss comes from z: ``softmax_cross_entropy_from_logits``, or for sigmoid
    ``softplus_minus_linear`` + ``log_one_plus_exp_minus_abs``)."""
    if loss_from_logits(loss, code):
        for j in range(n):
            d[d_base + j] = logit_delta(a[a_base + j], np.float32(Y[y_row, j])) * scale
        return ZERO
    value = ZERO
    for j in range(n):
        p = a[a_base + j]
        t = np.float32(Y[y_row, j])
        value += loss_term(p, t, loss)
        da = loss_gradient(p, t, loss)
        if code != SOFTMAX:
            da = activate_backward(da, p, code)
        d[d_base + j] = da * scale
    if code == SOFTMAX:
        softmax_backward_in_place(d, d_base, a, a_base, n)
    return value


@jit_inline
def softmax_cross_entropy_from_logits(buf, base, n, Y, y_row):
    """softmax over buf[base:base + n] (the output z) in place, and the sample's exact
    cross-entropy against target row Y[y_row], Σₖ yₖ (logsumexp(z) − zₖ), with
    logsumexp(z) − zₖ = (max z − zₖ) + log Σⱼ e^{zⱼ − max z}.

    Both terms are ≥ 0 and no probability is formed, so nothing is clamped or cancels; the
    softmax's own exp pass gives the sum, so a sample costs one log.
    """
    top = row_max(buf, base, n)
    gap = ZERO   # Σ yₖ (max z − zₖ), read before the softmax overwrites z
    mass = ZERO  # Σ yₖ (1 for a one-hot target)
    for j in range(n):
        t = np.float32(Y[y_row, j])
        if t != ZERO:
            gap += t * (top - buf[base + j])
            mass += t
    return gap + mass * np.log(softmax_in_place(buf, base, n, top))


@jit_inline
def softplus_minus_linear(z, y):
    """max(z, 0) − y·z: the part of softplus(z) − y·z (sigmoid + binary cross-entropy from
    z, per output) that needs no exp."""
    return max(z, ZERO) - y * z


@jit_inline
def log_one_plus_exp_minus_abs(a):
    """log(1 + e^{−|z|}) from a = σ(z): it is −log σ(|z|), and σ(|z|) is a or 1 − a,
    whichever is ≥ ½, so it never underflows and needs no second exp."""
    return -np.log(max(a, ONE - a))
