"""The definition of every op, in float64 NumPy: the spec and the test oracle.

Nothing here is fast; everything here is meant to be obviously right.  The compiled kernel
sets ``steepest.kernels.cpu`` and ``steepest.kernels.cuda`` export the same public names with
the same signatures and meaning, and the tests compare them with these.  An unknown
activation, loss or optimiser code raises ``ValueError`` here as in both kernel sets.

Conventions
-----------
* A dense layer maps a mini-batch ``inp`` of shape (B, IN) to ``out`` (B, OUT) with
  ``W`` of shape (OUT, IN): zᵀ = aᵀWᵀ + bᵀ, i.e. z = W·a + b for each sample (row).
* Outputs come first, then inputs; every kernel overwrites its outputs.
* Activation derivatives are written from the forward output ``a`` (σ′ = a(1 − a)), so the
  pre-activations need not be kept.
* Losses are averaged over the batch, so gradients are those of the batch mean.
* A network's reported loss (``network_evaluate``, ``network_gradient``, the training loops)
  is exact: softmax + cross-entropy and sigmoid + binary cross-entropy take it from the
  output layer's pre-activations z (``_output_loss``), where ``loss_value`` on probabilities
  must clamp them at LOG_EPS and so caps a sample's loss near −log(1e-12) ≈ 27.6.
* A network's parameters live in one flat vector: W⁰, b⁰, W¹, b¹, … (see ``layer_slices``).
"""

import numpy as np

from .codes import (
    ADAGRAD,
    ADAM,
    BINARY_CROSS_ENTROPY,
    CROSS_ENTROPY,
    HYPER_BETA1,
    HYPER_BETA2,
    HYPER_EPS,
    HYPER_L2,
    HYPER_LEARNING_RATE,
    HYPER_NESTEROV,
    HYPER_WEIGHT_DECAY,
    IDENTITY,
    LOG_EPS,
    MAE,
    MOMENTUM,
    MSE,
    RELU,
    RMSPROP,
    SGD,
    SIGMOID,
    SOFTMAX,
    TANH,
)

__all__ = [
    "activation_backward", "activation_forward", "cross_entropy_loss",
    "cross_entropy_loss_backward", "dense_backward_input", "dense_backward_params",
    "dense_forward", "gd_step_full_batch", "identity_backward", "identity_forward",
    "loss_value", "mse_loss", "mse_loss_backward", "network_evaluate", "network_forward",
    "network_forward_blocks",
    "network_gradient", "output_delta", "relu_backward", "relu_forward", "sgd_epoch_minibatch",
    "sgd_epoch_per_sample", "sgd_step", "sigmoid_backward", "sigmoid_forward",
    "softmax_backward", "softmax_cross_entropy_backward", "softmax_forward", "tanh_backward",
    "tanh_forward",
    # tutorials (issue 3): the perceptron's step, more losses, optimisers and their loop
    "adagrad_step", "adam_step", "binary_cross_entropy_loss",
    "binary_cross_entropy_loss_backward", "mae_loss", "mae_loss_backward", "momentum_step",
    "optimizer_epoch_minibatch", "optimizer_step", "rmsprop_step",
    "sigmoid_binary_cross_entropy_backward", "step_forward",
    # sweeps (issue 15): K same-shaped networks trained over one order of samples
    "sweep_optimizer_epoch", "sweep_sgd_epoch",
]



# ---------------------------------------------------------------------------- dense layer
def dense_forward(out, inp, W, b):
    """z = W·a + b for every row of ``inp``.

    inp (B, IN), W (OUT, IN), b (OUT,) -> out (B, OUT)
    """
    out[...] = inp @ W.T + b


def dense_backward_input(dinp, dout, W):
    """∂L/∂a of the layer input: (Wᵀ δ) for every row; the first half of delta propagation.

    dout (B, OUT), W (OUT, IN) -> dinp (B, IN)
    """
    dinp[...] = dout @ W


def dense_backward_params(dW, db, dout, inp):
    """∂L/∂W = Σ_batch δ aᵀ and ∂L/∂b = Σ_batch δ.

    dout (B, OUT), inp (B, IN) -> dW (OUT, IN), db (OUT,)
    """
    dW[...] = dout.T @ inp
    db[...] = dout.sum(axis=0)


