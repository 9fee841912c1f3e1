"""Shared pieces of the CUDA kernels: the ``cuda`` module, constants, the host-side code
check, and device functions.

Sizes on the simulator: it runs every GPU thread as a Python thread, so by default it gets
small blocks (TILE 8, and 64 threads for the one-block epoch kernel in ``loops``) instead of
the GPU's (TILE 16, 256 threads).  Setting the environment variable
``STEEPEST_CUDA_SIM_SIZES=production`` before Python starts makes the simulator use the GPU's
sizes, to test exactly the block shapes and shared-memory layouts a GPU launches (slower;
tests/test_cuda_production_sizes.py does).  ``small`` or unset is the default; on a real GPU
the variable is ignored.  ``PRODUCTION_SIZES`` below says which sizes this process uses.

Device functions here work on one element or one row and are inlined into the kernels of
every topic module, so each activation, its derivative, each loss and its output delta is
written once for all CUDA kernels (and nowhere else in ``cuda``).  Rows are addressed in flat
(1-D) buffers as ``buf[base + j]``: the whole-epoch kernel keeps its activations in one flat
shared-memory buffer, and the row kernels see 2-D arrays flattened.

Codes: device code cannot raise usefully, so every public launcher checks its activation,
loss and optimiser codes on the host with ``check_code``/``check_codes`` before it queues
anything, and an unknown code is a ValueError naming the argument.  A kernel launched
directly with an unknown code gets NaN from these device functions, never a plausible
number.  Not here: kernels and launchers (the topic modules).
"""

import functools
import math
import os

import numpy as np

# numba's float32 type, not NumPy's: the simulator sizes dynamic shared arrays with it
from numba import float32 as FLOAT32_TYPE  # noqa: F401  (used by the kernel modules)

from .. import _cuda, codes
from ..codes import (
    ACTIVATION_CODES,
    BINARY_CROSS_ENTROPY,
    CROSS_ENTROPY,
    IDENTITY,
    LOSS_CODES,
    MAE,
    MSE,
    OPTIMIZER_CODES,
    RELU,
    SIGMOID,
    SOFTMAX,
    TANH,
)

cuda = _cuda.load()

ZERO = np.float32(0.0)
ONE = np.float32(1.0)
HALF = np.float32(0.5)
LOG_EPS = np.float32(codes.LOG_EPS)
NAN = np.float32(np.nan)  # what device functions give for an unknown code
# Below this, e^{-z} overflows float32 and σ(z) is exactly 0.  Returning 0 directly gives the
# GPU's answer and keeps the simulator working (Python's math.exp raises OverflowError).
SIGMOID_FLOOR = np.float32(-88.72)


def _production_sizes():
    """Whether this process launches the GPU's block sizes (always on a GPU; on the simulator
    only with STEEPEST_CUDA_SIM_SIZES=production, see the module docstring)."""
    if not _cuda.simulator_enabled():
        return True
    value = os.environ.get("STEEPEST_CUDA_SIM_SIZES", "").strip().lower()
    if value not in ("", "small", "production"):
        raise ValueError(f"STEEPEST_CUDA_SIM_SIZES={value!r}: use 'production' or 'small'")
    return value == "production"


PRODUCTION_SIZES = _production_sizes()

# Side of the square tiles of the shared-memory matmuls.  The kernels work for any TILE; the
# simulator runs each GPU thread as a Python thread, so it gets 8 × 8 blocks instead of 16 × 16
# (unless PRODUCTION_SIZES).
TILE = 16 if PRODUCTION_SIZES else 8
TILE_PADDED = TILE + 1     # a literal for shared-array shapes (numba needs constants there)
ELEMENTWISE_THREADS = 128  # threads per block of the elementwise and row kernels


