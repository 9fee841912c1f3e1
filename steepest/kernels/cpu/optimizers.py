"""Parameter-update kernels on the CPU (one flat parameter vector, one flat gradient)."""

import numpy as np

from ._jit import jit


@jit
def sgd_step(params, grads, learning_rate):
    """θ ← θ − η ∇θ, in place.   params (P,), grads (P,)"""
    lr = np.float32(learning_rate)  # a Python float would promote the update to float64
    for k in range(params.shape[0]):
        params[k] -= lr * grads[k]