# ---------------------------------------------------------------------------- activations
def identity_forward(a, z):
    """a = z.   z (B, N) -> a (B, N)"""
    a[...] = z


def identity_backward(dz, da, a):
    """∂L/∂z = ∂L/∂a.   da (B, N), a (B, N) -> dz (B, N)"""
    dz[...] = da


def sigmoid_forward(a, z):
    """a = σ(z) = 1 / (1 + e⁻ᶻ).   z (B, N) -> a (B, N)"""
    a[...] = 1.0 / (1.0 + np.exp(-z))


def sigmoid_backward(dz, da, a):
    """∂L/∂z = ∂L/∂a ⊙ a(1 − a).   da (B, N), a (B, N) -> dz (B, N)"""
    dz[...] = da * a * (1.0 - a)


def tanh_forward(a, z):
    """a = tanh(z).   z (B, N) -> a (B, N)"""
    a[...] = np.tanh(z)


def tanh_backward(dz, da, a):
    """∂L/∂z = ∂L/∂a ⊙ (1 − a²).   da (B, N), a (B, N) -> dz (B, N)"""
    dz[...] = da * (1.0 - a * a)


def relu_forward(a, z):
    """a = max(z, 0).   z (B, N) -> a (B, N)"""
    a[...] = np.maximum(z, 0.0)


def relu_backward(dz, da, a):
    """∂L/∂z = ∂L/∂a where a > 0, else 0 (the subgradient 0 is taken at z = 0).

    da (B, N), a (B, N) -> dz (B, N)
    """
    dz[...] = np.where(a > 0.0, da, 0.0)


def softmax_forward(a, z):
    """aᵢ = e^{zᵢ} / Σⱼ e^{zⱼ} for each row, shifted by the row max so exp cannot overflow.

    z (B, N) -> a (B, N)
    """
    e = np.exp(z - z.max(axis=1, keepdims=True))
    a[...] = e / e.sum(axis=1, keepdims=True)


def softmax_backward(dz, da, a):
    """∂L/∂z = J·∂L/∂a with the softmax Jacobian J = diag(a) − aaᵀ: a ⊙ (da − ⟨da, a⟩).

    da (B, N), a (B, N) -> dz (B, N)
    """
    dz[...] = a * (da - (da * a).sum(axis=1, keepdims=True))


def step_forward(a, z):
    """The perceptron's step (Heaviside) function: a = 1 where z ≥ 0, else 0.

    No backward: its derivative is 0 almost everywhere, which is why the perceptron learns
    by its own rule rather than by backpropagation.
    z (B, N) -> a (B, N)
    """
    a[...] = np.where(z >= 0.0, 1.0, 0.0)


# ---------------------------------------------------------------------------- losses
def mse_loss(a, y):
    """L = (1/B) Σ_batch ½‖a − y‖².   a (B, N), y (B, N) -> float"""
    return float(0.5 * ((a - y) ** 2).sum() / a.shape[0])


def mse_loss_backward(da, a, y):
    """∂L/∂a = (a − y) / B.   a (B, N), y (B, N) -> da (B, N)"""
    da[...] = (a - y) / a.shape[0]


def cross_entropy_loss(a, y):
    """L = −(1/B) Σ_batch Σᵢ yᵢ log aᵢ, with a clamped to ≥ 1e-12.   a (B, N), y (B, N) -> float"""
    return float(-(y * np.log(np.maximum(a, LOG_EPS))).sum() / a.shape[0])


def cross_entropy_loss_backward(da, a, y):
    """∂L/∂a = −y / a / B (a clamped as in the loss).   a (B, N), y (B, N) -> da (B, N)"""
    da[...] = -y / np.maximum(a, LOG_EPS) / a.shape[0]


def softmax_cross_entropy_backward(dz, a, y):
    """Output delta of softmax + cross-entropy: ∂L/∂z = (a − y) / B.

    The Jacobian product collapses because Σᵢ yᵢ = 1 for every target row.
    a (B, N), y (B, N) -> dz (B, N)
    """
    dz[...] = (a - y) / a.shape[0]


