"""Parameter updates on CUDA: one thread per parameter of the flat vector.

Every optimiser is one elementwise kernel (``_optimizer_kernel``) that reads its
hyper-parameters from the float32 vector laid out in ``codes`` (η, λ, β₁/μ/ρ, β₂, ε) on the
device, so a training loop queues it without a host round trip.  The update count t (Adam's
bias correction) is passed in by value: the loop reads ``step`` once per epoch and writes it
back once.  The SGD loops do not come here at all: their gradient kernel applies θ += −η∇θ
as it computes ∇θ (see ``dense``).  Every optimiser but plain ``sgd_step`` adds L2 weight
decay as λθ to the gradient, as on the CPU.  scikit-learn's penalty α (``codes.HYPER_L2``:
(α/B)·W on the weights' gradient, ½α‖W‖² per batch on the loss) is the epoch loop's: it
queues ``launch_l2_penalty`` before the optimiser's launch; ``optimizer_step`` ignores α.
"""

import math

import numpy as np

from ..codes import (
    ADAGRAD,
    ADAM,
    HYPER_BETA1,
    HYPER_BETA2,
    HYPER_EPS,
    HYPER_L2,
    HYPER_LEARNING_RATE,
    HYPER_NESTEROV,
    HYPER_WEIGHT_DECAY,
    MOMENTUM,
    N_HYPER,
    RMSPROP,
)
from ._device import (
    ELEMENTWISE_THREADS,
    FLOAT32_TYPE,
    ONE,
    ZERO,
    blocks_for,
    check_code,
    cuda,
    device_ints,
)

__all__ = ["adagrad_step", "adam_step", "momentum_step", "optimizer_step", "rmsprop_step",
           "sgd_step"]


@cuda.jit
def _sgd_step_kernel(params, grads, learning_rate):
    """params[k] −= η·grads[k]."""
    k = cuda.grid(1)
    if k < params.shape[0]:
        params[k] -= learning_rate * grads[k]


@cuda.jit
def _optimizer_kernel(params, state0, state1, grads, optimizer, hyper, t):
    """One update of every parameter by the optimiser with code ``optimizer`` (step t ≥ 1).

    state0: velocity (momentum), G (Adagrad), E (RMSProp) or m (Adam); state1: Adam's v.
    Unused state arguments may be any float32 vector.  ``hyper`` may be the 5 slots of
    before α and Nesterov (then no Nesterov); α (HYPER_L2) is not read here.
    """
    k = cuda.grid(1)
    if k >= params.shape[0]:
        return
    lr = hyper[HYPER_LEARNING_RATE]
    b1 = hyper[HYPER_BETA1]
    b2 = hyper[HYPER_BETA2]
    eps = hyper[HYPER_EPS]
    g = grads[k] + hyper[HYPER_WEIGHT_DECAY] * params[k]
    if optimizer == MOMENTUM:
        v = b1 * state0[k] - lr * g
        state0[k] = v
        nesterov = False
        if hyper.shape[0] > HYPER_NESTEROV:
            nesterov = hyper[HYPER_NESTEROV] != ZERO
        if nesterov:  # scikit-learn's form: θ ← θ + μv − η g, v the new velocity
            params[k] += b1 * v - lr * g
        else:
            params[k] += v
    elif optimizer == ADAGRAD:
        total = state0[k] + g * g
        state0[k] = total
        params[k] -= lr * g / (math.sqrt(total) + eps)
    elif optimizer == RMSPROP:
        mean = b1 * state0[k] + (ONE - b1) * g * g
        state0[k] = mean
        params[k] -= lr * g / (math.sqrt(mean) + eps)
    elif optimizer == ADAM:
        # β^t in float32, as on the CPU
        correction1 = ONE / (ONE - b1 ** np.float32(t))
        correction2 = ONE / (ONE - b2 ** np.float32(t))
        m_k = b1 * state0[k] + (ONE - b1) * g
        v_k = b2 * state1[k] + (ONE - b2) * g * g
        state0[k] = m_k
        state1[k] = v_k
        params[k] -= lr * (m_k * correction1) / (math.sqrt(v_k * correction2) + eps)
    else:  # SGD: θ ← θ − η(∇ + λθ)
        params[k] -= lr * g


