"""Integer codes for activations and losses, shared by every kernel set.

Compiled loops cannot take Python strings or callables cheaply, so a network's activations
and loss travel into the kernels as small integers.  The models layer maps names to these
codes (``steepest.models.tables``); the kernels map codes to maths.
"""

IDENTITY = 0
SIGMOID = 1
TANH = 2
RELU = 3
SOFTMAX = 4

ACTIVATION_CODES = {
    "identity": IDENTITY,
    "sigmoid": SIGMOID,
    "tanh": TANH,
    "relu": RELU,
    "softmax": SOFTMAX,
}

MSE = 0
CROSS_ENTROPY = 1  # categorical cross-entropy on softmax outputs

LOSS_CODES = {
    "mse": MSE,
    "cross_entropy": CROSS_ENTROPY,
}
