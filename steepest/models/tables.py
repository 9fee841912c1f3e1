"""Name tables: activations, losses and weight initialisers, looked up by name.

A loss and the output activations it may follow live together in one row, so an invalid
pairing (cross-entropy after a sigmoid layer of 10 units, say) cannot be built.
"""

from dataclasses import dataclass

import numpy as np

from ..kernels.codes import ACTIVATION_CODES, LOSS_CODES


def lookup(table, name, what):
    """``table[name]``, or a ValueError that lists the valid names."""
    if not isinstance(name, str) or name not in table:
        valid = ", ".join(repr(k) for k in table)
        raise ValueError(f"unknown {what} {name!r}; expected one of {valid}")
    return table[name]


@dataclass(frozen=True)
class LossSpec:
    code: int
    outputs: tuple          # output activations this loss may follow
    default_output: str


LOSSES = {
    # ½‖a − y‖²: any output works; Nielsen's chapter-1 network pairs it with sigmoid.
    "mse": LossSpec(LOSS_CODES["mse"], tuple(ACTIVATION_CODES), "sigmoid"),
    # −Σ y log a needs a probability distribution: softmax, whose delta collapses to a − y.
    "cross_entropy": LossSpec(LOSS_CODES["cross_entropy"], ("softmax",), "softmax"),
    # Σ|a − y|: a regression loss, robust to outliers; any output, identity by default.
    "mae": LossSpec(LOSS_CODES["mae"], tuple(ACTIVATION_CODES), "identity"),
    # −Σ [y log a + (1 − y) log(1 − a)] needs each output in (0, 1): sigmoid, whose delta
    # collapses to a − y.
    "binary_cross_entropy": LossSpec(LOSS_CODES["binary_cross_entropy"], ("sigmoid",), "sigmoid"),
}

HIDDEN_ACTIVATIONS = {name: code for name, code in ACTIVATION_CODES.items() if name != "softmax"}
OUTPUT_ACTIVATIONS = dict(ACTIVATION_CODES)


# Weight initialisers: name -> (std of W given fan_in, fan_out; whether biases are N(0,1)).
def _normal(fan_in, fan_out):
    return 1.0


def _scaled_normal(fan_in, fan_out):
    return 1.0 / np.sqrt(fan_in)


def _xavier(fan_in, fan_out):
    return np.sqrt(2.0 / (fan_in + fan_out))


def _he(fan_in, fan_out):
    return np.sqrt(2.0 / fan_in)


INITIALIZERS = {
    "normal": (_normal, True),                # N(0, 1) weights and biases (Nielsen ch. 1)
    "scaled_normal": (_scaled_normal, True),  # N(0, 1)/√fan_in, biases N(0, 1) (Nielsen ch. 3)
    "xavier": (_xavier, False),               # Glorot normal, zero biases
    "he": (_he, False),                       # He normal for ReLU, zero biases
}


def default_initializer(activation):
    return "he" if activation == "relu" else "scaled_normal"


def initial_params(sizes, init, rng):
    """Weights and biases drawn by initialiser ``init``: lists of float32 arrays."""
    std_of, normal_biases = lookup(INITIALIZERS, init, "initializer")
    weights, biases = [], []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        W = rng.standard_normal((n_out, n_in)) * std_of(n_in, n_out)
        b = rng.standard_normal(n_out) if normal_biases else np.zeros(n_out)
        weights.append(W.astype(np.float32))
        biases.append(b.astype(np.float32))
    return weights, biases