@cuda.jit
def _l2_penalty_kernel(grads, params, weight_ranges, scale, sums):
    """scikit-learn's L2 penalty of one batch: grads[k] += scale·params[k] (scale = α/B) for
    every weight k, and Σ params[k]² over this block's weights added to sums[block].

    weight_ranges (2L,) int64: [start, end) of each layer's W in the flat vector (the biases
    lie between them and are left alone).  The block's sum is a fixed tree over its threads
    and each block owns its slot of ``sums``: no atomics, the same bits on every run.
    """
    partial = cuda.shared.array(ELEMENTWISE_THREADS, FLOAT32_TYPE)
    k = cuda.grid(1)
    t = cuda.threadIdx.x
    square = ZERO
    if k < params.shape[0]:
        for r in range(0, weight_ranges.shape[0], 2):
            if weight_ranges[r] <= k and k < weight_ranges[r + 1]:
                w = params[k]
                grads[k] += scale * w
                square = w * w
    partial[t] = square
    cuda.syncthreads()
    half = ELEMENTWISE_THREADS // 2
    while half > 0:
        if t < half:
            partial[t] += partial[t + half]
        cuda.syncthreads()
        half //= 2
    if t == 0:
        sums[cuda.blockIdx.x] += partial[0]


def weight_ranges(sizes):
    """[start, end) of each layer's W in the flat vector W⁰, b⁰, W¹, b¹, …: (2L,) int64 on
    the device."""
    ranges, offset = [], 0
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        ranges += [offset, offset + int(n_out) * int(n_in)]
        offset += int(n_out) * int(n_in) + int(n_out)
    return device_ints(ranges)


def l2_sums(n_params):
    """Zeroed per-block sums of W² for ``launch_l2_penalty``, one slot per block."""
    return cuda.to_device(np.zeros(blocks_for(n_params, ELEMENTWISE_THREADS), np.float32))


def launch_l2_penalty(grads, params, ranges, alpha, batch_rows, sums):
    """Queue (α/B)·W onto the weights' gradient (B = ``batch_rows``), ‖W‖² added to ``sums``
    (block by block: ``sums`` from ``l2_sums``; ½α·Σ sums is then the epoch's penalty)."""
    _l2_penalty_kernel[blocks_for(params.shape[0], ELEMENTWISE_THREADS), ELEMENTWISE_THREADS](
        grads, params, ranges, np.float32(np.float32(alpha) / np.float32(batch_rows)), sums)


def l2_alpha(hyper):
    """α = hyper[HYPER_L2] as a float32 (0 for the 5 slots of before α), read on the host: one
    small copy when ``hyper`` is on the device, since the loop decides on the host whether
    to queue ``launch_l2_penalty`` at all."""
    if not isinstance(hyper, np.ndarray):
        hyper = hyper.copy_to_host()
    return np.float32(hyper[HYPER_L2]) if hyper.shape[0] > HYPER_L2 else np.float32(0.0)


def on_device(array, dtype):
    """``array`` as a device array (host NumPy arrays are copied over once)."""
    if isinstance(array, np.ndarray):
        return cuda.to_device(np.ascontiguousarray(array, dtype=dtype))
    return array


def launch_optimizer(params, state, grads, optimizer, hyper, t):
    """Queue one update; ``state`` (slots, P) on the device, ``hyper`` (N_HYPER,) on the
    device."""
    slots = state.shape[0] if len(state.shape) == 2 else 0
    state0 = state[0] if slots >= 1 else params  # SGD has no state: any vector will do
    state1 = state[1] if slots >= 2 else state0
    _optimizer_kernel[blocks_for(params.shape[0], ELEMENTWISE_THREADS), ELEMENTWISE_THREADS](
        params, state0, state1, grads, int(optimizer), hyper, int(t))


def read_step(step):
    """The update count in ``step`` (1,) int64, on the device or the host."""
    return int(step[0] if isinstance(step, np.ndarray) else step.copy_to_host()[0])


def write_step(step, value):
    if isinstance(step, np.ndarray):
        step[0] = value
    else:
        step.copy_to_device(np.array([value], np.int64))