def mae_loss(a, y):
    """L = (1/B) Σ_batch Σᵢ |aᵢ − yᵢ|.   a (B, N), y (B, N) -> float"""
    return float(np.abs(a - y).sum() / a.shape[0])


def mae_loss_backward(da, a, y):
    """∂L/∂a = sign(a − y) / B (the subgradient 0 is taken where a = y).

    a (B, N), y (B, N) -> da (B, N)
    """
    da[...] = np.sign(a - y) / a.shape[0]


def binary_cross_entropy_loss(a, y):
    """L = −(1/B) Σ_batch Σᵢ [yᵢ log aᵢ + (1 − yᵢ) log(1 − aᵢ)], each log's argument clamped
    to ≥ 1e-12.   a (B, N), y (B, N) -> float
    """
    return float(-(y * np.log(np.maximum(a, LOG_EPS))
                   + (1.0 - y) * np.log(np.maximum(1.0 - a, LOG_EPS))).sum() / a.shape[0])


def binary_cross_entropy_loss_backward(da, a, y):
    """∂L/∂a = (−y / a + (1 − y) / (1 − a)) / B, clamped as in the loss.

    a (B, N), y (B, N) -> da (B, N)
    """
    da[...] = (-y / np.maximum(a, LOG_EPS) + (1.0 - y) / np.maximum(1.0 - a, LOG_EPS)) / a.shape[0]


def sigmoid_binary_cross_entropy_backward(dz, a, y):
    """Output delta of sigmoid + binary cross-entropy: ∂L/∂z = (a − y) / B.

    σ′ = a(1 − a) cancels the denominator of ∂L/∂a, so the delta never divides.
    a (B, N), y (B, N) -> dz (B, N)
    """
    dz[...] = (a - y) / a.shape[0]


# ---------------------------------------------------------------------------- dispatch by code
_FORWARD = {IDENTITY: identity_forward, SIGMOID: sigmoid_forward, TANH: tanh_forward,
            RELU: relu_forward, SOFTMAX: softmax_forward}
_BACKWARD = {IDENTITY: identity_backward, SIGMOID: sigmoid_backward, TANH: tanh_backward,
             RELU: relu_backward, SOFTMAX: softmax_backward}


def _by_code(table, activation):
    if int(activation) not in table:
        raise ValueError(f"unknown activation code {activation}")
    return table[int(activation)]


def activation_forward(a, z, activation):
    """a = f(z) for the activation with code ``activation``.   z (B, N) -> a (B, N)"""
    _by_code(_FORWARD, activation)(a, z)


def activation_backward(dz, da, a, activation):
    """∂L/∂z = f′ applied to ∂L/∂a, from the forward output.   da, a (B, N) -> dz (B, N)"""
    _by_code(_BACKWARD, activation)(dz, da, a)


def loss_value(a, y, loss):
    """The batch-mean loss with code ``loss``, from the output activations; log losses clamp
    them at LOG_EPS (see ``network_evaluate``, ``_output_loss`` for exact values).

    a (B, N), y (B, N) -> float
    """
    if loss == MSE:
        return mse_loss(a, y)
    if loss == CROSS_ENTROPY:
        return cross_entropy_loss(a, y)
    if loss == MAE:
        return mae_loss(a, y)
    if loss == BINARY_CROSS_ENTROPY:
        return binary_cross_entropy_loss(a, y)
    raise ValueError(f"unknown loss code {loss}")


def _log_sum_exp(z):
    """log Σⱼ e^{zⱼ} of each row, shifted by the row max so exp cannot overflow.

    z (B, N) -> (B, 1)
    """
    top = z.max(axis=1, keepdims=True)
    return top + np.log(np.exp(z - top).sum(axis=1, keepdims=True))


