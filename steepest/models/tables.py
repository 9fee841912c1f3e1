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


# Weight initialisers: name -> draw(rng, fan_in, fan_out, activation) -> (W (out, in), b).
# The normal ones draw W then (for Nielsen's) the biases from one generator, in that order,
# so a seed gives the same network as it always has.
def _normal_draw(std_of, normal_biases):
    def draw(rng, fan_in, fan_out, activation):
        W = rng.standard_normal((fan_out, fan_in)) * std_of(fan_in, fan_out)
        b = rng.standard_normal(fan_out) if normal_biases else np.zeros(fan_out)
        return W, b
    return draw


def _glorot_uniform(rng, fan_in, fan_out, activation):
    """scikit-learn's MLP initialiser: W and b uniform in ±√(f/(fan_in + fan_out)), with
    f = 2 for sigmoid units and 6 otherwise."""
    bound = np.sqrt((2.0 if activation == "sigmoid" else 6.0) / (fan_in + fan_out))
    W = rng.uniform(-bound, bound, (fan_in, fan_out)).T  # drawn in scikit-learn's (in, out)
    return W, rng.uniform(-bound, bound, fan_out)


INITIALIZERS = {
    # N(0, 1) weights and biases (Nielsen ch. 1)
    "normal": _normal_draw(lambda fan_in, fan_out: 1.0, True),
    # N(0, 1)/√fan_in, biases N(0, 1) (Nielsen ch. 3)
    "scaled_normal": _normal_draw(lambda fan_in, fan_out: 1.0 / np.sqrt(fan_in), True),
    # Glorot normal, zero biases
    "xavier": _normal_draw(lambda fan_in, fan_out: np.sqrt(2.0 / (fan_in + fan_out)), False),
    # He normal for ReLU, zero biases
    "he": _normal_draw(lambda fan_in, fan_out: np.sqrt(2.0 / fan_in), False),
    # uniform Glorot, biases too (scikit-learn's MLPClassifier / MLPRegressor)
    "glorot_uniform": _glorot_uniform,
}


def default_initializer(activation):
    return "he" if activation == "relu" else "scaled_normal"


def initial_params(sizes, init, rng, activation=None):
    """Weights and biases drawn by initialiser ``init`` for hidden units of ``activation``:
    lists of float32 arrays."""
    draw = lookup(INITIALIZERS, init, "initializer")
    weights, biases = [], []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        W, b = draw(rng, n_in, n_out, activation)
        weights.append(np.ascontiguousarray(W, dtype=np.float32))
        biases.append(b.astype(np.float32))
    return weights, biases