def blocks_for(n, threads):
    """Blocks of ``threads`` needed to cover ``n`` items (at least one)."""
    return max(1, (int(n) + threads - 1) // threads)


def flat(array):
    """A 1-D view of a C-contiguous (device) array."""
    return array.reshape(int(array.size))


@functools.cache
def no_rows():
    """A 1-element int64 device array passed as ``rows`` when a kernel does not gather."""
    return cuda.to_device(np.zeros(1, np.int64))


def device_ints(host_ints):
    """A small int64 array (layer sizes, activation codes, offsets) on the device."""
    return cuda.to_device(np.ascontiguousarray(host_ints, dtype=np.int64))


# ---------------------------------------------------------------------------- codes (host)
_CODE_TABLES = {"activation": ACTIVATION_CODES, "loss": LOSS_CODES,
                "optimizer": OPTIMIZER_CODES}


def check_code(argument, value, kind):
    """``value`` as an int if it is a ``kind`` code ("activation", "loss" or "optimizer"),
    else ValueError naming ``argument`` and the bad value.  Runs on the host, before a launch.
    """
    table = _CODE_TABLES[kind]
    try:
        code = int(value)
    except (TypeError, ValueError):
        code = None
    if code is not None and code == value and code in table.values():
        return code
    shown = code if code is not None and code == value else repr(value)
    known = ", ".join(f"{c} ({name})" for name, c in sorted(table.items(),
                                                            key=lambda item: item[1]))
    raise ValueError(f"{argument} code {shown} is not one of {known}")


def check_codes(argument, values, kind):
    """``check_code`` for each entry of a small code array (a network's ``activations``), as a
    list of ints.  A device array is copied to the host once: the launchers need the codes
    there anyway (they decide grids and which row kernels run)."""
    if hasattr(values, "copy_to_host"):
        values = values.copy_to_host()
    return [check_code(f"{argument}[{k}]", value, kind)
            for k, value in enumerate(np.asarray(values).reshape(-1))]


# ---------------------------------------------------------------------------- one element
@cuda.jit(device=True)
def activate(z, activation):
    """f(z) for an elementwise activation; softmax is a row operation and passes z through
    (``softmax_row`` applies it).  NaN for an unknown code."""
    if activation == SIGMOID:
        if z < SIGMOID_FLOOR:
            return ZERO
        return ONE / (ONE + math.exp(-z))
    if activation == TANH:
        return math.tanh(z)
    if activation == RELU:
        return z if z > ZERO else ZERO
    if activation == IDENTITY or activation == SOFTMAX:
        return z
    return NAN


@cuda.jit(device=True)
def activate_backward(da, a, activation):
    """∂L/∂z from ∂L/∂a and the forward output a, for an elementwise activation; softmax's
    Jacobian is a row operation and passes da through (``softmax_backward_row`` applies it).
    NaN for an unknown code."""
    if activation == SIGMOID:
        return da * a * (ONE - a)
    if activation == TANH:
        return da * (ONE - a * a)
    if activation == RELU:
        return da if a > ZERO else ZERO
    if activation == IDENTITY or activation == SOFTMAX:
        return da
    return NAN


@cuda.jit(device=True)
def step(z):
    """The perceptron's step (Heaviside) function: 1 where z ≥ 0, else 0."""
    return ONE if z >= ZERO else ZERO


# ---------------------------------------------------------------------------- one row
@cuda.jit(device=True)
def row_max(z, z_base, n):
    m = z[z_base]
    for j in range(1, n):
        m = max(m, z[z_base + j])
    return m


@cuda.jit(device=True)
def softmax_row(out, out_base, z, z_base, n):
    """out[out_base + j] = softmax(z[z_base : z_base + n])ⱼ, shifted by the max m so that exp
    cannot overflow; may be in place.  Returns Σⱼ e^{zⱼ − m} (log-sum-exp needs it)."""
    m = row_max(z, z_base, n)
    total = ZERO
    for j in range(n):
        e = math.exp(z[z_base + j] - m)
        out[out_base + j] = e
        total += e
    inv = ONE / total
    for j in range(n):
        out[out_base + j] *= inv
    return total


@cuda.jit(device=True)
def softmax_backward_row(dz, dz_base, da, da_base, a, a_base, n):
    """dz = a ⊙ (da − ⟨da, a⟩) for one row; dz may be da (the dot is taken first)."""
    dot = ZERO
    for j in range(n):
        dot += da[da_base + j] * a[a_base + j]
    for j in range(n):
        dz[dz_base + j] = a[a_base + j] * (da[da_base + j] - dot)


@cuda.jit(device=True)
def row_loss(a, a_base, y, y_base, n, loss):
    """One sample's loss by code from its activations: ½‖a − y‖², −Σ y log a, Σ|a − y|, or
    binary cross-entropy (NaN for an unknown code).

    Arguments of logs are clamped to ≥ 1e-12, as in the reference's ``loss_value``; the
    networks' reported losses are exact instead (``activate_output_row``).
    """
    total = ZERO
    for j in range(n):
        p = a[a_base + j]
        t = y[y_base + j]
        if loss == CROSS_ENTROPY:
            if t != ZERO:
                total -= t * math.log(max(p, LOG_EPS))
        elif loss == MAE:
            total += abs(p - t)
        elif loss == BINARY_CROSS_ENTROPY:
            total -= (t * math.log(max(p, LOG_EPS))
                      + (ONE - t) * math.log(max(ONE - p, LOG_EPS)))
        elif loss == MSE:
            total += HALF * (p - t) * (p - t)
        else:
            total = NAN
    return total


@cuda.jit(device=True)
def softmax_cross_entropy_row(out, base, y, y_base, n):
    """softmax(z) in place on out[base : base + n], and the sample's exact cross-entropy
    Σₖ yₖ (logsumexp(z) − zₖ), with logsumexp(z) − zₖ = (max z − zₖ) + log Σⱼ e^{zⱼ − max z}:
    no probability is formed, so none underflows to a clamped 0."""
    m = row_max(out, base, n)
    gap = ZERO   # Σ yₖ (max z − zₖ), read before the softmax overwrites z
    mass = ZERO  # Σ yₖ (1 for a one-hot target)
    for j in range(n):
        t = y[y_base + j]
        if t != ZERO:
            gap += t * (m - out[base + j])
            mass += t
    return gap + mass * math.log(softmax_row(out, base, out, base, n))


@cuda.jit(device=True)
def sigmoid_binary_cross_entropy_row(z, base, y, y_base, n):
    """The sample's exact binary cross-entropy from z[base : base + n]: Σᵢ softplus(zᵢ) − yᵢzᵢ,
    with softplus(z) = max(z, 0) + log(1 + e^{−|z|}), which never overflows."""
    total = ZERO
    for j in range(n):
        v = z[base + j]
        total += max(v, ZERO) - y[y_base + j] * v + math.log1p(math.exp(-abs(v)))
    return total


@cuda.jit(device=True)
def activate_output_row(out, base, y, y_base, n, loss, activation):
    """The output layer of one row: f(z) in place on out[base : base + n], where the forward
    matmul left z, and the row's loss.

    Softmax + cross-entropy and sigmoid + binary cross-entropy take the loss exactly from z
    before it is overwritten (the reference's ``_output_loss``); the other pairs from a
    (``row_loss``, log losses clamped).
    """
    if loss == CROSS_ENTROPY and activation == SOFTMAX:
        return softmax_cross_entropy_row(out, base, y, y_base, n)
    exact = loss == BINARY_CROSS_ENTROPY and activation == SIGMOID
    value = ZERO
    if exact:
        value = sigmoid_binary_cross_entropy_row(out, base, y, y_base, n)
    if activation == SOFTMAX:
        softmax_row(out, base, out, base, n)
    else:
        for j in range(n):
            out[base + j] = activate(out[base + j], activation)
    if not exact:
        value = row_loss(out, base, y, y_base, n, loss)
    return value


@cuda.jit(device=True)
def loss_gradient(p, t, loss, inv_batch):
    """∂L/∂a of one output for the batch-mean loss with code ``loss`` (NaN for an unknown
    code)."""
    if loss == CROSS_ENTROPY:
        return -t / max(p, LOG_EPS) * inv_batch
    if loss == MAE:
        d = p - t
        return (ONE if d > ZERO else (-ONE if d < ZERO else ZERO)) * inv_batch
    if loss == BINARY_CROSS_ENTROPY:
        return (-t / max(p, LOG_EPS) + (ONE - t) / max(ONE - p, LOG_EPS)) * inv_batch
    if loss == MSE:
        return (p - t) * inv_batch
    return NAN


@cuda.jit(device=True)
def row_output_delta(dz, dz_base, a, a_base, y, y_base, n, loss, activation, inv_batch):
    """δ for one row: (a − y)/B where the maths collapses (softmax + cross-entropy, sigmoid +
    binary cross-entropy), else ∂L/∂a pushed through f′."""
    if ((loss == CROSS_ENTROPY and activation == SOFTMAX)
            or (loss == BINARY_CROSS_ENTROPY and activation == SIGMOID)):
        for j in range(n):
            dz[dz_base + j] = (a[a_base + j] - y[y_base + j]) * inv_batch
        return
    # ∂L/∂a first, into dz; f′ is then applied in place (each step reads before it writes)
    for j in range(n):
        dz[dz_base + j] = loss_gradient(a[a_base + j], y[y_base + j], loss, inv_batch)
    if activation == SOFTMAX:
        softmax_backward_row(dz, dz_base, dz, dz_base, a, a_base, n)
    else:
        for j in range(n):
            dz[dz_base + j] = activate_backward(dz[dz_base + j], a[a_base + j], activation)