def _output_loss(z, a, y, loss, activation):
    """The batch-mean loss of a network's output layer, exact: from its pre-activations z
    where the loss pairs with the output activation, else ``loss_value`` of a = f(z).

    Softmax + cross-entropy, per sample: −Σₖ yₖ log softmax(z)ₖ = Σₖ yₖ (logsumexp(z) − zₖ)
    (logsumexp(z) − z_true for a one-hot y).
    Sigmoid + binary cross-entropy, per output: −y log σ(z) − (1 − y) log(1 − σ(z))
    = softplus(z) − y·z, with softplus(z) = log(1 + eᶻ) = max(z, 0) + log(1 + e^{−|z|}).
    No probability is formed, so none underflows to 0 and is clamped: a confidently wrong
    answer costs its full loss (~|z|), not the ~27.6 of −log(LOG_EPS).
    z (B, N), a (B, N), y (B, N) -> float
    """
    if loss == CROSS_ENTROPY and activation == SOFTMAX:
        return float((y * (_log_sum_exp(z) - z)).sum() / z.shape[0])
    if loss == BINARY_CROSS_ENTROPY and activation == SIGMOID:
        softplus = np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z)))
        return float((softplus - y * z).sum() / z.shape[0])
    return loss_value(a, y, loss)


def output_delta(dz, a, y, loss, activation):
    """δᴸ = ∂L/∂aᴸ ⊙ f′(zᴸ), fused where the maths collapses (softmax + cross-entropy,
    sigmoid + binary cross-entropy).

    a (B, N), y (B, N) -> dz (B, N)
    """
    if loss == CROSS_ENTROPY and activation == SOFTMAX:
        softmax_cross_entropy_backward(dz, a, y)
        return
    if loss == BINARY_CROSS_ENTROPY and activation == SIGMOID:
        sigmoid_binary_cross_entropy_backward(dz, a, y)
        return
    da = np.empty_like(dz)
    if loss == MSE:
        mse_loss_backward(da, a, y)
    elif loss == CROSS_ENTROPY:
        cross_entropy_loss_backward(da, a, y)
    elif loss == MAE:
        mae_loss_backward(da, a, y)
    elif loss == BINARY_CROSS_ENTROPY:
        binary_cross_entropy_loss_backward(da, a, y)
    else:
        raise ValueError(f"unknown loss code {loss}")
    activation_backward(dz, da, a, activation)


# ---------------------------------------------------------------------------- optimiser
def sgd_step(params, grads, learning_rate):
    """θ ← θ − η ∇θ, in place.   params (P,), grads (P,)"""
    params -= learning_rate * grads


# Every optimiser below adds L2 weight decay as λθ to the gradient before using it (the
# "coupled" form: the gradient of L + ½λ‖θ‖²), on every parameter, biases included.
def momentum_step(params, velocity, grads, learning_rate, momentum, weight_decay,
                  nesterov=False):
    """Classical momentum: v ← μv − η g;  θ ← θ + v, with g = ∇ + λθ.   In place.

    With ``nesterov``, scikit-learn's form of Nesterov's momentum (its ``SGDOptimizer``):
    v ← μv − η g;  θ ← θ + μv − η g (v the new velocity).
    params (P,), velocity (P,), grads (P,)
    """
    g = grads + weight_decay * params
    velocity[...] = momentum * velocity - learning_rate * g
    if nesterov:
        params += momentum * velocity - learning_rate * g
    else:
        params += velocity


def adagrad_step(params, sum_sq, grads, learning_rate, eps, weight_decay):
    """Adagrad: G ← G + g²;  θ ← θ − η g / (√G + ε), with g = ∇ + λθ.   In place.

    params (P,), sum_sq (P,), grads (P,)
    """
    g = grads + weight_decay * params
    sum_sq += g * g
    params -= learning_rate * g / (np.sqrt(sum_sq) + eps)


def rmsprop_step(params, mean_sq, grads, learning_rate, rho, eps, weight_decay):
    """RMSProp: E ← ρE + (1 − ρ)g²;  θ ← θ − η g / (√E + ε), with g = ∇ + λθ.   In place.

    params (P,), mean_sq (P,), grads (P,)
    """
    g = grads + weight_decay * params
    mean_sq[...] = rho * mean_sq + (1.0 - rho) * g * g
    params -= learning_rate * g / (np.sqrt(mean_sq) + eps)


