"""Integer codes for activations, losses and optimisers, shared by every kernel set.

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

MAE = 2            # mean absolute error, Σᵢ |aᵢ − yᵢ| per sample
BINARY_CROSS_ENTROPY = 3  # −Σᵢ [yᵢ log aᵢ + (1 − yᵢ) log(1 − aᵢ)] on sigmoid outputs

LOSS_CODES = {
    "mse": MSE,
    "cross_entropy": CROSS_ENTROPY,
    "mae": MAE,
    "binary_cross_entropy": BINARY_CROSS_ENTROPY,
}

# Probabilities are clamped at LOG_EPS before a log (the losses on activations, not the exact
# ones from logits), so that a confident wrong answer costs a large, finite loss, not inf.
LOG_EPS = 1e-12

# Optimisers: how a training loop turns a gradient into a parameter update.
SGD = 0
MOMENTUM = 1
ADAGRAD = 2
RMSPROP = 3
ADAM = 4

OPTIMIZER_CODES = {
    "sgd": SGD,
    "momentum": MOMENTUM,
    "adagrad": ADAGRAD,
    "rmsprop": RMSPROP,
    "adam": ADAM,
}

# Layout of the float32 hyper-parameter vector ``hyper`` an optimiser travels with.  Slots an
# optimiser does not use are ignored (SGD reads only η, λ and α).  A vector shorter than
# N_HYPER (the 5 slots of before HYPER_L2 existed) reads as 0 in its missing slots.
HYPER_LEARNING_RATE = 0  # η
HYPER_WEIGHT_DECAY = 1   # λ of L2 weight decay: λθ is added to every gradient
HYPER_BETA1 = 2          # momentum μ; RMSProp's decay ρ; Adam's β₁
HYPER_BETA2 = 3          # Adam's β₂
HYPER_EPS = 4            # ε in the denominators of Adagrad, RMSProp and Adam
# α of scikit-learn's L2 penalty (MLP's ``alpha``): for a batch of B rows, (α/B)·W is added
# to the gradient of every WEIGHT (not the biases) and ½α‖W‖²/B to the batch's loss.  The
# epoch loops apply it (they know B and which parameters are weights); ``optimizer_step``,
# which knows neither, ignores this slot.
HYPER_L2 = 5
HYPER_NESTEROV = 6       # momentum only: 1.0 for Nesterov's form (scikit-learn's), 0.0 not
N_HYPER = 7

# Rows of the (slots, P) optimiser state each optimiser needs.
STATE_SLOTS = {SGD: 0, MOMENTUM: 1, ADAGRAD: 1, RMSPROP: 1, ADAM: 2}