def _hyper(learning_rate=0.0, weight_decay=0.0, beta1=0.0, beta2=0.0, eps=0.0,
           nesterov=False):
    hyper = np.zeros(N_HYPER, np.float32)
    hyper[HYPER_LEARNING_RATE], hyper[HYPER_WEIGHT_DECAY] = learning_rate, weight_decay
    hyper[HYPER_BETA1], hyper[HYPER_BETA2], hyper[HYPER_EPS] = beta1, beta2, eps
    hyper[HYPER_NESTEROV] = 1.0 if nesterov else 0.0
    return cuda.to_device(hyper)


def _one_update(params, state0, state1, grads, optimizer, hyper, t):
    _optimizer_kernel[blocks_for(params.shape[0], ELEMENTWISE_THREADS), ELEMENTWISE_THREADS](
        params, state0, state1, grads, optimizer, hyper, int(t))


def sgd_step(params, grads, learning_rate):
    """θ ← θ − η ∇θ, in place.   params (P,), grads (P,)"""
    _sgd_step_kernel[blocks_for(params.shape[0], ELEMENTWISE_THREADS), ELEMENTWISE_THREADS](
        params, grads, np.float32(learning_rate))


def momentum_step(params, velocity, grads, learning_rate, momentum, weight_decay,
                  nesterov=False):
    """Classical momentum: v ← μv − η g;  θ ← θ + v, with g = ∇ + λθ.   In place.

    With ``nesterov``, scikit-learn's form of Nesterov's momentum (its ``SGDOptimizer``):
    v ← μv − η g;  θ ← θ + μv − η g (v the new velocity).
    params (P,), velocity (P,), grads (P,)
    """
    _one_update(params, velocity, velocity, grads, MOMENTUM,
                _hyper(learning_rate, weight_decay, beta1=momentum, nesterov=nesterov), 1)


def adagrad_step(params, sum_sq, grads, learning_rate, eps, weight_decay):
    """Adagrad: G ← G + g²;  θ ← θ − η g / (√G + ε), with g = ∇ + λθ.   In place.

    params (P,), sum_sq (P,), grads (P,)
    """
    _one_update(params, sum_sq, sum_sq, grads, ADAGRAD,
                _hyper(learning_rate, weight_decay, eps=eps), 1)


def rmsprop_step(params, mean_sq, grads, learning_rate, rho, eps, weight_decay):
    """RMSProp: E ← ρE + (1 − ρ)g²;  θ ← θ − η g / (√E + ε), with g = ∇ + λθ.   In place.

    params (P,), mean_sq (P,), grads (P,)
    """
    _one_update(params, mean_sq, mean_sq, grads, RMSPROP,
                _hyper(learning_rate, weight_decay, beta1=rho, eps=eps), 1)


def adam_step(params, m, v, grads, learning_rate, beta1, beta2, eps, weight_decay, t):
    """Adam, step t = 1, 2, …:  m ← β₁m + (1 − β₁)g;  v ← β₂v + (1 − β₂)g²;
    θ ← θ − η m̂ / (√v̂ + ε) with m̂ = m / (1 − β₁ᵗ), v̂ = v / (1 − β₂ᵗ), g = ∇ + λθ.   In place.

    params (P,), m (P,), v (P,), grads (P,)
    """
    _one_update(params, m, v, grads, ADAM, _hyper(learning_rate, weight_decay, beta1, beta2, eps),
                t)


def optimizer_step(params, state, step, grads, optimizer, hyper):
    """One update by the optimiser with code ``optimizer``; ``step[0]`` counts updates.

    hyper (N_HYPER,) = (η, λ, β₁/μ/ρ, β₂, ε, α, Nesterov) as laid out in ``codes`` (or the 5
    slots of before α: no Nesterov); state rows: velocity; G; E; Adam's m then v.  α is not
    applied here (no batch, no weights/biases split): the epoch loop adds it to ``grads``.
    params (P,), state (slots, P), step (1,) int64, grads (P,), hyper (N_HYPER,)
    """
    optimizer = check_code("optimizer", optimizer, "optimizer")
    t = read_step(step) + 1
    launch_optimizer(params, state, grads, optimizer, on_device(hyper, np.float32), t)
    write_step(step, t)