def adam_step(params, m, v, grads, learning_rate, beta1, beta2, eps, weight_decay, t):
    """Adam, step t = 1, 2, …:  m ← β₁m + (1 − β₁)g;  v ← β₂v + (1 − β₂)g²;
    θ ← θ − η m̂ / (√v̂ + ε) with m̂ = m / (1 − β₁ᵗ), v̂ = v / (1 − β₂ᵗ), g = ∇ + λθ.   In place.

    params (P,), m (P,), v (P,), grads (P,)
    """
    g = grads + weight_decay * params
    m[...] = beta1 * m + (1.0 - beta1) * g
    v[...] = beta2 * v + (1.0 - beta2) * g * g
    m_hat = m / (1.0 - beta1 ** t)
    v_hat = v / (1.0 - beta2 ** t)
    params -= learning_rate * m_hat / (np.sqrt(v_hat) + eps)


def hyper_slot(hyper, slot):
    """hyper[slot], or 0 for a vector too short to have it (the 5 slots of before α)."""
    return hyper[slot] if len(hyper) > slot else 0.0


def optimizer_step(params, state, step, grads, optimizer, hyper):
    """One update by the optimiser with code ``optimizer``; ``step[0]`` counts updates.

    ``hyper`` is laid out as in ``codes`` (η, λ, β₁/μ/ρ, β₂, ε, α, Nesterov); ``state``
    holds the optimiser's rows (velocity; G; E; Adam's m then v).  SGD with λ:
    θ ← θ − η(∇ + λθ).  α (HYPER_L2) is NOT applied here: a single step knows neither the
    batch size nor which parameters are weights; the epoch loops add it to ``grads``
    (``optimizer_epoch_minibatch``).  Momentum reads HYPER_NESTEROV (``momentum_step``).
    params (P,), state (slots, P), step (1,) int64, grads (P,), hyper (N_HYPER,) or (5,)
    """
    if optimizer not in (SGD, MOMENTUM, ADAGRAD, RMSPROP, ADAM):
        raise ValueError(f"unknown optimizer code {optimizer}")
    step[0] += 1
    lr, wd = hyper[HYPER_LEARNING_RATE], hyper[HYPER_WEIGHT_DECAY]
    b1, b2, eps = hyper[HYPER_BETA1], hyper[HYPER_BETA2], hyper[HYPER_EPS]
    if optimizer == SGD:
        params -= lr * (grads + wd * params)
    elif optimizer == MOMENTUM:
        momentum_step(params, state[0], grads, lr, b1, wd,
                      hyper_slot(hyper, HYPER_NESTEROV) != 0)
    elif optimizer == ADAGRAD:
        adagrad_step(params, state[0], grads, lr, eps, wd)
    elif optimizer == RMSPROP:
        rmsprop_step(params, state[0], grads, lr, b1, eps, wd)
    else:
        adam_step(params, state[0], state[1], grads, lr, b1, b2, eps, wd, step[0])


# ---------------------------------------------------------------------------- whole network
def layer_slices(sizes):
    """(W slice, b slice) into the flat parameter vector for each layer of ``sizes``."""
    slices, offset = [], 0
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        w = slice(offset, offset + n_out * n_in)
        offset += n_out * n_in
        b = slice(offset, offset + n_out)
        offset += n_out
        slices.append((w, b))
    return slices


def _layers(params, sizes):
    return [(params[w].reshape(sizes[i + 1], sizes[i]), params[b])
            for i, (w, b) in enumerate(layer_slices(sizes))]


def _forward(params, sizes, activations, X):
    """Every layer's activations for the rows of X (X itself first), and the output layer's
    pre-activations z (for ``_output_loss``)."""
    acts = [X.astype(np.float64)]
    z = None
    for (W, b), act in zip(_layers(params, sizes), activations):
        z = np.empty((X.shape[0], W.shape[0]))
        dense_forward(z, acts[-1], W, b)
        a = np.empty_like(z)
        activation_forward(a, z, act)
        acts.append(a)
    return acts, z


