"""Parameter-update kernels on the CPU (one flat parameter vector, one flat gradient).

Hyper-parameters arrive as Python floats or float32 scalars and are cast to float32 once,
so the update never runs in float64.  Every optimiser but plain ``sgd_step`` adds L2 weight
decay as λθ to the gradient (on every parameter, biases included).  scikit-learn's penalty α
(``codes.HYPER_L2``, weights only, scaled by the batch) is the epoch loop's: ``l2_penalty``.
"""

import numpy as np

from ..codes import (
    ADAGRAD,
    ADAM,
    HYPER_BETA1,
    HYPER_BETA2,
    HYPER_EPS,
    HYPER_LEARNING_RATE,
    HYPER_NESTEROV,
    HYPER_WEIGHT_DECAY,
    MOMENTUM,
    RMSPROP,
    SGD,
)
from ._jit import jit, jit_inline, jit_no_refcount

ONE = np.float32(1.0)
ZERO = np.float32(0.0)
HALF = np.float32(0.5)


@jit
def sgd_step(params, grads, learning_rate):
    """θ ← θ − η ∇θ, in place.   params (P,), grads (P,)"""
    lr = np.float32(learning_rate)  # a Python float would promote the update to float64
    for k in range(params.shape[0]):
        params[k] -= lr * grads[k]


@jit
def momentum_step(params, velocity, grads, learning_rate, momentum, weight_decay,
                  nesterov=False):
    """Classical momentum: v ← μv − η g;  θ ← θ + v, with g = ∇ + λθ.   In place.

    With ``nesterov``, scikit-learn's form of Nesterov's momentum (its ``SGDOptimizer``):
    v ← μv − η g;  θ ← θ + μv − η g (v the new velocity).
    params (P,), velocity (P,), grads (P,)
    """
    lr, mu, wd = np.float32(learning_rate), np.float32(momentum), np.float32(weight_decay)
    if nesterov:  # two loops, not a branch per element: each one vectorises
        for k in range(params.shape[0]):
            step = lr * (grads[k] + wd * params[k])
            v = mu * velocity[k] - step
            velocity[k] = v
            params[k] += mu * v - step
    else:
        for k in range(params.shape[0]):
            v = mu * velocity[k] - lr * (grads[k] + wd * params[k])
            velocity[k] = v
            params[k] += v


@jit
def adagrad_step(params, sum_sq, grads, learning_rate, eps, weight_decay):
    """Adagrad: G ← G + g²;  θ ← θ − η g / (√G + ε), with g = ∇ + λθ.   In place.

    params (P,), sum_sq (P,), grads (P,)
    """
    lr, e, wd = np.float32(learning_rate), np.float32(eps), np.float32(weight_decay)
    for k in range(params.shape[0]):
        g = grads[k] + wd * params[k]
        total = sum_sq[k] + g * g
        sum_sq[k] = total
        params[k] -= lr * g / (np.sqrt(total) + e)


@jit
def rmsprop_step(params, mean_sq, grads, learning_rate, rho, eps, weight_decay):
    """RMSProp: E ← ρE + (1 − ρ)g²;  θ ← θ − η g / (√E + ε), with g = ∇ + λθ.   In place.

    params (P,), mean_sq (P,), grads (P,)
    """
    lr, r, e = np.float32(learning_rate), np.float32(rho), np.float32(eps)
    wd = np.float32(weight_decay)
    for k in range(params.shape[0]):
        g = grads[k] + wd * params[k]
        mean = r * mean_sq[k] + (ONE - r) * g * g
        mean_sq[k] = mean
        params[k] -= lr * g / (np.sqrt(mean) + e)