def network_forward(out, params, sizes, activations, X):
    """Output activations of the whole network for every row of X.

    params (P,), sizes (L+1,), activations (L,), X (N, sizes[0]) -> out (N, sizes[-1])
    """
    out[...] = _forward(params, sizes, activations, X)[0][-1]


def network_forward_blocks(outs, params, sizes, activations, blocks):
    """``network_forward`` of each array of rows in ``blocks`` into the array of ``outs`` at
    its place (fit's training accuracy reads several runs of rows after each epoch).

    outs [(N_b, sizes[-1])], blocks [(N_b, sizes[0])]
    """
    for out, X in zip(outs, blocks, strict=True):
        network_forward(out, params, sizes, activations, X)


def network_evaluate(out, params, sizes, activations, loss, X, Y):
    """``network_forward`` into ``out``, and the mean over the rows of X of each sample's
    exact loss (``_output_loss``: from z for softmax + cross-entropy and sigmoid + binary
    cross-entropy; ½‖a − y‖², Σ|a − y| or the clamped log losses otherwise).

    params (P,), X (N, sizes[0]), Y (N, sizes[-1]) -> out (N, sizes[-1]), returns the loss
    """
    acts, z = _forward(params, sizes, activations, X)
    out[...] = acts[-1]
    return _output_loss(z, acts[-1], Y, loss, activations[-1])


def network_gradient(grads, params, sizes, activations, loss, X, Y):
    """Backpropagation: the gradient of the batch-mean loss, and that loss (exact, as in
    ``network_evaluate``).

    δᴸ = ∂L/∂aᴸ ⊙ f′(zᴸ);  δˡ = (Wˡ⁺¹)ᵀδˡ⁺¹ ⊙ f′(zˡ);  ∂L/∂Wˡ = δˡ(aˡ⁻¹)ᵀ, ∂L/∂bˡ = δˡ.
    params (P,), X (B, sizes[0]), Y (B, sizes[-1]) -> grads (P,), returns the loss
    """
    layers = _layers(params, sizes)
    grad_layers = _layers(grads, sizes)
    acts, z = _forward(params, sizes, activations, X)
    value = _output_loss(z, acts[-1], Y, loss, activations[-1])
    delta = np.empty_like(acts[-1])
    output_delta(delta, acts[-1], Y, loss, activations[-1])
    for layer in range(len(layers) - 1, -1, -1):
        dW, db = grad_layers[layer]
        dense_backward_params(dW, db, delta, acts[layer])
        if layer > 0:
            da = np.empty_like(acts[layer])
            dense_backward_input(da, delta, layers[layer][0])
            delta = np.empty_like(da)
            activation_backward(delta, da, acts[layer], activations[layer - 1])
    return value


def sgd_epoch_minibatch(params, sizes, activations, loss, X, Y, order, batch_size,
                        learning_rate):
    """One epoch of mini-batch SGD over the samples in ``order``; the last batch may be short.

    Returns the epoch's mean loss over samples, each batch's loss taken before its update.
    params (P,) updated in place; X (N, IN), Y (N, OUT), order (N,) int
    """
    grads = np.empty_like(params)
    total = 0.0
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        batch_loss = network_gradient(grads, params, sizes, activations, loss, X[idx], Y[idx])
        total += batch_loss * len(idx)
        sgd_step(params, grads, learning_rate)
    return total / len(order)


def sgd_epoch_per_sample(params, sizes, activations, loss, X, Y, order, learning_rate):
    """One epoch of per-sample SGD: an update after every sample, in ``order``.

    params (P,) updated in place; X (N, IN), Y (N, OUT), order (N,) int -> mean loss
    """
    return sgd_epoch_minibatch(params, sizes, activations, loss, X, Y, order, 1, learning_rate)


def gd_step_full_batch(params, sizes, activations, loss, X, Y, learning_rate):
    """One step of full-batch gradient descent on all of X; returns the loss before the step.

    params (P,) updated in place; X (N, IN), Y (N, OUT)
    """
    grads = np.empty_like(params)
    value = network_gradient(grads, params, sizes, activations, loss, X, Y)
    sgd_step(params, grads, learning_rate)
    return value