@jit
def adam_step(params, m, v, grads, learning_rate, beta1, beta2, eps, weight_decay, t):
    """Adam, step t = 1, 2, …:  m ← β₁m + (1 − β₁)g;  v ← β₂v + (1 − β₂)g²;
    θ ← θ − η m̂ / (√v̂ + ε) with m̂ = m / (1 − β₁ᵗ), v̂ = v / (1 − β₂ᵗ), g = ∇ + λθ.   In place.

    params (P,), m (P,), v (P,), grads (P,)
    """
    lr, b1, b2 = np.float32(learning_rate), np.float32(beta1), np.float32(beta2)
    e, wd = np.float32(eps), np.float32(weight_decay)
    # β^t in float32 (t as float32 too: an integer power would come back as float64)
    correction1 = ONE / (ONE - b1 ** np.float32(t))
    correction2 = ONE / (ONE - b2 ** np.float32(t))
    for k in range(params.shape[0]):
        g = grads[k] + wd * params[k]
        m_k = b1 * m[k] + (ONE - b1) * g
        v_k = b2 * v[k] + (ONE - b2) * g * g
        m[k] = m_k
        v[k] = v_k
        params[k] -= lr * (m_k * correction1) / (np.sqrt(v_k * correction2) + e)


@jit_inline
def hyper_slot(hyper, slot):
    """hyper[slot] as float32, or 0 for a vector too short to have it (the 5 slots of before
    α and Nesterov)."""
    if hyper.shape[0] > slot:
        return np.float32(hyper[slot])
    return ZERO


@jit_no_refcount
def l2_penalty(grads, params, n_weights, alpha, batch_rows):
    """scikit-learn's L2 penalty of one batch of ``batch_rows`` rows on a parameter vector
    whose first ``n_weights`` entries are the weights (the rest biases, untouched):
    grads[:n_weights] += (α/B)·θ[:n_weights]; returns ½α‖W‖² (float32) at ``params``.

    Per batch, in the epoch loop (it allocates nothing and never raises: no reference
    counting).  The fused layout's zero padding adds nothing.
    grads (P,) updated in place; params (P,)
    """
    a = np.float32(alpha)
    scale = a / np.float32(batch_rows)
    squares = ZERO
    for k in range(n_weights):
        w = params[k]
        grads[k] += scale * w
        squares += w * w
    return HALF * a * squares


@jit
def optimizer_step(params, state, step, grads, optimizer, hyper):
    """One update by the optimiser with code ``optimizer``; ``step[0]`` counts updates.

    hyper (N_HYPER,) = (η, λ, β₁/μ/ρ, β₂, ε, α, Nesterov) as laid out in ``codes`` (a
    (5,) vector of before α reads α = 0, no Nesterov); state rows: velocity; G; E; Adam's m
    then v.  α is not applied here (no batch, no weights/biases split): the epoch loops add
    it to ``grads`` (``l2_penalty``).  Momentum reads HYPER_NESTEROV.
    params (P,), state (slots, P), step (1,) int64, grads (P,), hyper (N_HYPER,)
    """
    if optimizer not in (SGD, MOMENTUM, ADAGRAD, RMSPROP, ADAM):
        raise ValueError("optimizer: unknown optimizer code")
    step[0] += 1
    lr, wd = hyper[HYPER_LEARNING_RATE], hyper[HYPER_WEIGHT_DECAY]
    b1, b2, eps = hyper[HYPER_BETA1], hyper[HYPER_BETA2], hyper[HYPER_EPS]
    if optimizer == MOMENTUM:
        momentum_step(params, state[0], grads, lr, b1, wd,
                      hyper_slot(hyper, HYPER_NESTEROV) != ZERO)
    elif optimizer == ADAGRAD:
        adagrad_step(params, state[0], grads, lr, eps, wd)
    elif optimizer == RMSPROP:
        rmsprop_step(params, state[0], grads, lr, b1, eps, wd)
    elif optimizer == ADAM:
        adam_step(params, state[0], state[1], grads, lr, b1, b2, eps, wd, step[0])
    else:  # SGD: θ ← θ − η(∇ + λθ)
        lr32, wd32 = np.float32(lr), np.float32(wd)
        for k in range(params.shape[0]):
            params[k] -= lr32 * (grads[k] + wd32 * params[k])