def l2_penalty(grads, params, sizes, alpha, batch_rows):
    """scikit-learn's L2 penalty of one batch of ``batch_rows`` rows: (α/B)·Wˡ added to the
    gradient of every layer's weights (the biases untouched); returns ½α‖W‖², the sum over
    all weights of all layers at ``params`` (the batch's loss gets that over B).

    grads (P,) updated in place; params (P,)
    """
    squares = 0.0
    for w, _ in layer_slices(sizes):
        grads[w] += alpha / batch_rows * params[w]
        squares += float(params[w] @ params[w])
    return 0.5 * alpha * squares


def optimizer_epoch_minibatch(params, state, step, sizes, activations, loss, optimizer, hyper,
                              X, Y, order, batch_size):
    """One epoch of mini-batch training by any optimiser, over the samples in ``order``.

    batch_size 1 is per-sample training, batch_size ≥ N one full-batch step; the last batch
    may be short.  Returns the epoch's mean loss over samples, each batch's loss taken before
    its update.  params (P,), state (slots, P) and step (1,) are updated in place.

    With α = hyper[HYPER_L2] > 0, scikit-learn's penalty (its MLP's ``alpha``): each batch of
    B rows (the short last one its own B) minimises its mean loss + ½α‖W‖²/B, so (α/B)·W
    joins the gradient of every weight, not the biases (``l2_penalty``), before the
    optimiser's step (and its λθ); the returned loss is (Σ per-sample losses + Σ over batches
    of ½α‖W‖²) / N, W as at the start of each batch: scikit-learn's ``loss_curve_``.
    X (N, IN), Y (N, OUT), order (N,) int, hyper (N_HYPER,) or (5,)
    """
    grads = np.empty_like(params)
    alpha = hyper_slot(hyper, HYPER_L2)
    total = 0.0
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        batch_loss = network_gradient(grads, params, sizes, activations, loss, X[idx], Y[idx])
        total += batch_loss * len(idx)
        if alpha != 0:
            total += l2_penalty(grads, params, sizes, alpha, len(idx))
        optimizer_step(params, state, step, grads, optimizer, hyper)
    return total / len(order)


# ---------------------------------------------------------------------------- sweeps
def sweep_sgd_epoch(params, sizes, activations, loss, X, Y, order, batch_size, learning_rates,
                    active, losses):
    """K same-shaped networks' epochs of mini-batch SGD over the same ``order``: network k
    (params[k], at learning_rates[k]) exactly as ``sgd_epoch_minibatch``, or, for a batch of
    all N rows, as ``gd_step_full_batch`` (as ``fit`` takes it), its mean loss in losses[k].
    A network with active[k] == 0 is left as it is, and losses[k] is NaN.

    params (K, P) updated in place; learning_rates (K,); active (K,) int; losses (K,)
    """
    for k in range(params.shape[0]):
        if not active[k]:
            losses[k] = np.nan
        elif batch_size >= len(order):
            losses[k] = gd_step_full_batch(params[k], sizes, activations, loss, X, Y,
                                           learning_rates[k])
        else:
            losses[k] = sgd_epoch_minibatch(params[k], sizes, activations, loss, X, Y, order,
                                            batch_size, learning_rates[k])


def sweep_optimizer_epoch(params, state, step, sizes, activations, loss, optimizer, hyper, X,
                          Y, order, batch_size, active, losses):
    """K same-shaped networks' epochs by one optimiser over the same ``order``: network k
    (params[k], state[k], step[k], hyper[k]: its own learning rate and hyper-parameters)
    exactly as ``optimizer_epoch_minibatch``, its mean loss in losses[k].  A network with
    active[k] == 0 is left as it is, and losses[k] is NaN.

    params (K, P), state (K, slots, P), step (K, 1) updated in place; hyper (K, N_HYPER);
    active (K,) int; losses (K,)
    """
    for k in range(params.shape[0]):
        losses[k] = optimizer_epoch_minibatch(
            params[k], state[k], step[k], sizes, activations, loss, optimizer, hyper[k], X, Y,
            order, batch_size) if active[k] else np.nan
